//! 审计: the auditors' page. Each service's chain verification at the top
//! (whole, or the first broken link), and one service's trail below,
//! filtered by case, actor and dates, newest first, page by page. The APIs
//! give ids and actions only, so the page shows no personal data.

use super::{frame, require};
use crate::api::Target;
use crate::render::page;
use crate::session::Session;
use crate::{AppState, PageResult};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use minijinja::context;
use onedoor_http_kit::Role;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(audit))
}

#[derive(Debug, Deserialize)]
struct Filters {
    service: Option<String>,
    case_id: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// The API's query for the filters, and the page's own (the next page's link).
fn queries(f: &Filters, service: &str) -> (String, String) {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut page = form_urlencoded::Serializer::new(String::new());
    page.append_pair("service", service);
    for (name, value) in [("case_id", given(&f.case_id)), ("actor", given(&f.actor))] {
        if let Some(value) = value {
            query.append_pair(name, &value);
            page.append_pair(name, &value);
        }
    }
    for (name, date) in [("from", given(&f.from)), ("to", given(&f.to))] {
        if let Some(date) = date {
            page.append_pair(name, &date);
            if let Some(at) = day_start(&date) {
                query.append_pair(name, &at);
            }
        }
    }
    if let Some(cursor) = given(&f.cursor) {
        query.append_pair("cursor", &cursor);
    }
    (query.finish(), page.finish())
}

/// `YYYY-MM-DD` (a date field) as the start of that day in China time.
fn day_start(date: &str) -> Option<String> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().map(|d| format!("{d}T00:00:00+08:00"))
}

async fn audit(State(state): State<AppState>, session: Session, Query(f): Query<Filters>) -> PageResult {
    require(&session, &[Role::Auditor])?;
    let token = session.token.as_str();
    let targets = Target::all();
    let chains = futures::future::join_all(targets.iter().map(|target| async {
        let verification = state.api.get(*target, "/api/v1/audit/verification", token).await;
        json!({"service": target.service(), "verification": verification.unwrap_or(Value::Null)})
    }))
    .await;
    let target =
        given(&f.service).and_then(|s| targets.iter().copied().find(|t| t.service() == s)).unwrap_or(Target::Intake);
    let (query, next) = queries(&f, target.service());
    let (trail, problem) = match state.api.get(target, &format!("/api/v1/audit?{query}"), token).await {
        Ok(trail) => (trail, None),
        Err(e) => (Value::Null, Some(crate::wording::message_or_code(e.code()).to_string())),
    };
    Ok(page(
        "audit.html",
        context! {
            ..frame(&session, "audit"),
            ..context! {
                chains,
                service => target.service(),
                services => targets.iter().map(|t| t.service()).collect::<Vec<_>>(),
                filters => json!({"case_id": given(&f.case_id), "actor": given(&f.actor), "from": given(&f.from), "to": given(&f.to)}),
                trail,
                problem,
                next,
            }
        },
    ))
}
