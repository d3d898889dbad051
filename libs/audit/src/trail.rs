//! Writing the trail: one entry per request of a member of staff.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use onedoor_http_kit::Problem;
use onedoor_http_kit::access::{self, Access};
use sqlx::PgPool;
use uuid::Uuid;

/// One entry of the trail, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub actor: String,
    pub role: String,
    /// `METHOD /route/{template}`, with `?name&name` of the query's parameters.
    pub action: String,
    /// The HTTP status the request was answered with.
    pub outcome: u16,
    pub case_id: Option<Uuid>,
    pub referral_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    pub document_id: Option<Uuid>,
    pub purpose: Option<String>,
    pub trace_id: Option<String>,
}

/// Appends `entry` (unsealed; the sealer chains it).
pub async fn record(pool: &PgPool, entry: &Entry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_trail (actor, role, action, outcome, case_id, referral_id, household_id, document_id, \
         purpose, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(&entry.action)
    .bind(entry.outcome as i16)
    .bind(entry.case_id)
    .bind(entry.referral_id)
    .bind(entry.household_id)
    .bind(entry.document_id)
    .bind(&entry.purpose)
    .bind(&entry.trace_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Middleware (with the service's pool as state) recording every request
/// under `/api/v1/` that names a member of staff. A read whose entry cannot
/// be written is refused (503): nothing is shown that the trail does not
/// show; so is a disclosure asked with a stated purpose (unmasking ID
/// numbers is a POST). A command's entry that cannot be written is logged;
/// the command itself stands, and its events name who gave it.
pub async fn record_access(State(pool): State<PgPool>, request: Request, next: Next) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()) else {
        return next.run(request).await;
    };
    if !template.starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let asked = ids_in_path(&template, request.uri().path());
    let action = action(method.as_str(), &template, request.uri().query());
    let (response, noted) = access::noted(next.run(request)).await;
    let Some((actor, role)) = noted.actor.clone() else {
        return response;
    };
    let entry = Entry {
        actor,
        role: role.as_str().to_string(),
        action,
        outcome: response.status().as_u16(),
        case_id: asked.case_id.or(noted.case_id),
        referral_id: asked.referral_id.or(noted.referral_id),
        household_id: asked.household_id.or(noted.household_id),
        document_id: asked.document_id.or(noted.document_id),
        purpose: noted.purpose,
        trace_id: onedoor_telemetry::propagation::TraceHeaders::current().trace_id(),
    };
    // A request the service could not serve (its database away, say) is
    // answered without waiting a second time for a connection.
    let written = if response.status().is_server_error() {
        tokio::time::timeout(FAILED_REQUEST_BUDGET, record(&pool, &entry))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    } else {
        record(&pool, &entry).await
    };
    match written {
        Ok(()) => response,
        Err(error) if (method.is_safe() || entry.purpose.is_some()) && response.status().is_success() => {
            tracing::error!(%error, action = %entry.action, "audit entry not written; the read is refused");
            Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the access could not be recorded; retry shortly",
            )
            .into_response()
        }
        Err(error) => {
            tracing::error!(%error, action = %entry.action, "audit entry not written");
            response
        }
    }
}

/// How long the entry of a request that failed on the server may take.
const FAILED_REQUEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// The action as recorded: the route template and the names of the query's
/// parameters (a search by ID number shows as `?id_number`, never the number).
fn action(method: &str, template: &str, query: Option<&str>) -> String {
    let mut names: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() { format!("{method} {template}") } else { format!("{method} {template}?{}", names.join("&")) }
}

/// The records a path names, by the template's parameter names.
fn ids_in_path(template: &str, path: &str) -> Access {
    let mut ids = Access::default();
    for (name, value) in template.split('/').zip(path.split('/')) {
        let Some(name) = name.strip_prefix('{').and_then(|n| n.strip_suffix('}')) else { continue };
        let Ok(id) = Uuid::parse_str(value) else { continue };
        match name {
            "case_id" => ids.case_id = Some(id),
            "referral_id" => ids.referral_id = Some(id),
            "household_id" => ids.household_id = Some(id),
            "document_id" => ids.document_id = Some(id),
            _ => {}
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_names_the_route_and_the_query_parameters_but_not_their_values() {
        assert_eq!(action("GET", "/api/v1/cases", None), "GET /api/v1/cases");
        assert_eq!(
            action("GET", "/api/v1/cases", Some("status=decided&id_number=110105194912310021&limit=5")),
            "GET /api/v1/cases?id_number&limit&status"
        );
    }

    #[test]
    fn ids_come_from_the_path_by_their_parameter_names() {
        let case = Uuid::now_v7();
        let document = Uuid::now_v7();
        let ids = ids_in_path(
            "/api/v1/cases/{case_id}/documents/{document_id}",
            &format!("/api/v1/cases/{case}/documents/{document}"),
        );
        assert_eq!((ids.case_id, ids.document_id, ids.referral_id), (Some(case), Some(document), None));
        assert_eq!(ids_in_path("/api/v1/referrals/{referral_id}", "/api/v1/referrals/not-a-uuid").referral_id, None);
    }
}
