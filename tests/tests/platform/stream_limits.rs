//! Every stream has a maximum age and size, the dead-letter stream its own
//! (as long as the audit trail); a stream declared before limits existed
//! gets them the next time a service declares it.

use async_nats::jetstream::stream;
use onedoor_messaging::{StreamLimits, ensure_stream};
use std::time::Duration;

#[tokio::test]
async fn every_stream_is_limited_in_age_and_size_and_old_streams_get_the_limits() {
    let nats = onedoor_test_support::TestNats::start();
    let (_client, js) = nats.jetstream().await;
    // Declared the way an earlier release did: no limits.
    js.create_stream(stream::Config {
        name: "INTAKE".into(),
        subjects: vec!["onedoor.intake.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(js.get_stream("INTAKE").await.unwrap().info().await.unwrap().config.max_bytes, -1);

    ensure_stream(&js, "INTAKE", vec!["onedoor.intake.>".into()]).await.unwrap();
    onedoor_messaging::dead_letter::ensure_stream(&js, "intake").await.unwrap();

    let config = js.get_stream("INTAKE").await.unwrap().info().await.unwrap().config.clone();
    assert_eq!(config.max_age, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(config.max_bytes, 2 * 1024 * 1024 * 1024);
    assert_eq!((config.max_age, config.max_bytes), (StreamLimits::events().max_age, StreamLimits::events().max_bytes));
    let dead = js
        .get_stream(onedoor_contracts::dead_letter_stream("intake"))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert!(dead.max_age >= Duration::from_secs(180 * 24 * 3600), "dead letters stay six months: {:?}", dead.max_age);
    assert!(dead.max_bytes > 0);
}
