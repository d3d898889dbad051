//! Bearer-JWT authentication and the roles of OneDoor's staff.
//!
//! Development signs tokens with a shared secret (HS256,
//! `ONEDOOR_JWT_SECRET`); production verifies RS256 tokens against the
//! identity provider's public key (`ONEDOOR_JWT_PUBLIC_KEY`, PEM, or
//! `ONEDOOR_JWT_PUBLIC_KEY_FILE`). A missing, malformed or expired token is
//! 401; a valid token of the wrong role or scope is 403 (or 404 where the
//! existence of a record must not leak): see [`Staff`].
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

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "set ONEDOOR_JWT_SECRET (development, HS256) or ONEDOOR_JWT_PUBLIC_KEY / ONEDOOR_JWT_PUBLIC_KEY_FILE (production, RS256)"
    )]
    Missing,
    #[error("the RS256 public key is not a valid PEM: {0}")]
    BadKey(String),
    #[error("reading the public key file: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies tokens. Shared by every route through a request extension.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("algorithms", &self.validation.algorithms).finish()
    }
}

impl Authenticator {
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    pub fn rs256_pem(pem: &[u8]) -> Result<Self, AuthConfigError> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|e| AuthConfigError::BadKey(e.to_string()))?;
        Ok(Self::with(key, Algorithm::RS256))
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    /// RS256 if a public key is configured (PEM text, or a file), else HS256
    /// with the shared secret; neither is an error, never a default.
    pub fn configure(
        secret: Option<&str>,
        public_key_pem: Option<&str>,
        public_key_file: Option<&std::path::Path>,
    ) -> Result<Self, AuthConfigError> {
        if let Some(pem) = public_key_pem.filter(|p| !p.trim().is_empty()) {
            return Self::rs256_pem(pem.as_bytes());
        }
        if let Some(path) = public_key_file {
            return Self::rs256_pem(&std::fs::read(path)?);
        }
        match secret {
            Some(secret) if !secret.is_empty() => Ok(Self::hs256(secret.as_bytes())),
            _ => Err(AuthConfigError::Missing),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Problem> {
        if has_crit_header(token) {
            return Err(Problem::unauthorized("the token requires extensions this service does not implement"));
        }
        let decoded = jsonwebtoken::decode::<Verified>(token, &self.key, &self.validation).map_err(|e| {
            let detail = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => "the token is not valid yet",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "the token signature is invalid",
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

/// Signs an HS256 token: development tokens (`cargo xtask token`) and tests.
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
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
        let claims = auth.verify(token)?;
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

    #[test]
    fn a_token_signed_with_the_secret_verifies() {
        let c = claims(chrono::Utc::now().timestamp() + 600);
        let token = mint_hs256(b"s3cret", &c);
        assert_eq!(Authenticator::hs256(b"s3cret").verify(&token).unwrap(), c);
    }

    #[test]
    fn expired_or_foreign_tokens_are_unauthorized() {
        let expired = mint_hs256(b"s3cret", &claims(chrono::Utc::now().timestamp() - 3600));
        assert_eq!(Authenticator::hs256(b"s3cret").verify(&expired).unwrap_err().status, 401);
        let foreign = mint_hs256(b"other", &claims(chrono::Utc::now().timestamp() + 600));
        assert_eq!(Authenticator::hs256(b"s3cret").verify(&foreign).unwrap_err().status, 401);
    }

    /// A token with `claims` as given (any JSON), signed with the secret.
    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"s3cret")).unwrap()
    }

    #[test]
    fn tokens_that_name_nobody_or_do_not_fit_their_role_or_time_are_unauthorized() {
        let now = chrono::Utc::now().timestamp();
        let clerk =
            serde_json::json!({"sub": "clerk-7", "role": "window_clerk", "township": "330102001", "exp": now + 600});
        let verify = |claims: serde_json::Value| Authenticator::hs256(b"s3cret").verify(&token(claims));
        assert!(verify(clerk.clone()).is_ok());
        let with = |key: &str, value: serde_json::Value| {
            let mut c = clerk.clone();
            c[key] = value;
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
        ] {
            let refused = verify(claims).expect_err(why);
            assert_eq!(refused.status, 401, "{why}");
        }
        assert!(verify(with("iat", (now - 60).into())).is_ok(), "issued a minute ago");
        assert!(verify(with("nbf", (now - 60).into())).is_ok(), "valid since a minute ago");
    }

    #[test]
    fn a_token_requiring_unknown_extensions_is_unauthorized() {
        use base64::Engine;
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let now = chrono::Utc::now().timestamp();
        let header = b64(serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}));
        let claims = b64(serde_json::json!({"sub": "op-1", "role": "operator", "exp": now + 600}));
        let message = format!("{header}.{claims}");
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(b"s3cret"), Algorithm::HS256)
                .unwrap();
        let refused = Authenticator::hs256(b"s3cret").verify(&format!("{message}.{signature}")).unwrap_err();
        assert_eq!(refused.status, 401);
    }

    #[test]
    fn the_wrong_role_is_forbidden() {
        let staff = Staff(claims(0));
        assert!(staff.require(&[Role::WindowClerk]).is_ok());
        assert_eq!(staff.require(&[Role::Approver]).unwrap_err().status, 403);
        assert_eq!(staff.department().unwrap_err().status, 403);
    }
}
