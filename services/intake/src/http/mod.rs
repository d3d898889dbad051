//! The window clerks' REST API (`docs/API.md`), and the operators' rebuild
//! endpoint: handlers only (parse, authorise, call the domain and the store,
//! answer), one module per resource. Every route checks the role and the
//! township: a case of another township is answered 404, so its existence
//! does not leak.

mod applications;
mod cases;
mod documents;
mod erasure;
mod households;
mod operations;

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
use onedoor_personal_data::Keyring;
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
    pub keyring: Arc<onedoor_personal_data::Keyring>,
    pub policy: Arc<Policy>,
    pub documents: onedoor_documents::DocumentStore,
    /// Windows waiting for their case to change.
    pub case_watch: Arc<crate::case_watch::CaseWatch>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "OneDoor intake", description = "The one door: applications, the one-time notice, referrals and the one case view."),
    security(("bearer" = []))
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(applications::submit_application))
        .routes(routes!(cases::list_cases))
        .routes(routes!(applications::materials_catalogue))
        .routes(routes!(households::find_household))
        .routes(routes!(households::verify_support))
        .routes(routes!(cases::get_case))
        .routes(routes!(cases::supplement_materials))
        .routes(routes!(cases::withdraw_application))
        .routes(routes!(cases::add_line))
        .routes(routes!(cases::close_case))
        .routes(routes!(cases::hand_over_case))
        .routes(routes!(documents::upload_document, documents::list_documents))
        .routes(routes!(documents::download_document))
        .routes(routes!(operations::rebuild_case_views))
        .routes(routes!(operations::rebuild_progress))
        .routes(routes!(erasure::erase_household))
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

/// Loads a case of the clerk's township, locking it for a change when `lock`.
async fn case_of_township(
    conn: &mut PgConnection,
    keyring: &Keyring,
    case_id: Uuid,
    township: &str,
    lock: bool,
) -> ApiResult<Case> {
    let listed = store::case_row(conn, case_id, lock).await?;
    let not_found = || Problem::not_found(format!("no case {case_id} in your township"));
    if listed.as_ref().map(|row| row.township.as_str()) != Some(township) {
        return Err(not_found());
    }
    let case = store::load_case(conn, keyring, case_id, listed.as_ref()).await?.ok_or_else(not_found)?;
    if let Some(traceparent) = &case.traceparent {
        onedoor_telemetry::propagation::link_current_span(traceparent);
    }
    Ok(case)
}

fn view_response(view: &CaseView) -> Response {
    let mut response = axum::Json(view).into_response();
    response.headers_mut().insert(header::ETAG, dated_etag(view.version, local_date(Utc::now())));
    response
}

fn path_case_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such case"))
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
        let case = case_of_township(&mut tx, &state.keyring, case_id, township, true).await?;
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
        let after =
            store::save(&mut tx, &state.keyring, &case, &events, store::Cause::staff(staff.id()), policy, now).await?;
        if let Some(department) = hold
            && let Some((_, open)) = store::claim_open_lines(&mut tx, &state.keyring, &after, &[department]).await?
        {
            tx.rollback().await?;
            return Err(duplicate("aid".into(), department, &open, township));
        }
        onedoor_audit::commit_with_entry(tx, StatusCode::OK).await?;
        Ok(view_response(&after.view(&policy.catalogue, &policy.calendar, local_date(now))))
    })
    .await
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
