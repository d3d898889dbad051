//! The department's REST API for caseworkers and approvers (the same shape in
//! all four departments; `docs/API.md`): handlers only (parse, authorise,
//! call the domain and the store, answer). Everything is scoped to the
//! token's department: another department's token is refused (403).

use crate::domain::lane::{Actor, Command, Lane, LaneError, LaneStatus, Limits};
use crate::domain::policy::Policy;
use crate::domain::view::{ReferralSummary, ReferralView, UnmaskedIds};
use crate::store;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use onedoor_contracts::Department;
use onedoor_contracts::department::{DisbursementChannel, ProposalOutcome};
use onedoor_http_kit::etag::{check_if_match, etag};
use onedoor_http_kit::paging::ListParams;
use onedoor_http_kit::{ApiJson, ApiQuery, ApiResult, FieldError, Problem, Role, Staff};
use onedoor_working_calendar::WorkingCalendar;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub policy: Arc<dyn Policy>,
    pub calendar: Arc<WorkingCalendar>,
    pub keyring: Arc<onedoor_personal_data::Keyring>,
    pub documents: onedoor_documents::DocumentStore,
}

fn routes(department: Department) -> OpenApiRouter<AppState> {
    let service = department.line().service;
    let mut openapi = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(format!("OneDoor {service}"))
                .description(Some(format!("The {department} department's referral lanes: caseworkers and approvers.")))
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .build();
    openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    OpenApiRouter::with_openapi(openapi)
        .routes(routes!(list_referrals))
        .routes(routes!(get_referral))
        .routes(routes!(unmask))
        .routes(routes!(sign_for))
        .routes(routes!(request_supplement))
        .routes(routes!(propose))
        .routes(routes!(approve))
        .routes(routes!(disburse))
        .routes(routes!(return_referral))
        .routes(routes!(extend_deadline))
        .routes(routes!(list_documents))
        .routes(routes!(download_document))
}

/// The API's routes and their OpenAPI document.
pub fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes(state.policy.department()).split_for_parts();
    (router.with_state(state), api)
}

/// One department's OpenAPI document alone (for the checked-in documents).
pub fn openapi(department: Department) -> utoipa::openapi::OpenApi {
    routes(department).split_for_parts().1
}

/// The acting member of staff, if of this department.
fn department_staff<'a>(staff: &'a Staff, policy: &dyn Policy) -> ApiResult<Actor<'a>> {
    staff.require(&[Role::Caseworker, Role::Approver])?;
    if staff.department()? != policy.department() {
        return Err(Problem::forbidden(format!("this is the {} department's service", policy.department())));
    }
    Ok(match staff.role() {
        Role::Approver => Actor::Approver(staff.id()),
        _ => Actor::Caseworker(staff.id()),
    })
}

fn referral_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such referral"))
}

fn view_response(view: &ReferralView) -> Response {
    let mut response = axum::Json(view).into_response();
    response.headers_mut().insert(header::ETAG, etag(view.version));
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// One of the lane statuses.
    status: Option<String>,
    /// Only referrals from this township (9 digits).
    township: Option<String>,
    /// Only lanes past (`true`) or within (`false`) their time limit; a decided lane is never overdue.
    overdue: Option<bool>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralPage {
    pub items: Vec<ReferralSummary>,
    pub next_cursor: Option<String>,
}

/// The department's inbox, newest first.
#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals", params(InboxQuery),
    responses((status = 200, body = ReferralPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
#[tracing::instrument(name = "list referrals", skip_all)]
async fn list_referrals(
    staff: Staff,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<axum::Json<ReferralPage>> {
    department_staff(&staff, state.policy.as_ref())?;
    let statuses = LaneStatus::ALL.map(LaneStatus::as_str);
    let params = ListParams::parse(q.status, &statuses, q.limit, q.cursor.as_deref())?;
    if let Some(t) = &q.township
        && !(t.len() == 9 && t.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "the query is invalid")
            .with_errors(vec![FieldError::new("township", "invalid_value", "a township code has 9 digits")]));
    }
    let filter = store::InboxFilter {
        status: params.status.as_deref(),
        township: q.township.as_deref(),
        overdue: q.overdue,
        today: onedoor_contracts::china_time::today(),
    };
    let found = store::list_referrals(&state.pool, &filter, params.cursor, params.fetch()).await?;
    let (items, next_cursor) = params.page(found);
    Ok(axum::Json(ReferralPage { items, next_cursor }))
}

async fn fresh_view(conn: &mut PgConnection, state: &AppState, lane: &Lane) -> ApiResult<ReferralView> {
    let policy = state.policy.as_ref();
    let facts = store::ledger_facts(conn, &state.keyring, policy, lane, Utc::now()).await?;
    let recommendation = Some(policy.recommend(&lane.referral, facts));
    Ok(ReferralView::of(lane, recommendation, &state.calendar, onedoor_contracts::china_time::today()))
}

/// A referral with the data the department needs and the policy's recommendation.
#[utoipa::path(get, path = "/api/v1/referrals/{referral_id}", tag = "referrals",
    params(("referral_id" = Uuid, Path)),
    responses((status = 200, body = ReferralView), (status = 403, body = Problem), (status = 404, body = Problem)))]
#[tracing::instrument(name = "get referral", skip_all, fields(referral.id = %id))]
async fn get_referral(staff: Staff, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    department_staff(&staff, state.policy.as_ref())?;
    let id = referral_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    let lane =
        store::read_lane(&mut conn, &state.keyring, id).await?.ok_or_else(|| Problem::not_found("no such referral"))?;
    Ok(view_response(&fresh_view(&mut conn, &state, &lane).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmaskForm {
    /// Why the full numbers are needed (4 to 200 characters), e.g. `发放救助金`;
    /// recorded in the audit trail.
    pub purpose: String,
}

/// The referral's full ID numbers, for a caseworker of the department who
/// states why (a payment to the household's account, say). Every answer is
/// recorded in the audit trail with the purpose; it is never cached.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/unmask", tag = "referrals",
    params(("referral_id" = Uuid, Path)), request_body = UnmaskForm,
    responses((status = 200, body = UnmaskedIds), (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
#[tracing::instrument(name = "unmask referral", skip_all, fields(referral.id = %id))]
async fn unmask(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(form): ApiJson<UnmaskForm>,
) -> ApiResult<Response> {
    department_staff(&staff, state.policy.as_ref())?;
    staff.require(&[Role::Caseworker])?;
    onedoor_http_kit::access::note_purpose(&form.purpose)?;
    let id = referral_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    let lane =
        store::read_lane(&mut conn, &state.keyring, id).await?.ok_or_else(|| Problem::not_found("no such referral"))?;
    let mut response = axum::Json(UnmaskedIds::of(&lane)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

fn refused(e: LaneError) -> Problem {
    match e {
        LaneError::InvalidTransition { .. } => Problem::conflict("invalid_transition", e.to_string()),
        LaneError::NotAllowed(m) => Problem::forbidden(m),
        LaneError::Invalid { field, code, message } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "rule_violated", message.clone())
                .with_errors(vec![FieldError::new(field, code, message)])
        }
    }
}

/// The input rules of a command that hold whatever the lane: amounts are not
/// negative (the body's extractor bounds them above), and every free text has
/// a length limit.
fn check_input(command: &Command) -> ApiResult<()> {
    let mut texts: Vec<(String, Option<&str>, usize)> = Vec::new();
    let mut errors = Vec::new();
    let amount = match command {
        Command::Propose { amount_fen, .. } => *amount_fen,
        Command::Disburse { amount_fen, .. } => Some(*amount_fen),
        _ => None,
    };
    if amount.is_some_and(|a| a < 0) {
        errors.push(FieldError::new("amount_fen", "negative_amount", "amounts are non-negative integers in fen"));
    }
    match command {
        Command::SignFor => {}
        Command::RequestSupplement { materials, note } => {
            if materials.len() > 30 {
                errors.push(FieldError::new("materials", "too_many", "at most 30 items"));
            }
            // Only items the window can hand in: a code outside the
            // catalogue could never be answered and the lane never resume.
            for (i, m) in materials.iter().enumerate() {
                if onedoor_contracts::aid_line::material_name(m).is_none() {
                    errors.push(FieldError::new(
                        format!("materials[{i}]"),
                        "unknown_material",
                        "not an item of the materials catalogue (GET /api/v1/materials at the window)",
                    ));
                }
            }
            texts.push(("note".into(), note.as_deref(), 500));
        }
        Command::Propose { reason, .. } | Command::Approve { reason, .. } => {
            texts.push(("reason".into(), reason.as_deref(), 500))
        }
        Command::Disburse { reference, .. } => texts.push(("reference".into(), reference.as_deref(), 100)),
        Command::Return { reason } | Command::ExtendDeadline { reason, .. } => {
            texts.push(("reason".into(), Some(reason), 500))
        }
    }
    for (field, value, max) in texts {
        if value.is_some_and(|v| v.chars().count() > max) {
            errors.push(FieldError::new(field, "too_long", format!("at most {max} characters")));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Problem::validation(errors)) }
}

/// Runs a command on a lane in one transaction: lock, check `If-Match`, decide, save, answer.
#[tracing::instrument(name = "lane command", skip_all, fields(referral.id = %id, command = command.name()))]
async fn command(
    state: &AppState,
    staff: &Staff,
    id: &str,
    headers: &HeaderMap,
    command: Command,
) -> ApiResult<Response> {
    let policy = state.policy.as_ref();
    let actor = department_staff(staff, policy)?;
    let id = referral_id(id)?;
    check_input(&command)?;
    // Run again if the database aborted the transaction for a concurrent one.
    onedoor_http_kit::with_retries(|| async {
        let now = Utc::now();
        let mut tx = state.pool.begin().await?;
        let locked = if command.may_approve() {
            store::lock_lane(&mut tx, id).await?.map(|row| (row, None))
        } else {
            store::lock_lane_reading_ledger(&mut tx, &state.keyring, policy, id, now).await?
        };
        let Some((listed, facts)) = locked else {
            return Err(Problem::not_found("no such referral"));
        };
        let mut lane = store::load_lane(&mut tx, &state.keyring, id, Some(listed))
            .await?
            .ok_or_else(|| Problem::not_found("no such referral"))?;
        check_if_match(headers, lane.version)?;
        if command.may_approve() {
            store::lock_ledger(&mut tx, &state.keyring, policy, &lane).await?;
        }
        let facts = match facts {
            Some(read) => read,
            None => store::ledger_facts(&mut tx, &state.keyring, policy, &lane, now).await?,
        };
        lane.recommendation = policy.recommend(&lane.referral, facts);
        let today = onedoor_working_calendar::local_date(now);
        let limits = Limits {
            threshold_fen: policy.approval_threshold_fen(&lane.referral),
            max_amount_fen: policy.max_amount_fen(&lane.referral, facts),
            deadline: lane.deadline(&state.calendar, today),
        };
        let events = lane.decide(command.clone(), actor, limits, now).map_err(refused)?;
        let rules = store::Rules { policy, calendar: &state.calendar, keyring: &state.keyring };
        let after = store::save(&mut tx, Some(&lane), &events, staff.id(), None, rules, now).await?;
        let view = ReferralView::of(&after, Some(lane.recommendation.clone()), &state.calendar, today);
        onedoor_audit::commit_with_entry(tx, StatusCode::OK).await?;
        tracing::info!(referral.id = %id, status = after.status.as_str(), "lane changed");
        Ok(view_response(&view))
    })
    .await
}

/// 签收: take the referral on.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/sign-for", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ReferralView), (status = 409, body = Problem), (status = 412, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn sign_for(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    command(&state, &staff, &id, &headers, Command::SignFor).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplementRequestForm {
    pub materials: Vec<String>,
    pub note: Option<String>,
}

/// 补正: ask the window for more materials; the lane pauses.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/supplement-requests", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = SupplementRequestForm,
    responses((status = 200, body = ReferralView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn request_supplement(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<SupplementRequestForm>,
) -> ApiResult<Response> {
    command(&state, &staff, &id, &headers, Command::RequestSupplement { materials: form.materials, note: form.note })
        .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalForm {
    /// `approve` | `reject`
    #[schema(value_type = String)]
    pub outcome: ProposalOutcome,
    /// Without it an approval takes the recommendation's suggested amount.
    pub amount_fen: Option<i64>,
    pub reason: Option<String>,
}

/// Propose a decision: at or below the approval threshold it stands; above it an approver decides.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/proposal", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = ProposalForm,
    responses((status = 200, body = ReferralView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn propose(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<ProposalForm>,
) -> ApiResult<Response> {
    let command = Command::Propose { outcome: form.outcome, amount_fen: form.amount_fen, reason: form.reason };
    self::command(&state, &staff, &id, &headers, command).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalForm {
    pub approve: bool,
    pub reason: Option<String>,
    /// Approve although the household already had this aid this year.
    #[serde(default)]
    pub override_annual_limit: bool,
}

/// An approver of the department (not the proposer) decides a proposal.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/approval", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = ApprovalForm,
    responses((status = 200, body = ReferralView), (status = 403, body = Problem), (status = 409, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn approve(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<ApprovalForm>,
) -> ApiResult<Response> {
    let command = Command::Approve {
        approve: form.approve,
        reason: form.reason,
        override_annual_limit: form.override_annual_limit,
    };
    self::command(&state, &staff, &id, &headers, command).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisbursementForm {
    pub amount_fen: i64,
    /// `bank_card` | `cash` | `in_kind`
    #[schema(value_type = String)]
    pub channel: DisbursementChannel,
    pub reference: Option<String>,
}

/// Pay out, only after approval and never above the approved amount.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/disbursement", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = DisbursementForm,
    responses((status = 200, body = ReferralView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn disburse(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<DisbursementForm>,
) -> ApiResult<Response> {
    let command = Command::Disburse { amount_fen: form.amount_fen, channel: form.channel, reference: form.reference };
    self::command(&state, &staff, &id, &headers, command).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnForm {
    pub reason: String,
}

/// Not this department's matter: back to the window.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/return", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = ReturnForm,
    responses((status = 200, body = ReferralView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn return_referral(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<ReturnForm>,
) -> ApiResult<Response> {
    command(&state, &staff, &id, &headers, Command::Return { reason: form.reason }).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionForm {
    /// The new time limit (a date after the current one).
    pub deadline: chrono::NaiveDate,
    pub reason: String,
}

/// An approver extends the lane's time limit, once, with a reason; the
/// window's case view shows the new date.
#[utoipa::path(post, path = "/api/v1/referrals/{referral_id}/deadline-extension", tag = "referrals",
    params(("referral_id" = Uuid, Path), ("If-Match" = Option<String>, Header)), request_body = ExtensionForm,
    responses((status = 200, body = ReferralView), (status = 403, body = Problem),
              (status = 409, description = "extended before, or the lane is decided", body = Problem),
              (status = 422, description = "the date is not after the current time limit", body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn extend_deadline(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<ExtensionForm>,
) -> ApiResult<Response> {
    let command = Command::ExtendDeadline { deadline: form.deadline, reason: form.reason };
    self::command(&state, &staff, &id, &headers, command).await
}

/// The documents of a referral.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<store::ReferralDocument>,
}

/// The window's scans of the materials this referral needs.
#[utoipa::path(get, path = "/api/v1/referrals/{referral_id}/documents", tag = "documents",
    params(("referral_id" = Uuid, Path)),
    responses((status = 200, body = DocumentList), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn list_documents(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DocumentList>> {
    department_staff(&staff, state.policy.as_ref())?;
    let id = referral_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    store::read_lane(&mut conn, &state.keyring, id).await?.ok_or_else(|| Problem::not_found("no such referral"))?;
    Ok(axum::Json(DocumentList { items: store::documents_of(&mut conn, id).await? }))
}

/// One scan's file (every download is audited).
#[utoipa::path(get, path = "/api/v1/referrals/{referral_id}/documents/{document_id}", tag = "documents",
    params(("referral_id" = Uuid, Path), ("document_id" = Uuid, Path)),
    responses((status = 200, description = "the file, of the type its bytes were found to be",
               content((String = "image/jpeg"), (String = "image/png"), (String = "application/pdf"))),
              (status = 404, body = Problem),
              (status = 410, description = "erased with the household's personal data", body = Problem)))]
#[tracing::instrument(skip_all, fields(referral.id = %id))]
async fn download_document(
    staff: Staff,
    State(state): State<AppState>,
    Path((id, document_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    department_staff(&staff, state.policy.as_ref())?;
    let id = referral_id(&id)?;
    let not_found = || Problem::not_found("no such document of this referral");
    let document_id = Uuid::parse_str(&document_id).map_err(|_| not_found())?;
    let mut tx = state.pool.begin().await?;
    store::read_lane(&mut tx, &state.keyring, id).await?.ok_or_else(|| Problem::not_found("no such referral"))?;
    let document = store::documents_of(&mut tx, id)
        .await?
        .into_iter()
        .find(|d| d.document_id == document_id)
        .ok_or_else(not_found)?;
    tx.commit().await?;
    let bytes =
        state.documents.get(&document.sha256).await.map_err(onedoor_http_kit::internal_error)?.ok_or_else(|| {
            Problem::erased("document_erased", "the scan was erased with the household's personal data")
        })?;
    let id = document_id.to_string();
    Ok(onedoor_http_kit::file_response(&document.content_type, onedoor_http_kit::Disposition::Attachment(&id), bytes))
}
