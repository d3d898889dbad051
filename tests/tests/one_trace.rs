//! One trace from the window to a department: an HTTP request that appends
//! an event, the relay's publish and the consumer's processing share a trace.
//! Its own test binary, because it installs a tracing subscriber.

mod common;

use common::*;
use onedoor_messaging::consumer::{self, ConsumerSpec, Delivery, Handler, HandlerError};
use onedoor_messaging::relay::{OutboxRelay, RelayConfig};
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Keeps finished spans in memory so the test can inspect the trace.
#[derive(Debug, Clone, Default)]
struct CapturedSpans(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for CapturedSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl CapturedSpans {
    fn named(&self, prefix: &str) -> SpanData {
        let spans = self.0.lock().unwrap();
        spans.iter().find(|s| s.name.starts_with(prefix)).cloned().unwrap_or_else(|| {
            panic!("no span named {prefix}; have {:?}", spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>())
        })
    }
}

struct Acknowledge;

impl Handler for Acknowledge {
    async fn handle(&self, _tx: &mut sqlx::PgConnection, _delivery: &Delivery) -> Result<(), HandlerError> {
        tracing::info!("referral noted");
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_http_request_the_relay_publish_and_the_consumer_share_one_trace() {
    let spans = CapturedSpans::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
    let _subscriber = tracing::subscriber::set_default(onedoor_telemetry::subscriber("platform-test", &provider, true));

    let db = store_db().await;
    let nats = onedoor_test_support::TestNats::start();
    let (_client, js) = nats.jetstream().await;
    intake_stream(&js).await;
    let base = common::app::spawn(db.pool.clone()).await;
    let shutdown = CancellationToken::new();
    let relay =
        tokio::spawn(OutboxRelay::new(db.pool.clone(), js.clone(), RelayConfig::default()).run(shutdown.clone()));
    let spec = ConsumerSpec::new("medical-aid", TEST_STREAM, "medical-aid", vec![materials_subject()]);
    let consumer =
        tokio::spawn(consumer::run(js.clone(), db.pool.clone(), spec, Arc::new(Acknowledge), shutdown.clone()));

    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/cases/{}/materials", Uuid::now_v7()))
        .bearer_auth(common::app::token(onedoor_http_kit::Role::WindowClerk))
        .json(&serde_json::json!({"case_id": Uuid::now_v7(), "materials": ["id_card"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    eventually("the consumer handled the event", Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox").fetch_one(&db.pool).await.unwrap() == 1
    })
    .await;
    // Spans reach the exporter as they end, a moment after the work they time.
    eventually("the request, publish and process spans are exported", Duration::from_secs(10), || async {
        let names: Vec<String> = spans.0.lock().unwrap().iter().map(|s| s.name.to_string()).collect();
        ["POST ", "publish ", "process "].iter().all(|p| names.iter().any(|n| n.starts_with(p)))
    })
    .await;
    shutdown.cancel();
    relay.await.unwrap();
    consumer.await.unwrap().unwrap();
    provider.force_flush().unwrap();

    let request = spans.named("POST /api/v1/cases/{case_id}/materials");
    let publish = spans.named("publish onedoor.intake.materials.supplemented");
    let process = spans.named("process onedoor.intake.materials.supplemented");
    let trace = request.span_context.trace_id();
    assert_eq!(request.span_kind, SpanKind::Server);
    assert_eq!(request.parent_span_id, SpanId::INVALID, "the request starts the trace");
    assert_eq!(publish.span_context.trace_id(), trace, "the relay publishes in the request's trace");
    assert_eq!(publish.parent_span_id, request.span_context.span_id());
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(process.span_context.trace_id(), trace, "the consumer processes in the request's trace");
    assert_eq!(process.parent_span_id, publish.span_context.span_id());
    assert!(process.parent_span_is_remote, "the consumer's parent came over the wire");
    assert_eq!(process.span_kind, SpanKind::Consumer);
}
