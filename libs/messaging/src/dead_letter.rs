//! The dead-letter streams: messages a consumer could not process, kept with
//! the reason, the original subject and headers, so an operator can see what
//! went wrong and replay them once it is fixed. Nothing is dropped silently.
//!
//! Each service has a stream of its own (`onedoor_contracts::dead_letter_stream`):
//! a dead letter holds a whole message, so a stream shared by every service
//! let each read (and delete) the others' (ADR 0017).
//!
//! A replay is not published again: the original subject belongs to another
//! service, on which this one may not publish (`onedoor_broker_access`). The
//! service whose consumer failed hands the dead letter to the same handler,
//! in a transaction with its inbox ([`crate::consumer::replay`]), and removes
//! it once that committed.

use crate::consumer::Delivery;
use crate::{EVENT_ID_HEADER, MessagingError};
use async_nats::jetstream;
use onedoor_contracts::{dead_letter_stream, dead_letter_subject, dead_letter_subjects};
use serde::Serialize;
use uuid::Uuid;

pub const REASON_HEADER: &str = "Onedoor-Dlq-Reason";
pub const ORIGINAL_SUBJECT_HEADER: &str = "Onedoor-Dlq-Original-Subject";
pub const CONSUMER_HEADER: &str = "Onedoor-Dlq-Consumer";
pub const DELIVERED_HEADER: &str = "Onedoor-Dlq-Delivered";
pub const ORIGINAL_SEQUENCE_HEADER: &str = "Onedoor-Dlq-Stream-Sequence";

/// Declares `service`'s dead-letter stream (creating or updating it).
pub async fn ensure_stream(js: &jetstream::Context, service: &str) -> Result<(), MessagingError> {
    let (name, subjects) = (dead_letter_stream(service), vec![dead_letter_subjects(service)]);
    crate::ensure_stream_within(js, &name, subjects, crate::StreamLimits::dead_letters()).await
}

/// Header values must be one line; reasons are also kept short.
fn header_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect()
}

/// Moves `message`, which `service`'s `consumer` could not process, to the
/// service's dead-letter stream, waiting for the PubAck.
pub async fn send(
    js: &jetstream::Context,
    service: &str,
    consumer: &str,
    message: &jetstream::Message,
    reason: &str,
    delivered: i64,
) -> Result<(), MessagingError> {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(original) = &message.headers {
        for (name, values) in original.iter() {
            let n: &str = name.as_ref();
            if n == "Nats-Msg-Id" {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
    let original_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get(EVENT_ID_HEADER).or_else(|| h.get(async_nats::header::NATS_MESSAGE_ID)))
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| format!("seq-{sequence}"));
    // One dead letter per failure episode: a redelivery of the same stream
    // message (the dead letter was stored but the Term was lost) is the same
    // episode and is deduplicated; a replay is a new stream message, so a
    // replay that fails again is a new dead letter, however soon.
    headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("dlq:{consumer}:{original_id}:{sequence}").as_str());
    headers.insert(REASON_HEADER, header_safe(reason).as_str());
    headers.insert(ORIGINAL_SUBJECT_HEADER, message.subject.as_str());
    headers.insert(CONSUMER_HEADER, consumer);
    headers.insert(DELIVERED_HEADER, delivered.to_string().as_str());
    headers.insert(ORIGINAL_SEQUENCE_HEADER, sequence.to_string().as_str());
    js.publish_with_headers(dead_letter_subject(service, consumer), headers, message.payload.clone())
        .await
        .map_err(MessagingError::js)?
        .await
        .map_err(MessagingError::js)?;
    Ok(())
}

/// A dead letter as operators see it: ids and reasons, no payload (it may
/// hold personal data).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeadLetter {
    pub sequence: u64,
    pub consumer: String,
    pub original_subject: String,
    pub event_id: Option<Uuid>,
    pub reason: String,
    pub delivered: i64,
    pub dead_lettered_at: String,
}

impl DeadLetter {
    fn from_raw(sequence: u64, raw: &jetstream::message::StreamMessage) -> Self {
        let get = |k: &str| raw.headers.get(k).map(|v| v.as_str().to_string()).unwrap_or_default();
        Self {
            sequence,
            consumer: get(CONSUMER_HEADER),
            original_subject: get(ORIGINAL_SUBJECT_HEADER),
            event_id: Uuid::parse_str(&get(EVENT_ID_HEADER)).ok(),
            reason: get(REASON_HEADER),
            delivered: get(DELIVERED_HEADER).parse().unwrap_or(0),
            dead_lettered_at: raw.time.to_string(),
        }
    }
}

/// `service`'s dead-letter stream (declared first), with its state as of now.
pub(crate) async fn opened(
    js: &jetstream::Context,
    service: &str,
) -> Result<jetstream::stream::Stream, MessagingError> {
    ensure_stream(js, service).await?;
    js.get_stream(dead_letter_stream(service)).await.map_err(MessagingError::js)
}

/// The sequences a stream's messages lie between, some perhaps deleted;
/// none when it is empty (an empty stream may still name a first and last).
pub(crate) fn held_sequences(state: &jetstream::stream::State) -> impl Iterator<Item = u64> + use<> {
    (state.messages > 0).then_some(state.first_sequence..=state.last_sequence).into_iter().flatten()
}

/// Lists up to `limit` of `service`'s dead letters, oldest first.
pub async fn list(js: &jetstream::Context, service: &str, limit: usize) -> Result<Vec<DeadLetter>, MessagingError> {
    let stream = opened(js, service).await?;
    let mut letters = Vec::new();
    for sequence in held_sequences(&stream.cached_info().state) {
        if letters.len() >= limit {
            break;
        }
        let Ok(raw) = stream.get_raw_message(sequence).await else {
            continue; // deleted after a replay
        };
        letters.push(DeadLetter::from_raw(sequence, &raw));
    }
    Ok(letters)
}

/// A dead letter as read back for a replay.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub letter: DeadLetter,
    /// The delivery it was, as its consumer first saw it.
    pub delivery: Delivery,
    /// Its headers (the trace it belongs to).
    pub headers: async_nats::HeaderMap,
}

/// `service`'s dead letter `sequence`; `None` if there is no such dead
/// letter (never was, or was replayed).
pub async fn fetch(js: &jetstream::Context, service: &str, sequence: u64) -> Result<Option<Fetched>, MessagingError> {
    if sequence == 0 {
        return Ok(None); // sequences start at 1; JetStream calls 0 a bad request
    }
    let stream = opened(js, service).await?;
    let raw = match stream.get_raw_message(sequence).await {
        Ok(raw) => raw,
        Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(MessagingError::js(e)),
    };
    let letter = DeadLetter::from_raw(sequence, &raw);
    let Some(event_id) = letter.event_id else {
        return Err(MessagingError::JetStream(format!("dead letter {sequence} has no event id")));
    };
    let get = |k: &str| raw.headers.get(k).map(|v| v.as_str().to_string());
    let delivery = Delivery {
        event_id,
        event_type: get(onedoor_contracts::CE_TYPE_HEADER),
        subject: letter.original_subject.clone(),
        payload: raw.payload.clone(),
        delivered: letter.delivered,
        stream_sequence: get(ORIGINAL_SEQUENCE_HEADER).and_then(|s| s.parse().ok()).unwrap_or(0),
    };
    Ok(Some(Fetched { letter, delivery, headers: raw.headers }))
}

/// Removes `service`'s dead letter `sequence` (once its replay was handled).
pub async fn remove(js: &jetstream::Context, service: &str, sequence: u64) -> Result<(), MessagingError> {
    let stream = js.get_stream(dead_letter_stream(service)).await.map_err(MessagingError::js)?;
    stream.delete_message(sequence).await.map_err(MessagingError::js)?;
    Ok(())
}

/// What [`move_shared`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Dead letters now in their service's own stream.
    pub moved: usize,
    /// Dead letters of consumers no service runs: left in the shared stream.
    pub left: Vec<DeadLetter>,
}

/// Moves every dead letter of the stream all services once shared
/// ([`onedoor_contracts::SHARED_DEAD_LETTER_STREAM`]) to the stream of the
/// service that runs its consumer (`service_of`), headers and body as they
/// were, and removes the shared stream once it is empty. Only the
/// operators' broker user may: no service reaches the shared stream. A
/// letter published twice (the move stopped between publishing and
/// removing, and ran again) is replayed harmlessly: the inbox knows it.
pub async fn move_shared(
    js: &jetstream::Context,
    service_of: impl Fn(&str) -> Option<&'static str>,
) -> Result<Moved, MessagingError> {
    use onedoor_contracts::SHARED_DEAD_LETTER_STREAM as SHARED;
    let mut done = Moved::default();
    let mut stream = match js.get_stream(SHARED).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(done);
        }
        Err(e) => return Err(MessagingError::js(e)),
    };
    let state = stream.info().await.map_err(MessagingError::js)?.state.clone();
    for sequence in held_sequences(&state) {
        let raw = match stream.get_raw_message(sequence).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound => continue,
            Err(e) => return Err(MessagingError::js(e)),
        };
        let letter = DeadLetter::from_raw(sequence, &raw);
        let Some(service) = service_of(&letter.consumer) else {
            done.left.push(letter);
            continue;
        };
        ensure_stream(js, service).await?;
        js.publish_with_headers(
            dead_letter_subject(service, &letter.consumer),
            raw.headers.clone(),
            raw.payload.clone(),
        )
        .await
        .map_err(MessagingError::js)?
        .await
        .map_err(MessagingError::js)?;
        stream.delete_message(sequence).await.map_err(MessagingError::js)?;
        done.moved += 1;
    }
    if done.left.is_empty() {
        js.delete_stream(SHARED).await.map_err(MessagingError::js)?;
    }
    Ok(done)
}
