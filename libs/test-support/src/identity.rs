//! A test identity provider: publishes a JWK Set over HTTP on loopback
//! (RS256 and ES256 signing keys, and an encryption key as Keycloak does)
//! and signs tokens with the matching private keys in `test-keys/`. The
//! set, the provider's availability and its fetch count are the test's to
//! change and read.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const ISSUER: &str = "https://idp.test/realms/onedoor";

pub fn jwk(kid: &str) -> Value {
    match kid {
        "ec1" => json!({"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
            "x": "dqjnDVWcYlKmWYtRCAiUCPwoTYM0ux1PPbeHJNej3oc", "y": "cdWMW_thFEYXyd1SmBHYyOszdAoDud9EK7ZPhoOXDCU"}),
        "ec2" => json!({"kty": "EC", "crv": "P-256", "kid": "ec2", "use": "sig",
            "x": "5hTRKX6t9xWaJk3cjZvCZm_jFb6RM6tvomJvb2-34NQ", "y": "S6dRY8BYLtkY1GXySoc8EJDBMF-zlYsQG9tWYGG9wTA"}),
        "rsa" => json!({"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "e": "AQAB",
            "n": "mAKJ7J9Q2pWlWb_YRCvxZu_mkalVeE0sZJBcXsfn_greVq06Ev6ul4-1YOumhAKx-foOhLI-lBKEZVhb9e5RQyeiCZUqyEQVUjAmOKpLrc4pG8zD3LBotDykE46Uo-9jELNnHNd59sQ4Lq7ZWpNyQ4ikIgBefmp2dDyOZIsAUBpvhrWvx6BIdetZqgyVFLdxF8pRRAANuJI8Ht7znyZ748x_u7U7Qdb2D9qOKLfmu40wdBVoXH_Hzzj1SQyN-Fp0HZi8UwGgSi-VK1A21BJpCqFWmPPJHoQu-LMRmrhd2hHs8IIMT005IIJ8wdlP43xtJfFoHTCLOR5bHh9mWMa5Mw"}),
        // Keycloak also publishes an encryption key: skipped, never fatal.
        "enc" => json!({"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "e": "AQAB", "n": "AQAB"}),
        _ => unreachable!(),
    }
}

pub fn signing_key(kid: &str) -> (EncodingKey, Algorithm) {
    let pem = std::fs::read(format!("{}/test-keys/{kid}.pem", env!("CARGO_MANIFEST_DIR"))).unwrap();
    match kid {
        "rsa" => (EncodingKey::from_rsa_pem(&pem).unwrap(), Algorithm::RS256),
        _ => (EncodingKey::from_ec_pem(&pem).unwrap(), Algorithm::ES256),
    }
}

pub fn claims(iss: &str, aud: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": "cw-1", "role": "caseworker", "department": "medical", "iss": iss, "aud": aud,
        "iat": now, "exp": now + 300})
}

/// A token signed with the key `kid`, naming `kid` in its header.
pub fn token(kid: &str, claims: &Value) -> String {
    let (key, algorithm) = signing_key(kid);
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[derive(Clone)]
pub struct Provider {
    /// The key ids published now.
    pub keys: Arc<Mutex<Vec<&'static str>>>,
    /// Whether the provider answers.
    pub up: Arc<Mutex<bool>>,
    /// How often the keys were fetched.
    pub fetches: Arc<AtomicUsize>,
    /// The JWK Set's URL.
    pub url: String,
}

async fn certs(State(p): State<Provider>) -> Result<axum::Json<Value>, StatusCode> {
    p.fetches.fetch_add(1, Ordering::SeqCst);
    if !*p.up.lock().unwrap() {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let keys: Vec<Value> = p.keys.lock().unwrap().iter().map(|k| jwk(k)).collect();
    Ok(axum::Json(json!({ "keys": keys })))
}

impl Provider {
    /// Serves the JWK Set of `keys` (of `ec1`, `ec2`, `rsa`, `enc`) on a free loopback port.
    pub async fn start(keys: &[&'static str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/realms/onedoor/protocol/openid-connect/certs", listener.local_addr().unwrap());
        let p = Provider {
            keys: Arc::new(Mutex::new(keys.to_vec())),
            up: Arc::new(Mutex::new(true)),
            fetches: Arc::default(),
            url,
        };
        let app =
            Router::new().route("/realms/onedoor/protocol/openid-connect/certs", get(certs)).with_state(p.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        p
    }
}
