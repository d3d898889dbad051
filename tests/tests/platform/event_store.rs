use crate::store_db;
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, StoreError, Upcasters};
use serde_json::json;

fn meta() -> EventMetadata {
    EventMetadata {
        actor: "clerk-7".into(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn two_concurrent_appends_at_the_same_version_one_wins_the_other_conflicts() {
    let db = store_db().await;
    let mut tx = db.pool.begin().await.unwrap();
    onedoor_event_store::append(
        &mut tx,
        "case",
        "case-1",
        ExpectedVersion::NoStream,
        &[NewEvent::new("Opened", 1, json!({}))],
        &meta(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Both writers read version 1 and hold their transactions open at once.
    let mut first = db.pool.begin().await.unwrap();
    let mut second = db.pool.begin().await.unwrap();
    let a = onedoor_event_store::append(
        &mut first,
        "case",
        "case-1",
        ExpectedVersion::Exact(1),
        &[NewEvent::new("A", 1, json!({}))],
        &meta(),
    )
    .await;
    let second_append = tokio::spawn(async move {
        let r = onedoor_event_store::append(
            &mut second,
            "case",
            "case-1",
            ExpectedVersion::Exact(1),
            &[NewEvent::new("B", 1, json!({}))],
            &meta(),
        )
        .await;
        (r, second)
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.unwrap();
    let (b, _second) = second_append.await.unwrap();

    assert!(a.is_ok());
    assert!(matches!(b, Err(StoreError::Conflict { .. })), "the second writer must get a conflict, got {b:?}");
    let mut conn = db.pool.acquire().await.unwrap();
    let events = onedoor_event_store::load(&mut conn, "case-1", &Upcasters::new()).await.unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["Opened", "A"]);
}

#[tokio::test]
async fn a_stale_expected_version_is_refused_before_writing() {
    let db = store_db().await;
    let mut tx = db.pool.begin().await.unwrap();
    onedoor_event_store::append(
        &mut tx,
        "case",
        "c",
        ExpectedVersion::NoStream,
        &[NewEvent::new("Opened", 1, json!({}))],
        &meta(),
    )
    .await
    .unwrap();
    let again = onedoor_event_store::append(
        &mut tx,
        "case",
        "c",
        ExpectedVersion::NoStream,
        &[NewEvent::new("Opened", 1, json!({}))],
        &meta(),
    )
    .await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })));
}

#[tokio::test]
async fn loading_a_stream_returns_events_in_order_with_metadata_and_upcast_payloads() {
    let db = store_db().await;
    let mut tx = db.pool.begin().await.unwrap();
    let appended = onedoor_event_store::append(
        &mut tx,
        "lane",
        "lane-9",
        ExpectedVersion::NoStream,
        &[
            NewEvent::new("LaneOpened", 1, json!({"dept": "medical"})),
            NewEvent::new("LaneSignedFor", 1, json!({"by": "cw-1"})),
        ],
        &meta(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(appended.version, 2);
    assert!(appended.event_ids.iter().all(|id| id.get_version_num() == 7), "event ids are UUIDv7");

    let upcasters = Upcasters::new().with("LaneOpened", 1, |mut v| {
        v["department"] = v["dept"].take();
        v.as_object_mut().unwrap().remove("dept");
        v
    });
    let mut conn = db.pool.acquire().await.unwrap();
    let events = onedoor_event_store::load(&mut conn, "lane-9", &upcasters).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].version, 1);
    assert_eq!(events[0].schema_version, 2);
    assert_eq!(events[0].payload, json!({"department": "medical"}));
    assert_eq!(events[1].event_type, "LaneSignedFor");
    assert_eq!(events[1].metadata, meta());
    assert_eq!(events[1].event_id, appended.event_ids[1]);
}
