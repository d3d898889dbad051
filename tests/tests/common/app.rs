//! A minimal service built from the platform libraries the way the real
//! services are: an endpoint that appends an event and writes its
//! integration event to the outbox in one transaction.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use onedoor_contracts::CloudEvent;
use onedoor_contracts::intake::MaterialsSupplemented;
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, outbox};
use onedoor_http_kit::{ApiJson, ApiResult, Authenticator, Role, Staff};
use onedoor_telemetry::propagation::TraceHeaders;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SupplyMaterials {
    case_id: Uuid,
    materials: Vec<String>,
}

async fn supply_materials(
    staff: Staff,
    State(pool): State<PgPool>,
    ApiJson(body): ApiJson<SupplyMaterials>,
) -> ApiResult<StatusCode> {
    staff.require(&[Role::WindowClerk])?;
    let now = chrono::Utc::now();
    let envelope = CloudEvent::new(
        MaterialsSupplemented {
            case_id: body.case_id,
            referral_ids: vec![],
            materials: body.materials,
            supplemented_at: now,
        },
        now,
    );
    let trace = TraceHeaders::current();
    let mut tx = pool.begin().await?;
    onedoor_event_store::append(
        &mut tx,
        "case",
        &body.case_id.to_string(),
        ExpectedVersion::Any,
        &[NewEvent::new("MaterialsSupplemented", 1, serde_json::to_value(&envelope.data).unwrap())],
        &EventMetadata {
            correlation_id: Some(body.case_id),
            causation_id: None,
            actor: staff.id().to_string(),
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        },
    )
    .await?;
    outbox::enqueue(&mut tx, &onedoor_event_store::outbox::OutboxMessage::announcing(&envelope).unwrap()).await?;
    tx.commit().await?;
    Ok(StatusCode::CREATED)
}

/// A handler bug whose panic message quotes personal data.
async fn panicking() -> StatusCode {
    let id_number = "11010519491231002X";
    let (head, _) = id_number.split_at(40);
    if head.is_empty() { StatusCode::OK } else { StatusCode::ACCEPTED }
}

/// Serves the test service on a free port; returns its base URL.
pub async fn spawn(pool: PgPool) -> String {
    let api = axum::Router::new()
        .route("/api/v1/cases/{case_id}/materials", post(supply_materials))
        .route("/api/v1/panic", post(panicking))
        .with_state(pool.clone());
    let router = onedoor_http_kit::service_router(
        api,
        onedoor_http_kit::openapi::document(utoipa::openapi::OpenApiBuilder::new().build()),
        Arc::new(Authenticator::hs256(onedoor_test_support::driver::SECRET.as_bytes())),
        onedoor_http_kit::health::Readiness { postgres: Some(pool), nats: None },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(onedoor_http_kit::serve(listener, router, std::future::pending()));
    format!("http://{addr}")
}

pub fn token(role: Role) -> String {
    onedoor_test_support::driver::tokens::token(role, Some("330102001"), None, "clerk-7")
}
