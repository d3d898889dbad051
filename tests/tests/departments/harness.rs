//! The platform in one process: intake and department services, each a
//! `TestApp` of the shared driver with its own database, sharing one
//! nats-server, as in production.

use onedoor_contracts::Department;
use onedoor_department_workflow::DepartmentService;
use onedoor_department_workflow::domain::policy::Policy;
use onedoor_http_kit::auth::Role;
use onedoor_test_support::TestNats;
use onedoor_test_support::driver::{Client, TestApp, eventually};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub use onedoor_test_support::driver::tokens::{approver, caseworker, clerk, second_caseworker};
pub use onedoor_test_support::id_number;
pub use onedoor_test_support::sample::{self, lane as lane_of};

pub struct Platform {
    pub nats: TestNats,
    /// The folder of the document store the window and the departments share.
    _documents_dir: tempfile::TempDir,
    /// Intake's base URL.
    pub intake: String,
    apps: Vec<(Option<Department>, TestApp)>,
    pub http: reqwest::Client,
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
        Self::start_keeping_for(departments, intake::config::DEFAULT_RETENTION_DAYS).await
    }

    /// The platform, with the window keeping personal data `retention_days`
    /// after a household's last case ended.
    pub async fn start_keeping_for(departments: &[Department], retention_days: u32) -> Self {
        let nats = TestNats::start();
        let documents_dir = tempfile::tempdir().unwrap();
        let documents = onedoor_documents::DocumentStore::open(documents_dir.path().to_str().unwrap()).unwrap();
        let mut window_policy = intake::config::Policy::load(None, None).unwrap();
        window_policy.retention_days = retention_days;
        let intake_service = intake::Intake::new(window_policy, documents.clone());
        let intake = TestApp::start(intake_service, onedoor_test_support::fresh_database().await, &nats).await;
        let mut apps = vec![(None, intake)];
        for d in departments {
            let calendar = Arc::new(onedoor_working_calendar::WorkingCalendar::shipped());
            let service = DepartmentService { policy: policy(*d), calendar, documents: documents.clone() };
            apps.push((Some(*d), TestApp::start(service, onedoor_test_support::fresh_database().await, &nats).await));
        }
        let intake = apps[0].1.url().to_string();
        Self { nats, _documents_dir: documents_dir, intake, apps, http: reqwest::Client::new() }
    }

    /// The folder of the shared document store.
    pub fn documents_dir(&self) -> &std::path::Path {
        self._documents_dir.path()
    }

    /// Stops department `d` and starts it again (a new release), on the same database and broker.
    pub async fn restart(&mut self, d: Department) {
        let documents = onedoor_documents::DocumentStore::open(self.documents_dir().to_str().unwrap()).unwrap();
        let calendar = Arc::new(onedoor_working_calendar::WorkingCalendar::shipped());
        let service = DepartmentService { policy: policy(d), calendar, documents };
        let app = &mut self.apps.iter_mut().find(|(x, _)| *x == Some(d)).unwrap().1;
        app.restart(service).await;
    }

    fn app(&self, d: Department) -> &TestApp {
        &self.apps.iter().find(|(x, _)| *x == Some(d)).unwrap().1
    }

    pub fn url(&self, d: Department) -> &str {
        self.app(d).url()
    }

    pub fn db(&self, d: Department) -> &sqlx::PgPool {
        &self.app(d).db.pool
    }

    pub async fn call(&self, method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> (u16, Value) {
        let (status, body, _) = Client::new("").call(method, &url, token, body.as_ref()).await;
        (status, body)
    }

    pub async fn submit(&self, form: &Value) -> Value {
        let (status, body, _) = self.apps[0].1.post(&clerk(), "/api/v1/applications", form).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn case(&self, case_id: &str) -> Value {
        self.apps[0].1.get(&clerk(), &format!("/api/v1/cases/{case_id}")).await.1
    }

    /// Hands materials in at the window.
    pub async fn hand_in(&self, case_id: &str, materials: &[&str]) -> (u16, Value) {
        let url = format!("{}/api/v1/cases/{case_id}/materials", self.intake);
        self.call(reqwest::Method::POST, url, &clerk(), Some(serde_json::json!({ "materials": materials }))).await
    }

    /// Closes a case at the window (the applicant told by SMS).
    pub async fn close(&self, case_id: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/cases/{case_id}/close", self.intake);
        self.call(reqwest::Method::POST, url, &clerk(), Some(serde_json::json!({"informed_by": "sms"}))).await
    }

    /// Polls the case view until `check` holds.
    pub async fn case_until(&self, case_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(what, Duration::from_secs(30), || async {
            let view = self.case(case_id).await;
            if check(&view) { Ok(view) } else { Err(view.to_string()) }
        })
        .await
    }

    /// Waits until the department has the referral; returns its view.
    pub async fn referral(&self, d: Department, referral_id: &str, token: &str) -> Value {
        let what = format!("the {d} department receives {referral_id}");
        eventually(&what, Duration::from_secs(30), || async {
            match self.app(d).get(token, &format!("/api/v1/referrals/{referral_id}")).await {
                (200, body, _) => Ok(body),
                (status, body, _) => Err(format!("{status} {body}")),
            }
        })
        .await
    }

    /// POSTs a lane command.
    pub async fn act(&self, d: Department, referral_id: &str, action: &str, token: &str, body: Value) -> (u16, Value) {
        let (status, body, _) =
            self.app(d).post(token, &format!("/api/v1/referrals/{referral_id}/{action}"), &body).await;
        (status, body)
    }
}

/// A token of the sample township; `department` for department staff.
pub fn token(role: Role, department: Option<Department>, sub: &str) -> String {
    onedoor_test_support::driver::tokens::token(role, Some(sample::TOWNSHIP), department, sub)
}

/// An application of the sample household of two for the given requests.
pub fn application(applicant: &str, requests: Value) -> Value {
    sample::SampleApplication::household_of_two(applicant).requests(requests.as_array().unwrap().clone()).json()
}

pub fn medical_request(total: i64, insured: i64) -> Value {
    sample::medical("骨折", total, insured)
}
