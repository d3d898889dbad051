use async_nats::jetstream;
use clap::Parser;
use onedoor_contracts::Department;
use onedoor_http_kit::auth::Role;
use onedoor_test_support::{TestDatabase, TestNats};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "intake-test-secret";
pub const TOWNSHIP: &str = "330102001";

pub struct TestIntake {
    pub base: String,
    pub db: TestDatabase,
    pub nats: TestNats,
    pub js: jetstream::Context,
    pub http: reqwest::Client,
    stop: CancellationToken,
    running: Option<JoinHandle<()>>,
}

impl TestIntake {
    pub async fn spawn() -> Self {
        let db = onedoor_test_support::fresh_database().await;
        let nats = TestNats::start();
        let (_client, js) = nats.jetstream().await;
        for d in Department::ALL {
            // The departments declare their streams; here the test plays the departments.
            onedoor_messaging::ensure_stream(&js, d.stream(), vec![d.subjects()]).await.unwrap();
        }
        let mut intake = Self {
            base: String::new(),
            db,
            nats,
            js,
            http: reqwest::Client::new(),
            stop: CancellationToken::new(),
            running: None,
        };
        intake.start().await;
        intake
    }

    /// Starts (or restarts) the service on a fresh port.
    pub async fn start(&mut self) {
        let config = intake::config::Config::try_parse_from([
            "intake",
            "--database-url",
            &self.db.url,
            "--nats-url",
            &self.nats.url(),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--max-connections",
            "5",
            "--jwt-secret",
            SECRET,
        ])
        .unwrap();
        let app = intake::app(config).await.expect("intake starts");
        self.base = format!("http://{}", app.address());
        self.stop = CancellationToken::new();
        let stop = self.stop.clone();
        self.running = Some(tokio::spawn(async move {
            app.run_until(async move { stop.cancelled().await }).await.unwrap();
        }));
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(r) = self.running.take() {
            r.await.unwrap();
        }
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
        self.send(self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(body)).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token)).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
        let res = request.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }

    /// Messages intake published, with their subjects.
    pub async fn published(&self) -> Vec<(String, Value)> {
        let mut stream = self.js.get_stream("INTAKE").await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push((m.subject.to_string(), serde_json::from_slice(&m.payload).unwrap()));
            }
        }
        out
    }

    /// Waits until intake has published `n` messages.
    pub async fn published_at_least(&self, n: usize) -> Vec<(String, Value)> {
        let start = Instant::now();
        loop {
            let p = self.published().await;
            if p.len() >= n {
                return p;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "intake published {} of {n} messages", p.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls the case view until `check` holds.
    pub async fn case_until(&self, case_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (_, view, _) = self.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await;
            if check(&view) {
                return view;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting until {what}: {view}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn token(role: Role, township: Option<&str>, department: Option<Department>, sub: &str) -> String {
    onedoor_test_support::staff_token(SECRET, role, township, department, sub)
}

pub fn clerk() -> String {
    token(Role::WindowClerk, Some(TOWNSHIP), None, "clerk-7")
}

/// A valid ID number from its first 17 digits.
pub use onedoor_test_support::id_number;

pub fn applicant_id() -> String {
    id_number("33010219800307123")
}

pub fn child_id() -> String {
    id_number("33010220120915004")
}

pub const ALL_MATERIALS: [&str; 11] = [
    "id_card",
    "hukou_book",
    "income_statement",
    "verification_authorization",
    "medical_invoice",
    "discharge_summary",
    "insurance_settlement",
    "enrolment_proof",
    "tenancy_proof",
    "hardship_statement",
    "house_safety_appraisal",
];

/// A four-line application of a household of two, with `materials` handed in.
pub fn application(applicant: &str, materials: &[&str]) -> Value {
    json!({
        "applicant": {"name": "张三", "id_number": applicant, "phone": "13800138000"},
        "household": {
            "division_code": "330102001001",
            "address": "西湖区某街道1号",
            "hukou": "urban",
            "members": [
                {"name": "张三", "id_number": applicant, "relation": "applicant", "disability": false, "in_school": false},
                {"name": "张小明", "id_number": child_id(), "relation": "child", "disability": false, "in_school": true}
            ],
            "monthly_income_fen": 120000,
            "assets_fen": 0,
            "existing_support": ["dibao"]
        },
        "requests": [
            {"aid": "medical", "hospital": "浙大一院", "diagnosis": "肺炎", "total_cost_fen": 3000000, "insurance_paid_fen": 1800000},
            {"aid": "education", "student_id_number": child_id(), "stage": "junior", "school": "某中学"},
            {"aid": "housing", "kind": "rent_subsidy", "monthly_rent_fen": 80000},
            {"aid": "temporary", "cause": "illness", "amount_requested_fen": 300000, "emergency": false}
        ],
        "materials": materials
    })
}
