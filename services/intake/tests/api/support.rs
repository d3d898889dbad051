//! Intake under test: the shared driver (`onedoor_test_support::driver`)
//! running the service, plus what only intake's tests look at (its stream,
//! its tables). The test plays the departments on JetStream.

use async_nats::jetstream;
use onedoor_contracts::Department;
use onedoor_test_support::driver::{Answer, TestApp};
use onedoor_test_support::{TestNats, sample};
use serde_json::Value;
use std::time::{Duration, Instant};

pub use onedoor_test_support::driver::tokens::{clerk, token};
pub use onedoor_test_support::id_number;
pub use onedoor_test_support::sample::{ALL_MATERIALS, TOWNSHIP, child_of};

async fn publish_on<T: onedoor_contracts::IntegrationEvent>(
    js: &jetstream::Context,
    subject: &str,
    envelope: &onedoor_contracts::CloudEvent<T>,
) -> Result<(), String> {
    let message = onedoor_event_store::outbox::OutboxMessage::announcing(envelope).unwrap();
    let mut headers = async_nats::HeaderMap::new();
    for (k, v) in &message.headers {
        headers.insert(k.as_str(), v.as_str());
    }
    headers.insert("Nats-Msg-Id", message.event_id.to_string().as_str());
    headers.insert(onedoor_messaging::EVENT_ID_HEADER, message.event_id.to_string().as_str());
    let ack = js.publish_with_headers(subject.to_string(), headers, message.payload.into()).await;
    ack.map_err(|e| e.to_string())?.await.map(|_| ()).map_err(|e| e.to_string())
}

pub struct TestIntake {
    pub app: TestApp,
    /// The test's nats-server, alive as long as the test.
    pub nats: TestNats,
    pub js: jetstream::Context,
}

fn intake() -> intake::Intake {
    intake::Intake::with_defaults().expect("intake's default policy")
}

impl TestIntake {
    pub async fn spawn() -> Self {
        Self::spawn_with(intake()).await
    }

    /// Intake as configured by the test (its SMS provider, say).
    pub async fn spawn_with(service: intake::Intake) -> Self {
        let db = onedoor_test_support::fresh_database().await;
        let nats = TestNats::start();
        let (_client, js) = nats.jetstream().await;
        for d in Department::ALL {
            // The departments declare their streams; here the test plays the departments.
            onedoor_messaging::ensure_stream(&js, d.stream(), vec![d.subjects()]).await.unwrap();
        }
        let app = TestApp::start(service, db, &nats).await;
        Self { app, nats, js }
    }

    /// Restarts the service (a new process on the same database and NATS).
    pub async fn restart(&mut self) {
        self.restart_as(intake()).await;
    }

    /// [`TestIntake::restart`] as configured by the test.
    pub async fn restart_as(&mut self, service: intake::Intake) {
        self.app.restart(service).await;
    }

    /// Publishes an event as its publisher's relay would (a department's, say).
    pub async fn publish<T: onedoor_contracts::IntegrationEvent>(&self, envelope: &onedoor_contracts::CloudEvent<T>) {
        let subject = envelope.data.subject();
        publish_on(&self.js, &subject, envelope).await.unwrap();
    }

    /// Publishes `envelope` on `subject` as broker user `user` (a service's
    /// name): what that service, or someone holding its key, could do.
    pub async fn publish_as<T: onedoor_contracts::IntegrationEvent>(
        &self,
        user: &str,
        subject: &str,
        envelope: &onedoor_contracts::CloudEvent<T>,
    ) -> Result<(), String> {
        let (_client, mut js) = self.nats.jetstream_as(user).await;
        js.set_timeout(Duration::from_secs(2)); // a refused publish is never acknowledged
        publish_on(&js, subject, envelope).await
    }

    pub fn base(&self) -> &str {
        self.app.url()
    }

    pub fn db(&self) -> &sqlx::PgPool {
        &self.app.db.pool
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.app.post(token, path, body).await
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.app.get(token, path).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.app.client.send(request).await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.app.client.http
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(self.db()).await.unwrap()
    }

    /// Messages intake published for the departments, with their subjects,
    /// their personal fields opened as a department opens them (its messages
    /// to the applicant left out; none while intake has not declared its
    /// stream yet: it does so in the background).
    pub async fn published(&self) -> Vec<(String, Value)> {
        let transit = onedoor_personal_data::Transit::of(&onedoor_personal_data::FileKek::development());
        let Ok(mut stream) = self.js.get_stream("INTAKE").await else { return Vec::new() };
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await
                && !m.subject.starts_with("onedoor.intake.notification.")
            {
                let mut envelope: Value = serde_json::from_slice(&m.payload).unwrap();
                let fields = envelope["type"].as_str().map_or(&[][..], onedoor_contracts::personal_fields);
                transit.open(&mut envelope, onedoor_personal_data::PersonalFields(fields)).unwrap();
                out.push((m.subject.to_string(), envelope));
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

pub fn applicant_id() -> String {
    id_number("33010219800307123")
}

/// A four-line application of the sample household of two, with `materials` handed in.
pub fn application(applicant: &str, materials: &[&str]) -> Value {
    sample::SampleApplication::household_of_two(applicant).four_lines().materials(materials).json()
}
