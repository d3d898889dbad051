use crate::*;
use onedoor_messaging::consumer::{self, ConsumerSpec, Delivery, Handler, HandlerError};
use sqlx::PgConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

/// The service whose consumers these are (their dead letters are its own).
const SERVICE: &str = "department-test";

/// Records an effect per message in the same transaction as the inbox row.
/// Messages whose body says `"poison"` fail every time; when `hang_first`
/// is set, the first delivery never finishes (the consumer "dies").
#[derive(Default)]
struct RecordEffect {
    deliveries: AtomicUsize,
    hang_first: bool,
    started: tokio::sync::Notify,
    /// The operator's fix for the poison message has been deployed.
    fixed: std::sync::atomic::AtomicBool,
}

impl Handler for RecordEffect {
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        let n = self.deliveries.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        if self.hang_first && n == 0 {
            std::future::pending::<()>().await;
        }
        if delivery.payload.as_ref() == b"\"overflow\"" {
            let amounts: Vec<i64> = vec![i64::MAX, 1];
            let total: i64 = amounts.iter().sum(); // panics in debug builds, as an unchecked sum would
            sqlx::query("SELECT $1").bind(total).execute(&mut *tx).await?;
        }
        if delivery.payload.as_ref() == b"\"poison\"" && !self.fixed.load(Ordering::SeqCst) {
            return Err(HandlerError::Transient("the referral names an unknown department".into()));
        }
        sqlx::query("INSERT INTO effects (event_id) VALUES ($1)").bind(delivery.event_id).execute(&mut *tx).await?;
        Ok(())
    }
}

async fn effects(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects").fetch_one(pool).await.unwrap()
}

async fn setup() -> (onedoor_test_support::TestDatabase, onedoor_test_support::TestNats, jetstream::Context) {
    let db = store_db().await;
    sqlx::query("CREATE TABLE effects (event_id uuid NOT NULL)").execute(&db.pool).await.unwrap();
    let nats = onedoor_test_support::TestNats::start();
    let (_client, js) = nats.jetstream().await;
    intake_stream(&js).await;
    (db, nats, js)
}

fn spec() -> ConsumerSpec {
    spec_of("department-test")
}

fn spec_of(durable: &str) -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(SERVICE, TEST_STREAM, durable, vec![materials_subject()]);
    spec.ack_wait = Duration::from_secs(1);
    spec.max_deliver = 3;
    spec.backoff = vec![Duration::from_millis(50)];
    spec.concurrency = 4;
    spec
}

async fn publish(js: &jetstream::Context, msg_id: &str, event_id: Uuid, body: &str) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    headers.insert(onedoor_messaging::EVENT_ID_HEADER, event_id.to_string().as_str());
    js.publish_with_headers(materials_subject(), headers, body.to_string().into()).await.unwrap().await.unwrap();
}

#[tokio::test]
async fn a_consumer_that_dies_before_acking_gets_the_message_again_and_acts_once() {
    let (db, _nats, js) = setup().await;
    let event_id = Uuid::now_v7();
    publish(&js, &event_id.to_string(), event_id, "{}").await;

    // The first consumer takes the message and dies mid-handling.
    let dying = Arc::new(RecordEffect { hang_first: true, ..Default::default() });
    let crashed =
        tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), dying.clone(), CancellationToken::new()));
    dying.started.notified().await;
    crashed.abort();
    let _ = crashed.await;
    assert_eq!(effects(&db.pool).await, 0, "nothing commits without finishing");

    // Its replacement receives the redelivery and acts on it.
    let healthy = Arc::new(RecordEffect::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), healthy.clone(), shutdown.clone()));
    eventually("the redelivered message is handled", Duration::from_secs(20), || async {
        effects(&db.pool).await == 1
    })
    .await;

    // The same event arriving again (a replay under a new broker id) changes nothing.
    publish(&js, "replayed-copy", event_id, "{}").await;
    eventually("the copy is delivered", Duration::from_secs(10), || async {
        healthy.deliveries.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(effects(&db.pool).await, 1, "the inbox prevents a second effect");
}

#[tokio::test]
async fn a_message_published_twice_with_the_same_id_is_stored_once() {
    let (_db, _nats, js) = setup().await;
    let event_id = Uuid::now_v7();
    publish(&js, &event_id.to_string(), event_id, "{}").await;
    publish(&js, &event_id.to_string(), event_id, "{}").await;
    assert_eq!(stream_contents(&js, TEST_STREAM).await.len(), 1);
}

#[tokio::test]
async fn a_poison_message_lands_in_the_dead_letter_stream_after_max_deliver_with_its_reason() {
    let (db, _nats, js) = setup().await;
    let poison = Uuid::now_v7();
    let fine = Uuid::now_v7();
    publish(&js, &poison.to_string(), poison, "\"poison\"").await;
    publish(&js, &fine.to_string(), fine, "{}").await;

    let handler = Arc::new(RecordEffect::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), handler.clone(), shutdown.clone()));
    eventually("the poison message is dead-lettered", Duration::from_secs(20), || {
        let js = js.clone();
        async move { !onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap().is_empty() }
    })
    .await;
    eventually("the good message is handled", Duration::from_secs(10), || async { effects(&db.pool).await == 1 }).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let letters = onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap();

    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.event_id, Some(poison));
    assert_eq!(letter.delivered, 3, "tried max_deliver times first");
    assert_eq!(letter.original_subject, materials_subject());
    assert_eq!(letter.consumer, "department-test");
    assert!(letter.reason.contains("unknown department"), "reason kept: {}", letter.reason);
    assert_eq!(effects(&db.pool).await, 1, "the good message after it was still handled");
}

#[tokio::test]
async fn messages_that_queued_up_share_a_transaction_and_one_that_fails_fails_none_of_the_others() {
    let (db, _nats, js) = setup().await;
    // Which transaction made each effect, and in what order.
    sqlx::query("ALTER TABLE effects ADD COLUMN tx bigint DEFAULT txid_current(), ADD COLUMN n bigserial")
        .execute(&db.pool)
        .await
        .unwrap();
    // Forty messages about five cases, waiting before the consumer starts;
    // one of them fails every time.
    let cases: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut published: Vec<(Uuid, Uuid)> = Vec::new();
    let mut poison = None;
    for n in 0..40 {
        let (case, event_id) = (cases[n % 5], Uuid::now_v7());
        let body = if n == 17 { "\"poison\"" } else { "{}" };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id.to_string().as_str());
        headers.insert(onedoor_messaging::EVENT_ID_HEADER, event_id.to_string().as_str());
        headers.insert(onedoor_contracts::CE_SUBJECT_HEADER, case.to_string().as_str());
        js.publish_with_headers(materials_subject(), headers, body.into()).await.unwrap().await.unwrap();
        if n == 17 {
            poison = Some(event_id);
        } else {
            published.push((case, event_id));
        }
    }

    // One worker (as `consumer::run` has), pulling sixteen at a time.
    let mut pulling = spec();
    pulling.concurrency = 16;
    let handler = Arc::new(RecordEffect::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(js.clone(), db.pool.clone(), pulling, handler.clone(), shutdown.clone()));
    eventually("every good message is handled", Duration::from_secs(20), || async { effects(&db.pool).await == 39 })
        .await;
    eventually("the failing one is dead-lettered", Duration::from_secs(20), || {
        let js = js.clone();
        async move { !onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap().is_empty() }
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT event_id, tx FROM effects ORDER BY n").fetch_all(&db.pool).await.unwrap();
    let handled: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let mut once = handled.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), 39, "each good message acted on once: {handled:?}");
    let transactions: std::collections::HashSet<i64> = rows.iter().map(|(_, tx)| *tx).collect();
    assert!(transactions.len() < 20, "39 messages took {} transactions", transactions.len());
    for case in &cases {
        let sent: Vec<Uuid> = published.iter().filter(|(c, _)| c == case).map(|(_, id)| *id).collect();
        let done: Vec<Uuid> = handled.iter().filter(|id| sent.contains(id)).copied().collect();
        assert_eq!(done, sent, "one case's messages are handled in the order they were published");
    }
    let letters = onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap();
    assert_eq!(letters.iter().map(|l| l.event_id).collect::<Vec<_>>(), vec![poison]);
}

#[tokio::test]
async fn a_replayed_dead_letter_is_handled_once_the_cause_is_fixed() {
    let (db, _nats, js) = setup().await;
    let poison = Uuid::now_v7();
    publish(&js, &poison.to_string(), poison, "\"poison\"").await;
    let shutdown = CancellationToken::new();
    let handler = Arc::new(RecordEffect::default());
    let running = tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), handler.clone(), shutdown.clone()));
    eventually("dead-lettered", Duration::from_secs(20), || {
        let js = js.clone();
        async move { !onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap().is_empty() }
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(effects(&db.pool).await, 0);

    // The cause is fixed; the operator replays the dead letter, through the
    // service's own consumer: nothing is published again.
    handler.fixed.store(true, Ordering::SeqCst);
    let seq = onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap()[0].sequence;
    let replayed = consumer::replay(&js, &db.pool, &spec(), handler.as_ref(), seq).await.unwrap();
    assert_eq!(replayed, consumer::Replayed::Handled);
    assert_eq!(effects(&db.pool).await, 1, "handled by the time the operator has the answer");
    assert!(onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap().is_empty());
    let copies = stream_contents(&js, TEST_STREAM)
        .await
        .into_iter()
        .filter(|m| {
            m.headers.get(onedoor_messaging::EVENT_ID_HEADER).map(|v| v.as_str().to_string())
                == Some(poison.to_string())
        })
        .count();
    assert_eq!(copies, 1, "the replay is not published on the original subject (another service's)");
    let again = consumer::replay(&js, &db.pool, &spec(), handler.as_ref(), seq).await;
    assert!(matches!(again, Err(consumer::ReplayError::NotFound(s)) if s == seq), "{again:?}");
    for none in [0, u64::MAX] {
        let missing = consumer::replay(&js, &db.pool, &spec(), handler.as_ref(), none).await;
        assert!(matches!(missing, Err(consumer::ReplayError::NotFound(_))), "{none}: {missing:?}");
    }
}

/// Decodes every message into the intake stream's events, as services do,
/// and records the ones it knows.
struct TypedWindowEvents;

impl Handler for TypedWindowEvents {
    async fn handle(&self, tx: &mut PgConnection, delivery: &Delivery) -> Result<(), HandlerError> {
        match delivery.decode::<onedoor_contracts::intake::IntakeEvent>()? {
            onedoor_contracts::intake::IntakeEvent::MaterialsSupplemented(_) => {
                sqlx::query("INSERT INTO effects (event_id) VALUES ($1)")
                    .bind(delivery.event_id)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn an_event_version_the_consumer_does_not_know_is_dead_lettered_for_operators_not_dropped() {
    let (db, _nats, js) = setup().await;
    let known = numbered_event(Uuid::now_v7(), 1);
    let mut newer = numbered_event(Uuid::now_v7(), 2);
    newer.event_type = "onedoor.intake.materials_supplemented.v2".into();
    for (envelope, ce_type) in [(&known, known.event_type.clone()), (&newer, newer.event_type.clone())] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.id.to_string().as_str());
        headers.insert(onedoor_messaging::EVENT_ID_HEADER, envelope.id.to_string().as_str());
        headers.insert(onedoor_contracts::CE_TYPE_HEADER, ce_type.as_str());
        let body = serde_json::to_vec(envelope).unwrap();
        js.publish_with_headers(materials_subject(), headers, body.into()).await.unwrap().await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let running =
        tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), Arc::new(TypedWindowEvents), shutdown.clone()));
    eventually("the newer version is dead-lettered", Duration::from_secs(20), || {
        let js = js.clone();
        async move { !onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap().is_empty() }
    })
    .await;
    eventually("the known version is handled", Duration::from_secs(10), || async { effects(&db.pool).await == 1 })
        .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let letters = onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event_id, Some(newer.id));
    assert!(letters[0].reason.starts_with("unknown_event_version"), "reason: {}", letters[0].reason);
    assert_eq!(letters[0].delivered, 1, "no point retrying a version this build cannot read");
}

#[tokio::test]
async fn a_replay_that_fails_again_keeps_its_dead_letter_and_only_its_consumer_replays_it() {
    let (db, _nats, js) = setup().await;
    let poison = Uuid::now_v7();
    publish(&js, &poison.to_string(), poison, "\"poison\"").await;
    let handler = Arc::new(RecordEffect::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), handler.clone(), shutdown.clone()));
    let dead_letters = || {
        let js = js.clone();
        async move { onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap() }
    };
    eventually("dead-lettered", Duration::from_secs(20), || async { dead_letters().await.len() == 1 }).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    // Another consumer's replay is refused.
    let first = dead_letters().await[0].sequence;
    let foreign = consumer::replay(&js, &db.pool, &spec_of("intake-lanes-medical"), handler.as_ref(), first).await;
    assert!(matches!(foreign, Err(consumer::ReplayError::OtherConsumer { .. })), "{foreign:?}");

    // The operator replays it before the cause is fixed: it fails again, and stays.
    let failed = consumer::replay(&js, &db.pool, &spec(), handler.as_ref(), first).await;
    assert!(
        matches!(&failed, Err(consumer::ReplayError::Failed(HandlerError::Transient(r))) if r.contains("unknown department")),
        "{failed:?}"
    );
    let letters = dead_letters().await;
    assert_eq!(letters.len(), 1, "the dead letter is kept: {letters:?}");
    assert_eq!(letters[0].sequence, first);
    assert_eq!(letters[0].event_id, Some(poison));
    assert_eq!(effects(&db.pool).await, 0);
}

#[tokio::test]
async fn a_handler_that_panics_is_retried_and_dead_lettered_with_its_reason() {
    let (db, _nats, js) = setup().await;
    let bug = Uuid::now_v7();
    let fine = Uuid::now_v7();
    publish(&js, &bug.to_string(), bug, "\"overflow\"").await;
    publish(&js, &fine.to_string(), fine, "{}").await;
    let handler = Arc::new(RecordEffect::default());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec(), handler.clone(), shutdown.clone()));
    eventually("the panicking message is dead-lettered", Duration::from_secs(20), || {
        let js = js.clone();
        async move { !onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap().is_empty() }
    })
    .await;
    eventually("the next message is handled", Duration::from_secs(10), || async { effects(&db.pool).await == 1 }).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let letters = onedoor_messaging::dead_letter::list(&js, SERVICE, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event_id, Some(bug));
    assert_eq!(letters[0].delivered, 3, "retried up to max_deliver like any failure");
    assert!(letters[0].reason.contains("panicked"), "{}", letters[0].reason);
}

/// Holds its connection for a while, as a slow consumer transaction would.
struct SlowHandler;

impl Handler for SlowHandler {
    async fn handle(&self, tx: &mut PgConnection, _delivery: &Delivery) -> Result<(), HandlerError> {
        sqlx::query("SELECT pg_sleep(1)").execute(&mut *tx).await?;
        Ok(())
    }
}

#[tokio::test]
async fn the_api_never_queues_behind_busy_consumers() {
    let (db, nats, js) = setup().await;
    let mut config = onedoor_test_support::driver::host_config(&db.url, &nats, "pool-test");
    config.max_connections = 2;
    config.work_connections = 1;
    let mut host = onedoor_service_host::Host::connect(SERVICE, &config).await.unwrap();
    for n in 0..12 {
        let id = Uuid::now_v7();
        publish(&js, &format!("busy-{n}-{id}"), id, "{}").await;
    }
    let mut busy = spec();
    busy.concurrency = 8;
    busy.ack_wait = Duration::from_secs(30);
    host.consume(busy, Arc::new(SlowHandler));
    tokio::time::sleep(Duration::from_millis(500)).await; // the consumers hold every work connection
    for _ in 0..5 {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&host.pool).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(500), "an API query waited {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_service_whose_background_work_dies_stops_with_an_error_instead_of_serving_on() {
    let (db, nats, _js) = setup().await;
    let config = onedoor_test_support::driver::host_config(&db.url, &nats, "background-test");
    let mut host = onedoor_service_host::Host::connect(SERVICE, &config).await.unwrap();
    let (bug, bites) = tokio::sync::oneshot::channel::<()>();
    host.background(|_stop| async move {
        let _ = bites.await;
        panic!("a bug outside any handler");
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let ping = format!("http://{}/ping", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    // Asked never to stop.
    let running = tokio::spawn(host.serve(listener, router, std::future::pending()));
    assert_eq!(reqwest::get(&ping).await.unwrap().status(), 200, "serving while its work runs");

    bug.send(()).unwrap();
    let stopped =
        tokio::time::timeout(Duration::from_secs(30), running).await.expect("the service stops by itself").unwrap();
    match stopped {
        Err(onedoor_service_host::HostError::BackgroundWorkEnded(why)) => assert_eq!(why, "panicked"),
        other => panic!("stopped with {other:?}"),
    }
    assert!(reqwest::get(&ping).await.is_err(), "no longer listening: its orchestrator restarts it");
}
