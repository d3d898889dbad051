//! The township's cases and the one case view. The view refreshes its lanes
//! and timeline by itself, so a clerk sees each department's step without
//! reloading: its live part asks `/cases/{id}/live` with the ETag it shows,
//! and that request waits at intake until the case changes ([`LIVE_WAIT`]),
//! so a step shows at once and an unchanged case costs one request every
//! half minute, not one every few seconds. The actions: handing in
//! materials and uploading their scans, adding an aid line (or re-routing a
//! returned one), handing the case over, closing it, withdrawing it.

use super::{all, field, frame, require, submitted_form, uuid_segment};
use crate::api::{ApiError, Target, Watched};
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
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases", get(list))
        .route("/cases/{case_id}", get(view))
        .route("/cases/{case_id}/live", get(live))
        .route("/cases/{case_id}/materials", post(hand_in))
        .route("/cases/{case_id}/withdraw", post(withdraw))
        .route("/cases/{case_id}/lines", post(add_line))
        .route("/cases/{case_id}/close", post(close))
        .route("/cases/{case_id}/handover", post(hand_over))
        .route(
            "/cases/{case_id}/documents",
            // The largest scan intake accepts, and the form around it.
            post(upload).layer(axum::extract::DefaultBodyLimit::max(onedoor_documents::MAX_DOCUMENT_BYTES + 64 * 1024)),
        )
        .route("/cases/{case_id}/documents/{document_id}", get(document))
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

/// The case as intake's API gives it, and its ETag (which the live part waits on).
async fn load(state: &AppState, session: &Session, case_id: uuid::Uuid) -> Result<(Value, String), ApiError> {
    match state.api.watch(Target::Intake, &case_path(case_id), &session.token, None, Duration::ZERO).await? {
        Watched::Changed { body, etag } => Ok((body, etag.unwrap_or_default())),
        // Not asked conditionally, so not answered so.
        Watched::Unchanged => Err(ApiError::Unreachable),
    }
}

fn case_path(case_id: uuid::Uuid) -> String {
    format!("/api/v1/cases/{case_id}")
}

/// How long the case view's live part waits at intake for the case to
/// change before it is answered "no change" (204); the page asks again
/// a second later ([`live_part`]), and at once after a change.
/// Below intake's longest wait (30 s) and any proxy's read timeout.
pub const LIVE_WAIT: Duration = Duration::from_secs(25);

/// The case page: the case, its scans and the catalogue the upload form names.
async fn case_page(
    state: &AppState,
    session: &Session,
    case_id: uuid::Uuid,
    status: StatusCode,
    notice: Option<Value>,
    line_form: Option<(Value, Value)>,
) -> PageResult {
    let (case, etag) = load(state, session, case_id).await?;
    let documents =
        state.api.get(Target::Intake, &format!("/api/v1/cases/{case_id}/documents"), &session.token).await?;
    let catalogue = state.api.get(Target::Intake, "/api/v1/materials", &session.token).await?;
    let (draft, errors) = line_form.unwrap_or_else(|| (json!({"values": {}, "line": ""}), json!({})));
    let context = context! {
        ..view_context(session, &case, live_part(state, &etag), notice),
        ..context! { documents => documents["items"].clone(), catalogue, draft, errors, lines => onedoor_contracts::Department::ALL.map(|d| d.as_str()) }
    };
    Ok(page_with_status(status, "case.html", context))
}

/// The case view again, with why an action was refused above it.
async fn refused(
    state: &AppState,
    session: &Session,
    case_id: uuid::Uuid,
    status: StatusCode,
    message: &str,
) -> PageResult {
    case_page(state, session, case_id, status, Some(json!({"kind": "error", "message": message})), None).await
}

/// Back to the case view after a change, with what was done.
fn done(case_id: uuid::Uuid, what: &str) -> PageResult {
    let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("done", what).finish();
    Ok(Redirect::to(&format!("/cases/{case_id}?{q}")).into_response())
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

/// How the live part asks for itself: with the ETag of the view it shows,
/// and again `every` seconds (a second after a wait ends unchanged).
fn live_part(state: &AppState, etag: &str) -> minijinja::Value {
    context! { etag, every => state.live_wait.as_secs() + 1 }
}

fn view_context(session: &Session, case: &Value, live: minijinja::Value, notice: Option<Value>) -> minijinja::Value {
    let status = case["status"].as_str().unwrap_or_default();
    let withdrawable = matches!(status, "awaiting_materials" | "in_progress");
    let open = !matches!(status, "closed" | "withdrawn");
    let returned = case["lanes"].as_array().into_iter().flatten().any(|l| l["status"] == "returned");
    context! {
        ..frame(session, "cases"),
        ..context! {
            case,
            outstanding => outstanding(case),
            withdrawable,
            open,
            closable => status == "decided",
            returned,
            notice,
            live,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ViewQuery {
    accepted: Option<String>,
    done: Option<String>,
}

async fn view(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let message = match (q.accepted.is_some(), q.done.as_deref()) {
        (true, _) => Some("申请已提交。请打印受理回执交给申请人。"),
        (_, Some("line")) => Some("已增加救助事项，材料齐全的已转办相关部门。"),
        (_, Some("closed")) => Some("已结案。"),
        (_, Some("handover")) => Some("已移交。"),
        (_, Some("document")) => Some("扫描件已上传。"),
        (_, Some("materials")) => Some("已登记交来的材料。"),
        (_, Some("withdrawn")) => Some("已撤回申请。"),
        _ => None,
    };
    let notice = message.map(|m| json!({"kind": "ok", "message": m}));
    case_page(&state, &session, uuid_segment(&case_id)?, StatusCode::OK, notice, None).await
}

#[derive(Debug, Deserialize)]
struct LiveQuery {
    /// The ETag of the view the page shows.
    etag: Option<String>,
}

/// The part of the case view that changes as departments act: at once if
/// the page's `etag` is not the case's, else as soon as the case changes,
/// else "no change" (204, which htmx leaves in place) after [`LIVE_WAIT`].
async fn live(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    // Only what can be a header (anything else is read as no ETag: at once).
    let shown = q.etag.as_deref().filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_graphic()));
    match state.api.watch(Target::Intake, &case_path(case_id), &session.token, shown, state.live_wait).await? {
        Watched::Changed { body, etag } => {
            let live = live_part(&state, &etag.unwrap_or_default());
            Ok(page("case_live.html", view_context(&session, &body, live, None)))
        }
        Watched::Unchanged => Ok(StatusCode::NO_CONTENT.into_response()),
    }
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
    simple_command(&state, &session, case_id, "materials", &json!({"materials": materials}), "materials").await
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
    if reason.is_empty() {
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, "请填写撤回原因。").await;
    }
    if !confirmed {
        let message = "请勾选“申请人确认撤回本次申请”。";
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, message).await;
    }
    simple_command(&state, &session, case_id, "withdraw", &json!({"reason": reason}), "withdrawn").await
}

/// Adds an aid line to the case (or re-routes a line a department returned).
async fn add_line(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    body: Bytes,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    let pairs = submitted_form(&session, &body)?;
    let line = field(&pairs, "line").unwrap_or_default();
    let values: serde_json::Map<String, Value> =
        pairs.iter().filter(|(k, _)| k.contains('.')).map(|(k, v)| (k.clone(), json!(v.trim()))).collect();
    let draft = json!({"values": values, "line": line});
    let Ok(department) = line.parse::<onedoor_contracts::Department>() else {
        let errors = json!({"line": "请选择救助项目。"});
        return case_page(&state, &session, case_id, StatusCode::BAD_REQUEST, None, Some((draft, errors))).await;
    };
    let value = |name: &str| field(&pairs, name).unwrap_or_default();
    let mut local = Vec::new();
    let request = super::application::line_request(department, &value, &mut local);
    let answer = if local.is_empty() {
        state.api.post(Target::Intake, &format!("/api/v1/cases/{case_id}/lines"), &session.token, &request).await
    } else {
        Err(ApiError::Problem { status: 400, code: "validation_failed".into(), errors: Vec::new() })
    };
    match answer {
        Ok(_) => done(case_id, "line"),
        Err(e @ ApiError::Problem { status: 400 | 409 | 422, .. }) => {
            // The API names a request's fields from its root; the form, `<line>.<field>`.
            let mut errors = serde_json::Map::new();
            for p in local.iter().chain(e.errors()) {
                let name = p.field.strip_suffix("_fen").unwrap_or(&p.field);
                let name = if name.contains('.') { name.to_string() } else { format!("{line}.{name}") };
                errors.insert(name, json!(super::application::field_message(&p.code)));
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let notice = json!({"kind": "error", "message": wording::message_or_code(e.code())});
            let errors = Value::Object(errors);
            case_page(&state, &session, case_id, status, Some(notice), Some((draft, errors))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Closes the case once every lane is final, recording how the applicant was told.
async fn close(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    body: Bytes,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    let pairs = submitted_form(&session, &body)?;
    let informed_by = field(&pairs, "informed_by").unwrap_or_default();
    if informed_by.is_empty() {
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, "请选择告知申请人的方式。").await;
    }
    let note = field(&pairs, "note").filter(|n| !n.is_empty());
    let body = json!({"informed_by": informed_by, "note": note});
    simple_command(&state, &session, case_id, "close", &body, "closed").await
}

/// Hands the case over to another clerk of the township.
async fn hand_over(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    body: Bytes,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    let pairs = submitted_form(&session, &body)?;
    let to = field(&pairs, "to").unwrap_or_default();
    if to.is_empty() {
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, "请填写接手人员的工号。").await;
    }
    simple_command(&state, &session, case_id, "handover", &json!({"to": to}), "handover").await
}

/// A command on the case whose refusals are shown above the case view.
async fn simple_command(
    state: &AppState,
    session: &Session,
    case_id: uuid::Uuid,
    action: &str,
    body: &Value,
    what: &str,
) -> PageResult {
    match state.api.post(Target::Intake, &format!("/api/v1/cases/{case_id}/{action}"), &session.token, body).await {
        Ok(_) => done(case_id, what),
        Err(e @ ApiError::Problem { status: 400 | 409 | 422, .. }) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            refused(state, session, case_id, status, &wording::message_or_code(e.code())).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Uploads a scan (a multipart form: the CSRF token, the material, the file).
async fn upload(
    State(state): State<AppState>,
    session: Session,
    Path(case_id): Path<String>,
    mut form: axum::extract::Multipart,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let case_id = uuid_segment(&case_id)?;
    let (mut csrf, mut material, mut file) = (None, None, None);
    while let Ok(Some(part)) = form.next_field().await {
        match part.name().unwrap_or_default() {
            "csrf" => csrf = part.text().await.ok(),
            "material" => material = part.text().await.ok(),
            "file" => {
                let declared = part.content_type().unwrap_or("application/octet-stream").to_string();
                match part.bytes().await {
                    Ok(bytes) => file = Some((declared, bytes)),
                    Err(_) => {
                        let message = "扫描件没有完整上传（不能超过 20 MB），请重新上传。";
                        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, message).await;
                    }
                }
            }
            _ => {}
        }
    }
    session.check_csrf(csrf.as_deref())?;
    let material = material.unwrap_or_default();
    let Some((declared, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, "请选择要上传的扫描件。").await;
    };
    if material.is_empty() {
        return refused(&state, &session, case_id, StatusCode::BAD_REQUEST, "请选择扫描件对应的材料。").await;
    }
    let q: String = form_urlencoded::Serializer::new(String::new()).append_pair("material", &material).finish();
    let path = format!("/api/v1/cases/{case_id}/documents?{q}");
    match state.api.upload(Target::Intake, &path, &session.token, &declared, bytes).await {
        Ok(_) => done(case_id, "document"),
        Err(e @ ApiError::Problem { status: 400 | 409 | 413 | 415, .. }) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let message = match e.code() {
                "payload_too_large" => "扫描件不能超过 20 MB。".to_string(),
                code => wording::message_or_code(code),
            };
            refused(&state, &session, case_id, status, &message).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A scan, shown in the browser (the clerk's view of intake's file).
async fn document(
    State(state): State<AppState>,
    session: Session,
    Path((case_id, document_id)): Path<(String, String)>,
) -> PageResult {
    require(&session, &[Role::WindowClerk])?;
    let (case_id, document_id) = (uuid_segment(&case_id)?, uuid_segment(&document_id)?);
    let path = format!("/api/v1/cases/{case_id}/documents/{document_id}");
    let (content_type, bytes) = state.api.file(Target::Intake, &path, &session.token).await?;
    Ok(onedoor_http_kit::file_response(&content_type, onedoor_http_kit::Disposition::Inline, bytes))
}
