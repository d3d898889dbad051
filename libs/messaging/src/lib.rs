//! NATS JetStream for OneDoor: how events leave a service and how they are
//! taken in, with the guarantees the window promises households: nothing
//! accepted is lost, nothing is acted on twice.
//!
//! - [`relay`]: publishes the transactional outbox to JetStream
//!   (`Nats-Msg-Id` = event id, saved `traceparent`), removing rows only
//!   after the PubAck.
//! - [`consumer`]: durable pull consumers declared in code; each message is
//!   handled in a database transaction together with its inbox row, acked only
//!   after commit, retried with backoff, and dead-lettered when it exhausts its
//!   deliveries.
//! - [`dead_letter`]: the stream operators list and replay from.
//!
//! Streams and consumers are declared by the code that owns them, so a fresh
//! nats-server needs no manual setup.

pub mod consumer;
pub mod dead_letter;
pub mod relay;

use async_nats::jetstream::{self, stream};
use std::time::Duration;

pub use async_nats;

/// Header carrying the event id. `Nats-Msg-Id` usually equals it, but a
/// replay publishes under a fresh `Nats-Msg-Id` (to pass the broker's
/// duplicate window) while the event id, which consumers' inboxes key on,
/// stays the same.
pub const EVENT_ID_HEADER: &str = "Onedoor-Event-Id";

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("connecting to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error(transparent)]
    Store(#[from] onedoor_event_store::StoreError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl MessagingError {
    fn js(e: impl std::fmt::Display) -> Self {
        Self::JetStream(e.to_string())
    }
}

/// Connects to NATS, retrying in the background if the server is away, so a
/// service can start (and accept applications into its outbox) before the
/// broker is back.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, MessagingError> {
    Ok(async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await?)
}

/// Stream replication: 1 on a single server, 3 on a production cluster
/// (`ONEDOOR_STREAM_REPLICAS`).
fn stream_replicas() -> usize {
    std::env::var("ONEDOOR_STREAM_REPLICAS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Declares (or updates) a file-backed stream with a deduplication window.
pub async fn ensure_stream(js: &jetstream::Context, name: &str, subjects: Vec<String>) -> Result<(), MessagingError> {
    js.create_or_update_stream(stream::Config {
        name: name.to_string(),
        subjects,
        storage: stream::StorageType::File,
        num_replicas: stream_replicas(),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(MessagingError::js)?;
    Ok(())
}
