//! The one driver of black-box tests: a service started as production runs
//! it ([`TestApp`]: in this process through the service host, against its
//! own database and a nats-server of the test's), tokens for each role
//! ([`tokens`]), the API called as any client would ([`Client`]), and waiting
//! for what happens asynchronously ([`eventually`]).

use crate::TestDatabase;
use onedoor_service_host::{HostConfig, Service};
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The HS256 secret every test service trusts.
pub const SECRET: &str = "onedoor-test-secret-of-at-least-32-bytes";

/// An answer: status, JSON body (`Null` if none) and headers.
pub type Answer = (u16, Value, HeaderMap);

/// Calls one service's API.
#[derive(Debug, Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Self {
        Self { base: base.into(), http: reqwest::Client::new() }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::POST, path, token, Some(body)).await
    }

    /// Sends a request built by the test (headers of its own, raw bodies).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let res = request.send().await.expect("the service answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, res.json().await.unwrap_or(Value::Null), headers)
    }
}

/// Polls `check` until it gives `Some`, failing the test after `timeout`
/// with `what` and the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(found) => return found,
            Err(last) => {
                assert!(start.elapsed() < timeout, "timed out waiting until {what}; last seen: {last}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The host settings of test service `service`: its database, the test's
/// NATS (as the service's broker user), a loopback address and [`SECRET`].
pub fn host_config(database_url: &str, nats: &crate::TestNats, service: &str) -> HostConfig {
    config_for(database_url, &nats.url(), &nats.seed_for(service))
}

fn config_for(database_url: &str, nats_url: &str, nats_seed: &str) -> HostConfig {
    HostConfig {
        database_url: database_url.into(),
        nats_url: nats_url.into(),
        nats_nkey: Some(nats_seed.into()),
        nats_ca_file: None,
        host: "127.0.0.1".into(),
        max_connections: 5,
        work_connections: 5,
        acquire_timeout_seconds: 5,
        jwt_secret: Some(SECRET.into()),
        jwks_url: None,
        jwt_public_key: None,
        jwt_public_key_file: None,
        jwt_issuer: None,
        jwt_audience: onedoor_http_kit::auth::DEFAULT_AUDIENCE.into(),
        environment: "test".into(),
        audit_key: None,
        audit_retired_keys: None,
        kek: None,
        kek_file: None,
        migrate_only: false,
        migrate_on_start: true,
    }
}

/// A service running in this process, on a free port.
#[derive(Debug)]
pub struct TestApp {
    pub client: Client,
    pub db: TestDatabase,
    nats_url: String,
    nats_seed: String,
    stop: CancellationToken,
    running: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Starts `service` against `db` and `nats`, as the service's broker user.
    pub async fn start<S: Service>(service: S, db: TestDatabase, nats: &crate::TestNats) -> Self {
        let mut app = Self {
            client: Client::new(String::new()),
            db,
            nats_url: nats.url(),
            nats_seed: nats.seed_for(&service.name()),
            stop: CancellationToken::new(),
            running: None,
        };
        app.run(service).await;
        app
    }

    async fn run<S: Service>(&mut self, service: S) {
        let config = config_for(&self.db.url, &self.nats_url, &self.nats_seed);
        let app = onedoor_service_host::App::build(service, &config, 0).await.expect("the service starts");
        self.client.base = format!("http://{}", app.address());
        self.stop = CancellationToken::new();
        let stop = self.stop.clone();
        self.running = Some(tokio::spawn(async move {
            app.run_until(async move { stop.cancelled().await }).await.expect("the service stops cleanly");
        }));
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(running) = self.running.take() {
            running.await.expect("the service task ends");
        }
    }

    /// Stops the service and starts `service` in its place, on the same
    /// database and NATS (a new version, or a restart).
    pub async fn restart<S: Service>(&mut self, service: S) {
        self.stop().await;
        self.run(service).await;
    }

    pub fn url(&self) -> &str {
        &self.client.base
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.client.get(token, path).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.client.post(token, path, body).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Development tokens for each role, signed with [`SECRET`], all in the
/// sample township.
pub mod tokens {
    use super::SECRET;
    use crate::sample::TOWNSHIP;
    use onedoor_contracts::Department;
    use onedoor_http_kit::Role;

    pub fn token(role: Role, township: Option<&str>, department: Option<Department>, sub: &str) -> String {
        crate::staff_token(SECRET, role, township, department, sub)
    }

    /// `clerk-7`, a window clerk of the sample township.
    pub fn clerk() -> String {
        token(Role::WindowClerk, Some(TOWNSHIP), None, "clerk-7")
    }

    pub fn caseworker(department: Department) -> String {
        token(Role::Caseworker, Some(TOWNSHIP), Some(department), &format!("{department}-cw-1"))
    }

    /// A second caseworker of the department (segregation of duties).
    pub fn second_caseworker(department: Department) -> String {
        token(Role::Caseworker, Some(TOWNSHIP), Some(department), &format!("{department}-cw-2"))
    }

    pub fn approver(department: Department) -> String {
        token(Role::Approver, Some(TOWNSHIP), Some(department), &format!("{department}-approver-1"))
    }

    pub fn operator() -> String {
        token(Role::Operator, None, None, "operator-1")
    }
}
