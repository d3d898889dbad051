//! The platform in one process: intake and department services built from
//! their crates on port 0, each with its own database, sharing one
//! nats-server, as in production.

use clap::Parser;
use onedoor_contracts::Department;
use onedoor_department_workflow::domain::policy::Policy;
use onedoor_http_kit::auth::Role;
use onedoor_test_support::TestNats;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "departments-test-secret";
pub const TOWNSHIP: &str = "330102001";

pub struct Platform {
    pub nats: TestNats,
    pub intake: String,
    pub departments: Vec<(Department, String, onedoor_test_support::TestDatabase)>,
    pub http: reqwest::Client,
    stop: CancellationToken,
}

fn host_args(db_url: &str, nats_url: &str) -> Vec<String> {
    [
        "--database-url",
        db_url,
        "--nats-url",
        nats_url,
        "--host",
        "127.0.0.1",
        "--max-connections",
        "5",
        "--jwt-secret",
        SECRET,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn policy(d: Department) -> Arc<dyn Policy> {
    match d {
        Department::Medical => Arc::new(medical_aid::policy::MedicalPolicy::default()),
        Department::Education => Arc::new(education_aid::policy::EducationPolicy::default()),
        Department::Housing => Arc::new(housing_aid::policy::HousingPolicy::default()),
        Department::Temporary => Arc::new(temporary_aid::policy::TemporaryPolicy::default()),
    }
}

impl Platform {
    pub async fn start(departments: &[Department]) -> Self {
        let nats = TestNats::start();
        let stop = CancellationToken::new();
        let intake_db = onedoor_test_support::fresh_database().await;
        let mut args = vec!["intake".to_string()];
        args.extend(host_args(&intake_db.url, &nats.url()));
        args.extend(["--port".into(), "0".into()]);
        let intake = intake::app(intake::config::Config::try_parse_from(args).unwrap()).await.unwrap();
        let intake_url = format!("http://{}", intake.address());
        let s = stop.clone();
        tokio::spawn(intake.run_until(async move { s.cancelled().await }));
        let mut running = Vec::new();
        for d in departments {
            let db = onedoor_test_support::fresh_database().await;
            let mut args = vec!["dept".to_string()];
            args.extend(host_args(&db.url, &nats.url()));
            let host = HostOnly::try_parse_from(args).unwrap().host;
            let app = onedoor_department_workflow::app(&host, 0, policy(*d)).await.unwrap();
            let url = format!("http://{}", app.address());
            let s = stop.clone();
            tokio::spawn(app.run_until(async move { s.cancelled().await }));
            running.push((*d, url, db));
        }
        Self { nats, intake: intake_url, departments: running, http: reqwest::Client::new(), stop }
    }

    pub fn url(&self, d: Department) -> &str {
        &self.departments.iter().find(|(x, _, _)| *x == d).unwrap().1
    }

    pub fn db(&self, d: Department) -> &sqlx::PgPool {
        &self.departments.iter().find(|(x, _, _)| *x == d).unwrap().2.pool
    }

    pub async fn call(&self, method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn submit(&self, form: &Value) -> Value {
        let (status, body) = self
            .call(reqwest::Method::POST, format!("{}/api/v1/applications", self.intake), &clerk(), Some(form.clone()))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn case(&self, case_id: &str) -> Value {
        self.call(reqwest::Method::GET, format!("{}/api/v1/cases/{case_id}", self.intake), &clerk(), None).await.1
    }

    /// Polls the case view until `check` holds.
    pub async fn case_until(&self, case_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let view = self.case(case_id).await;
            if check(&view) {
                return view;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting until {what}: {view}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the department has the referral; returns its view.
    pub async fn referral(&self, d: Department, referral_id: &str, token: &str) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self
                .call(reqwest::Method::GET, format!("{}/api/v1/referrals/{referral_id}", self.url(d)), token, None)
                .await;
            if status == 200 {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the {d} department never received {referral_id}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a lane command.
    pub async fn act(&self, d: Department, referral_id: &str, action: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            format!("{}/api/v1/referrals/{referral_id}/{action}", self.url(d)),
            token,
            Some(body),
        )
        .await
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Parses a [`HostConfig`] on its own.
#[derive(clap::Parser)]
struct HostOnly {
    #[command(flatten)]
    host: onedoor_service_host::HostConfig,
}

pub fn token(role: Role, department: Option<Department>, sub: &str) -> String {
    onedoor_test_support::staff_token(SECRET, role, Some(TOWNSHIP), department, sub)
}

pub fn clerk() -> String {
    token(Role::WindowClerk, None, "clerk-7")
}

pub fn caseworker(d: Department) -> String {
    token(Role::Caseworker, Some(d), &format!("{d}-cw-1"))
}

pub fn second_caseworker(d: Department) -> String {
    token(Role::Caseworker, Some(d), &format!("{d}-cw-2"))
}

pub fn approver(d: Department) -> String {
    token(Role::Approver, Some(d), &format!("{d}-approver-1"))
}

pub use onedoor_test_support::id_number;

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

/// An application of a dibao household of two for the given requests.
pub fn application(applicant: &str, requests: Value) -> Value {
    let child = id_number("33010220120915004");
    json!({
        "applicant": {"name": "李四", "id_number": applicant, "phone": "13900139000"},
        "household": {
            "division_code": "330102001001",
            "address": "西湖区某街道2号",
            "hukou": "urban",
            "members": [
                {"name": "李四", "id_number": applicant, "relation": "applicant"},
                {"name": "李小红", "id_number": child, "relation": "child", "in_school": true}
            ],
            "monthly_income_fen": 60000,
            "assets_fen": 0,
            "existing_support": ["dibao"]
        },
        "requests": requests,
        "materials": ALL_MATERIALS
    })
}

pub fn medical_request(total: i64, insured: i64) -> Value {
    json!({"aid": "medical", "hospital": "市一医院", "diagnosis": "骨折", "total_cost_fen": total, "insurance_paid_fen": insured})
}

pub fn lane_of(view: &Value, d: Department) -> Value {
    view["lanes"].as_array().unwrap().iter().find(|l| l["department"] == d.as_str()).unwrap().clone()
}
