//! Bearer-JWT authentication and the roles of OneDoor's staff.
//!
//! Development signs tokens with a shared secret (HS256,
//! `ONEDOOR_JWT_SECRET`); production verifies RS256 tokens against the
//! identity provider's public key (`ONEDOOR_JWT_PUBLIC_KEY`, PEM, or
//! `ONEDOOR_JWT_PUBLIC_KEY_FILE`). A missing, malformed or expired token is
//! 401; a valid token of the wrong role or scope is 403 (or 404 where the
//! existence of a record must not leak): see [`Staff`].

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
        validation.leeway = 30;
        validation.validate_aud = false;
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
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map(|data| data.claims).map_err(|e| {
            let detail = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "the token signature is invalid",
                _ => "the token is not valid",
            };
            Problem::unauthorized(detail)
        })
    }
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
        Ok(Staff(auth.verify(token)?))
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

    #[test]
    fn the_wrong_role_is_forbidden() {
        let staff = Staff(claims(0));
        assert!(staff.require(&[Role::WindowClerk]).is_ok());
        assert_eq!(staff.require(&[Role::Approver]).unwrap_err().status, 403);
        assert_eq!(staff.department().unwrap_err().status, 403);
    }
}
