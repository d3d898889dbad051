//! What every OneDoor HTTP service shares, so that the five services answer
//! alike: problem+json errors ([`problem`], [`json`]), bearer-JWT staff
//! authentication ([`auth`]), health endpoints ([`health`]), OpenAPI with an
//! offline Swagger UI, request spans named after the route with the caller's
//! trace context as parent, and graceful shutdown on SIGTERM.

pub mod access;
pub mod auth;
pub mod etag;
pub mod health;
pub mod json;
pub mod openapi;
pub mod paging;
pub mod problem;
pub mod query;

pub use auth::{Authenticator, Claims, Role, Staff};
pub use json::ApiJson;
pub use problem::{FieldError, Problem};
pub use query::ApiQuery;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// Default request body limit: an application with its household is a few KiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// Assembles a service's router: its API routes with their OpenAPI document
/// (completed by [`openapi::document`]) at `/api-docs/openapi.json` and
/// `/swagger-ui/`, the health endpoints, the token verifier, the body limit,
/// request spans and a problem+json fallback.
pub fn service_router(api: Router, openapi: OpenApi, auth: Arc<Authenticator>, readiness: health::Readiness) -> Router {
    api.merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", openapi))
        .merge(health::router(readiness))
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this resource does not take that method",
            )
        })
        .layer(axum::Extension(auth))
        // A handler that panics answers a problem+json 500 (never a dropped
        // connection); the panic's message, which may hold what the client
        // sent, is neither answered nor logged (see `onedoor_telemetry`).
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            Problem::internal().into_response()
        }))
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(middleware::from_fn(refuse_oversized_headers))
        .layer(middleware::from_fn(request_span))
}

/// More header bytes than any OneDoor client sends (a bearer token is a few KiB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Requests with oversized headers (a token padded to exhaust the verifier,
/// say) get a problem+json 431, never an empty answer.
async fn refuse_oversized_headers(request: Request, next: Next) -> Response {
    let size: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if size > MAX_HEADER_BYTES {
        return Problem::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_too_large",
            format!("the request's headers are over {} KiB", MAX_HEADER_BYTES / 1024),
        )
        .into_response();
    }
    next.run(request).await
}

/// One server span per request, named `METHOD /route/{param}` after the
/// OpenTelemetry HTTP conventions, child of the caller's `traceparent`.
/// Server errors are logged here, once; their detail never reaches the client.
pub async fn request_span(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.to_string(),
    };
    let span = tracing::info_span!(
        "request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        http.route = route.as_deref().unwrap_or(""),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(onedoor_telemetry::propagation::extract_http(request.headers()));
    let started = std::time::Instant::now();
    async move {
        let response = next.run(request).await;
        let status = response.status();
        onedoor_metrics::metrics().http_request(
            method.as_str(),
            route.as_deref().unwrap_or("unmatched"),
            status.as_u16(),
            started.elapsed(),
        );
        let span = tracing::Span::current();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            tracing::error!(status = status.as_u16(), "request failed");
        }
        response
    }
    .instrument(span)
    .await
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// Resolves on SIGTERM (orchestrators) or Ctrl-C (a terminal).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Maps an internal error to a 500, logging the cause (never sent to the client).
pub fn internal_error(error: impl std::fmt::Display) -> Problem {
    tracing::error!(%error, "internal error");
    Problem::internal()
}

impl From<onedoor_event_store::StoreError> for Problem {
    fn from(e: onedoor_event_store::StoreError) -> Self {
        match e {
            onedoor_event_store::StoreError::Conflict { .. } => {
                Problem::conflict("concurrent_update", "the record was changed by someone else; reload and retry")
            }
            onedoor_event_store::StoreError::Database(e) => e.into(),
            onedoor_event_store::StoreError::PersonalData(onedoor_personal_data::KeyringError::Erased) => {
                Problem::erased(
                    "personal_data_erased",
                    "the household's personal data was erased at the end of its retention period",
                )
            }
            other => internal_error(other),
        }
    }
}

/// The problem code of a transaction the database aborted to break a
/// deadlock or a serialization conflict: [`with_retries`] runs it again.
pub const DATABASE_CONFLICT: &str = "database_conflict";

/// Runs a command's transaction again when the database aborted it for a
/// deadlock or a serialization failure (two clerks at once for one person),
/// up to three times; after that the answer is a 503 with `Retry-After`,
/// never a 500.
pub async fn with_retries<T, F, Fut>(mut attempt: F) -> ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(problem) if problem.code == DATABASE_CONFLICT && tries < 3 => {
                tries += 1;
                tracing::info!(tries, "transaction aborted by the database; running it again");
                tokio::time::sleep(std::time::Duration::from_millis(10 * tries)).await;
            }
            other => return other,
        }
    }
}

impl From<sqlx::Error> for Problem {
    /// A database that cannot be reached, or whose connections are all in
    /// use for longer than the pool's acquire timeout, is a 503 the client
    /// may retry (`Retry-After`), not a request hanging for a minute. So is
    /// one that drops the connection itself: a connection exception (class
    /// 08), or a server shutting down, crashing or failing over
    /// (57P01–57P03: CloudNativePG's switchover ends connections with
    /// 57P01). A deadlock or serialization failure is [`DATABASE_CONFLICT`]
    /// (503 if [`with_retries`] gives up).
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && matches!(db.code().as_deref(), Some("40001" | "40P01"))
        {
            return Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                DATABASE_CONFLICT,
                "the request met a concurrent one; retry shortly",
            );
        }
        // Text PostgreSQL cannot store (a NUL character) that got past the
        // extractors is the client's error, not the server's.
        if let sqlx::Error::Database(db) = &e
            && db.code().as_deref() == Some("22021")
        {
            return Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_text",
                "the request holds a character that cannot be stored (NUL)",
            );
        }
        let unreachable = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
            sqlx::Error::Database(db) => {
                db.code().is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03"))
            }
            _ => false,
        };
        if !unreachable {
            return internal_error(e);
        }
        if matches!(e, sqlx::Error::PoolTimedOut) {
            onedoor_metrics::metrics().pool_timeouts.inc();
        }
        tracing::warn!(error = %e, "database unavailable");
        Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the service cannot reach its database just now; retry shortly",
        )
    }
}

/// Lets handlers return `Result<_, Problem>`.
pub type ApiResult<T> = Result<T, Problem>;

/// Helper for handlers that answer with a status and a JSON body.
pub fn json_response<T: serde::Serialize>(status: axum::http::StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// How a browser is to treat a stored file.
#[derive(Debug, Clone, Copy)]
pub enum Disposition<'a> {
    /// Saved, under a name made of this id and the type's extension (the APIs).
    Attachment(&'a str),
    /// Shown in the page's place (the workbench's viewer).
    Inline,
}

/// A stored file (a scan): its type, never sniffed by the browser, never cached.
pub fn file_response(content_type: &str, disposition: Disposition<'_>, bytes: bytes::Bytes) -> Response {
    use axum::http::{HeaderValue, header};
    let disposition = match disposition {
        Disposition::Inline => "inline".to_string(),
        Disposition::Attachment(id) => {
            let extension = match content_type {
                "image/jpeg" => "jpg",
                "image/png" => "png",
                "application/pdf" => "pdf",
                _ => "bin",
            };
            format!("attachment; filename=\"{id}.{extension}\"")
        }
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, HeaderValue::from_str(content_type).ok()),
        (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).ok()),
        (header::X_CONTENT_TYPE_OPTIONS, Some(HeaderValue::from_static("nosniff"))),
        (header::CACHE_CONTROL, Some(HeaderValue::from_static("no-store"))),
    ] {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
    response
}
