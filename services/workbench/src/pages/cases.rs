//! The township's cases and the one case view. The view refreshes its lanes
//! and timeline by itself (htmx polling of `/cases/{id}/live`), so a clerk
//! sees each department's step without reloading; the actions are handing
//! in materials and withdrawing.

use super::{all, field, frame, require, submitted_form, uuid_segment};
use crate::api::{ApiError, Target};
use crate::render::{page, page_with_status};
use crate::session::Session;
use crate::{AppState, PageResult, wording};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use minijinja::context;
use onedoor_http_kit::Role;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases", get(list))
        .route("/cases/{case_id}", get(view))
        .route("/cases/{case_id}/live", get(live))
        .route("/cases/{case_id}/materials", post(hand_in))
        .route("/cases/{case_id}/withdraw", post(withdraw))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    overdue: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

async fn list(State(state): State<AppState>, session: Session, Query(q): Query<ListQuery>) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let status = q.status.filter(|s| wording::codes("case_status").contains(&s.as_str()));
    let overdue = q.overdue.as_deref() == Some("true");
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let path =
        format!("/api/v1/cases?{}", api_query(status.as_deref(), overdue, search.as_deref(), q.cursor.as_deref()));
    let found = state.api.get(Target::Intake, &path, &session.token).await?;
    let mut next = form_urlencoded::Serializer::new(String::new());
    if let Some(s) = &status {
        next.append_pair("status", s);
    }
    if overdue {
        next.append_pair("overdue", "true");
    }
    if let Some(s) = &search {
        next.append_pair("q", s);
    }
    let next_page = found["next_cursor"].as_str().map(|c| {
        next.append_pair("cursor", c);
        format!("/cases?{}", next.finish())
    });
    Ok(page(
        "cases.html",
        context! {
            ..frame(&session, "cases"),
            ..context! {
                cases => found["items"],
                status, overdue, search,
                next_page,
                statuses => wording::codes("case_status"),
            }
        },
    ))
}

/// The list API's query: filters, the search (an ID number or a case number) and the page.
fn api_query(status: Option<&str>, overdue: bool, search: Option<&str>, cursor: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", "20");
    if let Some(s) = status {
        query.append_pair("status", s);
    }
    if overdue {
        query.append_pair("overdue", "true");
    }
    if let Some(s) = search {
        // An ID number is 18 characters, the first 17 digits; anything else is a case number.
        let looks_like_id = s.chars().count() == 18 && s.chars().take(17).all(|c| c.is_ascii_digit());
        query.append_pair(if looks_like_id { "id_number" } else { "case_number" }, s);
    }
    if let Some(c) = cursor.filter(|c| !c.is_empty()) {
        query.append_pair("cursor", c);
    }
    query.finish()
}

/// The case as intake's API gives it.
async fn load(state: &AppState, session: &Session, case_id: uuid::Uuid) -> Result<Value, ApiError> {
    state.api.get(Target::Intake, &format!("/api/v1/cases/{case_id}"), &session.token).await
}

/// The case view again, with why an action was refused above it.
async fn refused(
    state: &AppState,
    session: &Session,
    case_id: uuid::Uuid,
    status: StatusCode,
    message: &str,
) -> PageResult {
    let case = load(state, session, case_id).await?;
    let notice = json!({"kind": "error", "message": message});
    Ok(page_with_status(status, "case.html", view_context(session, &case, Some(notice))))
}

/// Items the window may hand in now: the one-time notice's, and those a department asked for.
fn outstanding(case: &Value) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    for m in case["missing_materials"].as_array().into_iter().flatten() {
        items.push(json!({"code": m["code"], "lines": m["needed_for"], "asked": false}));
    }
    for lane in case["lanes"].as_array().into_iter().flatten() {
        if lane["status"] != "supplement_requested" {
            continue;
        }
        for code in lane["supplement_items"].as_array().into_iter().flatten() {
            match items.iter_mut().find(|i| &i["code"] == code) {
                Some(i) => {
                    i["asked"] = json!(true);
                    if let Some(lines) = i["lines"].as_array_mut()
                        && !lines.contains(&lane["department"])
                    {
                        lines.push(lane["department"].clone());
                    }
                }
                None => items.push(json!({"code": code, "lines": [lane["department"]], "asked": true})),
            }
        }
    }
    items
}

fn view_context(session: &Session, case: &Value, notice: Option<Value>) -> minijinja::Value {
    let withdrawable = matches!(case["status"].as_str(), Some("awaiting_materials" | "in_progress"));
    context! {
        ..frame(session, "cases"),
        ..context! {
            case,
            outstanding => outstanding(case),
            withdrawable,
            notice,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ViewQuery {
    accepted: Option<String>,
}

async fn view(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case = load(&state, &session, uuid_segment(&case_id)?).await?;
    let notice = q.accepted.map(|_| json!({"kind": "ok", "message": "申请已提交。请打印受理回执交给申请人。"}));
    Ok(page("case.html", view_context(&session, &case, notice)))
}

/// The part of the case view that changes as departments act (htmx polling).
async fn live(State(state): State<AppState>, session: Session, Path(case_id): Path<String>) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case = load(&state, &session, uuid_segment(&case_id)?).await?;
    Ok(page("case_live.html", view_context(&session, &case, None)))
}

async fn hand_in(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    body: Bytes,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    let pairs = submitted_form(&session, &body)?;
    let materials = all(&pairs, "materials");
    if materials.is_empty() {
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, "请勾选申请人本次交来的材料。").await;
    }
    let body = json!({"materials": materials});
    match state.api.post(Target::Intake, &format!("/api/v1/cases/{case_id}/materials"), &session.token, &body).await {
        Ok(_) => Ok(Redirect::to(&format!("/cases/{case_id}")).into_response()),
        Err(e @ ApiError::Problem { status: 400 | 409 | 422, .. }) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            refused(&state, &session, case_id, status, &wording::message_or_code(e.code())).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn withdraw(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    body: Bytes,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    let pairs = submitted_form(&session, &body)?;
    let reason = field(&pairs, "reason").unwrap_or_default();
    let confirmed = field(&pairs, "confirm") == Some("yes");
    let refusal = if reason.is_empty() {
        Some("请填写撤回原因。")
    } else if !confirmed {
        Some("请勾选“申请人确认撤回本次申请”。")
    } else {
        None
    };
    let result = match refusal {
        Some(message) => Err(message.to_string()),
        None => {
            let body = json!({"reason": reason});
            match state
                .api
                .post(Target::Intake, &format!("/api/v1/cases/{case_id}/withdraw"), &session.token, &body)
                .await
            {
                Ok(_) => Ok(()),
                Err(e @ ApiError::Problem { status: 400 | 409 | 422, .. }) => Err(wording::message_or_code(e.code())),
                Err(e) => return Err(e.into()),
            }
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/cases/{case_id}")).into_response()),
        Err(message) => refused(&state, &session, case_id, StatusCode::BAD_REQUEST, &message).await,
    }
}
