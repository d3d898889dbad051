//! 运维: every service's dead letters and lag on one page, with replay.
//! The operators' endpoints of each API give it all; the page never shows a
//! payload (the APIs do not give one).

use super::{frame, require, submitted_form};
use crate::api::Target;
use crate::render::page;
use crate::session::Session;
use crate::{AppState, PageError, PageResult};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use minijinja::context;
use onedoor_http_kit::Role;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operations", get(overview))
        .route("/operations/{service}/dead-letters/{sequence}/replay", post(replay))
}

async fn overview(State(state): State<AppState>, session: Session) -> PageResult {
    require(&session, &[Role::Operator])?;
    let mut services = Vec::new();
    for target in Target::all() {
        let token = session.token.as_str();
        let (lag, dead) = tokio::join!(
            state.api.get(target, "/api/v1/admin/lag", token),
            state.api.get(target, "/api/v1/admin/dead-letters", token),
        );
        let reachable = lag.is_ok() || dead.is_ok();
        services.push(json!({
            "service": target.service(),
            "reachable": reachable,
            "lag": lag.unwrap_or(Value::Null),
            "dead_letters": dead.map(|d| d.get("items").cloned().unwrap_or(d)).unwrap_or(Value::Null),
        }));
    }
    Ok(page("operations.html", context! { ..frame(&session, "operations"), ..context! { services } }))
}

async fn replay(
    State(state): State<AppState>,
    session: Session,
    Path((service, sequence)): Path<(String, u64)>,
    body: Bytes,
) -> PageResult {
    require(&session, &[Role::Operator])?;
    submitted_form(&session, &body)?;
    let target = Target::all().into_iter().find(|t| t.service() == service).ok_or(PageError::WrongRole)?;
    state
        .api
        .post(target, &format!("/api/v1/admin/dead-letters/{sequence}/replay"), &session.token, &json!({}))
        .await?;
    Ok(Redirect::to("/operations").into_response())
}
