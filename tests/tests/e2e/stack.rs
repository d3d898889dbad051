//! Five service processes on free ports around one nats-server.

use onedoor_contracts::Department;
use onedoor_local_servers::{ServiceProcess, free_port};
use onedoor_test_support::TestNats;
use serde_json::Value;
use std::time::{Duration, Instant};

use onedoor_test_support::driver::{Client, SECRET};
use onedoor_test_support::sample;

/// Fields drop in order: the services stop before their broker does.
pub struct Stack {
    pub services: Vec<ServiceProcess>,
    pub nats: TestNats,
    pub dbs: Vec<onedoor_test_support::TestDatabase>,
    pub logs: tempfile::TempDir,
    pub client: Client,
}

/// Every service of the table of aid lines (and intake): name and port variable.
fn service_ports() -> Vec<(&'static str, &'static str)> {
    onedoor_contracts::aid_line::services().iter().map(|s| (s.service, s.port_env)).collect()
}

/// The document store every service of the stack shares: a folder beside its logs.
fn documents_env(logs: &tempfile::TempDir) -> (String, String) {
    (onedoor_documents::STORE_ENV.to_string(), logs.path().join("documents").display().to_string())
}

impl Stack {
    /// Starts everything; `extra_env` goes to every service (e.g. `OTEL_*`).
    pub async fn start(extra_env: &[(&str, &str)]) -> Self {
        let nats = TestNats::start();
        let logs = tempfile::tempdir().unwrap();
        let mut services = Vec::new();
        let mut dbs = Vec::new();
        for (name, port_var) in service_ports() {
            let db = onedoor_test_support::fresh_database().await;
            let port = free_port().unwrap();
            let mut env = nats.server.service_env(name);
            env.extend([
                ("DATABASE_URL".to_string(), db.url.clone()),
                (port_var.to_string(), port.to_string()),
                ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
                ("ONEDOOR_JWT_SECRET".to_string(), SECRET.to_string()),
                ("DATABASE_MAX_CONNECTIONS".to_string(), "5".to_string()),
                ("RUST_LOG".to_string(), "info".to_string()),
                documents_env(&logs),
            ]);
            env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let mut service = ServiceProcess::new(name, port, env, logs.path().join(format!("{name}.log")));
            tokio::task::block_in_place(|| service.start(Duration::from_secs(60))).unwrap();
            services.push(service);
            dbs.push(db);
        }
        Self { services, nats, dbs, logs, client: Client::new("") }
    }

    /// Starts another replica of `name` on its own port, against the same database and NATS.
    pub async fn add_replica(&mut self, name: &str) -> String {
        let i = service_ports().iter().position(|(n, _)| *n == name).unwrap();
        let (_, port_var) = service_ports()[i];
        let port = free_port().unwrap();
        let mut env = self.nats.server.service_env(name);
        env.extend([
            ("DATABASE_URL".to_string(), self.dbs[i].url.clone()),
            (port_var.to_string(), port.to_string()),
            ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
            ("ONEDOOR_JWT_SECRET".to_string(), SECRET.to_string()),
            ("DATABASE_MAX_CONNECTIONS".to_string(), "5".to_string()),
            documents_env(&self.logs),
        ]);
        let n = self.services.iter().filter(|s| s.name == name).count();
        let mut replica = ServiceProcess::new(name, port, env, self.logs.path().join(format!("{name}-{n}.log")));
        tokio::task::block_in_place(|| replica.start(Duration::from_secs(60))).unwrap();
        let url = replica.url();
        self.services.push(replica);
        url
    }

    pub fn service(&mut self, name: &str) -> &mut ServiceProcess {
        self.services.iter_mut().find(|s| s.name == name).unwrap()
    }

    pub fn url(&self, name: &str) -> String {
        self.services.iter().find(|s| s.name == name).unwrap().url()
    }

    pub fn department_url(&self, d: Department) -> String {
        self.url(d.line().service)
    }

    pub fn db(&self, name: &str) -> &sqlx::PgPool {
        let i = service_ports().iter().position(|(n, _)| *n == name).unwrap();
        &self.dbs[i].pool
    }

    /// Everything the services logged.
    pub fn all_logs(&self) -> String {
        service_ports()
            .iter()
            .map(|(n, _)| std::fs::read_to_string(self.logs.path().join(format!("{n}.log"))).unwrap_or_default())
            .collect()
    }

    pub async fn call(&self, method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
        let (status, body, _) = self.client.call(method, &url, token, body.as_ref()).await;
        (status, body)
    }

    pub async fn submit(&self, form: &Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            format!("{}/api/v1/applications", self.url("intake")),
            &clerk(),
            Some(form.clone()),
        )
        .await
    }

    pub async fn case(&self, case_id: &str) -> Value {
        self.call(reqwest::Method::GET, format!("{}/api/v1/cases/{case_id}", self.url("intake")), &clerk(), None)
            .await
            .1
    }

    pub async fn case_until(&self, case_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let view = self.case(case_id).await;
            if check(&view) {
                return view;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting until {what}: {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn act(&self, d: Department, referral_id: &str, action: &str, token: &str, body: Value) -> (u16, Value) {
        let url = format!("{}/api/v1/referrals/{referral_id}/{action}", self.department_url(d));
        self.call(reqwest::Method::POST, url, token, Some(body)).await
    }

    /// Waits until the department lists `n` referrals in its inbox.
    pub async fn inbox_until(&self, d: Department, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let url = format!("{}/api/v1/referrals?limit=100", self.department_url(d));
            let (_, page) = self.call(reqwest::Method::GET, url, &caseworker(d), None).await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.len() >= n {
                return items;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{d} has {} of {n} referrals", items.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub use onedoor_test_support::driver::tokens::{approver, caseworker, clerk};
pub use onedoor_test_support::id_number;
pub use onedoor_test_support::sample::{ALL_MATERIALS, lane};

pub const NAME: &str = "王秀兰";
pub const CHILD: &str = "王小明";
pub const PHONE: &str = "13812345678";
pub const DIAGNOSIS: &str = "急性淋巴细胞白血病";

pub fn applicant_id(n: u32) -> String {
    id_number(&format!("330102197504{:02}301", 10 + n % 20))
}

/// The four-line application of the story (the sample household, with the
/// names and diagnosis the tests look for in logs and traces), with
/// `materials` handed in.
pub fn four_line_application(applicant: &str, materials: &[&str]) -> Value {
    let mut requests = sample::four_requests();
    requests[0] = sample::medical(DIAGNOSIS, 8_000_000, 5_000_000);
    sample::SampleApplication::household_of_two(applicant)
        .named(NAME, CHILD)
        .phone(PHONE)
        .requests(requests)
        .materials(materials)
        .json()
}
