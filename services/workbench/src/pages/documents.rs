//! The documents handed to the applicant, printed on A4 at the window:
//! 受理回执 (receipt), 一次性告知书 (one-time notice of every missing
//! material) and each department's decision letter (救助决定告知书 or
//! 不予救助告知书 with the reason and how to ask for review).

use super::{require, uuid_segment};
use crate::api::{ApiError, Target};
use crate::render::{message_page, page};
use crate::session::Session;
use crate::{AppState, PageResult};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use minijinja::context;
use onedoor_contracts::Department;
use onedoor_http_kit::Role;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{case_id}/receipt", get(receipt))
        .route("/cases/{case_id}/notice", get(notice))
        .route("/cases/{case_id}/lanes/{department}/letter", get(letter))
}

async fn case_and_catalogue(
    state: &AppState,
    session: &Session,
    case_id: &str,
) -> Result<(Value, Value), crate::PageError> {
    require(session, &[Role::WindowClerk])?;
    let id = uuid_segment(case_id)?;
    let case = state.api.get(Target::Intake, &format!("/api/v1/cases/{id}"), &session.token).await?;
    let catalogue: Value = state.api.get(Target::Intake, "/api/v1/materials", &session.token).await?;
    Ok((case, catalogue))
}

async fn receipt(State(state): State<AppState>, session: Session, Path(case_id): Path<String>) -> PageResult {
    let (case, catalogue) = case_and_catalogue(&state, &session, &case_id).await?;
    Ok(page("receipt.html", context! { case, time_limits => catalogue["time_limits"], clerk => session.person.sub }))
}

async fn notice(State(state): State<AppState>, session: Session, Path(case_id): Path<String>) -> PageResult {
    let (case, catalogue) = case_and_catalogue(&state, &session, &case_id).await?;
    Ok(page("notice.html", context! { case, catalogue, clerk => session.person.sub }))
}

async fn letter(
    State(state): State<AppState>,
    session: Session,
    Path((case_id, department)): Path<(String, String)>,
) -> PageResult {
    let (case, _) = case_and_catalogue(&state, &session, &case_id).await?;
    let not_found =
        || crate::PageError::Api(ApiError::Problem { status: 404, code: "not_found".into(), errors: vec![] });
    let department: Department = serde_json::from_value(Value::from(department)).map_err(|_| not_found())?;
    let lane = case["lanes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["department"] == department.as_str())
        .cloned()
        .ok_or_else(not_found)?;
    let kind = match lane["status"].as_str() {
        Some("approved" | "disbursed") => "granted",
        Some("rejected") => "refused",
        _ => {
            return Ok(message_page(
                StatusCode::CONFLICT,
                "尚无决定",
                "该部门尚未作出决定；作出批准或不予救助的决定后才能打印告知书。",
            ));
        }
    };
    Ok(page("letter.html", context! { case, lane, kind }))
}
