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
//! - [`erasure`]: an erased household's messages taken off the broker.
//!
//! Streams and consumers are declared by the code that owns them, so a fresh
//! nats-server needs no manual setup.

pub mod consumer;
pub mod dead_letter;
pub mod erasure;
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

/// Who a client is on the broker, and how it trusts the server.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The user's nkey seed (`ONEDOOR_NATS_NKEY`); `None` connects anonymously,
    /// which only a development server without users accepts.
    pub nkey_seed: Option<String>,
    /// Where replies arrive (`onedoor_broker_access::inbox_prefix`): a
    /// service may subscribe to its own inbox only.
    pub inbox_prefix: Option<String>,
    /// The CA that signed the server's certificate: TLS is then required.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("nkey_seed", &self.nkey_seed.as_ref().map(|_| "<secret>"))
            .field("inbox_prefix", &self.inbox_prefix)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Connects to NATS, retrying in the background if the server is away, so a
/// service can start (and accept applications into its outbox) before the
/// broker is back.
pub async fn connect(url: &str, name: &str, credentials: &Credentials) -> Result<async_nats::Client, MessagingError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        // A refused login or a permission violation shows in the log: the
        // broker says which subject, never what was in the message.
        .event_callback(|event| async move {
            match event {
                async_nats::Event::ServerError(error) => tracing::error!(%error, "the broker refused a request"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from the broker"),
                async_nats::Event::Connected => tracing::info!("connected to the broker"),
                _ => {}
            }
        });
    if let Some(seed) = &credentials.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(prefix) = &credentials.inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    if let Some(ca) = &credentials.ca_file {
        options = options.require_tls(true).add_root_certificates(ca.clone());
    }
    Ok(options.connect(url).await?)
}

/// Stream replication: 1 on a single server, 3 on a production cluster
/// (`ONEDOOR_STREAM_REPLICAS`).
fn stream_replicas() -> usize {
    std::env::var("ONEDOOR_STREAM_REPLICAS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// How much a stream keeps: the oldest messages go first once a limit is
/// reached. PostgreSQL is the record (ADR 0002); a stream only carries
/// events between services, so its limits are sized to outlast any consumer
/// outage operators would let run, with room on the JetStream volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_age: Duration,
    pub max_bytes: i64,
}

const GIB: i64 = 1024 * 1024 * 1024;
const DAY: u64 = 24 * 3600;

impl StreamLimits {
    /// A service's event stream: `ONEDOOR_STREAM_MAX_AGE_DAYS` (30) and
    /// `ONEDOOR_STREAM_MAX_BYTES` (2 GiB).
    pub fn events() -> Self {
        Self::from_env("ONEDOOR_STREAM_MAX_AGE_DAYS", 30, "ONEDOOR_STREAM_MAX_BYTES", 2 * GIB)
    }

    /// The dead-letter stream, kept as long as the audit trail (six months):
    /// `ONEDOOR_DEAD_LETTER_MAX_AGE_DAYS` (183) and `ONEDOOR_DEAD_LETTER_MAX_BYTES` (1 GiB).
    pub fn dead_letters() -> Self {
        Self::from_env("ONEDOOR_DEAD_LETTER_MAX_AGE_DAYS", 183, "ONEDOOR_DEAD_LETTER_MAX_BYTES", GIB)
    }

    fn from_env(age_var: &str, age_days: u64, bytes_var: &str, bytes: i64) -> Self {
        let read = |var: &str| std::env::var(var).ok().and_then(|v| v.trim().parse::<i64>().ok()).filter(|v| *v > 0);
        Self {
            max_age: Duration::from_secs(read(age_var).map(|d| d as u64).unwrap_or(age_days) * DAY),
            max_bytes: read(bytes_var).unwrap_or(bytes),
        }
    }
}

/// Declares (or updates) a file-backed stream of events with a
/// deduplication window and [`StreamLimits::events`].
pub async fn ensure_stream(js: &jetstream::Context, name: &str, subjects: Vec<String>) -> Result<(), MessagingError> {
    ensure_stream_within(js, name, subjects, StreamLimits::events()).await
}

/// [`ensure_stream`] with other limits (the dead letters').
pub async fn ensure_stream_within(
    js: &jetstream::Context,
    name: &str,
    subjects: Vec<String>,
    limits: StreamLimits,
) -> Result<(), MessagingError> {
    js.create_or_update_stream(stream::Config {
        name: name.to_string(),
        subjects,
        storage: stream::StorageType::File,
        num_replicas: stream_replicas(),
        duplicate_window: Duration::from_secs(120),
        max_age: limits.max_age,
        max_bytes: limits.max_bytes,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    })
    .await
    .map_err(MessagingError::js)?;
    Ok(())
}
