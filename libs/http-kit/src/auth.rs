//! Bearer-JWT authentication and the roles of OneDoor's staff.
//!
//! Production verifies the identity provider's tokens (RS256 or ES256)
//! against its published keys (`ONEDOOR_JWKS_URL`, fetched, cached and
//! fetched again when a token names a key not seen yet, so the provider can
//! rotate keys without a restart), or against one RS256 public key
//! (`ONEDOOR_JWT_PUBLIC_KEY`, PEM, or `ONEDOOR_JWT_PUBLIC_KEY_FILE`); either
//! way `iss` must be the configured issuer (`ONEDOOR_JWT_ISSUER`) and `aud`
//! name the audience (`ONEDOOR_JWT_AUDIENCE`, default `onedoor`).
//! Development signs tokens with a shared secret of at least 32 bytes
//! (HS256, `ONEDOOR_JWT_SECRET`), issuer `onedoor-dev`, audience `onedoor`;
//! it is used only when no provider is configured, and never where
//! `ONEDOOR_ENV=production`. A missing, malformed or expired token is 401; a
//! valid token of the wrong role or scope is 403 (or 404 where the existence
//! of a record must not leak): see [`Staff`].
//!
//! Beyond its signature and expiry, a token must name someone and fit its
//! role, or every action would be recorded as done by nobody: a token not
//! yet valid (`nbf`) or issued in the future (`iat`), with a blank `sub` or
//! one over 128 characters, a clerk without a 9-digit township, department
//! staff without a department, or a `crit` header naming extensions this
//! verifier does not implement (it implements none) is refused.

use crate::problem::Problem;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use onedoor_contracts::Department;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod jwks;
pub use jwks::Jwks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    WindowClerk,
    Caseworker,
    Approver,
    Operator,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [Self::WindowClerk, Self::Caseworker, Self::Approver, Self::Operator, Self::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WindowClerk => "window_clerk",
            Self::Caseworker => "caseworker",
            Self::Approver => "approver",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
        }
    }
}

/// The claims OneDoor reads from a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Staff id.
    pub sub: String,
    pub role: Role,
    /// 9-digit township code (window clerks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub township: Option<String>,
    /// Department (caseworkers, approvers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<Department>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// The issuer of development tokens.
pub const DEV_ISSUER: &str = "onedoor-dev";
/// The audience OneDoor's tokens name unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "onedoor";
/// The shortest development secret accepted (HS256 keys of fewer bytes than
/// the hash are guessable offline from one token).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "set ONEDOOR_JWKS_URL and ONEDOOR_JWT_ISSUER (the identity provider), or ONEDOOR_JWT_SECRET (development, HS256)"
    )]
    Missing,
    #[error("the RS256 public key is not a valid PEM: {0}")]
    BadKey(String),
    #[error("reading the public key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("ONEDOOR_JWT_ISSUER must name the identity provider's issuer when its keys are configured")]
    MissingIssuer,
    #[error("ONEDOOR_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
    #[error(
        "ONEDOOR_ENV=production does not accept development tokens (HS256): configure the identity provider (ONEDOOR_JWKS_URL, ONEDOOR_JWT_ISSUER)"
    )]
    DevelopmentTokensInProduction,
    #[error("ONEDOOR_JWKS_URL is not an http(s) URL: {0}")]
    BadJwksUrl(String),
}

/// Where tokens are verified from, as configured (see the module's docs).
#[derive(Debug, Clone, Default)]
pub struct AuthSettings<'a> {
    pub jwks_url: Option<&'a str>,
    pub public_key_pem: Option<&'a str>,
    pub public_key_file: Option<&'a std::path::Path>,
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub secret: Option<&'a str>,
    /// `ONEDOOR_ENV=production`: development tokens are refused at start.
    pub production: bool,
}

#[derive(Clone)]
enum Keys {
    /// The development secret (HS256).
    Shared(DecodingKey),
    /// One RS256 public key.
    Static(DecodingKey),
    /// The identity provider's published keys (RS256, ES256).
    Published(Arc<Jwks>),
}

/// Verifies tokens. Shared by every route through a request extension.
#[derive(Clone)]
pub struct Authenticator {
    keys: Keys,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            Keys::Shared(_) => "development secret",
            Keys::Static(_) => "public key",
            Keys::Published(_) => "published keys",
        };
        f.debug_struct("Authenticator").field("keys", &keys).field("issuer", &self.issuer).finish()
    }
}

impl Authenticator {
    /// Development tokens signed with `secret` (no length check: tests; see [`Authenticator::configure`]).
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            keys: Keys::Shared(DecodingKey::from_secret(secret)),
            issuer: DEV_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
        }
    }

    /// Tokens of `issuer` for `audience`, signed with the RS256 key `pem`.
    pub fn rs256_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, AuthConfigError> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|e| AuthConfigError::BadKey(e.to_string()))?;
        Ok(Self { keys: Keys::Static(key), issuer: issuer.into(), audience: audience.into() })
    }

    /// Tokens of `issuer` for `audience`, signed with a key the provider publishes at `url`.
    pub fn jwks(url: &str, issuer: &str, audience: &str) -> Result<Self, AuthConfigError> {
        Ok(Self { keys: Keys::Published(Arc::new(Jwks::new(url)?)), issuer: issuer.into(), audience: audience.into() })
    }

    /// The verifier the settings ask for: the provider's published keys, or
    /// its one public key, or (development only) the shared secret; none is
    /// an error, never a default.
    pub fn configure(settings: &AuthSettings<'_>) -> Result<Self, AuthConfigError> {
        let given = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let audience = given(settings.audience).unwrap_or_else(|| DEFAULT_AUDIENCE.into());
        let pem = match (given(settings.public_key_pem), settings.public_key_file) {
            (Some(pem), _) => Some(pem.into_bytes()),
            (None, Some(path)) => Some(std::fs::read(path)?),
            (None, None) => None,
        };
        let issuer = || given(settings.issuer).ok_or(AuthConfigError::MissingIssuer);
        if let Some(url) = given(settings.jwks_url) {
            return Self::jwks(&url, &issuer()?, &audience);
        }
        if let Some(pem) = pem {
            return Self::rs256_pem(&pem, &issuer()?, &audience);
        }
        let Some(secret) = settings.secret.filter(|s| !s.is_empty()) else {
            return Err(AuthConfigError::Missing);
        };
        if settings.production {
            return Err(AuthConfigError::DevelopmentTokensInProduction);
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AuthConfigError::ShortSecret);
        }
        Ok(Self::hs256(secret.as_bytes()))
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, Problem> {
        if has_crit_header(token) {
            return Err(Problem::unauthorized("the token requires extensions this service does not implement"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Problem::unauthorized("the token is not valid"))?;
        let (key, algorithm) = match &self.keys {
            Keys::Shared(key) => (key.clone(), Algorithm::HS256),
            Keys::Static(key) => (key.clone(), Algorithm::RS256),
            Keys::Published(jwks) => jwks.key(header.kid.as_deref(), header.alg).await?,
        };
        if header.alg != algorithm {
            return Err(Problem::unauthorized("the token is signed with an algorithm this service does not accept"));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let decoded = jsonwebtoken::decode::<Verified>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let detail = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidSignature => "the token signature is invalid",
                ErrorKind::InvalidIssuer => "the token is not from this platform's identity provider",
                ErrorKind::InvalidAudience => "the token is not meant for this platform",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (exp, sub, iss, aud)",
                _ => "the token is not valid",
            };
            Problem::unauthorized(detail)
        })?;
        let Verified { claims, iat } = decoded.claims;
        if iat.is_some_and(|iat| iat > chrono::Utc::now().timestamp() + LEEWAY_SECONDS as i64) {
            return Err(Problem::unauthorized("the token was issued in the future"));
        }
        let sub = claims.sub.trim();
        if sub.is_empty() || sub.chars().count() > MAX_SUB_CHARS {
            return Err(Problem::unauthorized("the token names no member of staff (sub)"));
        }
        let township_ok =
            claims.township.as_deref().is_some_and(|t| t.len() == 9 && t.bytes().all(|b| b.is_ascii_digit()));
        match claims.role {
            Role::WindowClerk if !township_ok => {
                Err(Problem::unauthorized("a window clerk's token names a 9-digit township"))
            }
            Role::Caseworker | Role::Approver if claims.department.is_none() => {
                Err(Problem::unauthorized("department staff's tokens name their department"))
            }
            _ => Ok(claims),
        }
    }
}

/// Clock skew allowed between the identity provider and the services.
const LEEWAY_SECONDS: u64 = 30;

/// The longest staff id a token may carry.
const MAX_SUB_CHARS: usize = 128;

/// A token's claims with the one that only verification reads.
#[derive(Deserialize)]
struct Verified {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    iat: Option<i64>,
}

/// Whether the token's header carries `crit` (RFC 7515 §4.1.11): extensions
/// that must be understood, and this verifier understands none.
fn has_crit_header(token: &str) -> bool {
    let Some(header) = token.split('.').next() else { return false };
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|h| h.get("crit").is_some())
}

/// Signs a development token (HS256, issuer [`DEV_ISSUER`], audience
/// [`DEFAULT_AUDIENCE`], issued now): `cargo xtask token`, the workbench's
/// development sign-in, and tests.
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    #[derive(Serialize)]
    struct Dev<'a> {
        #[serde(flatten)]
        claims: &'a Claims,
        iss: &'static str,
        aud: &'static str,
        iat: i64,
    }
    let dev = Dev { claims, iss: DEV_ISSUER, aud: DEFAULT_AUDIENCE, iat: chrono::Utc::now().timestamp() };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &dev, &EncodingKey::from_secret(secret))
        .expect("HS256 signing cannot fail")
}

/// The authenticated member of staff behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff(pub Claims);

impl Staff {
    pub fn id(&self) -> &str {
        &self.0.sub
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// 403 unless the staff member has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Self, Problem> {
        if roles.contains(&self.0.role) {
            Ok(self)
        } else {
            Err(Problem::forbidden(format!("role {} may not do this", self.0.role.as_str())))
        }
    }

    /// The clerk's township, or 403 if the token has none.
    pub fn township(&self) -> Result<&str, Problem> {
        self.0.township.as_deref().ok_or_else(|| Problem::forbidden("the token names no township"))
    }

    /// The caseworker's or approver's department, or 403 if the token has none.
    pub fn department(&self) -> Result<Department, Problem> {
        self.0.department.ok_or_else(|| Problem::forbidden("the token names no department"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let auth = parts.extensions.get::<Arc<Authenticator>>().cloned().ok_or_else(Problem::internal)?;
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("an Authorization: Bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Problem::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let claims = auth.verify(token).await?;
        crate::access::note(|a| a.actor = Some((claims.sub.clone(), claims.role)));
        Ok(Staff(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "clerk-7".into(),
            role: Role::WindowClerk,
            township: Some("330102001".into()),
            department: None,
            exp,
        }
    }

    #[tokio::test]
    async fn a_development_token_verifies_with_its_secret_issuer_and_audience() {
        let c = claims(chrono::Utc::now().timestamp() + 600);
        let token = mint_hs256(b"s3cret", &c);
        assert_eq!(Authenticator::hs256(b"s3cret").verify(&token).await.unwrap(), c);
    }

    #[tokio::test]
    async fn expired_or_foreign_tokens_are_unauthorized() {
        let expired = mint_hs256(b"s3cret", &claims(chrono::Utc::now().timestamp() - 3600));
        assert_eq!(Authenticator::hs256(b"s3cret").verify(&expired).await.unwrap_err().status, 401);
        let foreign = mint_hs256(b"other", &claims(chrono::Utc::now().timestamp() + 600));
        assert_eq!(Authenticator::hs256(b"s3cret").verify(&foreign).await.unwrap_err().status, 401);
    }

    /// A token with `claims` as given (any JSON), signed with the secret.
    fn token(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(b"s3cret")).unwrap()
    }

    #[tokio::test]
    async fn tokens_that_name_nobody_or_do_not_fit_their_role_time_issuer_or_audience_are_unauthorized() {
        let now = chrono::Utc::now().timestamp();
        let clerk = serde_json::json!({"sub": "clerk-7", "role": "window_clerk", "township": "330102001",
            "exp": now + 600, "iss": DEV_ISSUER, "aud": DEFAULT_AUDIENCE});
        let auth = Authenticator::hs256(b"s3cret");
        assert!(auth.verify(&token(&clerk)).await.is_ok());
        let with = |key: &str, value: serde_json::Value| {
            let mut c = clerk.clone();
            match value {
                serde_json::Value::Null => c.as_object_mut().unwrap().remove(key),
                value => c.as_object_mut().unwrap().insert(key.to_string(), value),
            };
            c
        };
        for (why, claims) in [
            ("not valid before an hour from now", with("nbf", (now + 3600).into())),
            ("issued an hour from now", with("iat", (now + 3600).into())),
            ("an empty sub", with("sub", "".into())),
            ("a blank sub", with("sub", "   ".into())),
            ("a sub of 129 characters", with("sub", "x".repeat(129).into())),
            ("an unknown role", with("role", "superuser".into())),
            ("a clerk without a township", with("township", serde_json::Value::Null)),
            ("a clerk of an 8-digit township", with("township", "33010200".into())),
            ("a caseworker without a department", with("role", "caseworker".into())),
            ("another issuer", with("iss", "someone-else".into())),
            ("no issuer", with("iss", serde_json::Value::Null)),
            ("another audience", with("aud", "another-platform".into())),
            ("no audience", with("aud", serde_json::Value::Null)),
        ] {
            let refused = auth.verify(&token(&claims)).await.expect_err(why);
            assert_eq!(refused.status, 401, "{why}");
        }
        assert!(auth.verify(&token(&with("iat", (now - 60).into()))).await.is_ok(), "issued a minute ago");
        assert!(auth.verify(&token(&with("nbf", (now - 60).into()))).await.is_ok(), "valid since a minute ago");
        assert!(auth.verify(&token(&with("aud", serde_json::json!(["x", "onedoor"])))).await.is_ok(), "one of several");
    }

    #[tokio::test]
    async fn a_token_requiring_unknown_extensions_is_unauthorized() {
        use base64::Engine;
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let now = chrono::Utc::now().timestamp();
        let header = b64(serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}));
        let claims = b64(serde_json::json!({"sub": "op-1", "role": "operator", "exp": now + 600,
            "iss": DEV_ISSUER, "aud": DEFAULT_AUDIENCE}));
        let message = format!("{header}.{claims}");
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(b"s3cret"), Algorithm::HS256)
                .unwrap();
        let refused = Authenticator::hs256(b"s3cret").verify(&format!("{message}.{signature}")).await.unwrap_err();
        assert_eq!(refused.status, 401);
    }

    #[test]
    fn development_tokens_need_a_long_secret_and_never_serve_production() {
        let long = "a-development-secret-of-32-bytes";
        let dev = |secret: &'static str, production: bool| AuthSettings {
            secret: Some(secret),
            production,
            ..Default::default()
        };
        assert!(Authenticator::configure(&dev(long, false)).is_ok());
        assert!(matches!(Authenticator::configure(&dev("short", false)), Err(AuthConfigError::ShortSecret)));
        assert!(matches!(
            Authenticator::configure(&dev(long, true)),
            Err(AuthConfigError::DevelopmentTokensInProduction)
        ));
        assert!(matches!(Authenticator::configure(&AuthSettings::default()), Err(AuthConfigError::Missing)));
        let provider = AuthSettings { jwks_url: Some("https://idp.example/certs"), ..Default::default() };
        assert!(matches!(Authenticator::configure(&provider), Err(AuthConfigError::MissingIssuer)));
        let provider =
            AuthSettings { issuer: Some("https://idp.example/realms/onedoor"), production: true, ..provider };
        assert!(Authenticator::configure(&provider).is_ok(), "the provider's keys serve production");
    }

    #[test]
    fn the_wrong_role_is_forbidden() {
        let staff = Staff(claims(0));
        assert!(staff.require(&[Role::WindowClerk]).is_ok());
        assert_eq!(staff.require(&[Role::Approver]).unwrap_err().status, 403);
        assert_eq!(staff.department().unwrap_err().status, 403);
    }
}
