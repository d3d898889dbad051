//! The operators' rebuild of intake's read models from its event log (the
//! case list and views, the open lines, the household register): the job
//! operators start and follow, and the chunked rebuild itself (ADR 0012:
//! a chunk of cases in a fixed number of statements, two chunks at a time).

use super::{
    ListRow, STREAM_TYPE, case_key_owner, claim_open_lines, folded, load_household, write_household, write_list_rows,
};
use crate::config::Policy;
use crate::domain::case::Case;
use crate::domain::household::STREAM_TYPE as HOUSEHOLD_STREAM;
use crate::stored;
use chrono::{DateTime, Utc};
use onedoor_event_store::StoreError;
use onedoor_personal_data::Keyring;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A rebuild of the case views, as operators follow it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct RebuildJob {
    pub job_id: Uuid,
    /// `running`, `done` or `failed`.
    pub status: String,
    pub cases_total: i64,
    pub cases_done: i64,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str = "job_id, status, cases_total, cases_done, error, started_at, finished_at";

/// Starts a rebuild job, or finds the one running: `(job, started)`. A
/// running job whose heartbeat is over a minute old died with its process
/// and is marked failed first.
pub async fn start_rebuild(pool: &PgPool, requested_by: &str) -> Result<(RebuildJob, bool), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('intake rebuild jobs', 0))").execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE rebuild_jobs SET status = 'failed', error = 'its process stopped', finished_at = now()
         WHERE status = 'running' AND heartbeat_at < now() - interval '1 minute'",
    )
    .execute(&mut *tx)
    .await?;
    let running: Option<RebuildJob> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM rebuild_jobs WHERE status = 'running'")))
            .fetch_optional(&mut *tx)
            .await?;
    let found = match running {
        Some(job) => (job, false),
        None => {
            let job = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "INSERT INTO rebuild_jobs (job_id, requested_by, status) VALUES ($1, $2, 'running') RETURNING {JOB_COLUMNS}"
            )))
            .bind(Uuid::now_v7())
            .bind(requested_by)
            .fetch_one(&mut *tx)
            .await?;
            (job, true)
        }
    };
    tx.commit().await?;
    Ok(found)
}

pub async fn rebuild_job(pool: &PgPool, job_id: Uuid) -> Result<Option<RebuildJob>, StoreError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM rebuild_jobs WHERE job_id = $1")))
        .bind(job_id)
        .fetch_optional(pool)
        .await?)
}

/// Runs rebuild `job_id` to its end: every case's read models rebuilt from
/// the event log, a hundred cases per transaction under their rows' locks
/// (so a concurrent change to a case is never overwritten by an older
/// view), with the open lines restored, then the household register's;
/// progress recorded as it goes. Running it again gives the same read models.
pub async fn run_rebuild(pool: &PgPool, keyring: &Keyring, policy: &Policy, job_id: Uuid) -> Result<(), StoreError> {
    let result = rebuild_every_case(pool, keyring, policy, job_id).await;
    let (status, error) = match &result {
        Ok(()) => ("done", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    sqlx::query("UPDATE rebuild_jobs SET status = $2, error = $3, finished_at = now() WHERE job_id = $1")
        .bind(job_id)
        .bind(status)
        .bind(error)
        .execute(pool)
        .await?;
    result
}

/// Cases rebuilt in one transaction.
const REBUILD_CHUNK: usize = 100;
/// Chunks rebuilt at once.
const REBUILD_WORKERS: usize = 2;

async fn rebuild_every_case(pool: &PgPool, keyring: &Keyring, policy: &Policy, job_id: Uuid) -> Result<(), StoreError> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT stream_id FROM events WHERE stream_type = $1")
        .bind(STREAM_TYPE)
        .fetch_all(pool)
        .await?;
    sqlx::query("UPDATE rebuild_jobs SET cases_total = $2, heartbeat_at = now() WHERE job_id = $1")
        .bind(job_id)
        .bind(ids.len() as i64)
        .execute(pool)
        .await?;
    // Cases in chunks, one transaction each: a commit (and its flush) per
    // hundred cases rather than per case, while a live writer to one of
    // them waits at most for the chunk. Two chunks at a time, on two
    // connections: while PostgreSQL reads or writes one, this process folds
    // the other (one at a time kept each side waiting on the other).
    use futures::TryStreamExt;
    futures::stream::iter(ids.chunks(REBUILD_CHUNK).map(Ok))
        .try_for_each_concurrent(REBUILD_WORKERS, |chunk| async move {
            let mut tx = pool.begin().await?;
            rebuild_chunk(&mut tx, keyring, policy, chunk).await?;
            sqlx::query("UPDATE rebuild_jobs SET cases_done = cases_done + $2, heartbeat_at = now() WHERE job_id = $1")
                .bind(job_id)
                .bind(chunk.len() as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
        .await?;
    // The household register's read models, from the household streams.
    let households: Vec<String> = sqlx::query_scalar("SELECT DISTINCT stream_id FROM events WHERE stream_type = $1")
        .bind(HOUSEHOLD_STREAM)
        .fetch_all(pool)
        .await?;
    for chunk in households.chunks(REBUILD_CHUNK) {
        let mut tx = pool.begin().await?;
        for household_id in chunk.iter().filter_map(|id| Uuid::parse_str(id).ok()) {
            let household = load_household(&mut tx, keyring, household_id).await?;
            write_household(&mut tx, keyring, &household).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Rebuilds the read models of a chunk of cases in the caller's
/// transaction, in a fixed number of round trips: their list rows locked
/// (so a concurrent change to one of them waits, and is never overwritten
/// by an older view), their streams and keys read, their list rows written,
/// and their held lines restored.
async fn rebuild_chunk(
    conn: &mut PgConnection,
    keyring: &Keyring,
    policy: &Policy,
    stream_ids: &[String],
) -> Result<(), StoreError> {
    let case_ids: Vec<Uuid> = stream_ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
    sqlx::query("SELECT 1 FROM case_views WHERE case_id = ANY($1) ORDER BY case_id FOR UPDATE")
        .bind(&case_ids)
        .execute(&mut *conn)
        .await?;
    let recorded = onedoor_event_store::load_streams(conn, stream_ids, &stored::upcasters()).await?;
    let streams: Vec<(Uuid, &[onedoor_event_store::RecordedEvent])> = recorded
        .chunk_by(|a, b| a.stream_id == b.stream_id)
        .filter_map(|events| Some((Uuid::parse_str(&events[0].stream_id).ok()?, events)))
        .collect();
    let owners: Vec<Uuid> =
        streams.iter().map(|(case_id, events)| case_key_owner(stored::household_of(events), *case_id)).collect();
    let keys = keyring.for_opening_many(conn, &owners).await?;
    let (mut cases, mut rows) = (Vec::with_capacity(streams.len()), Vec::with_capacity(streams.len()));
    let now = Utc::now();
    for ((case_id, events), owner) in streams.iter().zip(&owners) {
        let key = keys.get(owner).map(|k| &**k);
        let case = folded(*case_id, events, key)?;
        rows.push(ListRow::of(keyring, &case, key, events.last().map(|e| e.event_id), policy, now)?);
        cases.push(case);
    }
    write_list_rows(conn, &rows).await?;
    for case in &cases {
        restore_open_lines(conn, keyring, case).await?;
    }
    Ok(())
}

/// Holds the case's lines that are still held (a rebuild restores them).
async fn restore_open_lines(conn: &mut PgConnection, keyring: &Keyring, case: &Case) -> Result<(), StoreError> {
    claim_open_lines(conn, keyring, case, &case.held_lines()).await?;
    Ok(())
}
