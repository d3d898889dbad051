use crate::*;
use onedoor_messaging::relay::{OutboxRelay, RelayConfig};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

fn relay(pool: &PgPool, js: &jetstream::Context) -> OutboxRelay {
    OutboxRelay::new(pool.clone(), js.clone(), RelayConfig { batch_size: 50, idle_poll: Duration::from_millis(10) })
}

#[tokio::test]
async fn many_writers_and_a_relay_restart_publish_every_event_exactly_once_in_order() {
    let db = store_db().await;
    let nats = onedoor_test_support::TestNats::start();
    let (_client, js) = nats.jetstream().await;
    intake_stream(&js).await;

    const WRITERS: usize = 8;
    const EVENTS_PER_WRITER: usize = 60;
    let cases: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();

    // Two relay replicas from the start; one crashes (aborted mid-flight) and is replaced.
    let shutdown = CancellationToken::new();
    let replica_a = tokio::spawn(relay(&db.pool, &js).run(shutdown.clone()));
    let replica_b = tokio::spawn(relay(&db.pool, &js).run(shutdown.clone()));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = db.pool.clone();
            let cases = cases.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for n in 0..EVENTS_PER_WRITER {
                    let case = cases[(w + n) % cases.len()];
                    written.push(record_in_one_transaction(&pool, case, w * 1000 + n).await.event_id);
                }
                written
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    replica_a.abort();
    let _ = replica_a.await;
    let replica_c = tokio::spawn(relay(&db.pool, &js).run(shutdown.clone()));

    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    eventually("the outbox is drained", Duration::from_secs(60), || async {
        onedoor_event_store::outbox::unsent_count(&db.pool).await.unwrap() == 0
    })
    .await;
    shutdown.cancel();
    replica_b.await.unwrap();
    replica_c.await.unwrap();

    let published = stream_contents(&js, TEST_STREAM).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &published {
        let id = m.headers.get("Nats-Msg-Id").unwrap().as_str().to_string();
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(published.len(), WRITERS * EVENTS_PER_WRITER, "every event is in the stream exactly once");
    for id in &written {
        assert_eq!(seen.get(&id.to_string()), Some(&1), "event {id} published exactly once");
    }

    // Per case, the stream order is the order the events were committed in.
    let mut committed_order: HashMap<String, Vec<Uuid>> = HashMap::new();
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT event_id, stream_id FROM events ORDER BY stream_id, version")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    for (id, key) in rows {
        committed_order.entry(key).or_default().push(id);
    }
    let mut published_order: HashMap<String, Vec<Uuid>> = HashMap::new();
    for m in &published {
        let envelope: onedoor_contracts::EnvelopeHead = serde_json::from_slice(&m.payload).unwrap();
        published_order.entry(envelope.subject).or_default().push(envelope.id);
    }
    assert_eq!(published_order, committed_order);
}

#[tokio::test]
async fn an_event_committed_after_a_later_position_is_not_skipped() {
    let db = store_db().await;
    let nats = onedoor_test_support::TestNats::start();
    let (_client, js) = nats.jetstream().await;
    intake_stream(&js).await;
    let relay = relay(&db.pool, &js);

    // The slow transaction takes the lower position but commits last.
    let slow = OutboxMessage::announcing(&numbered_event(Uuid::now_v7(), 1)).unwrap();
    let mut slow_tx = db.pool.begin().await.unwrap();
    onedoor_event_store::outbox::enqueue(&mut slow_tx, &slow).await.unwrap();
    let fast = record_in_one_transaction(&db.pool, Uuid::now_v7(), 2).await;

    assert_eq!(relay.relay_batch().await.unwrap().sent, 1);
    slow_tx.commit().await.unwrap();
    assert_eq!(relay.relay_batch().await.unwrap().sent, 1);

    let ids = stored_ids(&stream_contents(&js, TEST_STREAM).await);
    assert_eq!(ids, [fast.event_id.to_string(), slow.event_id.to_string()]);
}

#[tokio::test]
async fn events_written_while_nats_is_down_are_published_when_it_returns() {
    let db = store_db().await;
    let mut nats = onedoor_test_support::TestNats::start();
    let client = onedoor_messaging::connect(
        &nats.url(),
        "relay-test",
        &onedoor_messaging::Credentials { nkey_seed: Some(nats.seed_for("relay-test")), ..Default::default() },
    )
    .await
    .unwrap();
    let js = jetstream::new(client);
    intake_stream(&js).await;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(relay(&db.pool, &js).run(shutdown.clone()));

    nats.server.stop();
    let case = Uuid::now_v7();
    for n in 0..5 {
        record_in_one_transaction(&db.pool, case, n).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        onedoor_event_store::outbox::unsent_count(&db.pool).await.unwrap(),
        5,
        "nothing is marked sent without a PubAck"
    );

    nats.server.restart().unwrap();
    eventually("the outbox is drained after NATS returns", Duration::from_secs(30), || async {
        onedoor_event_store::outbox::unsent_count(&db.pool).await.unwrap() == 0
    })
    .await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(stream_contents(&js, TEST_STREAM).await.len(), 5);
}

/// Writes one outbox message for `case` whose body is `size` bytes or more.
async fn enqueue_sized(pool: &PgPool, case: Uuid, n: usize, size: usize) -> OutboxMessage {
    enqueue_sized_on(pool, case, n, size, None).await
}

/// [`enqueue_sized`] on another of intake's subjects than its event's own.
async fn enqueue_sized_on(pool: &PgPool, case: Uuid, n: usize, size: usize, subject: Option<String>) -> OutboxMessage {
    let mut envelope = numbered_event(case, n);
    envelope.data.materials.push("x".repeat(size));
    let mut message = OutboxMessage::announcing(&envelope).unwrap();
    if let Some(subject) = subject {
        message.subject = subject;
    }
    let mut tx = pool.begin().await.unwrap();
    onedoor_event_store::outbox::enqueue(&mut tx, &message).await.unwrap();
    tx.commit().await.unwrap();
    message
}

/// A store and a broker whose intake stream refuses bodies over 4 KiB
/// (until [`accept_any_size`]).
async fn refusing_large_bodies()
-> (onedoor_test_support::TestDatabase, onedoor_test_support::TestNats, async_nats::Client, jetstream::Context) {
    let db = store_db().await;
    let nats = onedoor_test_support::TestNats::start();
    let (client, js) = nats.jetstream().await;
    intake_stream(&js).await;
    set_max_message_size(&js, 4096).await;
    (db, nats, client, js)
}

async fn accept_any_size(js: &jetstream::Context) {
    set_max_message_size(js, -1).await;
}

async fn set_max_message_size(js: &jetstream::Context, size: i32) {
    let mut config = js.get_stream(TEST_STREAM).await.unwrap().info().await.unwrap().config.clone();
    config.max_message_size = size;
    js.update_stream(config).await.unwrap();
}

/// The event ids (`Nats-Msg-Id`) of stored messages, in stream order.
fn stored_ids(stored: &[jetstream::message::StreamMessage]) -> Vec<String> {
    stored.iter().map(|m| m.headers.get("Nats-Msg-Id").unwrap().as_str().to_string()).collect()
}

#[tokio::test]
async fn a_message_the_broker_refuses_holds_back_its_case_alone_and_order_is_kept() {
    let (db, _nats, _client, js) = refusing_large_bodies().await;

    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let a1 = enqueue_sized(&db.pool, a, 1, 8000).await;
    let a2 = enqueue_sized(&db.pool, a, 2, 10).await;
    let b1 = enqueue_sized(&db.pool, b, 1, 10).await;
    let relay = relay(&db.pool, &js);
    let outcome = relay.relay_batch().await.unwrap();
    assert_eq!((outcome.sent, outcome.failed), (1, 1), "the other case goes on; the refused one is counted as failed");
    assert_eq!(
        stored_ids(&stream_contents(&js, TEST_STREAM).await),
        [b1.event_id.to_string()],
        "a case's later event is never stored before its earlier one"
    );
    assert_eq!(onedoor_event_store::outbox::unsent_count(&db.pool).await.unwrap(), 2);

    accept_any_size(&js).await;
    let outcome = relay.relay_batch().await.unwrap();
    assert_eq!((outcome.sent, outcome.failed), (2, 0));
    let stored = stream_contents(&js, TEST_STREAM).await;
    let cases: Vec<String> = stored
        .iter()
        .map(|m| m.headers.get(onedoor_contracts::CE_SUBJECT_HEADER).unwrap().as_str().to_string())
        .collect();
    assert_eq!(stored_ids(&stored), [b1.event_id.to_string(), a1.event_id.to_string(), a2.event_id.to_string()]);
    assert_eq!(
        cases,
        [b, a, a].map(|c| c.to_string()),
        "each message names its case (the consumers' workers go by it)"
    );
}

/// A case's messages on different subjects leave together (a submission's
/// referrals to four departments do not wait for each other's PubAck): one
/// the broker refuses holds back only the case's later messages on its own
/// subject.
#[tokio::test]
async fn a_refused_message_holds_back_only_its_cases_later_messages_on_its_subject() {
    let (db, _nats, _client, js) = refusing_large_bodies().await;

    let case = Uuid::now_v7();
    let referral = onedoor_contracts::intake::referral_subject(onedoor_contracts::Department::Medical);
    let refused = enqueue_sized(&db.pool, case, 1, 8000).await;
    let held_back = enqueue_sized(&db.pool, case, 2, 10).await;
    let other_subject = enqueue_sized_on(&db.pool, case, 3, 10, Some(referral.clone())).await;
    let relay = relay(&db.pool, &js);
    let outcome = relay.relay_batch().await.unwrap();
    assert_eq!((outcome.sent, outcome.failed), (1, 1));
    let stored = stream_contents(&js, TEST_STREAM).await;
    assert_eq!(stored[0].subject.as_str(), referral);
    assert_eq!(stored_ids(&stored), [other_subject.event_id.to_string()], "only the message on the other subject went");

    accept_any_size(&js).await;
    let outcome = relay.relay_batch().await.unwrap();
    assert_eq!((outcome.sent, outcome.failed), (2, 0));
    assert_eq!(
        stored_ids(&stream_contents(&js, TEST_STREAM).await),
        [other_subject.event_id, refused.event_id, held_back.event_id].map(|id| id.to_string()),
        "on its own subject, the case's later event is never stored before its earlier one"
    );
}
