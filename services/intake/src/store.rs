//! Intake's persistence: the case stream in the event store, the outbox
//! messages each change announces, and the read models (case list, open
//! lines) updated in the same transaction, so a read after a write sees it.

use crate::config::Policy;
use crate::domain::case::{Case, CaseEvent, STREAM_TYPE, local_date};
use crate::integration;
use chrono::{DateTime, Datelike, Utc};
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, StoreError, Upcasters};
use onedoor_telemetry::propagation::TraceHeaders;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    Ok(())
}

/// Folds a case from its stream; `None` if there is no such case.
pub async fn load_case(conn: &mut PgConnection, case_id: Uuid) -> Result<Option<Case>, StoreError> {
    let recorded = onedoor_event_store::load(conn, &case_id.to_string(), &Upcasters::new()).await?;
    if recorded.is_empty() {
        return Ok(None);
    }
    let events: Vec<CaseEvent> = recorded.iter().map(|r| r.decode()).collect::<Result<_, _>>()?;
    Ok(Some(Case::from_events(case_id, &events)))
}

/// Locks the case's list row so concurrent writers to one case take turns.
pub async fn lock_case(conn: &mut PgConnection, case_id: Uuid) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT township FROM case_views WHERE case_id = $1 FOR UPDATE")
        .bind(case_id)
        .fetch_optional(conn)
        .await?)
}

/// Appends `new` to the case, announces it through the outbox and updates
/// the read models, all in the caller's transaction. Returns the case after.
pub async fn save(
    conn: &mut PgConnection,
    before: &Case,
    new: &[CaseEvent],
    actor: &str,
    causation_id: Option<Uuid>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Case, StoreError> {
    let expected = if before.version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(before.version) };
    let trace = TraceHeaders::current();
    let encoded: Vec<NewEvent> = new.iter().map(NewEvent::from_domain).collect::<Result<_, _>>()?;
    let mut after = before.clone();
    for event in new {
        after.apply(event);
    }
    let announcements = integration::announce(before, &after, new, now)?;
    onedoor_event_store::append_and_announce(
        conn,
        STREAM_TYPE,
        &before.case_id.to_string(),
        expected,
        &encoded,
        &EventMetadata {
            correlation_id: Some(before.case_id),
            causation_id,
            actor: actor.to_string(),
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        },
        &announcements,
    )
    .await?;
    write_read_models(conn, &after, policy, now).await?;
    Ok(after)
}

/// Writes the case's list row and releases open lines that are done.
pub async fn write_read_models(
    conn: &mut PgConnection,
    case: &Case,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let view = case.view(&policy.catalogue, &policy.calendar, local_date(now));
    let next_deadline =
        view.lanes.iter().filter(|l| l.clock_runs(case.withdrawn.is_some())).filter_map(|l| l.deadline).min();
    let township = view.division_code.get(..9).unwrap_or_default().to_string();
    sqlx::query(
        "INSERT INTO case_views (case_id, case_number, township, status, submitted_at, next_deadline, version, view)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (case_id) DO UPDATE SET status = $4, next_deadline = $6, version = $7, view = $8",
    )
    .bind(case.case_id)
    .bind(&case.case_number)
    .bind(township)
    .bind(view.status.as_str())
    .bind(case.submitted_at.unwrap_or(now))
    .bind(next_deadline)
    .bind(case.version)
    .bind(serde_json::to_value(&view)?)
    .execute(&mut *conn)
    .await?;
    let done: Vec<String> = view
        .lanes
        .iter()
        .filter(|l| l.status.is_final() || case.withdrawn.is_some())
        .map(|l| l.department.as_str().to_string())
        .collect();
    if !done.is_empty() {
        sqlx::query("DELETE FROM open_lines WHERE case_id = $1 AND department = ANY($2)")
            .bind(case.case_id)
            .bind(done)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The next case number of a township: `330102001-2026-000001`.
pub async fn next_case_number(
    conn: &mut PgConnection,
    township: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let year = local_date(now).year();
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO case_number_counters (township, year, last) VALUES ($1, $2, 1)
         ON CONFLICT (township, year) DO UPDATE SET last = case_number_counters.last + 1
         RETURNING last",
    )
    .bind(township)
    .bind(year)
    .fetch_one(conn)
    .await?;
    Ok(format!("{township}-{year}-{n:06}"))
}

/// Rebuilds every case's read models from the event log; returns how many cases.
pub async fn rebuild_read_models(pool: &PgPool, policy: &Policy) -> Result<usize, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT stream_id FROM events WHERE stream_type = $1")
        .bind(STREAM_TYPE)
        .fetch_all(pool)
        .await?;
    let now = Utc::now();
    for id in &ids {
        let Ok(case_id) = Uuid::parse_str(id) else { continue };
        let mut tx = pool.begin().await?;
        if let Some(case) = load_case(&mut tx, case_id).await? {
            write_read_models(&mut tx, &case, policy, now).await?;
        }
        tx.commit().await?;
    }
    Ok(ids.len())
}
