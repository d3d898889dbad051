//! `/health/live` (the process answers) and `/health/ready` (it can serve
//! its API: PostgreSQL answers a query). Orchestrators restart on the first
//! and route traffic on the second.
//!
//! NATS is reported but never makes a service unready: the outbox keeps what
//! is accepted while the broker is away and the relay sends it when it
//! returns, so taking the API down with the broker would undo the point of
//! the outbox.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;

/// What `/health/ready` checks.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    pub postgres: Option<PgPool>,
    pub nats: Option<async_nats::Client>,
}

pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/health/live", get(|| async { axum::Json(json!({"status": "up"})) }))
        .route("/health/ready", get(ready))
        .with_state(readiness)
}

async fn ready(State(r): State<Readiness>) -> impl IntoResponse {
    let mut checks = serde_json::Map::new();
    let mut all_up = true;
    if let Some(pool) = &r.postgres {
        let query = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool);
        let up = matches!(tokio::time::timeout(Duration::from_secs(2), query).await, Ok(Ok(1)));
        all_up &= up;
        checks.insert("postgres".into(), if up { "up" } else { "down" }.into());
    }
    if let Some(nats) = &r.nats {
        let up = nats.connection_state() == async_nats::connection::State::Connected;
        checks.insert("nats".into(), if up { "up" } else { "down" }.into());
    }
    let status = if all_up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({"status": if all_up { "up" } else { "down" }, "checks": checks})))
}

/// Whether `GET /health/ready` on `127.0.0.1:port` answers 200: a blocking
/// probe for container health checks and for tooling waiting on a service.
pub fn probe_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let mut head = [0u8; 12];
    stream.write_all(b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_ok()
        && stream.read_exact(&mut head).is_ok()
        && &head == b"HTTP/1.1 200"
}

/// `<service> healthcheck`: exits 0 if this container's own `/health/ready`
/// answers 200, else 1. For container health checks in images without curl.
pub fn healthcheck_if_asked(port_env: &str, default_port: u16) {
    if std::env::args().nth(1).as_deref() != Some("healthcheck") {
        return;
    }
    let port = std::env::var(port_env).ok().and_then(|p| p.parse().ok()).unwrap_or(default_port);
    let ready = probe_ready(port);
    std::process::exit(if ready { 0 } else { 1 });
}
