//! Intake's persistence, and every SQL statement of the service: the case
//! and household streams in the event store, the outbox messages each change
//! announces, the read models (case list, open lines, the household
//! register) updated in the same transaction so a read after a write sees
//! it, case numbers and idempotency keys. The operators' rebuild of those
//! read models from the log is in [`rebuild`].

use crate::config::Policy;
use crate::domain::case::{Case, CaseEvent, STREAM_TYPE};
use crate::domain::household::{Declaration, Household, HouseholdEvent, STREAM_TYPE as HOUSEHOLD_STREAM};
use crate::domain::view::CaseView;
use crate::folded::CASES;
use crate::{integration, stored};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use onedoor_contracts::Department;
use onedoor_event_store::deferred;
use onedoor_event_store::folded::Kept;
use onedoor_event_store::sealing::{PlainEvents, Sealed};
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, StoreError};
use onedoor_personal_data::{DataKey, Keyring, PersonalFields};
use onedoor_stored_events::case::CaseEventV1;
use onedoor_stored_events::household::HouseholdEventV1;
use onedoor_telemetry::propagation::TraceHeaders;
use onedoor_working_calendar::local_date;
use sqlx::{PgConnection, PgPool, Row};
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// Intake's own migrations (beside the event store's).
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Applies the audit trail's and the data keys' migrations and then these (which move the
/// older audit log into the trail).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    onedoor_event_store::apply_migrations(pool, onedoor_audit::migrator()).await?;
    onedoor_event_store::apply_migrations(pool, onedoor_personal_data::migrator()).await?;
    onedoor_event_store::apply_migrations(pool, migrator()).await
}

mod rebuild;
pub use rebuild::{RebuildJob, rebuild_job, run_rebuild, start_rebuild};

/// Folds a case from its stream; `None` if there is no such case. A case
/// folded here before ([`crate::folded`]) is served as kept when its list
/// row (`listed`, read in this transaction) says nothing was appended since,
/// and otherwise brought up to date from the events since.
pub async fn load_case(
    conn: &mut PgConnection,
    keyring: &Keyring,
    case_id: Uuid,
    listed: Option<&CaseRow>,
) -> Result<Option<Case>, StoreError> {
    let stream_id = case_id.to_string();
    if let Some(Kept { state: mut case, version, last_event }) = CASES.get(case_id) {
        let owner = case_key_owner(case.household_id, case_id);
        if listed.is_some_and(|row| row.version == version && row.last_event == Some(last_event)) {
            if keyring.for_opening(conn, owner).await?.is_some() {
                return Ok(Some(case));
            }
        } else {
            let recorded = onedoor_event_store::load_from(conn, &stream_id, version, &stored::upcasters()).await?;
            let still_there = recorded.first().is_some_and(|e| e.event_id == last_event && e.version == version);
            if still_there && let Some(key) = keyring.for_opening(conn, owner).await? {
                for recorded in &recorded[1..] {
                    case.apply(&stored::decode(recorded, Some(&key))?);
                }
                keep(&case, recorded[recorded.len() - 1].event_id);
                return Ok(Some(case));
            }
        }
        CASES.forget(case_id);
    }
    let recorded = onedoor_event_store::load(conn, &stream_id, &stored::upcasters()).await?;
    let Some(last) = recorded.last() else { return Ok(None) };
    let key = keyring.for_opening(conn, case_key_owner(stored::household_of(&recorded), case_id)).await?;
    let case = folded(case_id, &recorded, key.as_deref())?;
    if key.is_some() {
        keep(&case, last.event_id);
    }
    Ok(Some(case))
}

fn keep(case: &Case, last_event: Uuid) {
    CASES.keep(case.case_id, case, case.version, last_event);
}

/// The case folded from its recorded (non-empty) stream, opened with its key.
fn folded(
    case_id: Uuid,
    recorded: &[onedoor_event_store::RecordedEvent],
    key: Option<&DataKey>,
) -> Result<Case, StoreError> {
    let events: Vec<CaseEvent> = recorded.iter().map(|e| stored::decode(e, key)).collect::<Result<_, _>>()?;
    let mut case = Case::from_events(case_id, &events);
    case.traceparent = recorded.first().and_then(|e| e.metadata.traceparent.clone());
    Ok(case)
}

/// A case's list row as [`case_row`] reads it: its township, and where its
/// stream stood (the row is written with every append).
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub township: String,
    pub version: i64,
    /// `None` where the row was written by a release before this column, or
    /// for an erased case.
    pub last_event: Option<Uuid>,
}

/// A case's list row, locking it when `lock` (so concurrent writers to one
/// case take turns); `None` if there is no such case.
pub async fn case_row(conn: &mut PgConnection, case_id: Uuid, lock: bool) -> Result<Option<CaseRow>, StoreError> {
    // Changed earlier in this transaction (which holds its lock): its row
    // waits to be written at the end.
    if let Some(row) = deferred::pending::<ListRow>(LIST_ROWS, case_id) {
        return Ok(Some(CaseRow { township: row.township, version: row.version, last_event: row.last_event }));
    }
    let sql = if lock {
        "SELECT township, version, last_event_id FROM case_views WHERE case_id = $1 FOR UPDATE"
    } else {
        "SELECT township, version, last_event_id FROM case_views WHERE case_id = $1"
    };
    let row: Option<(String, i64, Option<Uuid>)> = sqlx::query_as(sql).bind(case_id).fetch_optional(conn).await?;
    Ok(row.map(|(township, version, last_event)| CaseRow { township, version, last_event }))
}

/// The personal fields of a stored case view (its JSON), sealed with the
/// household's key like the log's (ADR 0015): the applicant's name and the
/// free text. The masked ID number, codes, dates and amounts stay plain.
const VIEW_PERSONAL: PersonalFields = PersonalFields(&[
    "/applicant/name",
    "/lanes/*/reason",
    "/lanes/*/override_reason",
    "/lanes/*/extension/reason",
    "/withdrawal_reason",
    "/closure/note",
]);

/// Whose key seals a case's events and view: its household's, or (a case
/// stored before the register) its own.
fn case_key_owner(household_id: Option<Uuid>, case_id: Uuid) -> Uuid {
    household_id.unwrap_or(case_id)
}

/// A stored view, its personal fields opened.
fn opened_view(mut view: serde_json::Value, key: Option<&DataKey>) -> Result<CaseView, StoreError> {
    VIEW_PERSONAL.open(&mut view, key);
    Ok(serde_json::from_value(view)?)
}

/// The case's list row: its township and its view as last written (see
/// [`CaseView::depends_on_today`] for when that view is still today's).
pub async fn stored_view(
    conn: &mut PgConnection,
    keyring: &Keyring,
    case_id: Uuid,
) -> Result<Option<(String, CaseView)>, StoreError> {
    let row = sqlx::query("SELECT township, view, household_id FROM case_views WHERE case_id = $1")
        .bind(case_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let key = keyring.for_opening(conn, case_key_owner(row.try_get("household_id")?, case_id)).await?;
    Ok(Some((row.try_get("township")?, opened_view(row.try_get("view")?, key.as_deref())?)))
}

/// Who made a change, and the message it answers (none for a command at
/// the window).
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub actor: &'a str,
    pub causation_id: Option<Uuid>,
}

impl<'a> Cause<'a> {
    pub fn staff(actor: &'a str) -> Self {
        Self { actor, causation_id: None }
    }
}

/// Appends `new` to the case, announces it through the outbox and updates
/// the read models, all in the caller's transaction. Returns the case after.
pub async fn save(
    conn: &mut PgConnection,
    keyring: &Keyring,
    before: &Case,
    new: &[CaseEvent],
    cause: Cause<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Case, StoreError> {
    let expected = if before.version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(before.version) };
    let trace = TraceHeaders::current();
    let mut after = before.clone();
    for event in new {
        after.apply(event);
    }
    let mut encoded: Vec<NewEvent> = new.iter().map(stored::encode).collect::<Result<_, _>>()?;
    if encoded.iter().any(stored::is_personal) {
        let key = keyring.for_sealing(conn, case_key_owner(after.household_id, after.case_id)).await?;
        encoded.iter_mut().for_each(|e| stored::seal(e, &key));
    }
    if before.version == 0 {
        after.traceparent = trace.traceparent.clone();
    }
    let mut announcements = integration::announce(before, &after, new, &policy.catalogue, now)?;
    for message in &mut announcements {
        message.seal(keyring.in_transit())?;
    }
    onedoor_event_store::append_and_announce(
        conn,
        STREAM_TYPE,
        &before.case_id.to_string(),
        expected,
        &encoded,
        &EventMetadata {
            correlation_id: Some(before.case_id),
            causation_id: cause.causation_id,
            actor: cause.actor.to_string(),
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        },
        &announcements,
    )
    .await?;
    // The next load reads nothing more (unless this transaction rolls back).
    // An erased case is never kept: it is folded afresh, without its key.
    let erased = new.iter().any(|e| matches!(e, CaseEvent::PersonalDataErased { .. }));
    let last_event = encoded.last().map(|e| e.event_id).filter(|_| !erased);
    write_read_models(conn, keyring, &after, last_event, policy, now).await?;
    match last_event {
        Some(last) => keep(&after, last),
        None => CASES.forget(after.case_id),
    }
    Ok(after)
}

/// Writes the case's list row and releases open lines that are done; in a
/// consumer's shared transaction, once at its end ([`deferred`]).
pub async fn write_read_models(
    conn: &mut PgConnection,
    keyring: &Keyring,
    case: &Case,
    last_event: Option<Uuid>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Sealed with the household's key while it lives; an erased household's
    // view holds only erased fields already.
    let key = keyring.for_opening(conn, case_key_owner(case.household_id, case.case_id)).await?;
    let row = ListRow::of(keyring, case, key.as_deref(), last_event, policy, now)?;
    match deferred::defer(LIST_ROWS, case.case_id, row) {
        Some(row) => write_list_rows(conn, &[row]).await,
        None => Ok(()),
    }
}

/// Case list rows deferred to the end of a consumer's shared transaction.
const LIST_ROWS: deferred::Kind = deferred::Kind { name: "case_views", write: write_deferred_list_rows };

fn write_deferred_list_rows<'c>(
    conn: &'c mut PgConnection,
    rows: Vec<deferred::Row>,
) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>> {
    let rows: Vec<ListRow> =
        rows.into_iter().filter_map(|row| row.downcast::<ListRow>().ok()).map(|row| *row).collect();
    Box::pin(async move { write_list_rows(conn, &rows).await })
}

/// A case's list row as written: its view rendered and sealed with its
/// household's key (`None` once erased), and the id of its stream's last
/// event (`None`: not known, or not to be served from a kept fold, see
/// [`CaseRow::last_event`]).
#[derive(Debug, Clone)]
struct ListRow {
    case_id: Uuid,
    case_number: String,
    township: String,
    status: &'static str,
    submitted_at: DateTime<Utc>,
    next_deadline: Option<NaiveDate>,
    version: i64,
    view: serde_json::Value,
    applicant: Option<String>,
    household_id: Option<Uuid>,
    owner: String,
    /// The lines still held; the others are released.
    held: String,
    /// Some line of the case is no longer held (a returned lane, a closed
    /// or withdrawn case): only then has the row open lines to release.
    releases: bool,
    last_event: Option<Uuid>,
}

impl ListRow {
    fn of(
        keyring: &Keyring,
        case: &Case,
        key: Option<&DataKey>,
        last_event: Option<Uuid>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let view = case.view(&policy.catalogue, &policy.calendar, local_date(now));
        let mut stored = serde_json::to_value(&view)?;
        if let Some(key) = key {
            VIEW_PERSONAL.seal(&mut stored, key);
        }
        let held = case.held_lines();
        Ok(Self {
            case_id: case.case_id,
            case_number: case.case_number.clone(),
            township: view.township().to_string(),
            status: view.status.as_str(),
            submitted_at: case.submitted_at.unwrap_or(now),
            next_deadline: view.next_deadline(),
            version: case.version,
            view: stored,
            applicant: case
                .application
                .as_ref()
                .filter(|a| a.applicant.id_number != onedoor_personal_data::ERASED)
                .map(|a| keyring.lookup(&a.applicant.id_number)),
            household_id: case.household_id,
            owner: case.owner.clone(),
            held: held.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(","),
            releases: held.len() < Department::ALL.into_iter().filter(|d| case.line(*d).is_some()).count(),
            last_event,
        })
    }
}

/// The list rows' upsert, after `$released` (empty, or a data-modifying
/// CTE releasing open lines).
macro_rules! upsert_list_rows {
    ($released:literal) => {
        concat!(
            "WITH rows AS (
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::date[],
                                      $7::bigint[], $8::jsonb[], $9::text[], $10::uuid[], $11::text[], $12::text[],
                                      $13::uuid[])
                     AS r(case_id, case_number, township, status, submitted_at, next_deadline, version, view,
                          applicant_id_number, household_id, owner, held, last_event_id)
             )",
            $released,
            " INSERT INTO case_views (case_id, case_number, township, status, submitted_at, next_deadline, version, view,
                                     applicant_id_number, household_id, owner, last_event_id)
             SELECT case_id, case_number, township, status, submitted_at, next_deadline, version, view,
                    applicant_id_number, household_id, owner, last_event_id
               FROM rows
             ON CONFLICT (case_id) DO UPDATE
                SET status = EXCLUDED.status, next_deadline = EXCLUDED.next_deadline, version = EXCLUDED.version,
                    view = EXCLUDED.view, applicant_id_number = EXCLUDED.applicant_id_number,
                    household_id = EXCLUDED.household_id, owner = EXCLUDED.owner, last_event_id = EXCLUDED.last_event_id"
        )
    };
}

/// Writes list rows and releases their cases' open lines that are done, in
/// one statement whatever their number: one round trip per change of a
/// case (or per shared transaction), and per chunk of a rebuild. Rows with
/// nothing to release (nearly every change) leave the open lines alone: the
/// release is a join with the whole table, which a plan made while the table
/// was small reads from end to end.
async fn write_list_rows(conn: &mut PgConnection, rows: &[ListRow]) -> Result<(), StoreError> {
    let column = |f: fn(&ListRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let sql = if rows.iter().any(|r| r.releases) {
        upsert_list_rows!(
            ", released AS (
                 DELETE FROM open_lines o USING rows r
                  WHERE o.case_id = r.case_id AND NOT (o.department = ANY(string_to_array(r.held, ',')))
             )"
        )
    } else {
        upsert_list_rows!("")
    };
    sqlx::query(sql)
        .bind(rows.iter().map(|r| r.case_id).collect::<Vec<_>>())
        .bind(column(|r| r.case_number.clone()))
        .bind(column(|r| r.township.clone()))
        .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.submitted_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.next_deadline).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.view).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.applicant.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.household_id).collect::<Vec<_>>())
        .bind(column(|r| r.owner.clone()))
        .bind(column(|r| r.held.clone()))
        .bind(rows.iter().map(|r| r.last_event).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
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

/// A case that holds a line for a member of the household.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenLine {
    pub case_id: Uuid,
    pub case_number: String,
    pub township: String,
}

/// The lookup keys of people: the keyed hash of their ID numbers
/// (`Keyring::lookup`, ADR 0015), which the open lines, the register and the
/// case list hold instead of the numbers. In the order given.
pub fn person_keys(keyring: &Keyring, id_numbers: &[&str]) -> Vec<String> {
    id_numbers.iter().map(|id| keyring.lookup(id)).collect()
}

/// Of `departments`, the first (in the order given) that another case holds
/// for any of these people, with that case; one statement for them all.
pub async fn open_cases_of(
    conn: &mut PgConnection,
    people: &[String],
    departments: &[Department],
    except: Option<Uuid>,
) -> Result<Option<(Department, OpenLine)>, StoreError> {
    let names: Vec<&str> = departments.iter().map(|d| d.as_str()).collect();
    let held: Vec<(String, Uuid, String, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (department) department, case_id, case_number, township FROM open_lines
          WHERE id_number = ANY($1) AND department = ANY($2) AND case_id IS DISTINCT FROM $3
          ORDER BY department, case_number",
    )
    .bind(people)
    .bind(&names)
    .bind(except)
    .fetch_all(conn)
    .await?;
    Ok(departments.iter().find_map(|d| {
        held.iter().find(|(name, ..)| name == d.as_str()).map(|(_, case_id, case_number, township)| {
            (*d, OpenLine { case_id: *case_id, case_number: case_number.clone(), township: township.clone() })
        })
    }))
}

/// Holds `departments` in this case for every member of the household, in
/// one statement and in one order (the departments', then the people's), so
/// two claims for one household cannot wait on each other's lines. Returns
/// the first line another case holds for one of them (a concurrent
/// submission won the race), with that case; `None` if all are this case's.
pub async fn claim_open_lines(
    conn: &mut PgConnection,
    keyring: &Keyring,
    case: &Case,
    departments: &[Department],
) -> Result<Option<(Department, OpenLine)>, StoreError> {
    let Some(application) = case.application.as_ref().filter(|_| !departments.is_empty()) else { return Ok(None) };
    let people = person_keys(keyring, &application.person_ids());
    let mut departments = departments.to_vec();
    departments.sort();
    let names: Vec<&str> = departments.iter().map(|d| d.as_str()).collect();
    sqlx::query(
        "INSERT INTO open_lines (id_number, department, case_id, case_number, township)
         SELECT p.id, l.department, $3, $4, $5
           FROM unnest($2::text[]) WITH ORDINALITY AS l(department, n),
                unnest($1::text[]) WITH ORDINALITY AS p(id, m)
          ORDER BY l.n, p.m
         ON CONFLICT DO NOTHING",
    )
    .bind(&people)
    .bind(&names)
    .bind(case.case_id)
    .bind(&case.case_number)
    .bind(application.township())
    .execute(&mut *conn)
    .await?;
    open_cases_of(conn, &people, &departments, Some(case.case_id)).await
}

/// What an `Idempotency-Key` found.
#[derive(Debug)]
pub enum KeyClaim {
    /// First use: the caller goes on and saves its answer with [`save_answer`].
    Fresh,
    /// Used before, with this request and (once committed) this answer.
    Used { request: serde_json::Value, answer: Option<serde_json::Value> },
}

/// Claims a township's idempotency key for `request`, in the caller's transaction.
/// Removes the idempotency keys past their week.
pub const EXPIRE_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE created_at < now() - interval '7 days'";

pub async fn claim_idempotency_key(
    conn: &mut PgConnection,
    township: &str,
    key: &str,
    // What stands for the request: its keyed hash (never the application).
    request: &serde_json::Value,
) -> Result<KeyClaim, StoreError> {
    // A key older than its week is claimed afresh, as if it had been removed.
    let fresh = sqlx::query(
        "INSERT INTO idempotency_keys (township, key, request) VALUES ($1, $2, $3)
         ON CONFLICT (township, key) DO UPDATE SET request = $3, response = NULL, created_at = now()
          WHERE idempotency_keys.created_at < now() - interval '7 days'",
    )
    .bind(township)
    .bind(key)
    .bind(request)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if fresh {
        return Ok(KeyClaim::Fresh);
    }
    let row = sqlx::query("SELECT request, response FROM idempotency_keys WHERE township = $1 AND key = $2")
        .bind(township)
        .bind(key)
        .fetch_one(conn)
        .await?;
    Ok(KeyClaim::Used { request: row.try_get("request")?, answer: row.try_get("response")? })
}

/// Saves the answer given under a claimed idempotency key.
pub async fn save_answer(
    conn: &mut PgConnection,
    township: &str,
    key: &str,
    answer: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE idempotency_keys SET response = $3 WHERE township = $1 AND key = $2")
        .bind(township)
        .bind(key)
        .bind(answer)
        .execute(conn)
        .await?;
    Ok(())
}

/// One page of a township's case list, newest first.
pub struct CaseListQuery<'a> {
    pub township: &'a str,
    pub status: Option<&'a str>,
    pub overdue: Option<bool>,
    pub today: NaiveDate,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
    pub case_number: Option<&'a str>,
    /// The applicant's lookup key ([`person_keys`]).
    pub applicant_id_number: Option<String>,
    /// Only the cases this clerk owns.
    pub owner: Option<&'a str>,
}

/// The views of a page of the list, each with its position (for the cursor).
pub async fn list_cases(
    pool: &PgPool,
    keyring: &Keyring,
    q: &CaseListQuery<'_>,
) -> Result<Vec<(DateTime<Utc>, Uuid, CaseView)>, StoreError> {
    let mut conn = pool.acquire().await?;
    // Only the filters given, so that each combination has a plan of its
    // own that can use its index (`status = $1 OR $1 IS NULL` cannot).
    let mut query = sqlx::QueryBuilder::new("SELECT view, submitted_at, case_id, household_id FROM case_views");
    query.push(" WHERE township = ").push_bind(q.township);
    if let Some(status) = q.status {
        query.push(" AND status = ").push_bind(status);
    }
    if let Some(overdue) = q.overdue {
        query.push(" AND (next_deadline IS NOT NULL AND next_deadline < ").push_bind(q.today);
        query.push(") = ").push_bind(overdue);
    }
    if let Some((submitted_at, case_id)) = q.after {
        query.push(" AND (submitted_at, case_id) < (").push_bind(submitted_at);
        query.push(", ").push_bind(case_id).push(")");
    }
    if let Some(case_number) = q.case_number {
        query.push(" AND case_number = ").push_bind(case_number);
    }
    if let Some(applicant) = q.applicant_id_number.as_deref() {
        query.push(" AND applicant_id_number = ").push_bind(applicant);
    }
    if let Some(owner) = q.owner {
        query.push(" AND owner = ").push_bind(owner);
    }
    query.push(" ORDER BY submitted_at DESC, case_id DESC LIMIT ").push_bind(q.limit);
    let rows = query.build().fetch_all(&mut *conn).await?;
    let owners: Vec<Uuid> = rows
        .iter()
        .map(|row| Ok(case_key_owner(row.try_get("household_id")?, row.try_get("case_id")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let keys = keyring.for_opening_many(&mut conn, &owners).await?;
    let mut found = Vec::with_capacity(rows.len());
    for (row, owner) in rows.into_iter().zip(owners) {
        let view = opened_view(row.try_get("view")?, keys.get(&owner).map(|k| k.as_ref()))?;
        found.push((row.try_get("submitted_at")?, row.try_get("case_id")?, view));
    }
    Ok(found)
}

// The household register -------------------------------------------------

/// Makes writers to these people's households and lines take turns: taken
/// first in a submission, in one order, so two never wait on each other.
pub async fn lock_people(conn: &mut PgConnection, people: &[String]) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('person:' || k, 0)) FROM unnest($1::text[]) AS k ORDER BY k",
    )
    .bind(people)
    .execute(conn)
    .await?;
    Ok(())
}

/// The registered household a declaration belongs to: the applicant's
/// (`people[0]`), or else that of any declared member; `None` for a household
/// the register does not know yet.
pub async fn household_of(conn: &mut PgConnection, people: &[String]) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT household_id FROM household_members WHERE id_number = ANY($1) AND left_on IS NULL
          ORDER BY (id_number = $1[1]) DESC, household_id LIMIT 1",
    )
    .bind(people)
    .fetch_optional(conn)
    .await?)
}

pub async fn load_household(
    conn: &mut PgConnection,
    keyring: &Keyring,
    household_id: Uuid,
) -> Result<Household, StoreError> {
    let recorded = onedoor_event_store::load(conn, &household_id.to_string(), &stored::upcasters()).await?;
    let key = if recorded.is_empty() { None } else { keyring.for_opening(conn, household_id).await? };
    let events: Vec<HouseholdEvent> =
        recorded.iter().map(|e| stored::household::decode(e, key.as_deref())).collect::<Result<_, _>>()?;
    Ok(Household::from_events(household_id, &events))
}

/// Records in the register what a declaration at the window changes: the
/// declared members leave any other household first, then the household
/// records who joined and left and its support.
pub async fn register_declaration(
    conn: &mut PgConnection,
    keyring: &Keyring,
    household_id: Uuid,
    d: &Declaration<'_>,
) -> Result<(), StoreError> {
    let ids: Vec<&str> = d.application.members.iter().map(|m| m.id_number.as_str()).collect();
    let members = person_keys(keyring, &ids);
    let elsewhere: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT id_number, household_id FROM household_members
          WHERE id_number = ANY($1) AND left_on IS NULL AND household_id <> $2
          ORDER BY household_id, id_number",
    )
    .bind(&members)
    .bind(household_id)
    .fetch_all(&mut *conn)
    .await?;
    for (person, other) in elsewhere {
        let Some(id_number) = members.iter().position(|m| *m == person).map(|i| ids[i]) else { continue };
        // Loaded afresh each time: two members may leave the same household.
        let before = load_household(conn, keyring, other).await?;
        let left = before.leave(id_number, d);
        save_household(conn, keyring, &before, &left, d.staff_id).await?;
    }
    let before = load_household(conn, keyring, household_id).await?;
    let changes = before.declare(d);
    save_household(conn, keyring, &before, &changes, d.staff_id).await
}

pub async fn save_household(
    conn: &mut PgConnection,
    keyring: &Keyring,
    before: &Household,
    new: &[HouseholdEvent],
    actor: &str,
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let expected = if before.version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(before.version) };
    let key = keyring.for_sealing(conn, before.household_id).await?;
    let encoded: Vec<NewEvent> = new.iter().map(|e| stored::household::encode(e, &key)).collect::<Result<_, _>>()?;
    let trace = TraceHeaders::current();
    let metadata = EventMetadata {
        correlation_id: Some(before.household_id),
        causation_id: None,
        actor: actor.to_string(),
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
    };
    onedoor_event_store::append_and_announce(
        conn,
        HOUSEHOLD_STREAM,
        &before.household_id.to_string(),
        expected,
        &encoded,
        &metadata,
        &[],
    )
    .await?;
    let mut after = before.clone();
    for e in new {
        after.apply(e);
    }
    write_household(conn, keyring, &after).await
}

/// The household's read models, written whole.
async fn write_household(conn: &mut PgConnection, keyring: &Keyring, household: &Household) -> Result<(), StoreError> {
    // The household row written and its members cleared in one statement,
    // its members written in another, whatever their number.
    sqlx::query(
        "WITH cleared AS (DELETE FROM household_members WHERE household_id = $1)
         INSERT INTO households (household_id, township, division_code, support, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (household_id) DO UPDATE SET township = $2, division_code = $3, support = $4, version = $5",
    )
    .bind(household.household_id)
    .bind(&household.township)
    .bind(&household.division_code)
    .bind(serde_json::to_value(&household.support)?)
    .bind(household.version)
    .execute(&mut *conn)
    .await?;
    // An erased household's members are no one: they hold no place in the
    // register (its index would see them all as one person).
    let known: Vec<_> = household.members.iter().filter(|m| m.id_number != onedoor_personal_data::ERASED).collect();
    if known.is_empty() {
        return Ok(());
    }
    let people: Vec<String> = known.iter().map(|m| keyring.lookup(&m.id_number)).collect();
    let relations: Vec<&str> = known.iter().map(|m| m.relation.as_str()).collect();
    let joined: Vec<_> = known.iter().map(|m| m.joined_on).collect();
    let left: Vec<_> = known.iter().map(|m| m.left_on).collect();
    sqlx::query(
        "INSERT INTO household_members (household_id, id_number, relation, joined_on, left_on, position)
         SELECT $1, m.id_number, m.relation, m.joined_on, m.left_on, (m.n - 1)::int
           FROM unnest($2::text[], $3::text[], $4::date[], $5::date[]) WITH ORDINALITY
                AS m(id_number, relation, joined_on, left_on, n)",
    )
    .bind(household.household_id)
    .bind(people)
    .bind(relations)
    .bind(joined)
    .bind(left)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The household a person (by [`person_keys`]) lives in now (or last lived in).
pub async fn household_of_person(conn: &mut PgConnection, person: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT household_id FROM household_members WHERE id_number = $1
          ORDER BY left_on IS NULL DESC, joined_on DESC LIMIT 1",
    )
    .bind(person)
    .fetch_optional(conn)
    .await?)
}

/// A case of the household, as the register lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HouseholdCase {
    pub case_id: Uuid,
    pub case_number: String,
    pub status: String,
    pub submitted_at: DateTime<Utc>,
}

pub async fn cases_of_household(conn: &mut PgConnection, household_id: Uuid) -> Result<Vec<HouseholdCase>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT case_id, case_number, status, submitted_at FROM case_views WHERE household_id = $1
          ORDER BY submitted_at DESC",
    )
    .bind(household_id)
    .fetch_all(conn)
    .await?)
}

/// The lookup columns, each with the column its partial index of rows still
/// holding an ID number is ordered by (see the migration
/// `plain_lookup_index`): re-keyed in batches by [`rekey_lookups`].
const LOOKUP_COLUMNS: [(&str, &str, &str); 3] = [
    ("case_views", "applicant_id_number", "case_id"),
    ("open_lines", "id_number", "department"),
    ("household_members", "id_number", "household_id"),
];

/// Replaces the ID numbers left in the lookup columns by their lookup keys
/// ([`person_keys`]); run by the upgrade step (`Service::upgrade`). Returns how many rows
/// it re-keyed (none, once done). A lookup key is 64 hex digits, an ID number 18
/// characters.
pub async fn rekey_lookups(pool: &PgPool, keyring: &Keyring) -> Result<u64, StoreError> {
    let mut total = 0;
    for (table, column, indexed) in LOOKUP_COLUMNS {
        loop {
            // Ordered by the partial index's column: an empty index read, not
            // a scan of the table, once every row is re-keyed.
            let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT ctid::text, {column} FROM {table} WHERE length({column}) <> 64 ORDER BY {indexed} LIMIT 5000"
            )))
            .fetch_all(pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            let (places, keys): (Vec<String>, Vec<String>) =
                rows.into_iter().map(|(place, id)| (place, keyring.lookup(&id))).unzip();
            let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET {column} = m.key FROM unnest($1::text[], $2::text[]) AS m(place, key)
                  WHERE {table}.ctid = m.place::tid"
            )))
            .bind(&places)
            .bind(&keys)
            .execute(pool)
            .await?;
            total += updated.rows_affected();
        }
    }
    Ok(total)
}

// What an earlier release stored in the clear --------------------------------

/// The case streams (sealed with their household's key, or a case's from
/// before the register with its own) and the household streams (with the
/// household's), for the sealing pass.
const PLAIN_EVENTS: [PlainEvents; 2] = [
    PlainEvents {
        stream_type: STREAM_TYPE,
        personal_fields: CaseEventV1::personal_fields,
        key_owner: |stream_id, first| {
            Some(case_key_owner(stored::household_named_by(first), Uuid::parse_str(stream_id).ok()?))
        },
    },
    PlainEvents {
        stream_type: HOUSEHOLD_STREAM,
        personal_fields: HouseholdEventV1::personal_fields,
        key_owner: |stream_id, _| Uuid::parse_str(stream_id).ok(),
    },
];

/// Seals the personal fields an earlier release stored in the clear: in the
/// case and household streams since the last pass
/// (`onedoor_event_store::sealing`), and, once, in the case views. Run by
/// the upgrade step (`Service::upgrade`).
pub async fn seal_plain(pool: &PgPool, keyring: &Keyring) -> Result<(Sealed, u64), StoreError> {
    let mut events = Sealed::default();
    for plain in &PLAIN_EVENTS {
        events += onedoor_event_store::sealing::seal_plain_events(pool, keyring, plain).await?;
    }
    Ok((events, seal_plain_views(pool, keyring).await?))
}

/// The case views' entry in `sealing_passes`: present once every view was checked.
const VIEWS_PASS: &str = "case_views";

/// Seals the personal fields of the case views an earlier release wrote in
/// the clear ([`VIEW_PERSONAL`]; an erased household's read as erased).
/// Once: a view written since is sealed by the writer. Each batch locks its
/// rows, so a change to a case meanwhile is not overwritten. Returns how
/// many views it sealed.
async fn seal_plain_views(pool: &PgPool, keyring: &Keyring) -> Result<u64, StoreError> {
    let done: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sealing_passes WHERE stream_type = $1)")
        .bind(VIEWS_PASS)
        .fetch_one(pool)
        .await?;
    if done {
        return Ok(0);
    }
    let (mut after, mut total) = (Uuid::nil(), 0);
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<(Uuid, Option<Uuid>, serde_json::Value)> = sqlx::query_as(
            "SELECT case_id, household_id, view FROM case_views WHERE case_id > $1 ORDER BY case_id LIMIT 500
                FOR UPDATE",
        )
        .bind(after)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            sqlx::query(
                "INSERT INTO sealing_passes (stream_type, checked_through) VALUES ($1, 0) ON CONFLICT DO NOTHING",
            )
            .bind(VIEWS_PASS)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(total);
        };
        let (mut ids, mut views) = (Vec::new(), Vec::new());
        for (case_id, household_id, mut view) in rows {
            if !VIEW_PERSONAL.any_plain(&mut view) {
                continue;
            }
            keyring.seal_plain(&mut tx, case_key_owner(household_id, case_id), VIEW_PERSONAL, &mut view).await?;
            ids.push(case_id);
            views.push(view);
        }
        sqlx::query(
            "UPDATE case_views SET view = m.view FROM unnest($1::uuid[], $2::jsonb[]) AS m(case_id, view)
              WHERE case_views.case_id = m.case_id",
        )
        .bind(&ids)
        .bind(&views)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        total += ids.len() as u64;
        after = last;
    }
}

// Erasure -----------------------------------------------------------------

/// The household's cases, folded, locking their list rows (so no command
/// changes one while it is erased).
pub async fn cases_of_household_locked(
    conn: &mut PgConnection,
    keyring: &Keyring,
    household_id: Uuid,
) -> Result<Vec<Case>, StoreError> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT case_id FROM case_views WHERE household_id = $1 ORDER BY case_id FOR UPDATE")
            .bind(household_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut cases = Vec::with_capacity(ids.len());
    for id in ids {
        cases.extend(load_case(conn, keyring, id, None).await?);
    }
    Ok(cases)
}

/// After the household's key was destroyed (in the same transaction):
/// records the erasure in each case's history, which announces it to the
/// departments, and writes its read models from the log, where the personal
/// fields now read as erased (a case erased before, asked again, is only
/// written); takes its members out of the register and forgets the
/// idempotency keys of its applications. Returns the scans of its cases that
/// no other household's case holds, for the caller to delete from the
/// document store.
pub async fn forget_household(
    conn: &mut PgConnection,
    keyring: &Keyring,
    policy: &Policy,
    household_id: Uuid,
    cases: &[Uuid],
    erased_by: &str,
) -> Result<Vec<String>, StoreError> {
    let now = Utc::now();
    for &case_id in cases {
        let Some(case) = load_case(conn, keyring, case_id, None).await? else { continue };
        if case.erased_at.is_some() {
            write_read_models(conn, keyring, &case, None, policy, now).await?;
        } else {
            let erased = CaseEvent::PersonalDataErased { erased_at: now, erased_by: erased_by.to_string() };
            save(conn, keyring, &case, &[erased], Cause::staff(erased_by), policy, now).await?;
        }
    }
    sqlx::query("DELETE FROM household_members WHERE household_id = $1").bind(household_id).execute(&mut *conn).await?;
    let case_texts: Vec<String> = cases.iter().map(Uuid::to_string).collect();
    // Intake's messages about the cases, off the broker (ADR 0019).
    onedoor_event_store::outbox::request_broker_erasure(conn, &case_texts).await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE response ->> 'case_id' = ANY($1)")
        .bind(&case_texts)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT e.payload ->> 'sha256' FROM events e
          WHERE e.stream_id = ANY($1) AND e.event_type = 'DocumentAttached'
            AND NOT EXISTS (
                SELECT 1 FROM events o JOIN case_views v ON v.case_id::text = o.stream_id
                 WHERE o.event_type = 'DocumentAttached' AND o.payload ->> 'sha256' = e.payload ->> 'sha256'
                   AND v.household_id IS DISTINCT FROM $2)",
    )
    .bind(&case_texts)
    .bind(household_id)
    .fetch_all(&mut *conn)
    .await?)
}
