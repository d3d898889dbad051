//! The signed-in person: a session cookie that carries their API token.
//!
//! The workbench keeps no session store, so any replica serves any request:
//! the cookie holds the token the APIs verify, who it names (for the pages'
//! navigation only; the APIs decide what is allowed), a CSRF token and an
//! expiry, signed with HMAC-SHA256 under `WORKBENCH_SESSION_KEY`. It is
//! `HttpOnly` (no script reads it), `SameSite=Strict` and `Secure` when the
//! workbench is served over TLS. Every form carries the CSRF token as well
//! (see [`Session::check_csrf`]).

use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use onedoor_contracts::Department;
use onedoor_http_kit::Role;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const COOKIE: &str = "onedoor_session";

/// Signs and checks cookies. The key is at least 32 bytes.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    secure: bool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("secure", &self.secure).finish()
    }
}

/// Random bytes from the operating system, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source");
    B64.encode(buf)
}

impl Signer {
    pub fn new(key: Vec<u8>, secure: bool) -> Result<Self, String> {
        if key.len() < 32 {
            return Err("WORKBENCH_SESSION_KEY must be at least 32 bytes".into());
        }
        Ok(Self { key, secure })
    }

    fn mac(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    /// `payload.signature`, both URL-safe base64.
    pub fn seal<T: Serialize>(&self, value: &T) -> String {
        let payload = B64.encode(serde_json::to_vec(value).expect("a session serialises"));
        let signature = self.mac(&payload);
        format!("{payload}.{signature}")
    }

    /// The value, if the signature is ours.
    pub fn open<T: for<'de> Deserialize<'de>>(&self, sealed: &str) -> Option<T> {
        let (payload, signature) = sealed.split_once('.')?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac.verify_slice(&B64.decode(signature).ok()?).ok()?;
        serde_json::from_slice(&B64.decode(payload).ok()?).ok()
    }

    /// A `Set-Cookie` value for `name`, alive `max_age` seconds (0 ends it),
    /// sent only with requests from this site.
    pub fn cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        self.cookie_with(name, value, max_age, "Strict")
    }

    /// As [`Signer::cookie`], also sent when another site navigates here
    /// (`Lax`): for what must come back with the identity provider's redirect.
    pub fn cookie_across_sites(&self, name: &str, value: &str, max_age: i64) -> String {
        self.cookie_with(name, value, max_age, "Lax")
    }

    fn cookie_with(&self, name: &str, value: &str, max_age: i64, same_site: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}")
    }
}

/// Who the token names, as the pages need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub sub: String,
    pub role: Role,
    pub township: Option<String>,
    pub department: Option<Department>,
}

impl Person {
    /// Reads the claims of a token the identity provider (or the development
    /// sign-in) just issued. Not a verification: the APIs verify every call.
    pub fn from_token(token: &str) -> Option<Self> {
        let payload = token.split('.').nth(1)?;
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(payload.trim_end_matches('=')).ok()?).ok()?;
        Some(Self {
            sub: claims["sub"].as_str()?.to_string(),
            role: serde_json::from_value(claims["role"].clone()).ok()?,
            township: claims["township"].as_str().map(str::to_string),
            department: serde_json::from_value(claims["department"].clone()).ok(),
        })
    }

    /// The page a person lands on after signing in.
    pub fn home(&self) -> &'static str {
        match self.role {
            Role::WindowClerk => "/cases",
            Role::Caseworker | Role::Approver => "/referrals",
            Role::Operator => "/operations",
            Role::Auditor => "/audit",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub person: Person,
    pub csrf: String,
    /// Seconds since the epoch; the token's own expiry or earlier.
    pub expires: i64,
}

impl Session {
    pub fn new(token: String, person: Person, expires: i64) -> Self {
        Self { token, person, csrf: random_token(24), expires }
    }

    /// Whether a form's CSRF token is this session's.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), Rejection> {
        match submitted {
            Some(token) if constant_time_eq(token.as_bytes(), self.csrf.as_bytes()) => Ok(()),
            _ => Err(Rejection::Csrf),
        }
    }

    /// `Set-Cookie` starting this session.
    pub fn start(&self, signer: &Signer) -> String {
        let max_age = (self.expires - chrono::Utc::now().timestamp()).max(0);
        signer.cookie(COOKIE, &signer.seal(self), max_age)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a request's headers.
pub fn read_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Why a request did not get a session.
#[derive(Debug)]
pub enum Rejection {
    /// No session, or it expired: sign in first.
    SignIn { back_to: String },
    /// A form without this session's CSRF token.
    Csrf,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { back_to } => {
                let query: String =
                    form_urlencoded::Serializer::new(String::new()).append_pair("next", &back_to).finish();
                Redirect::to(&format!("/sign-in?{query}")).into_response()
            }
            Self::Csrf => crate::render::message_page(
                axum::http::StatusCode::FORBIDDEN,
                "表单已失效",
                "该表单不是本次登录会话提交的（可能已打开过久或已退出登录）。请返回上一页刷新后重新提交。",
            ),
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = read_cookie(&parts.headers, COOKIE).and_then(|v| state.signer.open::<Session>(v));
        match session {
            Some(s) if s.expires > chrono::Utc::now().timestamp() => Ok(s),
            _ => {
                let back_to = if parts.method == axum::http::Method::GET {
                    parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into())
                } else {
                    "/".into()
                };
                Err(Rejection::SignIn { back_to })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(vec![7; 32], false).unwrap()
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_signature_intact() {
        let person = Person { sub: "clerk-7".into(), role: Role::WindowClerk, township: None, department: None };
        let sealed = signer().seal(&Session::new("t".into(), person, 1));
        assert_eq!(signer().open::<Session>(&sealed).unwrap().person.sub, "clerk-7");
        let (payload, signature) = sealed.split_once('.').unwrap();
        let forged = format!("{}.{signature}", B64.encode(B64.decode(payload).unwrap().repeat(1)) + "x");
        assert!(signer().open::<Session>(&forged).is_none());
        let other = Signer::new(vec![8; 32], false).unwrap();
        assert!(other.open::<Session>(&sealed).is_none());
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(Signer::new(vec![1; 31], false).is_err());
    }

    #[test]
    fn cookies_are_http_only_same_site_strict_and_secure_under_tls() {
        let c = Signer::new(vec![1; 32], true).unwrap().cookie(COOKIE, "v", 60);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"), "{c}");
    }
}
