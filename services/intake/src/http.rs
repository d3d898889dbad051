//! The window clerks' REST API (`docs/API.md`), and the operators' rebuild
//! endpoint: handlers only (parse, authorise, call the domain and the store,
//! answer). Every route checks the role and the township: a case of another
//! township is answered 404, so its existence does not leak.

use crate::config::Policy;
use crate::domain::InvalidField;
use crate::domain::application::{Application, ApplicationForm};
use crate::domain::case::{self, Case, CaseError, Context};
use crate::domain::household::Declaration;
use crate::domain::materials::MissingMaterial;
use crate::domain::view::{CaseLineStatus, CaseStatus, CaseView};
use crate::store::{self, CaseListQuery, KeyClaim, RebuildJob};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use onedoor_contracts::Department;
use onedoor_http_kit::etag::{check_if_match, dated_etag};
use onedoor_http_kit::paging::ListParams;
use onedoor_http_kit::{ApiJson, ApiQuery, ApiResult, FieldError, Problem, Role, Staff};
use onedoor_working_calendar::local_date;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub policy: Arc<Policy>,
    pub documents: onedoor_documents::DocumentStore,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "OneDoor intake", description = "The one door: applications, the one-time notice, referrals and the one case view."),
    security(("bearer" = []))
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(submit_application))
        .routes(routes!(list_cases))
        .routes(routes!(materials_catalogue))
        .routes(routes!(find_household))
        .routes(routes!(verify_support))
        .routes(routes!(get_case))
        .routes(routes!(supplement_materials))
        .routes(routes!(withdraw_application))
        .routes(routes!(add_line))
        .routes(routes!(close_case))
        .routes(routes!(hand_over_case))
        .routes(routes!(upload_document, list_documents))
        .routes(routes!(download_document))
        .routes(routes!(rebuild_case_views))
        .routes(routes!(rebuild_progress))
}

/// The API's routes and their OpenAPI document.
pub fn router(state: AppState) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes().split_for_parts();
    (router.with_state(state), api)
}

/// The API's OpenAPI document alone (for the checked-in documents).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

impl From<InvalidField> for FieldError {
    fn from(e: InvalidField) -> Self {
        FieldError::new(e.field, e.code, e.message)
    }
}

/// A fresh id for each referral a command may issue.
fn fresh_referral_ids() -> BTreeMap<Department, Uuid> {
    Department::ALL.into_iter().map(|d| (d, Uuid::now_v7())).collect()
}

fn clerk_township(staff: &Staff) -> ApiResult<&str> {
    staff.require(&[Role::WindowClerk])?;
    staff.township()
}

/// A lane as listed in the answer to a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LaneSummary {
    #[schema(value_type = String)]
    pub department: Department,
    pub referral_id: Option<Uuid>,
    pub status: CaseLineStatus,
}

/// The receipt of a submission: case number, the one-time notice, the referrals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedCase {
    pub case_id: Uuid,
    pub case_number: String,
    /// `accepted` or `awaiting_materials`.
    pub status: String,
    pub missing_materials: Vec<MissingMaterial>,
    pub lanes: Vec<LaneSummary>,
}

fn created(case: &Case, policy: &Policy, now: DateTime<Utc>) -> CreatedCase {
    let view = case.view(&policy.catalogue, &policy.calendar, local_date(now));
    CreatedCase {
        case_id: case.case_id,
        case_number: case.case_number.clone(),
        status: if case.accepted_at.is_some() { "accepted" } else { "awaiting_materials" }.into(),
        missing_materials: view.missing_materials,
        lanes: view
            .lanes
            .iter()
            .map(|l| LaneSummary { department: l.department, referral_id: l.referral_id, status: l.status })
            .collect(),
    }
}

fn created_response(body: &CreatedCase, replayed: bool) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    let location = format!("/api/v1/cases/{}", body.case_id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    match value.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 200 => Ok(Some(k.trim().to_string())),
        _ => Err(Problem::validation(vec![FieldError::new(
            "Idempotency-Key",
            "invalid_idempotency_key",
            "1 to 200 visible ASCII characters",
        )])),
    }
}

/// The 409 for a line the household already has open. It names the case
/// only to a clerk of the case's own township; elsewhere it says which
/// township has it, and nothing more.
fn duplicate(field: String, department: Department, open: &store::OpenLine, township: &str) -> Problem {
    if open.township == township {
        Problem::conflict(
            "duplicate_application",
            format!("case {} is already open for this household's {department} aid", open.case_number),
        )
        .with_errors(vec![FieldError::new(field, "open_case_exists", open.case_number.clone())])
    } else {
        Problem::conflict(
            "duplicate_application",
            format!("this household's {department} aid is open in a case of township {}", open.township),
        )
        .with_errors(vec![FieldError::new(field, "open_case_elsewhere", open.township.clone())])
    }
}

/// Accept an application at the window (一门受理).
#[utoipa::path(
    post, path = "/api/v1/applications", tag = "applications",
    request_body = ApplicationForm,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key and body returns the same case")),
    responses(
        (status = 201, description = "accepted, or awaiting materials with the one-time notice", body = CreatedCase),
        (status = 400, description = "every invalid field at once", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "an open case of this applicant covers one of the aid lines", body = Problem),
        (status = 422, description = "the idempotency key was used with another body", body = Problem),
    )
)]
#[tracing::instrument(name = "submit application", skip_all, fields(case.id = tracing::field::Empty))]
async fn submit_application(
    staff: Staff,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<ApplicationForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let key = idempotency_key(&headers)?;
    let now = Utc::now();
    let policy = &state.policy;
    let application = form
        .validate(&policy.catalogue, local_date(now))
        .map_err(|errors| Problem::validation(errors.into_iter().map(FieldError::from).collect()))?;
    if application.township() != township {
        return Err(Problem::forbidden("the household's division code is outside your township"));
    }
    let request = serde_json::to_value(&form).map_err(onedoor_http_kit::internal_error)?;
    let staff_id = staff.id();
    onedoor_http_kit::with_retries(|| {
        submit_once(&state, staff_id, &township, key.as_deref(), &application, &request, now)
    })
    .await
}

/// One attempt at recording a submission, in one transaction.
async fn submit_once(
    state: &AppState,
    staff_id: &str,
    township: &str,
    key: Option<&str>,
    application: &Application,
    request: &serde_json::Value,
    now: DateTime<Utc>,
) -> ApiResult<Response> {
    let policy = &state.policy;
    let mut tx = state.pool.begin().await?;

    if let Some(key) = key
        && let KeyClaim::Used { request: earlier, answer } =
            store::claim_idempotency_key(&mut tx, township, key, request).await?
    {
        if &earlier != request {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different application",
            ));
        }
        let body: CreatedCase = answer
            .and_then(|r| serde_json::from_value(r).ok())
            .ok_or_else(|| onedoor_http_kit::internal_error("idempotency row without a response"))?;
        return Ok(created_response(&body, true));
    }

    let people = application.person_ids();
    store::lock_people(&mut tx, &people).await?;
    for (line, department) in application.departments().into_iter().enumerate() {
        if let Some(open) = store::open_case_of(&mut tx, &people, department, None).await? {
            return Err(duplicate(format!("requests[{line}].aid"), department, &open, township));
        }
    }
    let case_number = store::next_case_number(&mut tx, township, now).await?;
    let referral_ids = fresh_referral_ids();
    let ctx = Context {
        now,
        staff_id,
        referral_ids: &referral_ids,
        catalogue: &policy.catalogue,
        deadlines: &policy.deadlines,
        calendar: &policy.calendar,
    };
    // The household in the register: the applicant's, a declared member's, or a new one.
    let household_id = store::household_of(&mut tx, &people).await?.unwrap_or_else(Uuid::now_v7);
    let events = case::submit(application.clone(), case_number, Some(household_id), &ctx);
    let case = store::save(&mut tx, &Case::new(Uuid::now_v7()), &events, staff_id, None, policy, now).await?;
    let declaration = Declaration { application, case_id: case.case_id, today: local_date(now), now, staff_id };
    store::register_declaration(&mut tx, household_id, &declaration).await?;
    tracing::Span::current().record("case.id", tracing::field::display(case.case_id));
    // Claimed in one order (the departments'), so two submissions for one
    // household cannot wait on each other's lines.
    let mut lines: Vec<(usize, Department)> = application.departments().into_iter().enumerate().collect();
    lines.sort_by_key(|(_, d)| *d);
    for (line, department) in lines {
        if !store::claim_open_line(&mut tx, &case, department).await? {
            // A concurrent submission for the same household and line won the race.
            let open = store::open_case_of(&mut tx, &people, department, Some(case.case_id)).await?;
            tx.rollback().await?;
            let open = open.ok_or_else(|| onedoor_http_kit::internal_error("a lost claim without its case"))?;
            return Err(duplicate(format!("requests[{line}].aid"), department, &open, township));
        }
    }
    let body = created(&case, policy, now);
    if let Some(key) = key {
        let answer = serde_json::to_value(&body).map_err(onedoor_http_kit::internal_error)?;
        store::save_answer(&mut tx, township, key, &answer).await?;
    }
    tx.commit().await?;
    tracing::info!(case.id = %case.case_id, status = %body.status, lanes = body.lanes.len(), "application accepted at the window");
    Ok(created_response(&body, false))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `awaiting_materials` | `in_progress` | `decided` | `closed` | `withdrawn`
    status: Option<String>,
    /// Only cases with (`true`) or without (`false`) an overdue lane.
    overdue: Option<bool>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// Only the case with this case number (exact).
    case_number: Option<String>,
    /// Only cases whose applicant has this ID number (exact; an `x` is read as `X`).
    id_number: Option<String>,
    /// `me`: only the cases the signed-in clerk owns (first-contact responsibility).
    owner: Option<String>,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next_cursor: Option<String>,
}

/// The clerk's township's cases, newest first.
#[utoipa::path(
    get, path = "/api/v1/cases", tag = "cases", params(ListQuery),
    responses((status = 200, body = CasePage), (status = 400, body = Problem), (status = 403, body = Problem))
)]
#[tracing::instrument(name = "list cases", skip_all)]
async fn list_cases(
    staff: Staff,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<axum::Json<CasePage>> {
    let township = clerk_township(&staff)?;
    let statuses = CaseStatus::ALL.map(CaseStatus::as_str);
    let params = ListParams::parse(q.status, &statuses, q.limit, q.cursor.as_deref())?;
    let today = local_date(Utc::now());
    let owner = match q.owner.as_deref() {
        None => None,
        Some("me") => Some(staff.id()),
        Some(_) => {
            return Err(Problem::validation(vec![FieldError::new("owner", "invalid_value", "only `me` is supported")]));
        }
    };
    let query = CaseListQuery {
        owner,
        township,
        status: params.status.as_deref(),
        overdue: q.overdue,
        today,
        after: params.cursor,
        limit: params.fetch(),
        case_number: q.case_number.as_deref().map(str::trim),
        applicant_id_number: q.id_number.map(|id| id.trim().to_ascii_uppercase()),
    };
    let mut found = store::list_cases(&state.pool, &query).await?;
    for (_, _, view) in &mut found {
        view.refresh_overdue(today);
    }
    let (items, next_cursor) = params.page(found);
    Ok(axum::Json(CasePage { items, next_cursor }))
}

/// The materials catalogue and the lines' time limits, for the window's forms
/// and printed notices. Any member of staff may read it.
#[utoipa::path(
    get, path = "/api/v1/materials", tag = "applications",
    responses((status = 200, body = crate::domain::materials::PublishedCatalogue))
)]
async fn materials_catalogue(
    _staff: Staff,
    State(state): State<AppState>,
) -> axum::Json<crate::domain::materials::PublishedCatalogue> {
    axum::Json(state.policy.catalogue.published(state.policy.deadlines.all()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HouseholdQuery {
    /// The ID number of any member, now or before (exact; an `x` is read as `X`).
    id_number: String,
}

/// A household as the register knows it: members masked, with the dates they
/// joined and left, its declared support, and its cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdView {
    pub household_id: Uuid,
    pub township: String,
    pub division_code: String,
    /// `dibao` | `tekun` | `low_income`, as last declared.
    #[schema(value_type = Vec<String>)]
    pub support: Vec<onedoor_contracts::intake::SupportKind>,
    pub members: Vec<HouseholdMemberView>,
    /// Each change of the support, oldest first.
    pub support_changes: Vec<SupportChangeView>,
    pub cases: Vec<store::HouseholdCase>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SupportChangeView {
    #[schema(value_type = Vec<String>)]
    pub support: Vec<onedoor_contracts::intake::SupportKind>,
    pub effective: chrono::NaiveDate,
    /// `declared` (at the window, on an application) | `verified` (the economic-status check).
    pub source: crate::domain::household::Source,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdMemberView {
    pub name: String,
    pub id_number_masked: String,
    pub relation: String,
    pub joined_on: chrono::NaiveDate,
    /// Set once the person left the household.
    pub left_on: Option<chrono::NaiveDate>,
}

/// The household register: the household of a person (window clerks of the
/// household's township; exact match; every lookup is audited).
#[utoipa::path(
    get, path = "/api/v1/households", tag = "households", params(HouseholdQuery),
    responses((status = 200, body = HouseholdView), (status = 400, body = Problem), (status = 403, body = Problem),
               (status = 404, description = "no household of this person in your township", body = Problem))
)]
#[tracing::instrument(name = "look up household", skip_all)]
async fn find_household(
    staff: Staff,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HouseholdQuery>,
) -> ApiResult<axum::Json<HouseholdView>> {
    let township = clerk_township(&staff)?;
    let id_number = q.id_number.trim().to_ascii_uppercase();
    if id_number.is_empty() || id_number.len() > 18 {
        return Err(Problem::validation(vec![FieldError::new("id_number", "invalid_length", "18 characters")]));
    }
    let mut tx = state.pool.begin().await?;
    let found = store::household_of_person(&mut tx, &id_number).await?;
    let household = match found {
        Some(id) => Some(store::load_household(&mut tx, id).await?),
        None => None,
    };
    let visible = household.filter(|h| h.township == township);
    store::audit(
        &mut tx,
        &store::AuditEntry {
            actor: staff.id(),
            role: staff.role().as_str(),
            action: "household_lookup",
            case_id: None,
            household_id: visible.as_ref().map(|h| h.household_id),
        },
    )
    .await?;
    let Some(household) = visible else {
        tx.commit().await?;
        return Err(Problem::not_found("no household of this person in your township"));
    };
    let cases = store::cases_of_household(&mut tx, household.household_id).await?;
    tx.commit().await?;
    Ok(axum::Json(household_view(household, cases)))
}

fn household_view(household: crate::domain::household::Household, cases: Vec<store::HouseholdCase>) -> HouseholdView {
    HouseholdView {
        household_id: household.household_id,
        township: household.township,
        division_code: household.division_code,
        support: household.support,
        members: household
            .members
            .into_iter()
            .map(|m| HouseholdMemberView {
                name: m.name,
                id_number_masked: onedoor_contracts::mask_id_number(&m.id_number),
                relation: m.relation,
                joined_on: m.joined_on,
                left_on: m.left_on,
            })
            .collect(),
        support_changes: household
            .support_history
            .into_iter()
            .map(|(support, effective, source)| SupportChangeView { support, effective, source })
            .collect(),
        cases,
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifiedSupportForm {
    /// Any of `dibao`, `tekun`, `low_income` (empty: none).
    pub support: Vec<String>,
    /// From when the verified support holds (not after today).
    pub effective: chrono::NaiveDate,
}

/// Record the household's support as the economic-status check verified it
/// (source `verified`), from its effective date (window clerks of the
/// household's township; audited).
#[utoipa::path(
    post, path = "/api/v1/households/{household_id}/support", tag = "households",
    params(("household_id" = Uuid, Path)), request_body = VerifiedSupportForm,
    responses((status = 200, body = HouseholdView), (status = 400, body = Problem), (status = 404, body = Problem))
)]
#[tracing::instrument(name = "verify household support", skip_all)]
async fn verify_support(
    staff: Staff,
    State(state): State<AppState>,
    Path(household_id): Path<String>,
    ApiJson(form): ApiJson<VerifiedSupportForm>,
) -> ApiResult<axum::Json<HouseholdView>> {
    let township = clerk_township(&staff)?.to_string();
    let not_found = || Problem::not_found("no such household in your township");
    let household_id = Uuid::parse_str(&household_id).map_err(|_| not_found())?;
    let mut errors = Vec::new();
    let mut support = Vec::new();
    for (i, s) in form.support.iter().enumerate() {
        match serde_json::from_value::<onedoor_contracts::intake::SupportKind>(serde_json::Value::String(s.clone())) {
            Ok(kind) if !support.contains(&kind) => support.push(kind),
            Ok(_) => {}
            Err(_) => {
                errors.push(FieldError::new(format!("support[{i}]"), "invalid_value", "dibao, tekun, low_income"))
            }
        }
    }
    if form.effective > local_date(Utc::now()) {
        errors.push(FieldError::new("effective", "future_date", "a verified change holds from a day not after today"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    onedoor_http_kit::with_retries(|| async {
        let mut tx = state.pool.begin().await?;
        let before = store::load_household(&mut tx, household_id).await?;
        if before.version == 0 || before.township != township {
            return Err(not_found());
        }
        let changes = before.verify_support(support.clone(), form.effective);
        store::save_household(&mut tx, &before, &changes, staff.id()).await?;
        let entry = store::AuditEntry {
            actor: staff.id(),
            role: staff.role().as_str(),
            action: "household_support_verified",
            case_id: None,
            household_id: Some(household_id),
        };
        store::audit(&mut tx, &entry).await?;
        let household = store::load_household(&mut tx, household_id).await?;
        let cases = store::cases_of_household(&mut tx, household_id).await?;
        tx.commit().await?;
        Ok(axum::Json(household_view(household, cases)))
    })
    .await
}

/// Loads a case of the clerk's township, locking it for a change when `lock`.
async fn case_of_township(conn: &mut PgConnection, case_id: Uuid, township: &str, lock: bool) -> ApiResult<Case> {
    let owner = store::township_of(conn, case_id, lock).await?;
    let not_found = || Problem::not_found(format!("no case {case_id} in your township"));
    if owner.as_deref() != Some(township) {
        return Err(not_found());
    }
    store::load_case(conn, case_id).await?.ok_or_else(not_found)
}

fn view_response(view: &CaseView) -> Response {
    let mut response = axum::Json(view).into_response();
    response.headers_mut().insert(header::ETAG, dated_etag(view.version, local_date(Utc::now())));
    response
}

fn path_case_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such case"))
}

/// The one case view (ETag = its version and the day: overdue flags and paused deadlines change with the date).
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}", tag = "cases",
    params(("case_id" = Uuid, Path)),
    responses((status = 200, body = CaseView), (status = 304), (status = 404, body = Problem))
)]
#[tracing::instrument(name = "get case", skip_all, fields(case.id = %case_id))]
async fn get_case(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?;
    let case_id = path_case_id(&case_id)?;
    let mut conn = state.pool.acquire().await?;
    let case = case_of_township(&mut conn, case_id, township, false).await?;
    // The view's overdue flags and paused deadlines change with the day.
    let tag = dated_etag(case.version, local_date(Utc::now()));
    if headers.get(header::IF_NONE_MATCH) == Some(&tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let view = case.view(&state.policy.catalogue, &state.policy.calendar, local_date(Utc::now()));
    Ok(view_response(&view))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupplementForm {
    pub materials: Vec<String>,
}

fn case_conflict(e: CaseError) -> Problem {
    let code = match e {
        CaseError::Withdrawn => "case_withdrawn",
        CaseError::Decided => "case_decided",
        CaseError::Closed => "case_closed",
        CaseError::LineOpen => "line_open",
        CaseError::LanesNotFinal => "lanes_not_final",
        CaseError::SameOwner => "same_owner",
    };
    Problem::conflict(code, e.to_string())
}

/// Hand in materials: completes the application (the remaining referrals go
/// out) or answers a department's supplement request.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/materials", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = SupplementForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 412, body = Problem))
)]
#[tracing::instrument(name = "supplement materials", skip_all, fields(case.id = %case_id))]
async fn supplement_materials(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<SupplementForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let policy = &state.policy;
    let mut errors = Vec::new();
    if form.materials.is_empty() {
        errors.push(FieldError::new("materials", "required", "list the materials handed in"));
    }
    for (i, code) in form.materials.iter().enumerate() {
        if !policy.catalogue.is_known(code) {
            errors.push(FieldError::new(
                format!("materials[{i}]"),
                "unknown_material",
                format!("{code:?} is not in the catalogue"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.supplement(form.materials.clone(), ctx).map_err(case_conflict)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawForm {
    pub reason: String,
}

/// The applicant withdraws; the departments close their lanes.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/withdraw", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = WithdrawForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 412, body = Problem))
)]
#[tracing::instrument(name = "withdraw application", skip_all, fields(case.id = %case_id))]
async fn withdraw_application(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<WithdrawForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let reason = form.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::validation(vec![FieldError::new("reason", "required", "1 to 500 characters")]));
    }
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.withdraw(reason.clone(), ctx).map_err(case_conflict)
    })
    .await
}

/// Add an aid line to an open case (one element of an application's
/// `requests`): a new referral, after the same checks as on submission. This
/// is also how the window re-routes a lane a department returned: the
/// returned lane stays in the history and the new line goes out.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/lines", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = crate::domain::application::RequestForm,
    responses((status = 201, description = "the case with the new line", body = CaseView),
              (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "the line is open in this case or another of the household, or the case is over", body = Problem),
              (status = 412, body = Problem))
)]
#[tracing::instrument(name = "add line", skip_all, fields(case.id = %case_id))]
async fn add_line(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<crate::domain::application::RequestForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let department = form.aid.parse::<Department>().ok();
    let today = local_date(Utc::now());
    let response = change_case(&state, &staff, &township, case_id, &headers, department, |case, ctx| {
        let members: std::collections::BTreeSet<String> = case
            .application
            .as_ref()
            .map(|a| a.person_ids().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        let request = form
            .validate(&members, today)
            .map_err(|errors| Problem::validation(errors.into_iter().map(FieldError::from).collect()))?;
        case.add_line(request, ctx).map_err(case_conflict)
    })
    .await?;
    let mut response = response;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverForm {
    /// The staff id of the clerk of the township who takes the case over.
    pub to: String,
}

/// Hand the case over to another clerk of the township, who owns it from now
/// on (first-contact responsibility, 首问负责). Any clerk of the township may
/// record it; the hand-over is in the case's history.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/handover", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = HandoverForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "the clerk already owns it, or the case is over", body = Problem),
              (status = 412, body = Problem))
)]
#[tracing::instrument(name = "hand over case", skip_all, fields(case.id = %case_id))]
async fn hand_over_case(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<HandoverForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let to = form.to.trim().to_string();
    if to.is_empty() || to.chars().count() > 128 {
        return Err(Problem::validation(vec![FieldError::new("to", "required", "a staff id of 1 to 128 characters")]));
    }
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.hand_over(to.clone(), ctx).map_err(case_conflict)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseForm {
    /// `sms` | `letter` | `in_person`: how the applicant was told.
    pub informed_by: String,
    pub note: Option<String>,
}

/// Close the case (结案) once every lane is final and the applicant was
/// told; the household's lines are released.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/close", tag = "cases",
    params(("case_id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = CloseForm,
    responses((status = 200, body = CaseView), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "a lane is not final, or the case is withdrawn or closed", body = Problem),
              (status = 412, body = Problem))
)]
#[tracing::instrument(name = "close case", skip_all, fields(case.id = %case_id))]
async fn close_case(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
    ApiJson(form): ApiJson<CloseForm>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    let mut errors = Vec::new();
    let informed_by = serde_json::from_value::<case::InformedBy>(serde_json::Value::String(form.informed_by.clone()))
        .map_err(|_| errors.push(FieldError::new("informed_by", "invalid_value", "one of sms, letter, in_person")))
        .ok();
    let note = form.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    if note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        errors.push(FieldError::new("note", "too_long", "at most 500 characters"));
    }
    let Some(informed_by) = informed_by.filter(|_| errors.is_empty()) else {
        return Err(Problem::validation(errors));
    };
    change_case(&state, &staff, &township, case_id, &headers, None, |case, ctx| {
        case.close(informed_by, note.clone(), ctx).map_err(case_conflict)
    })
    .await
}

/// Runs a command against a case in one transaction: lock, decide, save,
/// hold the household's place for a line it opens (`hold`), answer (run
/// again if the database aborted it for a concurrent one).
#[tracing::instrument(skip_all, fields(case.id = %case_id))]
async fn change_case(
    state: &AppState,
    staff: &Staff,
    township: &str,
    case_id: Uuid,
    headers: &HeaderMap,
    hold: Option<Department>,
    decide: impl Fn(&Case, &Context) -> ApiResult<Vec<case::CaseEvent>>,
) -> ApiResult<Response> {
    onedoor_http_kit::with_retries(|| async {
        let now = Utc::now();
        let policy = &state.policy;
        let mut tx = state.pool.begin().await?;
        let case = case_of_township(&mut tx, case_id, township, true).await?;
        check_if_match(headers, case.version)?;
        let referral_ids = fresh_referral_ids();
        let ctx = Context {
            now,
            staff_id: staff.id(),
            referral_ids: &referral_ids,
            catalogue: &policy.catalogue,
            deadlines: &policy.deadlines,
            calendar: &policy.calendar,
        };
        let events = decide(&case, &ctx)?;
        let after = store::save(&mut tx, &case, &events, staff.id(), None, policy, now).await?;
        if let (Some(department), Some(application)) = (hold, &after.application)
            && !store::claim_open_line(&mut tx, &after, department).await?
        {
            let people = application.person_ids();
            let open = store::open_case_of(&mut tx, &people, department, Some(case_id)).await?;
            tx.rollback().await?;
            let open = open.ok_or_else(|| onedoor_http_kit::internal_error("a lost claim without its case"))?;
            return Err(duplicate("aid".into(), department, &open, township));
        }
        tx.commit().await?;
        Ok(view_response(&after.view(&policy.catalogue, &policy.calendar, local_date(now))))
    })
    .await
}

fn job_response(status: StatusCode, job: &RebuildJob) -> Response {
    let mut response = (status, axum::Json(job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/admin/case-views/rebuild/{}", job.job_id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Operators: rebuild every case view (and the open lines) from the event
/// log, as a background job; the answer is the job (a running one if there
/// is one), to follow at its `Location`.
#[utoipa::path(
    post, path = "/api/v1/admin/case-views/rebuild", tag = "operations",
    responses((status = 202, description = "the job, running", body = RebuildJob))
)]
#[tracing::instrument(name = "rebuild case views", skip_all)]
async fn rebuild_case_views(staff: Staff, State(state): State<AppState>) -> ApiResult<Response> {
    staff.require(&[Role::Operator])?;
    let (job, started) = store::start_rebuild(&state.pool, staff.id()).await?;
    if started {
        let (pool, policy, job_id) = (state.pool.clone(), state.policy.clone(), job.job_id);
        // Not tied to the request: a client hanging up does not stop it.
        tokio::spawn(async move {
            match store::run_rebuild(&pool, &policy, job_id).await {
                Ok(()) => tracing::info!(job.id = %job_id, "case views rebuilt from the event log"),
                Err(error) => tracing::error!(job.id = %job_id, %error, "rebuilding the case views failed"),
            }
        });
    }
    Ok(job_response(StatusCode::ACCEPTED, &job))
}

/// Operators: a rebuild job's progress.
#[utoipa::path(
    get, path = "/api/v1/admin/case-views/rebuild/{job_id}", tag = "operations",
    params(("job_id" = Uuid, Path)),
    responses((status = 200, body = RebuildJob))
)]
#[tracing::instrument(name = "rebuild progress", skip_all)]
async fn rebuild_progress(
    staff: Staff,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    staff.require(&[Role::Operator])?;
    let not_found = || Problem::not_found("no such rebuild job");
    let job_id = Uuid::parse_str(&job_id).map_err(|_| not_found())?;
    let job = store::rebuild_job(&state.pool, job_id).await?.ok_or_else(not_found)?;
    Ok(job_response(StatusCode::OK, &job))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// The catalogue code of the material the scan is of.
    material: String,
}

/// A document as the case lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<case::CaseDocument>,
}

/// Upload a scan of a material (from a document camera or a scanner): the
/// file is the body, `image/jpeg`, `image/png` or `application/pdf` (checked
/// by its bytes, not its header), at most 20 MB. Nothing is stored unless
/// the whole file arrived and is what it says.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/documents", tag = "documents",
    params(("case_id" = Uuid, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf"),
    responses((status = 201, body = case::CaseDocument), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem))
)]
#[tracing::instrument(name = "upload document", skip_all, fields(case.id = %case_id))]
async fn upload_document(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use onedoor_documents::{DocumentType, MAX_DOCUMENT_BYTES};
    let township = clerk_township(&staff)?.to_string();
    let case_id = path_case_id(&case_id)?;
    if !state.policy.catalogue.is_known(&q.material) {
        return Err(Problem::validation(vec![FieldError::new(
            "material",
            "unknown_material",
            "not an item of the materials catalogue",
        )]));
    }
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(DocumentType::from_mime);
    let Some(declared) = declared else {
        return Err(unsupported("declare the file as image/jpeg, image/png or application/pdf"));
    };
    let bytes = axum::body::to_bytes(body, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|_| Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "a document is at most 20 MB"))?;
    if DocumentType::sniff(&bytes) != Some(declared) {
        return Err(unsupported("the file's bytes are not the declared type"));
    }
    {
        // The case must exist here and take documents before anything is stored.
        let mut conn = state.pool.acquire().await?;
        let case = case_of_township(&mut conn, case_id, &township, false).await?;
        case.takes_documents().map_err(case_conflict)?;
    }
    let stored = state.documents.put(bytes).await.map_err(onedoor_http_kit::internal_error)?;
    let document = case::CaseDocument {
        document_id: Uuid::now_v7(),
        material: q.material.clone(),
        sha256: stored.sha256.clone(),
        content_type: declared.mime().to_string(),
        size: stored.size,
        attached_at: Utc::now(),
        attached_by: staff.id().to_string(),
    };
    let recorded = change_case(&state, &staff, &township, case_id, &HeaderMap::new(), None, |case, _| {
        case.attach_document(document.clone()).map_err(case_conflict)
    })
    .await;
    if let Err(problem) = recorded {
        // The record was not kept: neither are the bytes (unless another record names them).
        if let Err(error) = state.documents.forget(&stored).await {
            tracing::error!(%error, "an unrecorded document could not be removed");
        }
        return Err(problem);
    }
    tracing::info!(document.id = %document.document_id, size = document.size, "document attached");
    Ok((StatusCode::CREATED, axum::Json(document)).into_response())
}

fn unsupported(detail: &str) -> Problem {
    Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_document_type", detail)
}

/// The scans uploaded for a case.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/documents", tag = "documents",
    params(("case_id" = Uuid, Path)),
    responses((status = 200, body = DocumentList), (status = 404, body = Problem))
)]
#[tracing::instrument(name = "list documents", skip_all, fields(case.id = %case_id))]
async fn list_documents(
    staff: Staff,
    State(state): State<AppState>,
    Path(case_id): Path<String>,
) -> ApiResult<axum::Json<DocumentList>> {
    let township = clerk_township(&staff)?;
    let case_id = path_case_id(&case_id)?;
    let mut conn = state.pool.acquire().await?;
    let case = case_of_township(&mut conn, case_id, township, false).await?;
    Ok(axum::Json(DocumentList { items: case.documents }))
}

/// One scan's file (every download is audited).
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/documents/{document_id}", tag = "documents",
    params(("case_id" = Uuid, Path), ("document_id" = Uuid, Path)),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
              (status = 404, body = Problem))
)]
#[tracing::instrument(name = "download document", skip_all, fields(case.id = %case_id))]
async fn download_document(
    staff: Staff,
    State(state): State<AppState>,
    Path((case_id, document_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let township = clerk_township(&staff)?;
    let case_id = path_case_id(&case_id)?;
    let mut tx = state.pool.begin().await?;
    let case = case_of_township(&mut tx, case_id, township, false).await?;
    let document = case
        .documents
        .iter()
        .find(|d| d.document_id.to_string() == document_id)
        .ok_or_else(|| Problem::not_found("no such document in this case"))?;
    store::audit(
        &mut tx,
        &store::AuditEntry {
            actor: staff.id(),
            role: staff.role().as_str(),
            action: "document_download",
            case_id: Some(case_id),
            household_id: case.household_id,
        },
    )
    .await?;
    tx.commit().await?;
    let bytes = state.documents.get(&document.sha256).await.map_err(onedoor_http_kit::internal_error)?;
    Ok(onedoor_http_kit::file_response(&document.content_type, &document.document_id.to_string(), bytes))
}
