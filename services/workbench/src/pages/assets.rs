//! The static assets, embedded in the binary: the hall's network may reach
//! no internet, and one binary is the whole workbench. htmx is vendored
//! (BSD Zero Clause licence, `assets/htmx-LICENSE`); no inline script or
//! style anywhere, so the content security policy needs no exceptions.

use crate::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const ASSETS: &[(&str, &str, &str)] = &[
    ("htmx-2.0.8.min.js", "text/javascript; charset=utf-8", include_str!("../../assets/htmx-2.0.8.min.js")),
    ("workbench.js", "text/javascript; charset=utf-8", include_str!("../../assets/workbench.js")),
    ("workbench.css", "text/css; charset=utf-8", include_str!("../../assets/workbench.css")),
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(asset))
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=3600")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "").into_response(),
    }
}
