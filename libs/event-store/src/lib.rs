//! The event store: every OneDoor service keeps its history as events in its
//! own PostgreSQL database, because every decision about a household must be
//! explainable later (who, when, on what facts).
//!
//! - [`append`] writes events to a stream with an expected version, inside a
//!   transaction the caller owns, so read models and [`outbox`] rows commit
//!   atomically with the events. Two writers with the same expected version:
//!   exactly one wins, the other gets [`StoreError::Conflict`].
//! - [`load`] reads a stream back, passing each event through the
//!   [`Upcasters`] so that old event versions meet today's code.
//! - [`inbox`] records which messages a consumer already acted on.
//! - [`deferred`] lets a transaction that changes a stream several times
//!   write each read-model row once, at its end.
//! - [`folded`] keeps streams folded before, so a change need not read them
//!   again when nothing was appended since.
//! - [`sealing`] seals, in a service's upgrade step, the personal fields an
//!   earlier release stored in the clear (ADR 0018).
//!
//! PostgreSQL, not the broker, is the record: see docs/adr/0002.

pub mod deferred;
pub mod folded;
pub mod inbox;
pub mod outbox;
pub mod sealing;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection, PgPool, Row};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended to the stream first.
    #[error("stream {stream_id} is not at the expected version {expected:?}")]
    Conflict { stream_id: String, expected: ExpectedVersion },
    #[error("event payload could not be encoded or decoded: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A household's data key could not be had (or was erased: see
    /// `onedoor_personal_data`).
    #[error(transparent)]
    PersonalData(#[from] onedoor_personal_data::KeyringError),
}

/// What the writer believes the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be exactly at this version (the number of its events).
    Exact(i64),
    /// Append wherever the stream is now (still serialised by the unique index).
    Any,
}

/// Who and what caused an event, and where it sits in the distributed trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The case the event belongs to: every event of one application shares it.
    pub correlation_id: Option<Uuid>,
    /// The event or command (message id) that caused this one.
    pub causation_id: Option<Uuid>,
    /// Staff id or service name; never a person's name.
    pub actor: String,
    /// W3C trace context of the request that wrote the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// An event to append. Its id is a UUIDv7 chosen here, so ids sort by time.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, schema_version: i32, payload: Value) -> Self {
        Self { event_id: Uuid::now_v7(), event_type: event_type.into(), schema_version, payload }
    }
}

/// An event as read back from the store.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub global_position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_type: String,
    pub version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// Decodes the payload into its stored type (after upcasting), its
    /// personal `fields` opened with the owner's key; without one (erased),
    /// they read as erased.
    pub fn decode<E: serde::de::DeserializeOwned>(
        &self,
        fields: onedoor_personal_data::PersonalFields,
        key: Option<&onedoor_personal_data::DataKey>,
    ) -> Result<E, StoreError> {
        let mut payload = self.payload.clone();
        fields.open(&mut payload, key);
        Ok(serde_json::from_value(payload)?)
    }
}

/// The result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub version: i64,
    pub event_ids: Vec<Uuid>,
}

/// The event store's migrations.
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

/// Applies the event store's migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    apply_migrations(pool, migrator()).await
}

/// Applies `migrator`'s migrations. A service runs two migrators in its one
/// database (the event store's and its own), so each tolerates the
/// versions of the other.
pub async fn apply_migrations(pool: &PgPool, mut migrator: Migrator) -> Result<(), StoreError> {
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    Ok(())
}

/// The versions of `migrator` the database has not applied: what a service
/// that leaves migrating to someone else (behind a transaction pooler) must
/// not start without.
pub async fn pending_migrations(pool: &PgPool, migrator: &Migrator) -> Result<Vec<i64>, StoreError> {
    let migrated: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?;
    let applied: Vec<i64> = if migrated {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await?
    } else {
        Vec::new()
    };
    Ok(migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| m.version)
        .collect())
}

/// Appends `events` to `stream_id` if it is at `expected`, inside the caller's transaction.
///
/// The unique index on (stream_id, version) is the final arbiter: a concurrent
/// writer that read the same version blocks on it and then fails with
/// [`StoreError::Conflict`]. After a conflict the transaction may be unusable; roll it back.
pub async fn append(
    conn: &mut PgConnection,
    stream_type: &str,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    metadata: &EventMetadata,
) -> Result<Appended, StoreError> {
    append_and_announce(conn, stream_type, stream_id, expected, events, metadata, &[]).await
}

/// [`append`], plus the integration events that announce the change written
/// to the outbox in the same statement (only if the append succeeds). One
/// round trip instead of two: this is the hot path of every command.
pub async fn append_and_announce(
    conn: &mut PgConnection,
    stream_type: &str,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    metadata: &EventMetadata,
    announcements: &[outbox::OutboxMessage],
) -> Result<Appended, StoreError> {
    append_announce_and_project(conn, stream_type, stream_id, expected, events, metadata, announcements, None).await
}

/// A read model's write that goes with an append, in its statement: one
/// round trip fewer per change (see [`append_announce_and_project`]).
pub struct Projection<'a> {
    /// A data-modifying statement for a `WITH` clause: its parameters are
    /// numbered from `$14` on (the append's are `$1` to `$13`), and it must
    /// write only `WHERE EXISTS (SELECT 1 FROM appended)`, so that nothing is
    /// written where the stream was not at the expected version.
    pub sql: &'static str,
    /// Adds its parameters' values, in order.
    pub bind: Binder<'a>,
}

/// Adds a [`Projection`]'s parameter values to the statement's.
pub type Binder<'a> = Box<dyn FnOnce(&mut PgArguments) -> Result<(), BoxDynError> + Send + 'a>;

/// The version check, the inserts and the outbox rows: `$1` to `$13`.
const APPEND: &str = "WITH current AS (SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE stream_id = $1),
     appended AS (
         INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, metadata)
         SELECT e.event_id, $1, $2, current.v + e.n, e.event_type, e.schema_version, e.payload, $3
         FROM current, UNNEST($4::uuid[], $5::text[], $6::int[], $7::jsonb[])
              WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, n)
         WHERE $8::bigint IS NULL OR current.v = $8
         RETURNING version
     ),
     announced AS (
         INSERT INTO outbox (event_id, stream_key, subject, headers, payload)
         SELECT o.event_id, o.stream_key, o.subject, o.headers, o.payload
         FROM UNNEST($9::uuid[], $10::text[], $11::text[], $12::jsonb[], $13::bytea[])
              WITH ORDINALITY AS o(event_id, stream_key, subject, headers, payload, n)
         WHERE EXISTS (SELECT 1 FROM appended)
         ORDER BY o.n
     )";

/// [`append_and_announce`], plus the read model's row that shows the change
/// (`projection`), all in one statement. A change that appends and then
/// writes its view took two round trips; this is one.
#[allow(clippy::too_many_arguments)]
pub async fn append_announce_and_project(
    conn: &mut PgConnection,
    stream_type: &str,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
    metadata: &EventMetadata,
    announcements: &[outbox::OutboxMessage],
    projection: Option<Projection<'_>>,
) -> Result<Appended, StoreError> {
    let conflict = || StoreError::Conflict { stream_id: stream_id.to_string(), expected };
    if events.is_empty() {
        return Ok(Appended { version: current_version(conn, stream_id).await?, event_ids: Vec::new() });
    }
    let expected_version: Option<i64> = match expected {
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(v) => Some(v),
        ExpectedVersion::Any => None,
    };
    let mut args = PgArguments::default();
    let mut bound = (|| -> Result<(), BoxDynError> {
        args.add(stream_id)?;
        args.add(stream_type)?;
        args.add(serde_json::to_value(metadata)?)?;
        args.add(events.iter().map(|e| e.event_id).collect::<Vec<_>>())?;
        args.add(events.iter().map(|e| e.event_type.clone()).collect::<Vec<_>>())?;
        args.add(events.iter().map(|e| e.schema_version).collect::<Vec<_>>())?;
        args.add(events.iter().map(|e| e.payload.clone()).collect::<Vec<_>>())?;
        args.add(expected_version)?;
        args.add(announcements.iter().map(|m| m.event_id).collect::<Vec<_>>())?;
        args.add(announcements.iter().map(|m| m.stream_key.clone()).collect::<Vec<_>>())?;
        args.add(announcements.iter().map(|m| m.subject.clone()).collect::<Vec<_>>())?;
        args.add(announcements.iter().map(|m| serde_json::to_value(&m.headers)).collect::<Result<Vec<_>, _>>()?)?;
        args.add(announcements.iter().map(|m| m.payload.clone()).collect::<Vec<_>>())?;
        Ok(())
    })();
    let sql = match projection {
        None => format!("{APPEND} SELECT version FROM appended"),
        Some(Projection { sql, bind }) => {
            bound = bound.and_then(|()| bind(&mut args));
            format!("{APPEND}, projected AS ({sql}) SELECT version FROM appended")
        }
    };
    bound.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
    // One round trip: the version check, the inserts (and the view) in a single statement.
    let inserted = sqlx::query_scalar_with::<_, i64, _>(sqlx::AssertSqlSafe(sql), args).fetch_all(&mut *conn).await;
    let versions = match inserted {
        Ok(v) => v,
        Err(sqlx::Error::Database(db))
            if db.is_unique_violation() && db.constraint() == Some("events_stream_version_unique") =>
        {
            return Err(conflict());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(&version) = versions.iter().max() else {
        return Err(conflict());
    };
    let event_ids = events.iter().map(|e| e.event_id).collect();
    Ok(Appended { version, event_ids })
}

/// The number of events in a stream (0 if it does not exist).
pub async fn current_version(conn: &mut PgConnection, stream_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = $1")
        .bind(stream_id)
        .fetch_one(conn)
        .await?)
}

/// A query of whole events, `$rest` being its `WHERE` and `ORDER BY`: the
/// columns [`decode_row`] reads, named once.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT global_position, event_id, stream_id, stream_type, version, event_type, schema_version, payload, \
             metadata, recorded_at FROM events ",
            $rest
        )
    };
}

/// Loads every event of a stream in order, upcast to the current schema versions.
pub async fn load(
    conn: &mut PgConnection,
    stream_id: &str,
    upcasters: &Upcasters,
) -> Result<Vec<RecordedEvent>, StoreError> {
    load_from(conn, stream_id, 1, upcasters).await
}

/// Loads the events of a stream from `version` on, in order, upcast to the
/// current schema versions (what a caller that folded the stream up to
/// `version` before needs, with the event at `version` to check it against).
pub async fn load_from(
    conn: &mut PgConnection,
    stream_id: &str,
    version: i64,
    upcasters: &Upcasters,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(select_events!("WHERE stream_id = $1 AND version >= $2 ORDER BY version"))
        .bind(stream_id)
        .bind(version)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(|row| decode_row(row, upcasters)).collect()
}

/// Loads every event of several streams (a rebuild's chunk) in one query,
/// ordered by stream and version, upcast to the current schema versions.
pub async fn load_streams(
    conn: &mut PgConnection,
    stream_ids: &[String],
    upcasters: &Upcasters,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(select_events!("WHERE stream_id = ANY($1) ORDER BY stream_id, version"))
        .bind(stream_ids)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(|row| decode_row(row, upcasters)).collect()
}

/// Reads events of one stream type in global order after `after_position`,
/// for rebuilding read models. Returns at most `limit` events.
pub async fn read_by_type(
    conn: &mut PgConnection,
    stream_type: &str,
    after_position: i64,
    limit: i64,
    upcasters: &Upcasters,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(select_events!(
        "WHERE stream_type = $1 AND global_position > $2 ORDER BY global_position LIMIT $3"
    ))
    .bind(stream_type)
    .bind(after_position)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(|row| decode_row(row, upcasters)).collect()
}

fn decode_row(row: sqlx::postgres::PgRow, upcasters: &Upcasters) -> Result<RecordedEvent, StoreError> {
    let mut event = RecordedEvent {
        global_position: row.try_get("global_position")?,
        event_id: row.try_get("event_id")?,
        stream_id: row.try_get("stream_id")?,
        stream_type: row.try_get("stream_type")?,
        version: row.try_get("version")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        payload: row.try_get("payload")?,
        metadata: serde_json::from_value(row.try_get("metadata")?)?,
        recorded_at: row.try_get("recorded_at")?,
    };
    upcasters.apply(&mut event);
    Ok(event)
}

type UpcastFn = fn(Value) -> Value;

/// Turns stored events of an old schema version into the current one, one
/// version step at a time. Stored events are never rewritten: changing an
/// event means a new version plus an upcaster, never a silent edit.
#[derive(Debug, Default, Clone)]
pub struct Upcasters {
    steps: HashMap<(String, i32), UpcastFn>,
}

impl Upcasters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers how `event_type` at `from_version` becomes `from_version + 1`.
    pub fn with(mut self, event_type: &str, from_version: i32, step: UpcastFn) -> Self {
        self.steps.insert((event_type.to_string(), from_version), step);
        self
    }

    fn apply(&self, event: &mut RecordedEvent) {
        while let Some(step) = self.steps.get(&(event.event_type.clone(), event.schema_version)) {
            event.payload = step(std::mem::take(&mut event.payload));
            event.schema_version += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(event_type: &str, version: i32, payload: Value) -> RecordedEvent {
        RecordedEvent {
            global_position: 1,
            event_id: Uuid::now_v7(),
            stream_id: "s".into(),
            stream_type: "t".into(),
            version: 1,
            event_type: event_type.into(),
            schema_version: version,
            payload,
            metadata: EventMetadata::default(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn upcasters_chain_version_by_version_up_to_the_current_one() {
        let upcasters = Upcasters::new()
            .with("LaneOpened", 1, |mut v| {
                v["deadline_days"] = Value::from(20);
                v
            })
            .with("LaneOpened", 2, |mut v| {
                v["department"] = v["dept"].take();
                v.as_object_mut().unwrap().remove("dept");
                v
            });
        let mut event = recorded("LaneOpened", 1, serde_json::json!({"dept": "medical"}));
        upcasters.apply(&mut event);
        assert_eq!(event.schema_version, 3);
        assert_eq!(event.payload, serde_json::json!({"department": "medical", "deadline_days": 20}));
    }

    #[test]
    fn events_of_other_types_or_current_versions_pass_unchanged() {
        let upcasters = Upcasters::new().with("LaneOpened", 1, |_| Value::Null);
        let mut event = recorded("LaneClosed", 1, serde_json::json!({"a": 1}));
        upcasters.apply(&mut event);
        assert_eq!(event.schema_version, 1);
        assert_eq!(event.payload, serde_json::json!({"a": 1}));
    }
}
