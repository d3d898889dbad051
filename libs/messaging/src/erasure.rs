//! Erasing an erased household's messages from the broker.
//!
//! A message stays in its stream until the stream's maximum age, its
//! personal fields sealed with the transit key, which crypto-shredding does
//! not reach (ADR 0015): anyone holding the KEK could still open a message
//! about an erased household. So each service erases, from the broker, what
//! it published about the household's cases (ADR 0019):
//!
//! - the relay records where each message with personal fields went
//!   (`published`: stream and sequence, by the case it is about; the
//!   erasure's own announcement has none, so every consumer still reads it);
//! - the transaction that erases a household (intake) or a department's copy
//!   of a case asks for it (`outbox::request_broker_erasure`), so the request
//!   commits with the erasure and is not lost while the broker is away;
//! - [`run`], beside the relay, takes each request: it deletes the case's
//!   messages from the service's own stream (JetStream's message delete,
//!   which overwrites the stored message) and the copies of messages about
//!   the case in the service's own dead letters, then drops the request
//!   (waiting first for the case's messages still in the outbox).
//!
//! A message already gone (aged out, erased before) is no error, so a
//! request done twice (a crash before it was dropped) changes nothing more.

use crate::{MessagingError, dead_letter};
use async_nats::jetstream::{self, ErrorCode, stream::DeleteMessageErrorKind};
use onedoor_contracts::intake::CaseErased;
use onedoor_contracts::{CE_TYPE_HEADER, IntegrationEvent};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the task looks for requests (they are rare: one per erased household).
const POLL: Duration = Duration::from_secs(2);

/// What one round of erasure removed from the broker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasedMessages {
    /// Cases whose requests were done.
    pub cases: usize,
    /// Messages the service published about them.
    pub published: usize,
    /// Copies of messages about them in the service's dead letters.
    pub dead_letters: usize,
}

/// Does the requested erasures until `shutdown`, retrying while the broker is away.
pub async fn run(js: jetstream::Context, pool: PgPool, service: String, shutdown: CancellationToken) {
    loop {
        match erase_requested(&js, &pool, &service).await {
            Ok(done) if done.cases > 0 => tracing::info!(
                cases = done.cases,
                messages = done.published,
                dead_letters = done.dead_letters,
                "erased households' messages taken off the broker"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "erasing messages from the broker failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Does the erasures requested so far (a hundred cases at a time).
pub async fn erase_requested(
    js: &jetstream::Context,
    pool: &PgPool,
    service: &str,
) -> Result<ErasedMessages, MessagingError> {
    // A case with messages still in the outbox waits until they are published.
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT stream_key FROM broker_erasures b
          WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.stream_key = b.stream_key)
          ORDER BY requested_at LIMIT 100",
    )
    .fetch_all(pool)
    .await?;
    let mut erased = ErasedMessages { cases: keys.len(), ..Default::default() };
    if keys.is_empty() {
        return Ok(erased);
    }
    let places: Vec<(String, i64)> =
        sqlx::query_as("SELECT stream, sequence FROM published WHERE stream_key = ANY($1) ORDER BY stream, sequence")
            .bind(&keys)
            .fetch_all(pool)
            .await?;
    let mut streams = HashMap::new();
    for (name, sequence) in places {
        if !streams.contains_key(&name) {
            let stream = js.get_stream(&name).await.map_err(MessagingError::js)?;
            streams.insert(name.clone(), stream);
        }
        if erase(&streams[&name], sequence as u64).await? {
            erased.published += 1;
        }
    }
    erased.dead_letters = erase_dead_letters_about(js, service, &keys).await?;
    sqlx::query(
        "WITH forgotten AS (DELETE FROM published WHERE stream_key = ANY($1))
         DELETE FROM broker_erasures WHERE stream_key = ANY($1)",
    )
    .bind(&keys)
    .execute(pool)
    .await?;
    Ok(erased)
}

/// Deletes message `sequence` of `stream`, overwriting it; `false` if it was gone already.
async fn erase(stream: &jetstream::stream::Stream, sequence: u64) -> Result<bool, MessagingError> {
    match stream.delete_message(sequence).await {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(e.kind(), DeleteMessageErrorKind::JetStream(j)
            if j.error_code() == ErrorCode::NO_MESSAGE_FOUND || j.error_code() == ErrorCode::SEQUENCE_NOT_FOUND) =>
        {
            Ok(false)
        }
        Err(e) => Err(MessagingError::js(e)),
    }
}

/// Deletes `service`'s dead letters whose message is about one of `keys`
/// (the CloudEvents `subject` of its envelope: its case), whatever their
/// type, known or not, but the erasure's announcement.
async fn erase_dead_letters_about(
    js: &jetstream::Context,
    service: &str,
    keys: &[String],
) -> Result<usize, MessagingError> {
    let stream = dead_letter::opened(js, service).await?;
    let mut erased = 0;
    for sequence in dead_letter::held_sequences(&stream.cached_info().state) {
        let Ok(raw) = stream.get_raw_message(sequence).await else { continue };
        // The erasure's own announcement (ids only) stays: replayed, it is
        // what makes a department erase its copy of the case.
        let event_type = raw.headers.get(CE_TYPE_HEADER).map(|t| t.as_str());
        if event_type == Some(CaseErased::cloud_event_type().as_str()) {
            continue;
        }
        let about = serde_json::from_slice::<serde_json::Value>(&raw.payload)
            .ok()
            .and_then(|envelope| envelope.get("subject").and_then(|s| s.as_str()).map(str::to_string));
        if about.is_some_and(|case| keys.contains(&case)) && erase(&stream, sequence).await? {
            erased += 1;
        }
    }
    Ok(erased)
}
