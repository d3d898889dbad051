//! The department's inbox and one referral: the household's facts, the
//! request, the materials, the policy's recommendation, the history, and the
//! steps the lane and the role allow now (签收, 补正, 拟办, 审批, 发放, 退回).
//! A button shows only when its step fits; the API still decides.

use super::{all, field, frame, require, submitted_form, uuid_segment};
use crate::api::{ApiError, Target};
use crate::render::{page, page_with_status};
use crate::session::Session;
use crate::{AppState, PageError, PageResult, wording};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use minijinja::context;
use onedoor_contracts::Department;
use onedoor_http_kit::Role;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/referrals", get(inbox))
        .route("/referrals/{referral_id}", get(detail))
        .route("/referrals/{referral_id}/{action}", post(act))
        .route("/referrals/{referral_id}/documents/{document_id}", get(document))
}

fn department(session: &Session) -> Result<Department, PageError> {
    require(session, &[Role::Caseworker, Role::Approver])?;
    session.person.department.ok_or(PageError::WrongRole)
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    status: Option<String>,
    overdue: Option<String>,
    township: Option<String>,
    cursor: Option<String>,
}

async fn inbox(State(state): State<AppState>, session: Session, Query(q): Query<InboxQuery>) -> PageResult {
    let d = department(&session)?;
    let status = q.status.filter(|s| wording::codes("lane_status").contains(&s.as_str()));
    let overdue = q.overdue.as_deref() == Some("true");
    let township = q.township.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let filters = |cursor: Option<&str>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &status {
            query.append_pair("status", s);
        }
        if overdue {
            query.append_pair("overdue", "true");
        }
        if let Some(t) = &township {
            query.append_pair("township", t);
        }
        if let Some(c) = cursor {
            query.append_pair("cursor", c);
        }
        query.finish()
    };
    let path = format!("/api/v1/referrals?limit=20&{}", filters(q.cursor.as_deref().filter(|c| !c.is_empty())));
    let (referrals, problem) = match state.api.get(Target::Department(d), &path, &session.token).await {
        Ok(page) => (page, None),
        Err(e @ ApiError::Problem { status: 400, .. }) => {
            (json!({"items": []}), Some("乡镇（街道）代码应为9位数字。".to_string()).filter(|_| !e.errors().is_empty()))
        }
        Err(e) => return Err(e.into()),
    };
    let next_page = referrals["next_cursor"].as_str().map(|c| format!("/referrals?{}", filters(Some(c))));
    Ok(page(
        "referrals.html",
        context! {
            ..frame(&session, "referrals"),
            ..context! {
                referrals => referrals["items"],
                status, overdue, township, next_page, problem,
                statuses => wording::codes("lane_status"),
                department => d.as_str(),
                today => onedoor_contracts::china_time::today().to_string(),
            }
        },
    ))
}

/// The steps the lane's status and the person's role allow now.
fn steps(referral: &Value, role: Role) -> Vec<&'static str> {
    let status = referral["status"].as_str().unwrap_or_default();
    let mut steps = Vec::new();
    match role {
        Role::Caseworker => {
            if status == "referred" {
                steps.push("sign-for");
            }
            if matches!(status, "signed_for" | "under_review") {
                steps.extend(["proposal", "supplement-requests"]);
            }
            if status == "approved" {
                steps.push("disbursement");
            }
            if matches!(status, "referred" | "signed_for" | "supplement_requested" | "under_review") {
                steps.push("return");
            }
        }
        Role::Approver => {
            if status == "proposed" {
                steps.push("approval");
            }
            let running =
                matches!(status, "referred" | "signed_for" | "supplement_requested" | "under_review" | "proposed");
            if running && referral["extension"].is_null() {
                steps.push("deadline-extension");
            }
        }
        _ => {}
    }
    steps
}

async fn render_detail(
    state: &AppState,
    session: &Session,
    d: Department,
    referral_id: uuid::Uuid,
    notice: Option<Value>,
    unmasked: Option<Value>,
    status: StatusCode,
) -> PageResult {
    let referral =
        state.api.get(Target::Department(d), &format!("/api/v1/referrals/{referral_id}"), &session.token).await?;
    let catalogue = state.api.get(Target::Intake, "/api/v1/materials", &session.token).await.unwrap_or(Value::Null);
    let documents = state
        .api
        .get(Target::Department(d), &format!("/api/v1/referrals/{referral_id}/documents"), &session.token)
        .await?;
    let remaining = match (referral["approved_amount_fen"].as_i64(), referral["disbursed_amount_fen"].as_i64()) {
        (Some(approved), paid) => Some(approved - paid.unwrap_or(0)),
        _ => None,
    };
    Ok(page_with_status(
        status,
        "referral.html",
        context! {
            ..frame(session, "referrals"),
            ..context! {
                r => referral,
                steps => steps(&referral, session.person.role),
                catalogue => catalogue["items"],
                remaining,
                documents => documents["items"].clone(),
                notice,
                unmasked,
                can_unmask => session.person.role == Role::Caseworker,
                department => d.as_str(),
            }
        },
    ))
}

async fn detail(State(state): State<AppState>, session: Session, Path(referral_id): Path<String>) -> PageResult {
    let d = department(&session)?;
    render_detail(&state, &session, d, uuid_segment(&referral_id)?, None, None, StatusCode::OK).await
}

/// The API body of a step from the form, or the message to show instead.
fn step_body(action: &str, pairs: &[(String, String)]) -> Result<Value, String> {
    let text = |name: &str| field(pairs, name).filter(|v| !v.is_empty()).map(str::to_string);
    let amount = |name: &str| -> Result<Option<i64>, String> {
        match text(name) {
            None => Ok(None),
            Some(typed) => {
                wording::parse_yuan(&typed).map(Some).ok_or_else(|| "请填写金额（元），最多两位小数。".to_string())
            }
        }
    };
    Ok(match action {
        "sign-for" => json!({}),
        "unmask" => match text("purpose") {
            Some(purpose) => json!({"purpose": purpose}),
            None => return Err("查看完整身份号码须写明用途（例如：发放救助金）。".into()),
        },
        "supplement-requests" => {
            let materials = all(pairs, "materials");
            if materials.is_empty() {
                return Err("请勾选需要申请人补正的材料。".into());
            }
            json!({"materials": materials, "note": text("note")})
        }
        "proposal" => {
            let outcome = text("outcome").unwrap_or_else(|| "approve".into());
            let mut body = json!({"outcome": outcome, "reason": text("reason")});
            if outcome == "approve"
                && let Some(fen) = amount("amount")?
            {
                body["amount_fen"] = json!(fen);
            }
            if outcome == "reject" && text("reason").is_none() {
                return Err("不予救助须填写理由。".into());
            }
            body
        }
        "approval" => json!({"approve": text("approve").as_deref() != Some("false"), "reason": text("reason")}),
        "disbursement" => {
            let Some(fen) = amount("amount")? else { return Err("请填写发放金额。".into()) };
            json!({"amount_fen": fen, "channel": text("channel").unwrap_or_else(|| "bank_card".into()), "reference": text("reference")})
        }
        "deadline-extension" => match (text("deadline"), text("reason")) {
            (Some(deadline), Some(reason)) => json!({"deadline": deadline, "reason": reason}),
            _ => return Err("请填写新的办结期限和延期理由。".into()),
        },
        "return" => match text("reason") {
            Some(reason) => json!({"reason": reason}),
            None => return Err("请填写退回原因（应由哪个部门办理）。".into()),
        },
        _ => return Err("不支持此操作。".into()),
    })
}

async fn act(
    State(state): State<AppState>,
    session: Session,
    Path((referral_id, action)): Path<(String, String)>,
    body: Bytes,
) -> PageResult {
    let d = department(&session)?;
    let id = uuid_segment(&referral_id)?;
    let pairs = submitted_form(&session, &body)?;
    let refused = match step_body(&action, &pairs) {
        Err(message) => Some((StatusCode::BAD_REQUEST, message)),
        Ok(body) => {
            let path = format!("/api/v1/referrals/{id}/{action}");
            match state.api.post(Target::Department(d), &path, &session.token, &body).await {
                // The full numbers are shown on this answer only, never stored or redirected to.
                Ok(ids) if action == "unmask" => {
                    return render_detail(&state, &session, d, id, None, Some(ids), StatusCode::OK).await;
                }
                Ok(_) => None,
                Err(e @ ApiError::Problem { status: 400 | 403 | 409 | 412 | 422, .. }) => {
                    let detail =
                        e.errors().iter().map(|f| wording::message_or_code(&f.code)).collect::<Vec<_>>().join(" ");
                    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                    Some((status, format!("{} {detail}", wording::message_or_code(e.code())).trim().to_string()))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    match refused {
        None => Ok(Redirect::to(&format!("/referrals/{id}")).into_response()),
        Some((status, message)) => {
            let notice = json!({"kind": "error", "message": message});
            render_detail(&state, &session, d, id, Some(notice), None, status).await
        }
    }
}

/// A scan of the referral's materials, shown in the browser.
async fn document(
    State(state): State<AppState>,
    session: Session,
    Path((referral_id, document_id)): Path<(String, String)>,
) -> PageResult {
    let d = department(&session)?;
    let (id, document_id) = (uuid_segment(&referral_id)?, uuid_segment(&document_id)?);
    let path = format!("/api/v1/referrals/{id}/documents/{document_id}");
    let (content_type, bytes) = state.api.file(Target::Department(d), &path, &session.token).await?;
    Ok(onedoor_http_kit::file_response(&content_type, onedoor_http_kit::Disposition::Inline, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_fit_the_lane_and_the_role() {
        let r = |s: &str| json!({"status": s});
        assert_eq!(steps(&r("referred"), Role::Caseworker), ["sign-for", "return"]);
        assert_eq!(steps(&r("under_review"), Role::Caseworker), ["proposal", "supplement-requests", "return"]);
        assert_eq!(steps(&r("proposed"), Role::Caseworker), Vec::<&str>::new());
        assert_eq!(steps(&r("proposed"), Role::Approver), ["approval", "deadline-extension"]);
        let extended = json!({"status": "under_review", "extension": {"deadline": "2026-12-31"}});
        assert!(steps(&extended, Role::Approver).is_empty(), "a time limit is extended once");
        assert!(steps(&r("approved"), Role::Approver).is_empty());
        assert_eq!(steps(&r("approved"), Role::Caseworker), ["disbursement"]);
        assert!(steps(&r("disbursed"), Role::Caseworker).is_empty());
    }
}
