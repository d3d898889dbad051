//! Signing in and out.
//!
//! Production: OpenID Connect, authorization code with PKCE (S256), against
//! the issuer whose tokens the APIs verify (`OIDC_ISSUER`, `OIDC_CLIENT_ID`,
//! optionally `OIDC_CLIENT_SECRET`). The access token it returns is what the
//! workbench sends to the APIs; its claims (`role`, `township`,
//! `department`) only choose the navigation: the APIs decide what is allowed.
//!
//! Development (`ONEDOOR_DEV_LOGIN=1`, set by `cargo xtask up`, never by the
//! production overlay): `/dev-login` lets you choose who you are and signs a
//! development token with `ONEDOOR_JWT_SECRET`, like `cargo xtask token`.

use crate::render::{message_page, page};
use crate::session::{COOKIE, Person, Session, random_token, read_cookie};
use crate::{AppState, Config};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use minijinja::context;
use onedoor_contracts::Department;
use onedoor_http_kit::{Claims, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// How long a development sign-in lasts: a working day.
const DEV_SESSION_SECONDS: i64 = 10 * 3600;
const OIDC_COOKIE: &str = "onedoor_oidc";

#[derive(Debug, Clone, clap::Args)]
pub struct OidcConfig {
    /// The identity provider's issuer URL (its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`).
    #[arg(long = "oidc-issuer", env = "OIDC_ISSUER")]
    pub issuer: Option<String>,
    #[arg(long = "oidc-client-id", env = "OIDC_CLIENT_ID", default_value = "onedoor-workbench")]
    pub client_id: String,
    /// For a confidential client; PKCE protects a public one.
    #[arg(long = "oidc-client-secret", env = "OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    #[arg(long = "oidc-scopes", env = "OIDC_SCOPES", default_value = "openid")]
    pub scopes: String,
}

/// How people sign in here.
#[derive(Debug)]
pub struct SignIn {
    oidc: Option<Oidc>,
    /// The development token secret, when development sign-in is on.
    dev_secret: Option<String>,
    public_url: String,
}

#[derive(Debug)]
struct Oidc {
    config: OidcConfig,
    issuer: String,
    http: reqwest::Client,
    discovery: OnceCell<Discovery>,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

/// What the browser carries between leaving for the identity provider and coming back.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    next: String,
    expires: i64,
}

impl SignIn {
    pub fn configure(config: &Config) -> anyhow::Result<Self> {
        let dev_secret = if config.dev_login {
            match &config.jwt_secret {
                Some(s) if !s.is_empty() => Some(s.clone()),
                _ => anyhow::bail!("ONEDOOR_DEV_LOGIN needs ONEDOOR_JWT_SECRET, the secret the APIs verify with"),
            }
        } else {
            None
        };
        let oidc = config.oidc.issuer.as_ref().filter(|i| !i.trim().is_empty()).map(|issuer| Oidc {
            config: config.oidc.clone(),
            issuer: issuer.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            discovery: OnceCell::new(),
        });
        if oidc.is_none() && dev_secret.is_none() {
            anyhow::bail!("set OIDC_ISSUER (production) or ONEDOOR_DEV_LOGIN=1 (development): nobody could sign in");
        }
        Ok(Self { oidc, dev_secret, public_url: config.public_url.trim_end_matches('/').to_string() })
    }

    fn redirect_uri(&self) -> String {
        format!("{}/oidc/callback", self.public_url)
    }
}

impl Oidc {
    async fn discovery(&self) -> anyhow::Result<&Discovery> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let d = self.http.get(&url).send().await?.error_for_status()?.json::<Discovery>().await?;
                anyhow::Ok(d)
            })
            .await
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_page))
        .route("/dev-login", get(dev_login).post(dev_login_form))
        .route("/oidc/start", get(oidc_start))
        .route("/oidc/callback", get(oidc_callback))
        .route("/sign-out", post(sign_out))
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only a path of this site: never an open redirect.
fn local_path(next: Option<&str>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\')).map(str::to_string)
}

async fn sign_in_page(State(state): State<AppState>, Query(q): Query<Next>) -> Response {
    let dev = state.sign_in.dev_secret.is_some();
    page(
        "sign_in.html",
        context! {
            oidc => state.sign_in.oidc.is_some(),
            dev,
            next => local_path(q.next.as_deref()).unwrap_or_default(),
            roles => ["window_clerk", "caseworker", "approver", "operator", "auditor"],
            departments => Department::ALL.map(|d| d.as_str()),
        },
    )
}

#[derive(Debug, Deserialize)]
struct DevLogin {
    role: Option<String>,
    township: Option<String>,
    department: Option<String>,
    sub: Option<String>,
    next: Option<String>,
}

async fn dev_login(State(state): State<AppState>, Query(q): Query<DevLogin>) -> Response {
    if q.role.is_none() {
        return sign_in_page(State(state), Query(Next { next: q.next })).await;
    }
    dev_session(&state, q)
}

async fn dev_login_form(State(state): State<AppState>, Form(q): Form<DevLogin>) -> Response {
    dev_session(&state, q)
}

/// The claims a development sign-in asks for, checked as the APIs would check a token.
fn dev_claims(q: &DevLogin) -> Result<Claims, &'static str> {
    let role: Role = serde_json::from_value(serde_json::Value::from(q.role.clone().unwrap_or_default()))
        .map_err(|_| "请选择岗位。")?;
    let filled = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let township = filled(&q.township);
    let department = match filled(&q.department) {
        Some(d) => Some(serde_json::from_value::<Department>(d.into()).map_err(|_| "请选择部门。")?),
        None => None,
    };
    match role {
        Role::WindowClerk
            if !township.as_deref().is_some_and(|t| t.len() == 9 && t.chars().all(|c| c.is_ascii_digit())) =>
        {
            return Err("窗口受理人员须填写9位乡镇（街道）代码。");
        }
        Role::Caseworker | Role::Approver if department.is_none() => return Err("经办人和审批人须选择部门。"),
        _ => {}
    }
    let sub = filled(&q.sub).unwrap_or_else(|| format!("{}-dev", role.as_str()));
    if sub.chars().count() > 64 {
        return Err("工号过长。");
    }
    let exp = chrono::Utc::now().timestamp() + DEV_SESSION_SECONDS;
    let (township, department) = match role {
        Role::WindowClerk => (township, None),
        Role::Caseworker | Role::Approver => (None, department),
        _ => (None, None),
    };
    Ok(Claims { sub, role, township, department, exp })
}

fn dev_session(state: &AppState, q: DevLogin) -> Response {
    let Some(secret) = &state.sign_in.dev_secret else {
        return message_page(StatusCode::NOT_FOUND, "页面不存在", "没有这个页面。");
    };
    let claims = match dev_claims(&q) {
        Ok(c) => c,
        Err(message) => return message_page(StatusCode::BAD_REQUEST, "无法登录", message),
    };
    let token = onedoor_http_kit::auth::mint_hs256(secret.as_bytes(), &claims);
    let person = Person::from_token(&token).expect("a token just minted");
    let next = local_path(q.next.as_deref()).unwrap_or_else(|| person.home().to_string());
    let session = Session::new(token, person, claims.exp);
    ([(header::SET_COOKIE, session.start(&state.signer))], Redirect::to(&next)).into_response()
}

fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

async fn oidc_start(State(state): State<AppState>, Query(q): Query<Next>) -> Response {
    let Some(oidc) = &state.sign_in.oidc else {
        return message_page(StatusCode::NOT_FOUND, "页面不存在", "未配置统一身份认证。");
    };
    let discovery = match oidc.discovery().await {
        Ok(d) => d,
        Err(error) => {
            tracing::warn!(error = %error, "the identity provider's discovery document is unreachable");
            return message_page(StatusCode::BAD_GATEWAY, "无法登录", "统一身份认证服务暂时无法访问，请稍后重试。");
        }
    };
    let pending = Pending {
        state: random_token(24),
        verifier: random_token(48),
        next: local_path(q.next.as_deref()).unwrap_or_default(),
        expires: chrono::Utc::now().timestamp() + 600,
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("redirect_uri", &state.sign_in.redirect_uri())
        .append_pair("scope", &oidc.config.scopes)
        .append_pair("state", &pending.state)
        .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if discovery.authorization_endpoint.contains('?') { '&' } else { '?' };
    // The provider's redirect back is another site's navigation: the pending
    // sign-in must travel with it, so its cookie is Lax; it lives ten minutes.
    let cookie = state.signer.cookie_across_sites(OIDC_COOKIE, &state.signer.seal(&pending), 600);
    ([(header::SET_COOKIE, cookie)], Redirect::to(&format!("{}{separator}{query}", discovery.authorization_endpoint)))
        .into_response()
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

async fn oidc_callback(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<Callback>) -> Response {
    let refused = |message: &str| message_page(StatusCode::BAD_REQUEST, "无法登录", message);
    let Some(oidc) = &state.sign_in.oidc else {
        return message_page(StatusCode::NOT_FOUND, "页面不存在", "未配置统一身份认证。");
    };
    if q.error.is_some() {
        return refused("统一身份认证未通过，请重新登录。");
    }
    let pending = read_cookie(&headers, OIDC_COOKIE).and_then(|c| state.signer.open::<Pending>(c));
    let (Some(pending), Some(code), Some(returned_state)) = (pending, q.code, q.state) else {
        return refused("登录请求已失效，请重新登录。");
    };
    if pending.expires < chrono::Utc::now().timestamp() || pending.state != returned_state {
        return refused("登录请求已失效，请重新登录。");
    }
    let Ok(discovery) = oidc.discovery().await else {
        return message_page(StatusCode::BAD_GATEWAY, "无法登录", "统一身份认证服务暂时无法访问，请稍后重试。");
    };
    let redirect_uri = state.sign_in.redirect_uri();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", oidc.config.client_id.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    if let Some(secret) = &oidc.config.client_secret {
        form.push(("client_secret", secret.as_str()));
    }
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let answer = oidc
        .http
        .post(&discovery.token_endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    let token = match answer {
        Ok(r) if r.status().is_success() => r.json::<TokenAnswer>().await.ok(),
        _ => None,
    };
    let Some(token) = token else {
        return refused("统一身份认证未通过，请重新登录。");
    };
    let Some(person) = Person::from_token(&token.access_token) else {
        return message_page(
            StatusCode::FORBIDDEN,
            "无法登录",
            "您的账号没有配置 OneDoor 岗位（角色、乡镇或部门），请联系管理员。",
        );
    };
    let expires = chrono::Utc::now().timestamp() + token.expires_in.unwrap_or(3600).clamp(60, DEV_SESSION_SECONDS);
    let next = if pending.next.is_empty() { person.home().to_string() } else { pending.next };
    let session = Session::new(token.access_token, person, expires);
    let clear = state.signer.cookie(OIDC_COOKIE, "", 0);
    // The provider's redirect here is a cross-site navigation: a redirect
    // onward would carry it on, and the browser would not send the new
    // SameSite=Strict session cookie with it. A page that moves on by itself
    // starts a navigation of this site's own.
    let mut response = crate::render::page("signed_in.html", minijinja::context! { next });
    response.headers_mut().append(header::SET_COOKIE, session.start(&state.signer).parse().expect("a cookie"));
    response.headers_mut().append(header::SET_COOKIE, clear.parse().expect("a cookie"));
    response
}

#[derive(Debug, Deserialize)]
struct SignOut {
    csrf: Option<String>,
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<SignOut>) -> Response {
    let session = read_cookie(&headers, COOKIE).and_then(|c| state.signer.open::<Session>(c));
    if let Some(session) = &session
        && session.check_csrf(f.csrf.as_deref()).is_err()
    {
        return crate::session::Rejection::Csrf.into_response();
    }
    let clear = state.signer.cookie(COOKIE, "", 0);
    let to = match &state.sign_in.oidc {
        Some(oidc) => match oidc.discovery().await.ok().and_then(|d| d.end_session_endpoint.clone()) {
            Some(end) => end,
            None => "/sign-in".to_string(),
        },
        None => "/sign-in".to_string(),
    };
    ([(header::SET_COOKIE, clear)], Redirect::to(&to)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/cases/1")), Some("/cases/1".into()));
        assert_eq!(local_path(Some("//evil.example/")), None);
        assert_eq!(local_path(Some("https://evil.example/")), None);
        assert_eq!(local_path(Some("/\\evil.example")), None);
    }

    #[test]
    fn the_pkce_challenge_is_the_unpadded_base64url_sha256_of_the_verifier() {
        // Computed independently: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=")
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ0IWqZ3OXpGKVq6SeVqKlE5qUMdGDzFTHe"),
            "agLvSk_tHYyeBopqnHrGT-NUyUoIZ6Afp0FgbfndHiM"
        );
    }

    #[test]
    fn a_clerk_needs_a_township_and_department_staff_a_department() {
        let ask = |role: &str, township: &str, department: &str| DevLogin {
            role: Some(role.into()),
            township: Some(township.into()),
            department: Some(department.into()),
            sub: None,
            next: None,
        };
        assert!(dev_claims(&ask("window_clerk", "", "")).is_err());
        assert!(dev_claims(&ask("window_clerk", "33010200", "")).is_err());
        assert_eq!(dev_claims(&ask("window_clerk", "330102001", "")).unwrap().township.as_deref(), Some("330102001"));
        assert!(dev_claims(&ask("caseworker", "", "")).is_err());
        assert_eq!(dev_claims(&ask("approver", "", "housing")).unwrap().department, Some(Department::Housing));
        assert!(dev_claims(&ask("janitor", "", "")).is_err());
    }
}
