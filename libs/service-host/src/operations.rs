//! What operators need of every service, without personal data: the
//! messages its consumers could not process (list and replay them once the
//! cause is fixed), and how far behind its consumers and relay are.
//!
//! A replay runs here, in the service whose consumer failed: its handler
//! takes the dead letter again (`consumer::replay`) and the operator gets
//! the outcome in the answer. It is never published again on the original
//! subject, which is another service's.

use async_nats::jetstream;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use onedoor_http_kit::{ApiQuery, ApiResult, Problem, Role, Staff, internal_error};
use onedoor_messaging::consumer::{HandlerError, ReplayError, Replayed};
use onedoor_messaging::dead_letter::{self, DeadLetter};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Clone)]
pub struct Operations {
    /// The service's name: its dead letters are in its own stream.
    pub service: String,
    pub js: jetstream::Context,
    pub pool: PgPool,
    /// (stream, durable) of each consumer the service runs.
    pub consumers: Vec<(String, String)>,
    /// How each consumer (by durable name) replays one of its dead letters.
    pub replayers: Replayers,
}

/// Each consumer's [`Replayer`], by durable name.
#[derive(Clone, Default)]
pub struct Replayers(pub HashMap<String, Replayer>);

impl std::fmt::Debug for Replayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Replays one dead letter, as read, through its consumer's handler.
pub type Replayer = Arc<
    dyn Fn(dead_letter::Fetched) -> Pin<Box<dyn Future<Output = Result<Replayed, ReplayError>> + Send>> + Send + Sync,
>;

fn routes() -> OpenApiRouter<Operations> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(replay)).routes(routes!(lag))
}

/// The operators' endpoints and their OpenAPI document.
pub fn router(ops: Operations) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes().split_for_parts();
    (router.with_state(ops), api)
}

/// The operators' endpoints' OpenAPI document alone (for the checked-in documents).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The most dead letters one listing reads (each is a request to the broker).
const MAX_LISTED: usize = 10_000;

#[derive(Debug, Serialize, ToSchema)]
struct DeadLetterPage {
    items: Vec<DeadLetter>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// At most this many (default 100, at most 10,000).
    #[param(minimum = 0)]
    limit: Option<usize>,
}

/// Dead letters of this service's consumers (ids, subjects and reasons; no payloads).
#[utoipa::path(get, path = "/api/v1/admin/dead-letters", tag = "operations", params(ListQuery),
    responses((status = 200, body = DeadLetterPage)))]
#[tracing::instrument(name = "list dead letters", skip_all)]
async fn list(
    staff: Staff,
    State(ops): State<Operations>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<axum::Json<DeadLetterPage>> {
    staff.require(&[Role::Operator])?;
    let limit = q.limit.unwrap_or(100).min(MAX_LISTED);
    let items = dead_letter::list(&ops.js, &ops.service, limit).await.map_err(internal_error)?;
    Ok(axum::Json(DeadLetterPage { items, next_cursor: None }))
}

/// Hands a dead letter to its consumer again, once the cause is fixed; it
/// is removed when handled, and kept when it fails again.
#[utoipa::path(post, path = "/api/v1/admin/dead-letters/{sequence}/replay", tag = "operations",
    params(("sequence" = u64, Path, description = "the dead letter's sequence in the service's dead-letter stream")),
    responses((status = 200, description = "handled (or found handled already); the dead letter is gone", body = DeadLetter),
              (status = 422, description = "`replay_failed`: it failed again for good; the dead letter stays", body = Problem),
              (status = 503, description = "`replay_failed`: it failed again for now (database busy); the dead letter stays", body = Problem)))]
#[tracing::instrument(name = "replay dead letter", skip_all, fields(sequence = %sequence))]
async fn replay(
    staff: Staff,
    State(ops): State<Operations>,
    Path(sequence): Path<String>,
) -> ApiResult<axum::Json<DeadLetter>> {
    staff.require(&[Role::Operator])?;
    let sequence: u64 = sequence.parse().map_err(|_| Problem::not_found("no such dead letter"))?;
    let Some(fetched) = dead_letter::fetch(&ops.js, &ops.service, sequence).await.map_err(internal_error)? else {
        return Err(Problem::not_found(format!("no dead letter {sequence}")));
    };
    let letter = fetched.letter.clone();
    let Some(replayer) = ops.replayers.0.get(&letter.consumer) else {
        return Err(Problem::not_found(format!("dead letter {sequence} is of a consumer this service no longer runs")));
    };
    match replayer(fetched).await {
        Ok(outcome) => {
            tracing::info!(sequence, consumer = %letter.consumer, ?outcome, "dead letter replayed");
            Ok(axum::Json(letter))
        }
        Err(ReplayError::NotFound(_) | ReplayError::OtherConsumer { .. }) => {
            Err(Problem::not_found(format!("no dead letter {sequence}")))
        }
        Err(ReplayError::Failed(HandlerError::Transient(reason))) => {
            Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "replay_failed", format!("it failed again: {reason}")))
        }
        Err(ReplayError::Failed(error)) => {
            Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "replay_failed", format!("it failed again: {error}")))
        }
        Err(ReplayError::Messaging(error)) => Err(internal_error(error)),
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct ConsumerLag {
    stream: String,
    consumer: String,
    /// Messages not yet delivered.
    pending: u64,
    /// Delivered, not yet acknowledged.
    ack_pending: usize,
    redelivered: usize,
}

#[derive(Debug, Serialize, ToSchema)]
struct Lag {
    consumers: Vec<ConsumerLag>,
    /// Integration events committed but not yet acknowledged by JetStream.
    outbox_backlog: i64,
}

/// Consumer lag and the relay's backlog.
#[utoipa::path(get, path = "/api/v1/admin/lag", tag = "operations", responses((status = 200, body = Lag)))]
#[tracing::instrument(name = "lag", skip_all)]
async fn lag(staff: Staff, State(ops): State<Operations>) -> ApiResult<axum::Json<Lag>> {
    staff.require(&[Role::Operator])?;
    let mut consumers = Vec::new();
    for (stream, durable) in &ops.consumers {
        let Ok(s) = ops.js.get_stream(stream).await else { continue };
        let Ok(info) = s.consumer_info(durable).await else { continue };
        consumers.push(ConsumerLag {
            stream: stream.clone(),
            consumer: durable.clone(),
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            redelivered: info.num_redelivered,
        });
    }
    let outbox_backlog = onedoor_event_store::outbox::unsent_count(&ops.pool).await?;
    Ok(axum::Json(Lag { consumers, outbox_backlog }))
}
