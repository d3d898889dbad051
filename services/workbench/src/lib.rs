//! The workbench (工作台): the web pages of the people OneDoor is for. Window
//! clerks accept applications, print the receipt and the one-time notice,
//! and follow each case in one view; departments' caseworkers and approvers
//! work their inbox; operators watch dead letters and lag.
//!
//! Pages are rendered on the server (`render`, `templates/`) and updated in
//! place with htmx; every asset is embedded in the binary, so a service hall
//! whose network reaches no internet still gets the whole page. The
//! workbench is a client of the five REST APIs like any other (`api`): it
//! calls them with the signed-in person's token (`session`) and keeps
//! nothing of its own. What a page needs that no API gives is added to the
//! API, never read from a service's database.

pub mod api;
pub mod pages;
pub mod render;
pub mod session;
pub mod sign_in;
pub mod wording;

use anyhow::Context;
use api::{Api, ApiError};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use session::Signer;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The workbench's port, after the five APIs'.
pub const DEFAULT_PORT: u16 = 8085;
pub const PORT_ENV: &str = "WORKBENCH_PORT";

#[derive(Debug, Clone, clap::Parser)]
#[command(about = "OneDoor workbench: the web pages of the window, the departments and operators")]
pub struct Config {
    #[arg(long, env = PORT_ENV, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    #[arg(long, env = "ONEDOOR_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Signs the session cookies; at least 32 bytes, the same on every
    /// replica. Development sign-in without it uses a key of the process.
    #[arg(long, env = "WORKBENCH_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,
    /// The address people reach the workbench at (`https://…` makes the cookie `Secure`).
    #[arg(long, env = "WORKBENCH_PUBLIC_URL", default_value = "http://localhost:8085")]
    pub public_url: String,
    /// Development sign-in (`/dev-login`): choose a role, township and
    /// department. Never set in production.
    #[arg(long, env = "ONEDOOR_DEV_LOGIN", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub dev_login: bool,
    /// The secret development tokens are signed with (the APIs' `ONEDOOR_JWT_SECRET`).
    #[arg(long, env = "ONEDOOR_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[command(flatten)]
    pub oidc: sign_in::OidcConfig,
}

impl Config {
    /// Each API's base URL: `<SERVICE>_URL` (e.g. `INTAKE_URL`,
    /// `MEDICAL_AID_URL`), by default the service's port on this machine.
    pub fn api_urls() -> BTreeMap<String, String> {
        onedoor_contracts::aid_line::services()
            .into_iter()
            .map(|s| {
                let var = format!("{}_URL", s.service.to_uppercase().replace('-', "_"));
                let url = std::env::var(&var)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| format!("http://127.0.0.1:{}", s.default_port));
                (s.service.to_string(), url.trim_end_matches('/').to_string())
            })
            .collect()
    }
}

#[derive(Clone)]
pub struct AppState {
    pub api: Arc<Api>,
    pub signer: Signer,
    pub sign_in: Arc<sign_in::SignIn>,
    /// How long the case view's live part waits at intake for a change
    /// ([`pages::LIVE_WAIT`]; tests shorten it).
    pub live_wait: std::time::Duration,
}

impl AppState {
    /// `api_urls` maps each service name to its base URL ([`Config::api_urls`]).
    pub fn new(config: &Config, api_urls: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let secure = config.public_url.starts_with("https://");
        let key = match &config.session_key {
            Some(key) => key.as_bytes().to_vec(),
            None if config.dev_login => {
                tracing::warn!("WORKBENCH_SESSION_KEY unset: sessions end when this process does (development only)");
                session::random_token(32).into_bytes()
            }
            None => anyhow::bail!("set WORKBENCH_SESSION_KEY (at least 32 bytes, the same on every replica)"),
        };
        let signer = Signer::new(key, secure).map_err(anyhow::Error::msg)?;
        let sign_in = sign_in::SignIn::configure(config).context("configuring sign-in")?;
        Ok(Self { api: Arc::new(Api::new(api_urls)?), signer, sign_in: Arc::new(sign_in), live_wait: pages::LIVE_WAIT })
    }
}

/// Every page and asset, with the security headers on every answer.
pub fn router(state: AppState) -> Router {
    let health = onedoor_http_kit::health::router(onedoor_http_kit::health::Readiness::default());
    Router::new()
        .merge(pages::routes())
        .merge(sign_in::routes())
        .with_state(state)
        .merge(health)
        .fallback(|| async {
            render::message_page(StatusCode::NOT_FOUND, "页面不存在", "没有这个页面，请从导航栏进入。")
        })
        .layer(axum::middleware::map_response(security_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            render::message_page(StatusCode::INTERNAL_SERVER_ERROR, "系统错误", "系统内部错误，请稍后重试。")
        }))
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
        .layer(axum::middleware::from_fn(onedoor_http_kit::request_span))
}

/// No inline script or style anywhere, so the policy needs no exceptions.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages hold personal data: never kept by the browser or a proxy.
        set(h, "cache-control", "no-store");
    }
    response
}

/// What a page handler can fail with: shown as a page in Chinese.
#[derive(Debug)]
pub enum PageError {
    Api(ApiError),
    Session(session::Rejection),
    /// The signed-in role has no business on this page.
    WrongRole,
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<session::Rejection> for PageError {
    fn from(e: session::Rejection) -> Self {
        Self::Session(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Session(r) => r.into_response(),
            Self::Api(e) if e.status() == 401 => Redirect::to("/sign-in").into_response(),
            Self::Api(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
                let title = match e.status() {
                    403 => "无权办理",
                    404 => "未找到",
                    409 | 412 | 422 => "未能办理",
                    503 | 502 => "系统繁忙",
                    _ => "操作未成功",
                };
                render::message_page(status, title, &wording::message_or_code(e.code()))
            }
            Self::WrongRole => render::message_page(
                StatusCode::FORBIDDEN,
                "无权访问",
                "此页面不属于您的岗位。请从导航栏进入您的工作页面。",
            ),
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// Runs the workbench until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let telemetry = onedoor_telemetry::init("workbench")?;
    let result = async {
        let state = AppState::new(&config, &Config::api_urls())?;
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
        tracing::info!(address = %listener.local_addr()?, "workbench listening");
        onedoor_http_kit::serve(listener, router(state), onedoor_http_kit::shutdown_signal()).await?;
        anyhow::Ok(())
    }
    .await;
    telemetry.shutdown();
    result
}
