//! The identity provider's published keys (a JWK Set, RFC 7517), fetched
//! when first needed and kept: fetched again after [`MAX_AGE`], or at once
//! when a token names a key not seen yet (the provider rotated), at most
//! once per [`MIN_REFETCH`] so that tokens naming made-up keys cannot make
//! the services hammer the provider. While the provider cannot be reached
//! the keys already fetched keep working.

use super::AuthConfigError;
use crate::problem::Problem;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// Keys older than this are fetched again before use.
const MAX_AGE: Duration = Duration::from_secs(600);
/// The least time between two fetches.
const MIN_REFETCH: Duration = Duration::from_secs(2);
/// The longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One usable key: its algorithm and verifying key.
#[derive(Clone)]
struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct Fetched {
    keys: HashMap<String, Key>,
    at: Option<Instant>,
}

/// A provider's JWK Set, fetched from its URL.
pub struct Jwks {
    url: reqwest::Url,
    client: reqwest::Client,
    fetched: RwLock<Fetched>,
    /// One fetch at a time; the time of the last attempt.
    fetching: Mutex<Option<Instant>>,
}

impl Jwks {
    pub fn new(url: &str) -> Result<Self, AuthConfigError> {
        let url = reqwest::Url::parse(url).map_err(|_| AuthConfigError::BadJwksUrl(url.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(AuthConfigError::BadJwksUrl(url.to_string()));
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| AuthConfigError::BadJwksUrl(e.to_string()))?;
        Ok(Self { url, client, fetched: RwLock::default(), fetching: Mutex::new(None) })
    }

    /// The key a token's header names (`kid`; without one, the only key of
    /// the set), and its algorithm, which must be the header's `alg`.
    pub(super) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<(DecodingKey, Algorithm), Problem> {
        let fresh = self.fetched.read().await.at.is_some_and(|at| at.elapsed() < MAX_AGE);
        if !fresh || self.find(kid).await.is_none() {
            self.refetch().await;
        }
        let key =
            self.find(kid).await.ok_or_else(|| Problem::unauthorized("the token is signed with an unknown key"))?;
        if key.algorithm != alg {
            return Err(Problem::unauthorized("the token's algorithm is not its key's"));
        }
        Ok((key.key, key.algorithm))
    }

    async fn find(&self, kid: Option<&str>) -> Option<Key> {
        let fetched = self.fetched.read().await;
        match kid {
            Some(kid) => fetched.keys.get(kid).cloned(),
            None if fetched.keys.len() == 1 => fetched.keys.values().next().cloned(),
            None => None,
        }
    }

    async fn refetch(&self) {
        let mut last = self.fetching.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "identity provider's keys fetched");
                *self.fetched.write().await = Fetched { keys, at: Some(Instant::now()) };
            }
            Err(error) => tracing::warn!(%error, "fetching the identity provider's keys failed; keeping those held"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, reqwest::Error> {
        let set: serde_json::Value = self.client.get(self.url.clone()).send().await?.error_for_status()?.json().await?;
        let listed = set["keys"].as_array().cloned().unwrap_or_default();
        // A key this verifier cannot use (an encryption key, another
        // algorithm, a malformed entry) is skipped, not fatal.
        Ok(listed
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| Some((jwk.common.key_id.clone().unwrap_or_default(), usable(&jwk)?)))
            .collect())
    }
}

/// The key, if it is a signing key this verifier accepts (RS256, ES256).
fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256)) if p.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    Some(Key { algorithm, key: DecodingKey::from_jwk(jwk).ok()? })
}
