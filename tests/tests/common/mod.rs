//! Helpers shared by the platform test binaries.
#![allow(dead_code)]

pub mod app;

pub use async_nats::jetstream;
use onedoor_contracts::intake::MaterialsSupplemented;
use onedoor_contracts::{CloudEvent, IntegrationEvent};
pub use onedoor_event_store::outbox::OutboxMessage;
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent};
pub use sqlx::PgPool;
pub use std::time::{Duration, Instant};
pub use uuid::Uuid;

pub const TEST_STREAM: &str = "INTAKE";

/// A database with the event store's tables.
pub async fn store_db() -> onedoor_test_support::TestDatabase {
    let db = onedoor_test_support::fresh_database().await;
    onedoor_event_store::migrate(&db.pool).await.expect("migrations apply");
    db
}

pub async fn intake_stream(js: &jetstream::Context) {
    onedoor_messaging::ensure_stream(js, TEST_STREAM, vec![onedoor_contracts::intake::subjects()])
        .await
        .expect("stream declared");
}

/// An integration event of the kind intake publishes, numbered so order can be checked.
pub fn numbered_event(case_id: Uuid, n: usize) -> CloudEvent<MaterialsSupplemented> {
    CloudEvent::new(
        MaterialsSupplemented {
            case_id,
            referral_ids: vec![],
            materials: vec![format!("item-{n}")],
            supplemented_at: chrono::Utc::now(),
        },
        chrono::Utc::now(),
    )
}

/// Appends one domain event to the case stream and its integration event to
/// the outbox, in one transaction, as a service does.
pub async fn record_in_one_transaction(pool: &PgPool, case_id: Uuid, n: usize) -> OutboxMessage {
    let envelope = numbered_event(case_id, n);
    let message = OutboxMessage::announcing(&envelope).unwrap();
    let mut event = NewEvent::new("MaterialsSupplemented", 1, serde_json::to_value(&envelope.data).unwrap());
    event.event_id = envelope.id;
    loop {
        let mut tx = pool.begin().await.unwrap();
        let appended = onedoor_event_store::append_and_announce(
            &mut tx,
            "case",
            &case_id.to_string(),
            ExpectedVersion::Any,
            std::slice::from_ref(&event),
            &EventMetadata { correlation_id: Some(case_id), actor: "test".into(), ..Default::default() },
            std::slice::from_ref(&message),
        )
        .await;
        match appended {
            Ok(_) => {}
            // Another writer appended to the same case first: retry, as a service would.
            Err(onedoor_event_store::StoreError::Conflict { .. }) => continue,
            Err(e) => panic!("append failed: {e}"),
        }
        tx.commit().await.unwrap();
        return message;
    }
}

/// Every message currently in `stream`, in stream order (subject, headers, body).
pub async fn stream_contents(js: &jetstream::Context, stream: &str) -> Vec<jetstream::message::StreamMessage> {
    let mut s = js.get_stream(stream).await.unwrap();
    let state = s.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = s.get_raw_message(seq).await {
            out.push(m);
        }
    }
    out
}

/// Waits until `check` holds, failing the test after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The subject a [`numbered_event`] is published on.
pub fn materials_subject() -> String {
    numbered_event(Uuid::nil(), 0).data.subject()
}
