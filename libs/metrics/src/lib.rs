//! The Prometheus metrics every OneDoor service exposes on `/metrics`: one
//! process-wide set, recorded where the work happens (requests in
//! `http-kit`, messages in `messaging`'s consumer and relay) and topped up
//! at scrape time by the service host (pools, backlogs, consumer lag, the
//! business gauges). One set per process, not per service: a process runs
//! one service in production, and in tests the figures only ever grow.
//!
//! Labels carry routes as templates (`/api/v1/cases/{case_id}`), consumer
//! names, departments and statuses: never an id, a name or a number that
//! belongs to a person.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::sync::LazyLock;
use std::time::Duration;

/// Label pairs: `[("route", "/api/v1/cases/{case_id}"), ("status", "200")]`.
pub type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// 1 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    /// Requests by method, route and status.
    pub http_requests: Family<Labels, Counter>,
    pub http_duration: Histograms,
    /// State-changing requests by route and outcome (`accepted`, `refused`, `failed`).
    pub commands: Family<Labels, Counter>,
    /// Consumed messages by consumer and outcome (`handled`, `duplicate`, `retry`, `dead_lettered`).
    pub messages: Family<Labels, Counter>,
    pub message_duration: Histograms,
    pub dead_letters: Family<Labels, Counter>,
    pub consumer_pending: Family<Labels, Gauge>,
    pub consumer_ack_pending: Family<Labels, Gauge>,
    pub outbox_backlog: Gauge,
    /// Erased households' cases whose messages wait to be taken off the broker (ADR 0019).
    pub broker_erasures_waiting: Gauge,
    /// From a message's publish to its PubAck.
    pub relay_publish: Histogram,
    pub relay_published: Counter,
    /// Connections by pool (`api`, `work`) and state (`in_use`, `idle`).
    pub pool_connections: Family<Labels, Gauge>,
    pub pool_max: Family<Labels, Gauge>,
    /// Requests answered 503 because no connection came free in time.
    pub pool_timeouts: Counter,
    /// A JetStream stream's stored bytes and its limit, by stream.
    pub stream_bytes: Family<Labels, Gauge>,
    pub stream_max_bytes: Family<Labels, Gauge>,
    /// Messages in a stream (the dead-letter stream's are the dead letters present).
    pub stream_messages: Family<Labels, Gauge>,
    /// Cases not closed, by status (intake).
    pub open_cases: Family<Labels, Gauge>,
    /// Lanes past their time limit and not decided, by department.
    pub overdue_lanes: Family<Labels, Gauge>,
}

/// A new metric of its kind's default, registered under `name`.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    registered_as(registry, name, help, M::default())
}

/// `metric`, registered under `name` (handles share their values, so the
/// registry keeps one and the caller records through the other).
fn registered_as<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registry::with_prefix("onedoor");
        let histograms = || Histograms::new_with_constructor(latency_histogram as fn() -> Histogram);
        Self {
            http_requests: registered(&mut r, "http_requests", "HTTP requests by method, route and status"),
            http_duration: registered_as(
                &mut r,
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
                histograms(),
            ),
            commands: registered(&mut r, "commands", "State-changing requests by route and outcome"),
            messages: registered(&mut r, "messages_consumed", "Consumed messages by consumer and outcome"),
            message_duration: registered_as(
                &mut r,
                "message_handling_seconds",
                "Time to handle a consumed message",
                histograms(),
            ),
            dead_letters: registered(&mut r, "dead_letters", "Messages sent to the dead-letter stream, by consumer"),
            consumer_pending: registered(
                &mut r,
                "consumer_pending_messages",
                "Messages not yet delivered to a consumer",
            ),
            consumer_ack_pending: registered(
                &mut r,
                "consumer_ack_pending_messages",
                "Messages delivered to a consumer and not yet acknowledged",
            ),
            outbox_backlog: registered(&mut r, "outbox_backlog_messages", "Outbox messages waiting to be published"),
            broker_erasures_waiting: registered(
                &mut r,
                "broker_erasures_waiting",
                "Erased households' cases whose messages are still to be taken off the broker",
            ),
            relay_publish: registered_as(
                &mut r,
                "relay_publish_seconds",
                "From an outbox message's publish to its PubAck",
                latency_histogram(),
            ),
            relay_published: registered(&mut r, "relay_published", "Outbox messages acknowledged by JetStream"),
            pool_connections: registered(&mut r, "db_pool_connections", "Database connections by pool and state"),
            pool_max: registered(&mut r, "db_pool_max_connections", "Largest size of each database pool"),
            pool_timeouts: registered(
                &mut r,
                "db_pool_timeouts",
                "Requests that found no free database connection in time",
            ),
            stream_bytes: registered(&mut r, "stream_bytes", "Bytes stored in a JetStream stream"),
            stream_max_bytes: registered(&mut r, "stream_max_bytes", "A JetStream stream's byte limit"),
            stream_messages: registered(&mut r, "stream_messages", "Messages in a JetStream stream"),
            open_cases: registered(&mut r, "open_cases", "Cases not closed, by status"),
            overdue_lanes: registered(
                &mut r,
                "overdue_lanes",
                "Lanes past their time limit and not decided, by department",
            ),
            registry: r,
        }
    }

    /// One HTTP request: `route` is the matched template, never the path itself.
    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = vec![("method", method.to_string()), ("route", route.to_string())];
        self.http_duration.get_or_create(&labels).observe(took.as_secs_f64());
        let mut with_status = labels;
        with_status.push(("status", status.to_string()));
        self.http_requests.get_or_create(&with_status).inc();
        if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
            let outcome = match status {
                200..=399 => "accepted",
                400..=499 => "refused",
                _ => "failed",
            };
            let command = vec![("route", route.to_string()), ("outcome", outcome.to_string())];
            self.commands.get_or_create(&command).inc();
        }
    }

    /// One consumed message and how it ended.
    pub fn message(&self, consumer: &str, outcome: &str, took: Duration) {
        let consumer = ("consumer", consumer.to_string());
        self.message_duration.get_or_create(&vec![consumer.clone()]).observe(took.as_secs_f64());
        if outcome == "dead_lettered" {
            self.dead_letters.get_or_create(&vec![consumer.clone()]).inc();
        }
        self.messages.get_or_create(&vec![consumer, ("outcome", outcome.to_string())]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_with_route_templates_and_outcomes() {
        let m = metrics();
        m.http_request("POST", "/api/v1/referrals/{referral_id}/sign-for", 404, Duration::from_millis(3));
        m.message("intake-lane-reports", "handled", Duration::from_millis(7));
        let text = m.render();
        assert!(text.contains(
            "onedoor_http_requests_total{method=\"POST\",route=\"/api/v1/referrals/{referral_id}/sign-for\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "onedoor_commands_total{route=\"/api/v1/referrals/{referral_id}/sign-for\",outcome=\"refused\"} 1"
        ));
        assert!(
            text.contains("onedoor_messages_consumed_total{consumer=\"intake-lane-reports\",outcome=\"handled\"} 1")
        );
        assert!(
            text.contains("onedoor_message_handling_seconds_bucket{le=\"0.008\",consumer=\"intake-lane-reports\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
