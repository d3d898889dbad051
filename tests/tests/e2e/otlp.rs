//! One trace per application: the services export to a test OTLP/HTTP
//! receiver configured only through the standard `OTEL_*` variables.

use crate::stack::*;
use axum::body::Bytes;
use axum::routing::post;
use onedoor_http_kit::Role;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    trace_id: String,
    name: String,
    /// Every attribute value, as text.
    values: Vec<String>,
    /// The traces this span links to.
    links: Vec<String>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<ReceivedSpan>>>);

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let spans = receiver.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let spans = spans.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                    let mut received = spans.0.lock().unwrap();
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| r.attributes.iter())
                            .find(|a| a.key == "service.name")
                            .map(|a| text(&a.value))
                            .unwrap_or_default();
                        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                            let hex = |id: &[u8]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
                            received.push(ReceivedSpan {
                                service: service.clone(),
                                trace_id: hex(&span.trace_id),
                                links: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
                                name: span.name.clone(),
                                values: span
                                    .attributes
                                    .iter()
                                    .map(|a| format!("{}={}", a.key, text(&a.value)))
                                    .collect(),
                            });
                        }
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_application_is_one_trace_across_every_service_it_touches_without_personal_data() {
    let (receiver, endpoint) = Receiver::start().await;
    let stack = Stack::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("ONEDOOR_LOG_FORMAT", "json"),
    ])
    .await;
    let applicant = applicant_id(2);
    let (status, created) = stack.submit(&four_line_application(&applicant, &ALL_MATERIALS)).await;
    assert_eq!(status, 201);

    let request = {
        let start = Instant::now();
        loop {
            if let Some(s) =
                receiver.spans().into_iter().find(|s| s.service == "intake" && s.name == "POST /api/v1/applications")
            {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "intake's request span never arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let expected = ["intake", "medical-aid", "education-aid", "housing-aid", "temporary-aid"];
    let start = Instant::now();
    loop {
        let in_trace: Vec<ReceivedSpan> =
            receiver.spans().into_iter().filter(|s| s.trace_id == request.trace_id).collect();
        let processed = |svc: &str| {
            in_trace.iter().any(|s| s.service == svc && s.name.starts_with("process onedoor.intake.referral."))
        };
        if expected[1..].iter().all(|svc| processed(svc)) {
            assert!(
                in_trace.iter().any(|s| s.service == "intake" && s.name == "publish onedoor.intake.referral.medical")
            );
            break;
        }
        let services: Vec<String> = in_trace.iter().map(|s| format!("{}: {}", s.service, s.name)).collect();
        assert!(start.elapsed() < Duration::from_secs(30), "the trace never reached every department: {services:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(created["lanes"].as_array().unwrap().len(), 4);

    // A caseworker's command later is a trace of its own that links to the
    // application's, and the window's case view names the application's trace.
    let case_id = created["case_id"].as_str().unwrap();
    assert_eq!(stack.case(case_id).await["trace_id"], request.trace_id.as_str());
    let medical = lane(&created, onedoor_contracts::Department::Medical);
    let referral = medical["referral_id"].as_str().unwrap();
    let token = caseworker(onedoor_contracts::Department::Medical);
    let (status, _) =
        stack.act(onedoor_contracts::Department::Medical, referral, "sign-for", &token, serde_json::json!({})).await;
    assert_eq!(status, 200);
    let start = Instant::now();
    loop {
        let linked: Vec<ReceivedSpan> = receiver
            .spans()
            .into_iter()
            .filter(|s| {
                s.service == "medical-aid" && s.trace_id != request.trace_id && s.links.contains(&request.trace_id)
            })
            .collect();
        if !linked.is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the sign-for never linked to the application's trace");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The auditors of intake and of medical find the submission and the
    // sign-for under the case, each with the trace an operator opens.
    let auditor = onedoor_test_support::driver::tokens::token(Role::Auditor, None, None, "auditor-1");
    let trail = |service: &str| format!("{}/api/v1/audit?case_id={case_id}", stack.url(service));
    let (status, intake_trail) = stack.call(reqwest::Method::GET, trail("intake"), &auditor, None).await;
    assert_eq!(status, 200, "{intake_trail}");
    let submission =
        intake_trail["items"].as_array().unwrap().iter().find(|e| e["action"] == "POST /api/v1/applications");
    assert_eq!(submission.map(|e| &e["trace_id"]), Some(&serde_json::json!(request.trace_id)), "{intake_trail}");
    let (_, medical_trail) = stack.call(reqwest::Method::GET, trail("medical-aid"), &auditor, None).await;
    let sign_for = &medical_trail["items"][0];
    assert_eq!(
        (&sign_for["action"], &sign_for["actor"], &sign_for["referral_id"]),
        (
            &serde_json::json!("POST /api/v1/referrals/{referral_id}/sign-for"),
            &serde_json::json!("medical-cw-1"),
            &serde_json::json!(referral)
        ),
        "{medical_trail}"
    );
    assert_eq!(sign_for["trace_id"].as_str().map(str::len), Some(32));

    // Ids and codes only: nothing personal in any span or log line.
    let child = onedoor_test_support::sample::child_of(&applicant);
    let secrets = [applicant.as_str(), NAME, CHILD, PHONE, DIAGNOSIS, &child];
    for span in receiver.spans() {
        for secret in secrets {
            assert!(
                !span.name.contains(secret) && span.values.iter().all(|v| !v.contains(secret)),
                "{secret} in span {span:?}"
            );
        }
    }
    let logs = stack.all_logs();
    assert!(logs.contains("trace_id"), "JSON logs carry trace ids");
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}
