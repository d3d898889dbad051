//! The auditors' endpoints on every service: the trail, filtered, and the
//! chain's verification. Auditors only; they see ids and actions, never
//! the personal data the entries are about.

use crate::chain::{self, SealingKey, Verification};
use axum::extract::State;
use chrono::{DateTime, Utc};
use onedoor_http_kit::{ApiQuery, ApiResult, FieldError, Problem, Role, Staff};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The trail's database and the chain's key.
#[derive(Clone)]
pub struct Trail {
    pub pool: PgPool,
    pub key: SealingKey,
}

fn routes() -> OpenApiRouter<Trail> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(verification))
}

/// The auditors' endpoints, and their OpenAPI document.
pub fn router(trail: Trail) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes().split_for_parts();
    (router.with_state(trail), api)
}

/// The auditors' endpoints' OpenAPI document alone (for the checked-in documents).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only entries about this case.
    case_id: Option<Uuid>,
    /// Only entries about this referral.
    referral_id: Option<Uuid>,
    /// Only entries about this household.
    household_id: Option<Uuid>,
    /// Only entries of this member of staff (the token's `sub`).
    actor: Option<String>,
    /// From this time on (RFC 3339, inclusive).
    from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339, exclusive).
    to: Option<DateTime<Utc>>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One entry of the trail.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
struct AuditEntry {
    entry_id: i64,
    at: DateTime<Utc>,
    /// The member of staff (token `sub`).
    actor: String,
    role: String,
    /// `METHOD /route/{template}` and the names of the query's parameters.
    action: String,
    /// The HTTP status of the answer.
    outcome: i16,
    case_id: Option<Uuid>,
    referral_id: Option<Uuid>,
    household_id: Option<Uuid>,
    document_id: Option<Uuid>,
    /// The purpose stated, where one is asked.
    purpose: Option<String>,
    trace_id: Option<String>,
    /// Position in the hash chain; `null` until sealed (seconds).
    seq: Option<i64>,
    /// The entry's hash (hex); `null` until sealed.
    hash: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct AuditPage {
    /// Newest first.
    items: Vec<AuditEntry>,
    next_cursor: Option<String>,
}

/// The audit trail of this service: who read or changed what, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage)))]
#[tracing::instrument(name = "audit trail", skip_all)]
async fn list(
    staff: Staff,
    State(Trail { pool, .. }): State<Trail>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<axum::Json<AuditPage>> {
    staff.require(&[Role::Auditor])?;
    let mut errors = Vec::new();
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        errors.push(FieldError::new("limit", "out_of_range", "between 1 and 500"));
    }
    let before = match q.cursor.as_deref().map(str::parse::<i64>) {
        Some(Ok(id)) if id > 0 => Some(id),
        Some(_) => {
            errors.push(FieldError::new("cursor", "invalid_cursor", "use next_cursor of a previous page"));
            None
        }
        None => None,
    };
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        errors.push(FieldError::new("to", "before_from", "to must be after from"));
    }
    if q.actor.as_deref().is_some_and(|a| a.trim().is_empty() || a.chars().count() > 128) {
        errors.push(FieldError::new("actor", "invalid_value", "a staff id of 1 to 128 characters"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let mut query = sqlx::QueryBuilder::new(
        "SELECT entry_id, at, actor, role, action, outcome, case_id, referral_id, household_id, document_id, \
         purpose, trace_id, seq, encode(hash, 'hex') AS hash FROM audit_trail WHERE true",
    );
    if let Some(id) = q.case_id {
        query.push(" AND case_id = ").push_bind(id);
    }
    if let Some(id) = q.referral_id {
        query.push(" AND referral_id = ").push_bind(id);
    }
    if let Some(id) = q.household_id {
        query.push(" AND household_id = ").push_bind(id);
    }
    if let Some(actor) = &q.actor {
        query.push(" AND actor = ").push_bind(actor);
    }
    if let Some(from) = q.from {
        query.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = q.to {
        query.push(" AND at < ").push_bind(to);
    }
    if let Some(before) = before {
        query.push(" AND entry_id < ").push_bind(before);
    }
    query.push(" ORDER BY entry_id DESC LIMIT ").push_bind(limit + 1);
    let mut items: Vec<AuditEntry> = query.build_query_as().fetch_all(&pool).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.entry_id.to_string())
    } else {
        None
    };
    Ok(axum::Json(AuditPage { items, next_cursor }))
}

/// Verifies the trail's hash chain from its oldest entry to its head and
/// names the first broken link.
#[utoipa::path(get, path = "/api/v1/audit/verification", tag = "audit",
    responses((status = 200, body = Verification)))]
#[tracing::instrument(name = "audit verification", skip_all)]
async fn verification(staff: Staff, State(trail): State<Trail>) -> ApiResult<axum::Json<Verification>> {
    staff.require(&[Role::Auditor])?;
    Ok(axum::Json(chain::verify(&trail.pool, &trail.key).await?))
}
