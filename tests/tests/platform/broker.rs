//! The broker is a trust boundary (ADR 0014): every service connects as a
//! user of its own, publishes on its own subjects only, declares and reads
//! only its own stream and consumers, and receives replies on an inbox no
//! other service can read. Whoever holds no key of the platform is not let in.

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use onedoor_contracts::{Department, intake};
use onedoor_test_support::TestNats;
use std::time::Duration;

/// The streams as their owners declare them.
async fn declared_streams(nats: &TestNats) {
    let (_client, ops) = nats.jetstream().await;
    onedoor_messaging::ensure_stream(&ops, intake::STREAM, vec![intake::subjects()]).await.unwrap();
    for d in Department::ALL {
        onedoor_messaging::ensure_stream(&ops, d.stream(), vec![d.subjects()]).await.unwrap();
    }
}

/// A JetStream context as `user`, giving up on an unanswered request after
/// two seconds (a refused publish is never acknowledged).
async fn as_user(nats: &TestNats, user: &str) -> (async_nats::Client, jetstream::Context) {
    let (client, mut js) = nats.jetstream_as(user).await;
    js.set_timeout(Duration::from_secs(2));
    (client, js)
}

async fn publishes(js: &jetstream::Context, subject: &str) -> bool {
    match js.publish(subject.to_string(), "{}".into()).await {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_client_without_a_key_of_the_platform_is_not_let_in() {
    let nats = TestNats::start();
    let anonymous = async_nats::ConnectOptions::new().connect(nats.url()).await;
    assert!(anonymous.is_err(), "an anonymous client was let in");
    let stranger = onedoor_broker_access::Keyring::generate().seed("intake").unwrap();
    let stranger = async_nats::ConnectOptions::with_nkey(stranger).connect(nats.url()).await;
    assert!(stranger.is_err(), "a key this broker does not know was let in");
    let (_client, intake) = as_user(&nats, "intake").await;
    assert!(intake.query_account().await.is_ok(), "intake's own key is let in");
}

#[tokio::test]
async fn a_department_publishes_only_on_its_own_subjects() {
    let nats = TestNats::start();
    declared_streams(&nats).await;
    let (_client, medical) = as_user(&nats, "medical-aid").await;
    assert!(publishes(&medical, "onedoor.medical.referral.signed_for").await);
    for foreign in [
        "onedoor.housing.referral.approved",
        "onedoor.intake.referral.issued.medical",
        "onedoor.dead-letters.intake.intake-lanes-medical",
    ] {
        assert!(!publishes(&medical, foreign).await, "medical published on {foreign}");
    }
    let (_client, intake) = as_user(&nats, "intake").await;
    assert!(publishes(&intake, "onedoor.intake.referral.issued.medical").await);
    assert!(!publishes(&intake, "onedoor.medical.referral.approved").await, "intake published as medical");

    let (_client, ops) = nats.jetstream().await;
    let held = |stream: &'static str| {
        let ops = ops.clone();
        async move { ops.get_stream(stream).await.unwrap().info().await.unwrap().state.messages }
    };
    assert_eq!(held("MEDICAL").await, 1);
    assert_eq!(held("HOUSING").await, 0);
    assert_eq!(held(intake::STREAM).await, 1);
}

#[tokio::test]
async fn a_department_reads_the_windows_stream_only_through_its_own_consumer_and_cannot_change_it() {
    let nats = TestNats::start();
    declared_streams(&nats).await;
    let (_client, medical) = as_user(&nats, "medical-aid").await;
    let window = medical.get_stream(intake::STREAM).await.expect("medical may look up intake's stream");
    let consumer = |name: &str, filters: &[Department]| {
        let mut filters: Vec<String> = filters.iter().map(|d| intake::referral_subject(*d)).collect();
        let one = if filters.len() == 1 { filters.pop().unwrap() } else { String::new() };
        pull::Config {
            durable_name: Some(name.to_string()),
            filter_subject: one,
            filter_subjects: filters,
            ..Default::default()
        }
    };
    let (mine, housing) = ("medical-aid-window-referrals", "housing-aid-window-referrals");
    assert!(window.create_consumer(consumer("snoop", &[Department::Medical])).await.is_err(), "another name");
    assert!(window.create_consumer(consumer(housing, &[Department::Housing])).await.is_err(), "housing's consumer");
    // Its own consumer's name, but reading housing's referrals: with the
    // filter named, or hidden among several (the request then names none).
    assert!(window.create_consumer(consumer(mine, &[Department::Housing])).await.is_err(), "housing's referrals");
    let hidden = consumer(mine, &[Department::Medical, Department::Housing]);
    assert!(window.create_consumer(hidden).await.is_err(), "several filters, housing's among them");
    assert!(window.create_consumer(consumer(mine, &[Department::Medical])).await.is_ok(), "its own consumer");
    assert!(medical.get_stream("HOUSING").await.is_err(), "housing's stream is none of medical's business");
    assert!(medical.delete_stream(intake::STREAM).await.is_err(), "deleting intake's stream");
    let mut widened = jetstream::stream::Config {
        name: intake::STREAM.into(),
        subjects: vec![intake::subjects(), "onedoor.housing.>".into()],
        ..Default::default()
    };
    widened.max_age = Duration::from_secs(1);
    assert!(medical.update_stream(widened).await.is_err(), "reconfiguring intake's stream");
}

#[tokio::test]
async fn a_service_reads_replays_and_removes_only_its_own_dead_letters() {
    use onedoor_contracts::{dead_letter_stream, dead_letter_subject};
    use onedoor_messaging::dead_letter;
    let nats = TestNats::start();
    let (_client, intake) = as_user(&nats, "intake").await;
    dead_letter::ensure_stream(&intake, "intake").await.unwrap();
    assert!(publishes(&intake, &dead_letter_subject("intake", "intake-lanes-medical")).await, "intake's own");
    assert_eq!(dead_letter::list(&intake, "intake", 10).await.unwrap().len(), 1);

    let (_client, medical) = as_user(&nats, "medical-aid").await;
    dead_letter::ensure_stream(&medical, "medical-aid").await.unwrap();
    assert!(publishes(&medical, &dead_letter_subject("medical-aid", "medical-aid-window-referrals")).await);
    assert!(dead_letter::list(&medical, "intake", 10).await.is_err(), "medical listed intake's dead letters");
    assert!(dead_letter::fetch(&medical, "intake", 1).await.is_err(), "medical read intake's dead letter");
    assert!(dead_letter::remove(&medical, "intake", 1).await.is_err(), "medical removed intake's dead letter");
    assert!(medical.delete_stream(dead_letter_stream("intake")).await.is_err(), "medical deleted intake's stream");
    // Nor through JetStream's API directly (the calls above also declare the stream first).
    assert!(medical.get_stream(dead_letter_stream("intake")).await.is_err(), "medical looked up intake's stream");
    let read: Result<jetstream::response::Response<serde_json::Value>, _> = medical
        .request(format!("STREAM.MSG.GET.{}", dead_letter_stream("intake")), &serde_json::json!({"seq": 1}))
        .await;
    assert!(!matches!(read, Ok(jetstream::response::Response::Ok(_))), "medical read intake's dead letter: {read:?}");
    for forged in [
        dead_letter_subject("intake", "intake-lanes-medical"),
        dead_letter_subject("medical-aid", "intake-lanes-medical"),
    ] {
        assert!(!publishes(&medical, &forged).await, "medical dead-lettered on {forged}");
    }
    let (_client, ops) = nats.jetstream().await;
    let held = |service: &'static str| {
        let ops = ops.clone();
        async move { ops.get_stream(dead_letter_stream(service)).await.unwrap().info().await.unwrap().state.messages }
    };
    assert_eq!((held("intake").await, held("medical-aid").await), (1, 1));
    // The stream they all once shared: only operators reach it.
    onedoor_messaging::ensure_stream(&ops, onedoor_contracts::SHARED_DEAD_LETTER_STREAM, vec!["onedoor.dlq.>".into()])
        .await
        .unwrap();
    assert!(medical.get_stream(onedoor_contracts::SHARED_DEAD_LETTER_STREAM).await.is_err());
}

#[tokio::test]
async fn the_dead_letters_all_services_once_shared_move_to_each_services_own() {
    use onedoor_contracts::SHARED_DEAD_LETTER_STREAM as SHARED;
    use onedoor_messaging::dead_letter::{self, CONSUMER_HEADER, REASON_HEADER};
    let nats = TestNats::start();
    let (_client, ops) = nats.jetstream().await;
    onedoor_messaging::ensure_stream(&ops, SHARED, vec!["onedoor.dlq.>".into()]).await.unwrap();
    // As the services dead-lettered before ADR 0017: `onedoor.dlq.<consumer>`.
    for (consumer, event_id) in [
        ("intake-lanes-housing", "0190a0a0-0000-7000-8000-000000000001"),
        ("medical-aid-window-referrals", "0190a0a0-0000-7000-8000-000000000002"),
        ("retired-consumer", "0190a0a0-0000-7000-8000-000000000003"),
    ] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(CONSUMER_HEADER, consumer);
        headers.insert(REASON_HEADER, "permanent: undecodable body");
        headers.insert(onedoor_messaging::EVENT_ID_HEADER, event_id);
        ops.publish_with_headers(format!("onedoor.dlq.{consumer}"), headers, "{}".into()).await.unwrap().await.unwrap();
    }
    let service_of = |c: &str| onedoor_broker_access::Principal::running(c).map(|p| p.service());
    let done = dead_letter::move_shared(&ops, service_of).await.unwrap();
    assert_eq!(done.moved, 2);
    assert_eq!(done.left.iter().map(|l| l.consumer.as_str()).collect::<Vec<_>>(), ["retired-consumer"]);

    // Each service now lists (as itself) what was its own, as it was.
    let (_client, intake) = as_user(&nats, "intake").await;
    let letters = dead_letter::list(&intake, "intake", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].consumer.as_str(), letters[0].reason.as_str()),
        ("intake-lanes-housing", "permanent: undecodable body")
    );
    let (_client, medical) = as_user(&nats, "medical-aid").await;
    let letters = dead_letter::list(&medical, "medical-aid", 10).await.unwrap();
    assert_eq!(
        letters.iter().map(|l| l.event_id.unwrap().to_string()).collect::<Vec<_>>(),
        ["0190a0a0-0000-7000-8000-000000000002"]
    );
    // What no service runs stays for operators; once that is gone too, so is the shared stream.
    assert_eq!(ops.get_stream(SHARED).await.unwrap().info().await.unwrap().state.messages, 1);
    ops.get_stream(SHARED).await.unwrap().delete_message(done.left[0].sequence).await.unwrap();
    assert_eq!(dead_letter::move_shared(&ops, service_of).await.unwrap(), dead_letter::Moved::default());
    assert!(ops.get_stream(SHARED).await.is_err(), "the empty shared stream is removed");
    assert_eq!(
        dead_letter::move_shared(&ops, service_of).await.unwrap(),
        dead_letter::Moved::default(),
        "again: nothing to do"
    );
}

#[tokio::test]
async fn no_service_can_listen_to_the_others_traffic() {
    let nats = TestNats::start();
    declared_streams(&nats).await;
    let (medical, _) = as_user(&nats, "medical-aid").await;
    let mut everything = medical.subscribe("onedoor.>").await.unwrap();
    let mut intakes_inbox = medical.subscribe("_INBOX_intake.>").await.unwrap();
    let (_client, intake) = as_user(&nats, "intake").await;
    // Intake publishes (its PubAck comes to its own inbox) and asks for stream information.
    assert!(publishes(&intake, "onedoor.intake.referral.issued.medical").await);
    intake.get_stream(intake::STREAM).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(1), async {
        tokio::select! {
            m = everything.next() => m.map(|m| m.subject.to_string()),
            m = intakes_inbox.next() => m.map(|m| m.subject.to_string()),
        }
    })
    .await;
    assert!(matches!(heard, Err(_) | Ok(None)), "medical heard {heard:?}");
}

/// Whether a client connected as a service would (`onedoor_messaging::connect`)
/// reaches the broker and JetStream answers it.
async fn answers(nats: &TestNats, ca_file: Option<std::path::PathBuf>) -> bool {
    let credentials = onedoor_messaging::Credentials {
        nkey_seed: Some(nats.seed_for("intake")),
        inbox_prefix: Some(onedoor_broker_access::inbox_prefix("intake")),
        ca_file,
    };
    let client = onedoor_messaging::connect(&nats.url(), "intake", &credentials).await.unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(1));
    for _ in 0..3 {
        if js.query_account().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

#[tokio::test]
async fn over_tls_a_service_trusts_only_the_broker_its_ca_signed() {
    let dir = onedoor_local_servers::scratch_dir("onedoor-nats-tls-").unwrap();
    crate::database_tls::certificates(dir.path());
    let mut nats = TestNats::start();
    nats.server.enable_tls(&dir.path().join("server.pem"), &dir.path().join("server.key")).unwrap();
    assert!(answers(&nats, Some(dir.path().join("ca.pem"))).await, "with the broker's CA (ONEDOOR_NATS_CA_FILE)");
    assert!(!answers(&nats, Some(dir.path().join("other-ca.pem"))).await, "a broker another CA signed is refused");
    assert!(!answers(&nats, None).await, "without the CA");
}

/// Kills the server when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_deployed_configuration_lets_each_service_in_as_itself_with_its_keys_from_the_environment() {
    let dir = onedoor_local_servers::scratch_dir("onedoor-nats-deployed-").unwrap();
    std::fs::write(dir.path().join("auth.conf"), include_str!("../../../deploy/nats/auth.conf")).unwrap();
    let port = onedoor_local_servers::free_port().unwrap();
    let config = format!(
        "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{}\" }}\ninclude auth.conf\n",
        dir.path().join("jetstream").display()
    );
    std::fs::write(dir.path().join("nats.conf"), config).unwrap();
    // An installation's keys, as `cargo xtask nats-keys` makes them.
    let keys = onedoor_broker_access::Keyring::generate();
    let mut public_keys: Vec<(String, String)> = onedoor_broker_access::Principal::all()
        .into_iter()
        .map(|p| (p.public_key_variable(), keys.public_key(p.service()).unwrap()))
        .collect();
    public_keys.push((
        onedoor_broker_access::operator_public_key_variable(),
        keys.public_key(onedoor_broker_access::OPERATOR).unwrap(),
    ));
    let _server = Killed(
        std::process::Command::new(&onedoor_test_support::tools().nats_server)
            .arg("-c")
            .arg(dir.path().join("nats.conf"))
            .envs(public_keys)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("nats://127.0.0.1:{port}");
    let connect = |user: &'static str| {
        let options = async_nats::ConnectOptions::with_nkey(keys.seed(user).unwrap())
            .custom_inbox_prefix(onedoor_broker_access::inbox_prefix(user));
        let url = url.clone();
        async move {
            for _ in 0..50 {
                if let Ok(client) = options.clone().connect(&url).await {
                    let mut js = jetstream::new(client);
                    js.set_timeout(Duration::from_secs(2));
                    return js;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the deployed configuration did not let {user} in");
        }
    };
    let housing = connect("housing-aid").await;
    onedoor_messaging::ensure_stream(&housing, "HOUSING", vec![Department::Housing.subjects()]).await.unwrap();
    assert!(publishes(&housing, "onedoor.housing.referral.signed_for").await);
    assert!(!publishes(&housing, "onedoor.medical.referral.signed_for").await);
    let operator = connect(onedoor_broker_access::OPERATOR).await;
    assert_eq!(operator.get_stream("HOUSING").await.unwrap().info().await.unwrap().state.messages, 1);
}
