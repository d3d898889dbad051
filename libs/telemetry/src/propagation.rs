//! W3C trace context across process boundaries: HTTP headers in, stored event
//! metadata, NATS headers out and back in. Only `traceparent`/`tracestate`
//! travel; baggage is not propagated (it could carry personal data).

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The trace context of the current span, as W3C header values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceHeaders {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    /// Captures the current span's context (to save with events written now).
    pub fn current() -> Self {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
        Self {
            traceparent: carrier.remove(TRACEPARENT),
            tracestate: carrier.remove(TRACESTATE).filter(|s| !s.is_empty()),
        }
    }

    /// The trace id of `traceparent` (`version-traceid-spanid-flags`), for
    /// records that point an operator to the trace (the audit log).
    pub fn trace_id(&self) -> Option<String> {
        self.traceparent.as_deref().and_then(|t| t.split('-').nth(1)).map(str::to_string)
    }

    /// The remote parent context these headers describe.
    pub fn to_context(&self) -> Context {
        let mut carrier = HashMap::new();
        if let Some(tp) = &self.traceparent {
            carrier.insert(TRACEPARENT.to_string(), tp.clone());
        }
        if let Some(ts) = &self.tracestate {
            carrier.insert(TRACESTATE.to_string(), ts.clone());
        }
        TraceContextPropagator::new().extract(&carrier)
    }

    /// Adds the headers to a NATS message.
    pub fn inject_nats(&self, headers: &mut async_nats::HeaderMap) {
        if let Some(tp) = &self.traceparent {
            headers.insert(TRACEPARENT, tp.as_str());
        }
        if let Some(ts) = &self.tracestate {
            headers.insert(TRACESTATE, ts.as_str());
        }
    }

    /// Reads the headers of a NATS message.
    pub fn from_nats(headers: Option<&async_nats::HeaderMap>) -> Self {
        let get = |k: &str| headers.and_then(|h| h.get(k)).map(|v| v.as_str().to_string());
        Self { traceparent: get(TRACEPARENT), tracestate: get(TRACESTATE) }
    }
}

/// Links the current span to the trace `traceparent` belongs to, unless the
/// span is in that trace already: a later step of a case (a caseworker's
/// command days after the submission, with a trace of its own) points to the
/// application's trace, so an operator can go from any step to it.
pub fn link_current_span(traceparent: &str) {
    use opentelemetry::trace::TraceContextExt;
    let linked = TraceHeaders { traceparent: Some(traceparent.to_string()), tracestate: None }.to_context();
    let linked = linked.span().span_context().clone();
    let current = tracing::Span::current();
    if linked.is_valid() && current.context().span().span_context().trace_id() != linked.trace_id() {
        current.add_link(linked);
    }
}

/// The remote parent context of an incoming HTTP request.
pub fn extract_http(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HttpHeaders(headers))
}

/// Adds the current span's context to an outgoing HTTP request.
pub fn inject_http(headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut HttpHeadersMut(headers));
}

struct HttpHeaders<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HttpHeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HttpHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(key), http::HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn a_traceparent_round_trips_through_nats_headers_as_a_remote_parent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sent = TraceHeaders { traceparent: Some(tp.into()), tracestate: None };
        let mut headers = async_nats::HeaderMap::new();
        sent.inject_nats(&mut headers);
        let received = TraceHeaders::from_nats(Some(&headers));
        assert_eq!(received, sent);
        let cx = received.to_context();
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote());
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn outside_any_span_there_is_no_trace_context_to_save() {
        assert_eq!(TraceHeaders::current().traceparent, None);
    }
}
