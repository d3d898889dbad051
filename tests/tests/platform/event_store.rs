use crate::store_db;
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, Projection, StoreError, Upcasters};
use serde_json::json;
use sqlx::Arguments;

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
async fn a_view_written_with_an_append_is_written_only_if_the_append_is() {
    let db = store_db().await;
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("CREATE TABLE stream_views (stream_id text PRIMARY KEY, version bigint NOT NULL)")
        .execute(&mut *tx)
        .await
        .unwrap();
    async fn append_viewed(
        tx: &mut sqlx::PgConnection,
        expected: ExpectedVersion,
        shown: i64,
    ) -> Result<onedoor_event_store::Appended, StoreError> {
        let projection = Projection {
            sql: "INSERT INTO stream_views SELECT $14, $15 WHERE EXISTS (SELECT 1 FROM appended)
                  ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
            bind: Box::new(move |args| {
                args.add("c")?;
                args.add(shown)
            }),
        };
        let events = [NewEvent::new("Changed", 1, json!({}))];
        onedoor_event_store::append_announce_and_project(
            tx,
            "case",
            "c",
            expected,
            &events,
            &meta(),
            &[],
            Some(projection),
        )
        .await
    }
    async fn shown(tx: &mut sqlx::PgConnection) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT version FROM stream_views WHERE stream_id = 'c'").fetch_optional(tx).await
    }

    assert_eq!(append_viewed(&mut tx, ExpectedVersion::NoStream, 1).await.unwrap().version, 1);
    assert_eq!(shown(&mut tx).await.unwrap(), Some(1));
    let stale = append_viewed(&mut tx, ExpectedVersion::NoStream, 99).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
    assert_eq!(shown(&mut tx).await.unwrap(), Some(1), "a refused append writes no view");
    assert_eq!(append_viewed(&mut tx, ExpectedVersion::Exact(1), 2).await.unwrap().version, 2);
    assert_eq!(shown(&mut tx).await.unwrap(), Some(2));
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

/// What an earlier release stored in the clear is sealed by the start-up
/// pass under each stream's key, or erased where that key was destroyed;
/// what is not personal, and fields sealed already, stay as they were; a
/// pass again seals nothing, and records as checked only settled events.
#[tokio::test]
async fn the_sealing_pass_seals_plain_personal_fields_once_and_erases_those_of_a_destroyed_key() {
    use onedoor_event_store::sealing::{PlainEvents, Sealed, seal_plain_events};
    use onedoor_personal_data::{ERASED, Keyring, PersonalFields};
    let db = store_db().await;
    onedoor_event_store::apply_migrations(&db.pool, onedoor_personal_data::migrator()).await.unwrap();
    let keyring = Keyring::development();
    let plain = PlainEvents {
        stream_type: "member",
        personal_fields: |event_type| match event_type {
            "Joined" => PersonalFields(&["/name", "/id_number"]),
            _ => PersonalFields::NONE,
        },
        key_owner: |_, first| first.get("household").and_then(|h| h.as_str()).and_then(|h| h.parse().ok()),
    };
    let (kept, erased) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let joined = |household: uuid::Uuid, name: &str| {
        NewEvent::new(
            "Joined",
            1,
            json!({"household": household, "name": name, "id_number": "110105194912310029", "members": 2}),
        )
    };
    let mut tx = db.pool.begin().await.unwrap();
    // Stored in the clear, as before sealing; one field of the third sealed already.
    let already = keyring.for_sealing(&mut tx, kept).await.unwrap().seal(&json!("王五"));
    let mut third = joined(kept, "");
    third.payload["name"] = already.clone();
    for (stream, events) in [
        ("kept", vec![joined(kept, "李四"), NewEvent::new("Left", 1, json!({"on": "2026-01-01"})), third]),
        ("erased", vec![joined(erased, "张三")]),
    ] {
        onedoor_event_store::append(&mut tx, "member", stream, ExpectedVersion::NoStream, &events, &meta())
            .await
            .unwrap();
    }
    onedoor_event_store::append(
        &mut tx,
        "other",
        "other-1",
        ExpectedVersion::NoStream,
        &[NewEvent::new("Joined", 1, json!({"name": "赵六"}))],
        &meta(),
    )
    .await
    .unwrap();
    assert!(keyring.erase(&mut tx, erased).await.unwrap());
    tx.commit().await.unwrap();
    let log = || async {
        sqlx::query_scalar::<_, String>("SELECT string_agg(payload::text, ' ' ORDER BY global_position) FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };

    let done = seal_plain_events(&db.pool, &keyring, &plain).await.unwrap();
    assert_eq!(done, Sealed { sealed: 2, erased: 1, ownerless: 0 });
    let after = log().await;
    for secret in ["李四", "张三", "110105194912310029"] {
        assert!(!after.contains(secret), "{secret} left in the clear: {after}");
    }
    assert!(after.contains("赵六"), "another stream type is not this pass's: {after}");
    let mut conn = db.pool.acquire().await.unwrap();
    let key = keyring.for_opening(&mut conn, kept).await.unwrap().unwrap();
    let events = onedoor_event_store::load(&mut conn, "kept", &Upcasters::new()).await.unwrap();
    let opened: Vec<serde_json::Value> =
        events.iter().map(|e| e.decode((plain.personal_fields)(&e.event_type), Some(&key)).unwrap()).collect();
    assert_eq!(opened[0]["name"], "李四");
    assert_eq!(opened[0]["id_number"], "110105194912310029");
    assert_eq!(opened[0]["members"], 2, "what is not personal is as it was");
    assert_eq!(opened[1], json!({"on": "2026-01-01"}));
    assert_eq!(events[2].payload["name"], already, "a sealed field is not sealed again");
    assert_eq!(opened[2]["name"], "王五");
    let gone = onedoor_event_store::load(&mut conn, "erased", &Upcasters::new()).await.unwrap();
    assert_eq!(gone[0].payload["name"], ERASED);
    assert_eq!(gone[0].payload["id_number"], ERASED);

    // Nothing is left to seal; the events of the last minutes are not yet
    // recorded as checked, and are once they have settled.
    assert_eq!(seal_plain_events(&db.pool, &keyring, &plain).await.unwrap(), Sealed::default());
    assert_eq!(log().await, after);
    let checked = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(checked_through) FROM sealing_passes")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    assert_eq!(checked().await, None);
    sqlx::query("UPDATE events SET recorded_at = recorded_at - interval '1 hour'").execute(&db.pool).await.unwrap();
    seal_plain_events(&db.pool, &keyring, &plain).await.unwrap();
    let last_member: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events WHERE stream_type = 'member'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(checked().await, Some(last_member));
}
