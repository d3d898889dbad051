//! The department's persistence: lane streams in the event store, the
//! integration events each change announces, the inbox read model and the
//! approvals ledger, all in the caller's transaction.

use crate::domain::lane::{Lane, LaneEvent, LaneStatus};
use crate::domain::policy::{HOUSEHOLD_LEDGER, LedgerFacts, LedgerKey, Policy};
use crate::domain::view::{ReferralSummary, ReferralView};
use crate::{integration, stored};
use chrono::{DateTime, NaiveDate, Utc};
use onedoor_event_store::folded::Folded;
use onedoor_event_store::sealing::{PlainEvents, Sealed};
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, StoreError};
use onedoor_personal_data::Keyring;
use onedoor_stored_events::lane::LaneEventV2;
use onedoor_telemetry::propagation::TraceHeaders;
use onedoor_working_calendar::{WorkingCalendar, local_date};
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection, PgPool, Row};
use uuid::Uuid;

pub const STREAM_TYPE: &str = "lane";

/// The lanes' own migrations (beside the event store's).
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

/// Lanes folded before, kept in the process: a caseworker's command serves
/// the lane as kept when its inbox row, locked first, says nothing was
/// appended since ([`onedoor_event_store::folded`]).
static LANES: Folded<Lane> = Folded::new(4096);

/// Where a lane's stream stood, as its inbox row says (the row is written
/// with every append): see [`lock_lane`].
#[derive(Debug, Clone, Copy)]
pub struct LaneRow {
    pub version: i64,
    /// `None` where the row was written by a release before this column, or
    /// after the case's personal data was erased.
    pub last_event: Option<Uuid>,
}

/// Folds the lane from its stream; `None` if there is no such lane. A lane
/// kept here at the very version and event its inbox row (`listed`, read in
/// this transaction) names is served as kept, if its case's key still lives.
pub async fn load_lane(
    conn: &mut PgConnection,
    keyring: &Keyring,
    referral_id: Uuid,
    listed: Option<LaneRow>,
) -> Result<Option<Lane>, StoreError> {
    let kept = listed.and_then(|row| LANES.at(referral_id, row.version, row.last_event?));
    let lane = match kept {
        Some(lane) if keyring.for_opening(conn, lane.referral.case_id).await?.is_some() => Some(lane),
        _ => load_stream(conn, keyring, referral_id).await?,
    };
    if let Some(lane) = &lane {
        // The referral arrived in the application's trace: later work on it links there.
        if let Some(traceparent) = &lane.traceparent {
            onedoor_telemetry::propagation::link_current_span(traceparent);
        }
        // The audit trail of a request that loads it names its case and household.
        onedoor_http_kit::access::note(|a| {
            a.case_id = Some(lane.referral.case_id);
            a.household_id = lane.referral.household_id;
        });
    }
    Ok(lane)
}

/// The lane folded from all its events, kept if its case's key lives.
async fn load_stream(
    conn: &mut PgConnection,
    keyring: &Keyring,
    referral_id: Uuid,
) -> Result<Option<Lane>, StoreError> {
    let recorded = onedoor_event_store::load(conn, &referral_id.to_string(), &stored::upcasters()).await?;
    let key = match recorded.first().and_then(|first| LaneEventV2::key_owner(&first.payload)) {
        Some(case_id) => keyring.for_opening(conn, case_id).await?,
        None => None,
    };
    let events: Vec<LaneEvent> =
        recorded.iter().map(|e| stored::decode(e, key.as_deref())).collect::<Result<_, _>>()?;
    let Some(mut lane) = Lane::from_events(&events) else { return Ok(None) };
    lane.traceparent = recorded.first().and_then(|r| r.metadata.traceparent.clone());
    if let (Some(_), Some(last)) = (&key, recorded.last()) {
        LANES.keep(referral_id, &lane, lane.version, last.event_id);
    }
    Ok(Some(lane))
}

/// Makes the window's events about one referral take turns, whether or not
/// its lane exists yet (a referral and a withdrawal of it, handled at once).
pub async fn serialise_referral(conn: &mut PgConnection, referral_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))").bind(referral_id).execute(conn).await?;
    Ok(())
}

/// A window event that named a referral not received yet.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EarlyWindowEvent {
    Withdrawn { reason: String, at: DateTime<Utc> },
    Supplemented { materials: Vec<String>, at: DateTime<Utc> },
}

/// Keeps `event` until its referral arrives (see the migration's comment).
pub async fn record_early(
    conn: &mut PgConnection,
    referral_id: Uuid,
    event_id: Uuid,
    event: &EarlyWindowEvent,
) -> Result<(), StoreError> {
    let kind = match event {
        EarlyWindowEvent::Withdrawn { .. } => "withdrawn",
        EarlyWindowEvent::Supplemented { .. } => "supplemented",
    };
    sqlx::query(
        "WITH purged AS (DELETE FROM early_window_events WHERE received_at < now() - interval '90 days')
         INSERT INTO early_window_events (referral_id, event_id, kind, payload) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(referral_id)
    .bind(event_id)
    .bind(kind)
    .bind(serde_json::to_value(event)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// The window's events that arrived before this referral, oldest first, taken.
pub async fn take_early(conn: &mut PgConnection, referral_id: Uuid) -> Result<Vec<EarlyWindowEvent>, StoreError> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "WITH taken AS (DELETE FROM early_window_events WHERE referral_id = $1 RETURNING payload, received_at)
         SELECT payload FROM taken ORDER BY received_at",
    )
    .bind(referral_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(v,)| serde_json::from_value(v)).collect::<Result<_, _>>()?)
}

/// Locks the lane's inbox row so commands and window events take turns, and
/// says where its stream stands; `None` if there is no such lane.
pub async fn lock_lane(conn: &mut PgConnection, referral_id: Uuid) -> Result<Option<LaneRow>, StoreError> {
    lane_row(conn, referral_id, "SELECT version, last_event_id FROM referral_views WHERE referral_id = $1 FOR UPDATE")
        .await
}

/// The lane as a read sees it (a caseworker opening it, say): served as
/// kept where its inbox row names the very event this process folded last,
/// so a read need not fold the stream; `None` if there is no such lane.
pub async fn read_lane(
    conn: &mut PgConnection,
    keyring: &Keyring,
    referral_id: Uuid,
) -> Result<Option<Lane>, StoreError> {
    let listed =
        lane_row(conn, referral_id, "SELECT version, last_event_id FROM referral_views WHERE referral_id = $1").await?;
    load_lane(conn, keyring, referral_id, listed).await
}

async fn lane_row(
    conn: &mut PgConnection,
    referral_id: Uuid,
    sql: &'static str,
) -> Result<Option<LaneRow>, StoreError> {
    let found: Option<(i64, Option<Uuid>)> = sqlx::query_as(sql).bind(referral_id).fetch_optional(conn).await?;
    Ok(found.map(|(version, last_event)| LaneRow { version, last_event }))
}

/// Where the referral's approvals are booked, as the ledger stores it: a
/// person by the keyed hash of their ID number (`Keyring::lookup`), never
/// the number (PIPL art. 51; the ledger is a lookup by ID number like
/// intake's), a household by its id in intake's register.
fn stored_ledger_key(keyring: &Keyring, policy: &dyn Policy, lane: &Lane) -> LedgerKey {
    let stored = |k: String| if k.starts_with(HOUSEHOLD_LEDGER) { k } else { keyring.lookup(&k) };
    let LedgerKey { key, category, counted } = policy.ledger_key(&lane.referral);
    LedgerKey { key: stored(key), category, counted: counted.into_iter().map(stored).collect() }
}

/// Makes decisions booked in one ledger (one person's or household's) take
/// turns, so two approvals at once cannot both fit under one cap.
pub async fn lock_ledger(
    conn: &mut PgConnection,
    keyring: &Keyring,
    policy: &dyn Policy,
    lane: &Lane,
) -> Result<(), StoreError> {
    let key = stored_ledger_key(keyring, policy, lane);
    // Every person whose approvals count, in one order: no two decisions wait on each other.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(k, 1)) FROM unnest($1::text[]) AS k ORDER BY k")
        .bind(&key.counted)
        .execute(conn)
        .await?;
    Ok(())
}

/// The ledger's facts of a key (`$2`, `$3`: [`LedgerKey`]'s counted keys
/// and category) since `$4`, leaving out the referral `$1`'s own approval.
macro_rules! ledger_facts_sql {
    () => {
        "SELECT COALESCE(SUM(amount_fen), 0)::bigint AS total, COUNT(*) FILTER (WHERE category = $3) AS same
           FROM ledger WHERE ledger_key = ANY($2) AND booked_at >= $4 AND referral_id <> $1"
    };
}

/// Earlier approvals in the ledger of this referral's key, within the
/// policy's period (`Policy::counted_since`).
pub async fn ledger_facts(
    conn: &mut PgConnection,
    keyring: &Keyring,
    policy: &dyn Policy,
    lane: &Lane,
    now: DateTime<Utc>,
) -> Result<LedgerFacts, StoreError> {
    let key = stored_ledger_key(keyring, policy, lane);
    let (total, same): (i64, i64) = sqlx::query_as(ledger_facts_sql!())
        .bind(lane.referral.referral_id)
        .bind(&key.counted)
        .bind(&key.category)
        .bind(policy.counted_since(&lane.referral, now))
        .fetch_one(conn)
        .await?;
    Ok(LedgerFacts { approved_this_year_fen: total, approvals_this_year_same_category: same })
}

/// [`lock_lane`], and in the same statement the ledger's facts for a
/// command that approves nothing (they feed only the recommendation shown
/// with its answer, so they may be read beside a decision being booked
/// elsewhere). They are read with the key of the lane this process kept,
/// and given only if the row names that very lane, the one [`load_lane`]
/// then serves; otherwise `None`, and the caller reads them after loading.
/// A command that may approve locks the ledger first and reads it after
/// ([`lock_ledger`]).
pub async fn lock_lane_reading_ledger(
    conn: &mut PgConnection,
    keyring: &Keyring,
    policy: &dyn Policy,
    referral_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(LaneRow, Option<LedgerFacts>)>, StoreError> {
    let Some(kept) = LANES.get(referral_id) else {
        return Ok(lock_lane(conn, referral_id).await?.map(|row| (row, None)));
    };
    let key = stored_ledger_key(keyring, policy, &kept.state);
    let found: Option<(i64, Option<Uuid>, i64, i64)> = sqlx::query_as(concat!(
        "SELECT v.version, v.last_event_id, l.total, l.same
           FROM (SELECT version, last_event_id FROM referral_views WHERE referral_id = $1 FOR UPDATE) AS v,
                LATERAL (",
        ledger_facts_sql!(),
        ") AS l"
    ))
    .bind(referral_id)
    .bind(&key.counted)
    .bind(&key.category)
    .bind(policy.counted_since(&kept.state.referral, now))
    .fetch_optional(conn)
    .await?;
    Ok(found.map(|(version, last_event, total, same)| {
        let row = LaneRow { version, last_event };
        let as_kept = version == kept.version && last_event == Some(kept.last_event);
        let facts = LedgerFacts { approved_this_year_fen: total, approvals_this_year_same_category: same };
        (row, as_kept.then_some(facts))
    }))
}

/// Seals the personal fields an earlier release stored in the clear in the
/// lane streams (with the case's key; `onedoor_event_store::sealing`). Run
/// by the upgrade step (`Service::upgrade`).
pub async fn seal_plain(pool: &PgPool, keyring: &Keyring) -> Result<Sealed, StoreError> {
    let lanes = PlainEvents {
        stream_type: STREAM_TYPE,
        personal_fields: LaneEventV2::personal_fields,
        key_owner: |_, first| LaneEventV2::key_owner(first),
    };
    onedoor_event_store::sealing::seal_plain_events(pool, keyring, &lanes).await
}

/// Replaces the ID numbers an earlier release booked the ledger under by
/// their lookup keys; run by the upgrade step (`Service::upgrade`). Returns how many
/// rows it re-keyed (none, once done: the partial index `ledger_plain_keys`
/// is then empty).
pub async fn rekey_ledger(pool: &PgPool, keyring: &Keyring) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT referral_id, ledger_key FROM ledger
              WHERE length(ledger_key) <> 64 AND ledger_key NOT LIKE 'household:%' ORDER BY referral_id LIMIT 5000",
        )
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let (ids, keys): (Vec<Uuid>, Vec<String>) =
            rows.into_iter().map(|(id, person)| (id, keyring.lookup(&person))).unzip();
        let updated = sqlx::query(
            "UPDATE ledger SET ledger_key = m.key FROM unnest($1::uuid[], $2::text[]) AS m(referral_id, key)
              WHERE ledger.referral_id = m.referral_id",
        )
        .bind(&ids)
        .bind(&keys)
        .execute(pool)
        .await?;
        total += updated.rows_affected();
    }
}

/// What saving a lane needs besides its events: the policy (its ledger),
/// the holiday calendar (its time limit) and the keys that seal its
/// personal fields.
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    pub policy: &'a dyn Policy,
    pub calendar: &'a WorkingCalendar,
    pub keyring: &'a Keyring,
}

/// Appends `new` to the lane (or opens it), announces it, books approvals in
/// the ledger and updates the inbox row. Returns the lane after.
pub async fn save(
    conn: &mut PgConnection,
    before: Option<&Lane>,
    new: &[LaneEvent],
    actor: &str,
    causation_id: Option<Uuid>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Lane, StoreError> {
    if let (Some(lane), true) = (before, new.is_empty()) {
        return Ok(lane.clone());
    }
    let expected = before.map_or(ExpectedVersion::NoStream, |l| ExpectedVersion::Exact(l.version));
    let mut all: Vec<LaneEvent> = Vec::new();
    let after = match before {
        Some(lane) => {
            let mut lane = lane.clone();
            for e in new {
                lane.apply(e);
            }
            lane
        }
        None => {
            let mut lane = Lane::from_events(new).expect("a new lane starts with ReferralReceived");
            lane.traceparent = TraceHeaders::current().traceparent;
            lane
        }
    };
    let mut announcements = Vec::new();
    let first_version = before.map_or(1, |l| l.version + 1);
    for (i, e) in new.iter().enumerate() {
        if let Some(mut m) = integration::announce(&after, first_version + i as i64, e, now)? {
            m.seal(rules.keyring.in_transit())?;
            announcements.push(m);
        }
        all.push(e.clone());
    }
    let key = rules.keyring.for_sealing(conn, after.referral.case_id).await?;
    let encoded: Vec<NewEvent> = all.iter().map(|e| stored::encode(e, &key)).collect::<Result<_, _>>()?;
    let trace = TraceHeaders::current();
    let referral_id = after.referral.referral_id;
    // The next command reads nothing more (unless this transaction rolls
    // back: then the row names another event, and the stream is read).
    let last_event = encoded.last().map(|e| e.event_id);
    let row = ViewRow::of(&after, last_event, rules.calendar, now);
    onedoor_event_store::append_announce_and_project(
        conn,
        STREAM_TYPE,
        &referral_id.to_string(),
        expected,
        &encoded,
        &EventMetadata {
            correlation_id: Some(after.referral.case_id),
            causation_id,
            actor: actor.to_string(),
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        },
        &announcements,
        Some(row.projection()),
    )
    .await?;
    for e in new {
        if let LaneEvent::Withdrawn { .. } = e {
            // A withdrawn approval counts only for what was already paid.
            let paid = after.disbursed_amount_fen.unwrap_or(0);
            sqlx::query(
                "WITH kept AS (UPDATE ledger SET amount_fen = $2 WHERE referral_id = $1 AND $2 > 0 RETURNING 1)
                 DELETE FROM ledger WHERE referral_id = $1 AND $2 = 0",
            )
            .bind(referral_id)
            .bind(paid)
            .execute(&mut *conn)
            .await?;
        }
        if let LaneEvent::Approved { amount_fen, at, .. } = e {
            let key = stored_ledger_key(rules.keyring, rules.policy, &after);
            sqlx::query(
                "INSERT INTO ledger (referral_id, ledger_key, category, year, amount_fen, booked_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (referral_id) DO UPDATE SET amount_fen = $5",
            )
            .bind(referral_id)
            .bind(&key.key)
            .bind(&key.category)
            .bind(crate::domain::policy::china_year(*at))
            .bind(amount_fen)
            .bind(*at)
            .execute(&mut *conn)
            .await?;
        }
    }
    if let Some(last) = last_event {
        LANES.keep(referral_id, &after, after.version, last);
    }
    Ok(after)
}

/// The lane's inbox row, written whole, with the id of the stream's last
/// event (`None`: the lane is not to be served from a kept fold).
struct ViewRow {
    referral_id: Uuid,
    case_id: Uuid,
    status: &'static str,
    received_at: DateTime<Utc>,
    version: i64,
    summary: ReferralSummary,
    township: String,
    deadline: NaiveDate,
    last_event: Option<Uuid>,
}

/// The row's upsert; its parameters follow the append's
/// ([`onedoor_event_store::Projection`]) or stand alone ([`ViewRow::write`]).
macro_rules! upsert_view {
    ($from:literal, $where:literal) => {
        concat!(
            "INSERT INTO referral_views (referral_id, case_id, status, received_at, version, view, township, deadline,
                                         last_event_id) ",
            $from,
            $where,
            " ON CONFLICT (referral_id) DO UPDATE SET status = EXCLUDED.status, version = EXCLUDED.version,
                  view = EXCLUDED.view, deadline = EXCLUDED.deadline, last_event_id = EXCLUDED.last_event_id"
        )
    };
}

impl ViewRow {
    fn of(after: &Lane, last_event: Option<Uuid>, calendar: &WorkingCalendar, now: DateTime<Utc>) -> Self {
        let view = ReferralView::of(after, None, calendar, local_date(now));
        Self {
            referral_id: after.referral.referral_id,
            case_id: after.referral.case_id,
            status: after.status.as_str(),
            received_at: after.received_at,
            version: after.version,
            summary: view.summary(),
            township: view.township,
            deadline: view.deadline,
            last_event,
        }
    }

    /// Written in the append's statement, if the append is.
    fn projection(self) -> onedoor_event_store::Projection<'static> {
        onedoor_event_store::Projection {
            sql: upsert_view!(
                "SELECT $14, $15, $16, $17, $18, $19, $20, $21, $22",
                " WHERE EXISTS (SELECT 1 FROM appended)"
            ),
            bind: Box::new(move |args| self.bind(args)),
        }
    }

    /// Written on its own (no event appended).
    async fn write(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        let mut args = PgArguments::default();
        self.bind(&mut args).map_err(sqlx::Error::Encode)?;
        sqlx::query_with(upsert_view!("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", ""), args).execute(conn).await?;
        Ok(())
    }

    fn bind(self, args: &mut PgArguments) -> Result<(), BoxDynError> {
        args.add(self.referral_id)?;
        args.add(self.case_id)?;
        args.add(self.status)?;
        args.add(self.received_at)?;
        args.add(self.version)?;
        args.add(sqlx::types::Json(self.summary))?;
        args.add(self.township)?;
        args.add(self.deadline)?;
        args.add(self.last_event)
    }
}

/// After the case's key was destroyed (the window erased the household's
/// personal data): rewrites the lane's inbox row from its log, where the
/// personal fields now read as erased, and takes its approval out of the
/// ledger (whose key names the person; the retention, years, is past any
/// annual cap). `false` if this department has no such lane.
pub async fn forget_lane(
    conn: &mut PgConnection,
    keyring: &Keyring,
    calendar: &WorkingCalendar,
    referral_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    LANES.forget(referral_id);
    let Some(lane) = load_lane(conn, keyring, referral_id, None).await? else {
        return Ok(false);
    };
    // No kept fold may serve the lane again, in this process or another.
    ViewRow::of(&lane, None, calendar, now).write(conn).await?;
    sqlx::query("DELETE FROM ledger WHERE referral_id = $1").bind(referral_id).execute(&mut *conn).await?;
    Ok(true)
}

/// The inbox, newest first: a page of referral summaries with their
/// positions (for the cursor), optionally of one status.
/// What the inbox is filtered by.
pub struct InboxFilter<'a> {
    pub status: Option<&'a str>,
    pub township: Option<&'a str>,
    /// Only lanes past (`true`) or within (`false`) their time limit, on `today`;
    /// a decided lane is never overdue.
    pub overdue: Option<bool>,
    pub today: NaiveDate,
}

/// The statuses whose time limit is counting. The limit is for the
/// decision: an approved lane is no longer counting, nor is one waiting for
/// a supplement.
pub fn counting_statuses() -> Vec<&'static str> {
    LaneStatus::ALL
        .into_iter()
        .filter(|s| !s.is_closed() && !matches!(s, LaneStatus::Approved | LaneStatus::SupplementRequested))
        .map(LaneStatus::as_str)
        .collect()
}

/// Counts the lanes past their time limit today (Beijing time), for `/metrics`.
pub fn overdue_lanes_sql(department: onedoor_contracts::Department) -> String {
    let counting: Vec<String> = counting_statuses().iter().map(|s| format!("'{s}'")).collect();
    format!(
        "SELECT '{department}'::text, count(*) FROM referral_views
          WHERE status IN ({}) AND deadline < (now() AT TIME ZONE 'Asia/Shanghai')::date",
        counting.join(", ")
    )
}

pub async fn list_referrals(
    pool: &PgPool,
    filter: &InboxFilter<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<(DateTime<Utc>, Uuid, ReferralSummary)>, StoreError> {
    let open = counting_statuses();
    // Only the filters given, so that each combination has a plan of its
    // own that can use its index (`status = $1 OR $1 IS NULL` cannot).
    let mut query = sqlx::QueryBuilder::new("SELECT view, received_at, referral_id FROM referral_views WHERE true");
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status);
    }
    if let Some((received_at, referral_id)) = after {
        query.push(" AND (received_at, referral_id) < (").push_bind(received_at);
        query.push(", ").push_bind(referral_id).push(")");
    }
    if let Some(township) = filter.township {
        query.push(" AND township = ").push_bind(township);
    }
    if let Some(overdue) = filter.overdue {
        query.push(" AND (status = ANY(").push_bind(&open).push(") AND deadline < ").push_bind(filter.today);
        query.push(") = ").push_bind(overdue);
    }
    query.push(" ORDER BY received_at DESC, referral_id DESC LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(pool).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let mut summary: ReferralSummary = serde_json::from_value(row.try_get("view")?)?;
        // Overdue is a matter of today, not of when the row was written.
        summary.overdue = open.contains(&summary.status.as_str())
            && summary.status != LaneStatus::SupplementRequested
            && filter.today > summary.deadline;
        found.push((row.try_get("received_at")?, row.try_get("referral_id")?, summary));
    }
    Ok(found)
}

/// A scan of a material a referral needs, as the window announced it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReferralDocument {
    pub document_id: Uuid,
    /// The catalogue code of the material.
    pub material: String,
    #[serde(skip)]
    pub sha256: String,
    /// `image/jpeg` | `image/png` | `application/pdf`
    pub content_type: String,
    pub size: i64,
    pub attached_at: DateTime<Utc>,
}

/// Records the window's announcement of a scan for these referrals (once,
/// however often it is delivered; before the referral itself, if so).
pub async fn record_document(
    conn: &mut PgConnection,
    referral_ids: &[Uuid],
    d: &onedoor_contracts::intake::DocumentAttached,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO referral_documents (referral_id, document_id, material, sha256, content_type, size, attached_at)
         SELECT r, $2, $3, $4, $5, $6, $7 FROM unnest($1::uuid[]) AS r
         ON CONFLICT DO NOTHING",
    )
    .bind(referral_ids)
    .bind(d.document_id)
    .bind(&d.material)
    .bind(&d.sha256)
    .bind(&d.content_type)
    .bind(i64::try_from(d.size).unwrap_or(i64::MAX))
    .bind(d.attached_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn documents_of(conn: &mut PgConnection, referral_id: Uuid) -> Result<Vec<ReferralDocument>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT document_id, material, sha256, content_type, size, attached_at FROM referral_documents
          WHERE referral_id = $1 ORDER BY attached_at, document_id",
    )
    .bind(referral_id)
    .fetch_all(conn)
    .await?)
}
