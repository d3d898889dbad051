//! The transactional outbox: integration events are written in the same
//! transaction as the domain events they announce, and a relay publishes them
//! afterwards. Nothing committed is lost if the broker is down, and nothing is
//! published that was not committed.
//!
//! Relays of several replicas take turns through one transaction-scoped
//! advisory lock, so exactly one publishes at a time, in position order.
//! The relay reads every waiting row rather than "rows after the last position
//! seen": a bigserial position can become visible after a higher one (commit
//! order is not allocation order), and a high-water-mark poller would skip it.
//! Within one stream key the order is the commit order, because appends to one
//! stream are serialised by the event store's version check.
//!
//! Waking the relay: whoever commits a transaction that may have written to
//! the outbox calls [`committed`] (the consumers after each commit, the
//! service host after each state-changing request), and the process's
//! relays wake at once instead of polling the table every few milliseconds.
//! Not LISTEN/NOTIFY: a transaction-mode pooler cannot keep a listening
//! session, and NOTIFY serialises every notifying commit on one queue lock.
//! Writes this process does not see (another replica's, a script's) are
//! found by the relay's slower fallback poll.

use crate::StoreError;
use onedoor_contracts::{CE_SUBJECT_HEADER, CE_TYPE_HEADER, CloudEvent, IntegrationEvent};
use onedoor_telemetry::propagation::TraceHeaders;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use uuid::Uuid;

static COMMITTED: std::sync::LazyLock<tokio::sync::watch::Sender<u64>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::channel(0).0);

/// Tells this process's relays that a transaction which may have written to
/// the outbox has committed (call it after the commit, never before).
pub fn committed() {
    COMMITTED.send_modify(|n| *n = n.wrapping_add(1));
}

/// Changes each time [`committed`] is called: what a relay waits on.
pub fn commits() -> tokio::sync::watch::Receiver<u64> {
    COMMITTED.subscribe()
}

/// Advisory lock id the relays share ("onedoor outbox relay").
const RELAY_LOCK: i64 = 0x6f6e_6564_6f6f_7201;

/// An integration event ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Becomes the `Nats-Msg-Id`: the broker and every consumer deduplicate on it.
    pub event_id: Uuid,
    /// Messages with one key are published in the order they were written,
    /// on each subject.
    pub stream_key: String,
    pub subject: String,
    /// Broker headers saved with the message, e.g. `traceparent`.
    pub headers: BTreeMap<String, String>,
    pub payload: Vec<u8>,
}

impl OutboxMessage {
    /// The row announcing `event`: keyed by its case so one case's events
    /// keep their order, carrying the CloudEvents type and subject (its
    /// case) and the trace context of the span writing it.
    pub fn announcing<T: IntegrationEvent>(event: &CloudEvent<T>) -> Result<Self, serde_json::Error> {
        let mut headers = BTreeMap::new();
        headers.insert(CE_TYPE_HEADER.to_string(), event.event_type.clone());
        headers.insert(CE_SUBJECT_HEADER.to_string(), event.subject.clone());
        let trace = TraceHeaders::current();
        if let Some(tp) = trace.traceparent {
            headers.insert("traceparent".to_string(), tp);
        }
        if let Some(ts) = trace.tracestate {
            headers.insert("tracestate".to_string(), ts);
        }
        Ok(Self {
            event_id: event.id,
            stream_key: event.subject.clone(),
            subject: event.data.subject(),
            headers,
            payload: serde_json::to_vec(event)?,
        })
    }

    /// Seals the message's personal fields (`onedoor_contracts::personal_fields`
    /// of its type) for the broker: every message a service writes to its
    /// outbox passes here first.
    pub fn seal(&mut self, transit: &onedoor_personal_data::Transit) -> Result<(), serde_json::Error> {
        let fields = self.personal_fields();
        if fields.is_empty() {
            return Ok(());
        }
        let mut envelope: serde_json::Value = serde_json::from_slice(&self.payload)?;
        transit.seal(&mut envelope, onedoor_personal_data::PersonalFields(fields));
        self.payload = serde_json::to_vec(&envelope)?;
        Ok(())
    }

    /// The personal fields of a message of its type (`onedoor_contracts::personal_fields`).
    pub fn personal_fields(&self) -> &'static [&'static str] {
        self.headers.get(CE_TYPE_HEADER).map_or(&[][..], |t| onedoor_contracts::personal_fields(t))
    }
}

/// A message claimed by the relay, with its position in the outbox.
#[derive(Debug, Clone)]
pub struct PendingMessage {
    pub position: i64,
    pub message: OutboxMessage,
}

/// Writes a message to the outbox inside the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, message: &OutboxMessage) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (event_id, stream_key, subject, headers, payload) VALUES ($1, $2, $3, $4, $5)")
        .bind(message.event_id)
        .bind(&message.stream_key)
        .bind(&message.subject)
        .bind(serde_json::to_value(&message.headers)?)
        .bind(&message.payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Claims the oldest waiting messages for this relay, inside the caller's
/// transaction. `None` means another relay holds the turn: try again later.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Option<Vec<PendingMessage>>, StoreError> {
    let ours: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)").bind(RELAY_LOCK).fetch_one(&mut *conn).await?;
    if !ours {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT position, event_id, stream_key, subject, headers, payload FROM outbox ORDER BY position LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        claimed.push(PendingMessage {
            position: row.try_get("position")?,
            message: OutboxMessage {
                event_id: row.try_get("event_id")?,
                stream_key: row.try_get("stream_key")?,
                subject: row.try_get("subject")?,
                headers: serde_json::from_value(row.try_get("headers")?)?,
                payload: row.try_get("payload")?,
            },
        });
    }
    Ok(Some(claimed))
}

/// A message of the outbox the broker acknowledged, and where it stored it
/// (from its PubAck) when the message holds personal fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message's place in the outbox.
    pub position: i64,
    /// Its stream and sequence, kept for an erasure: only for a message with
    /// personal fields (`onedoor_contracts::personal_fields` of its type).
    pub stored_at: Option<(String, u64)>,
}

/// Removes published messages (after the broker acknowledged them) and, in
/// the same statement, records where those with personal fields went, under
/// their key (`published`), so an erasure finds the case's messages on the
/// broker. A message without any (an erasure's own announcement) is not
/// recorded: it is never erased, so every consumer still reads it.
pub async fn remove_published(conn: &mut PgConnection, sent: &[Sent]) -> Result<(), StoreError> {
    sqlx::query(
        "WITH sent AS (DELETE FROM outbox WHERE position = ANY($1) RETURNING position, stream_key)
         INSERT INTO published (stream_key, stream, sequence)
         SELECT sent.stream_key, m.stream, m.sequence
           FROM sent JOIN unnest($1::bigint[], $2::text[], $3::bigint[]) AS m(position, stream, sequence) USING (position)
          WHERE m.stream IS NOT NULL
         ON CONFLICT DO NOTHING",
    )
    .bind(sent.iter().map(|s| s.position).collect::<Vec<_>>())
    .bind(sent.iter().map(|s| s.stored_at.as_ref().map(|(stream, _)| stream.clone())).collect::<Vec<_>>())
    .bind(
        sent.iter()
            .map(|s| s.stored_at.as_ref().map(|(_, seq)| i64::try_from(*seq).unwrap_or(i64::MAX)))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Asks, in the caller's transaction, that the messages about `stream_keys`
/// (their cases) be erased from the broker: the service's broker-erasure
/// task does it once this commits (`onedoor_messaging::erasure`).
pub async fn request_broker_erasure(conn: &mut PgConnection, stream_keys: &[String]) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO broker_erasures (stream_key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING")
        .bind(stream_keys)
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement that forgets where messages went once the broker keeps
/// them no longer (`keep` being the streams' maximum age).
pub fn forget_published_older_than(keep: std::time::Duration) -> String {
    format!("DELETE FROM published WHERE published_at < now() - interval '{} seconds'", keep.as_secs())
}

/// How many cases' messages wait to be erased from the broker, for operators.
pub async fn broker_erasures_waiting(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM broker_erasures").fetch_one(pool).await?)
}

/// How many messages wait to be published: the relay's lag, for operators.
pub async fn unsent_count(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(pool).await?)
}
