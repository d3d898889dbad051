//! Tracing and OpenTelemetry for every OneDoor service, so an operator can
//! follow one application as one trace from the window to every department.
//!
//! - [`init`] installs a `tracing` subscriber that writes logs (plain text, or
//!   JSON lines with `trace_id` and `span_id` when `ONEDOOR_LOG_FORMAT=json`) and
//!   feeds spans to OpenTelemetry. OTLP export is configured only by the
//!   standard `OTEL_*` variables: with no endpoint set nothing is exported and
//!   nothing fails, yet trace contexts still propagate between services.
//! - [`propagation`] carries the W3C trace context over HTTP and NATS headers
//!   and into stored event metadata.
//!
//! Spans and logs carry ids and codes only, never names, ID numbers, phones
//! or diagnoses: callers record `case.id`, never a person.

pub mod propagation;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::fmt;
use tracing::Subscriber;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("building the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the tracer provider alive; [`TelemetryGuard::shutdown`] (or drop)
/// flushes the spans still buffered, so the last requests before a SIGTERM
/// are not lost from the trace.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    pub fn shutdown(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Whether the standard variables ask for OTLP trace export.
fn otlp_requested() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none")
        || std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Makes ring the process's TLS provider. The HTTP clients built on
/// reqwest 0.13 (the OTLP exporter, the S3 document store) take TLS from the
/// process's provider, which must be chosen once, before the first client;
/// ring is the one sqlx already uses. Later calls change nothing.
pub fn use_ring_for_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A tracer provider configured from `OTEL_*`: service name from
/// `OTEL_SERVICE_NAME` (else `default_service_name`), sampler from
/// `OTEL_TRACES_SAMPLER`, OTLP/HTTP export when an endpoint is given.
pub fn tracer_provider_from_env(default_service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").map_or(true, |v| v.trim().is_empty()) {
        resource = resource.with_service_name(default_service_name.to_string());
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    if otlp_requested() {
        use_ring_for_tls();
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// The subscriber every service uses: env filter (`RUST_LOG`, default `info`),
/// a log layer, and the OpenTelemetry layer feeding `provider`.
pub fn subscriber(service_name: &str, provider: &SdkTracerProvider, json_logs: bool) -> impl Subscriber + Send + Sync {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if json_logs {
        tracing_subscriber::fmt::layer().event_format(JsonWithTrace).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    };
    let tracer = provider.tracer(service_name.to_string());
    Registry::default().with(filter).with(logs).with(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Installs tracing for a service binary. Call once, early in `main`.
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider_from_env(service_name)?;
    let json = std::env::var("ONEDOOR_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    tracing::subscriber::set_global_default(subscriber(service_name, &provider, json))
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    std::panic::set_hook(Box::new(log_panic_without_its_message));
    Ok(TelemetryGuard { provider: Some(provider) })
}

/// A panic is logged with where it happened, in the current span (so with
/// its trace id), but never with its message: a message such as an index
/// out of range, or a failed parse, can quote what a client sent, and that
/// may be an ID number or a diagnosis.
fn log_panic_without_its_message(info: &std::panic::PanicHookInfo<'_>) {
    let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
    tracing::error!(%location, "panic (its message is not logged: it may hold personal data)");
}

/// JSON log lines that carry the OpenTelemetry trace and span ids, so a log
/// line can be found from a trace and a trace from a log line.
struct JsonWithTrace;

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert("timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        if let Some(span) = ctx.lookup_current() {
            line.insert("span".into(), span.name().into());
        }
        // The OpenTelemetry layer makes an entered span's context the current one.
        let cx = opentelemetry::Context::current();
        let span_context = cx.span().span_context().clone();
        if span_context.is_valid() {
            line.insert("trace_id".into(), span_context.trace_id().to_string().into());
            line.insert("span_id".into(), span_context.span_id().to_string().into());
        }
        line.extend(fields.0);
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

#[derive(Default)]
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}
