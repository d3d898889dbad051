//! `GET /metrics`: the process's Prometheus metrics (see `onedoor_metrics`),
//! with the figures that are read rather than counted brought up to date at
//! each scrape: database pools, the outbox backlog (and the broker erasures
//! waiting), each consumer's pending
//! and unacknowledged messages, its streams' use of their limits (and the
//! dead-letter stream's), and the service's business gauges.
//!
//! Each reading is bounded (a broker or database that is away leaves the
//! last figures and never holds the scrape), and the business gauges, which
//! count rows, run at most once a minute however often Prometheus asks.
//! Like the health endpoints it needs no token: it is served to the
//! cluster's Prometheus, never through the public Ingress, and holds no
//! personal data.

use async_nats::jetstream;
use axum::extract::State;
use axum::response::IntoResponse;
use onedoor_metrics::{Labels, metrics};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A business figure operators are asked about, counted in the service's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Business {
    /// `onedoor_open_cases{status}`.
    OpenCases,
    /// `onedoor_overdue_lanes{department}`.
    OverdueLanes,
}

/// A business gauge and the query that counts it: rows of (label value, count).
#[derive(Debug, Clone)]
pub struct BusinessGauge {
    pub gauge: Business,
    pub sql: String,
}

pub(crate) struct Scrape {
    pub pools: Vec<(&'static str, PgPool)>,
    pub js: jetstream::Context,
    /// (stream, durable) of each consumer.
    pub consumers: Vec<(String, String)>,
    /// The streams this service publishes to, and the dead-letter stream.
    pub streams: Vec<String>,
    pub business: Vec<BusinessGauge>,
    pub last_business: Mutex<Option<Instant>>,
}

/// How long one reading may take.
const READING: Duration = Duration::from_secs(2);
/// How often the business gauges are counted at most.
const BUSINESS_EVERY: Duration = Duration::from_secs(60);

pub(crate) fn router(scrape: Scrape) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(render)).with_state(Arc::new(scrape))
}

async fn render(State(scrape): State<Arc<Scrape>>) -> impl IntoResponse {
    scrape.refresh().await;
    ([(axum::http::header::CONTENT_TYPE, onedoor_metrics::CONTENT_TYPE)], metrics().render())
}

impl Scrape {
    async fn refresh(&self) {
        let m = metrics();
        for (name, pool) in &self.pools {
            let (size, idle) = (pool.size() as i64, pool.num_idle() as i64);
            let labels = |state: &str| vec![("pool", name.to_string()), ("state", state.to_string())];
            m.pool_connections.get_or_create(&labels("in_use")).set(size - idle);
            m.pool_connections.get_or_create(&labels("idle")).set(idle);
            m.pool_max
                .get_or_create(&vec![("pool", name.to_string())])
                .set(pool.options().get_max_connections() as i64);
        }
        let work = &self.pools.last().expect("the host has pools").1;
        if let Ok(Ok(n)) = tokio::time::timeout(READING, onedoor_event_store::outbox::unsent_count(work)).await {
            m.outbox_backlog.set(n);
        }
        let waiting = onedoor_event_store::outbox::broker_erasures_waiting(work);
        if let Ok(Ok(n)) = tokio::time::timeout(READING, waiting).await {
            m.broker_erasures_waiting.set(n);
        }
        let _ = tokio::time::timeout(READING, self.consumer_lag()).await;
        let _ = tokio::time::timeout(READING, self.stream_use()).await;
        let due = self.last_business.lock().is_ok_and(|last| last.is_none_or(|at| at.elapsed() >= BUSINESS_EVERY));
        if due
            && tokio::time::timeout(READING, self.business(work)).await.is_ok_and(|counted| counted)
            && let Ok(mut last) = self.last_business.lock()
        {
            *last = Some(Instant::now());
        }
    }

    async fn consumer_lag(&self) {
        let m = metrics();
        for (stream, durable) in &self.consumers {
            let Ok(s) = self.js.get_stream(stream).await else { continue };
            let Ok(info) = s.consumer_info(durable).await else { continue };
            let labels: Labels = vec![("consumer", durable.clone())];
            m.consumer_pending.get_or_create(&labels).set(info.num_pending as i64);
            m.consumer_ack_pending.get_or_create(&labels).set(info.num_ack_pending as i64);
        }
    }

    async fn stream_use(&self) {
        let m = metrics();
        for name in &self.streams {
            let Ok(mut stream) = self.js.get_stream(name).await else { continue };
            let Ok(info) = stream.info().await else { continue };
            let labels: Labels = vec![("stream", name.clone())];
            m.stream_bytes.get_or_create(&labels).set(info.state.bytes as i64);
            m.stream_max_bytes.get_or_create(&labels).set(info.config.max_bytes);
            m.stream_messages.get_or_create(&labels).set(info.state.messages as i64);
        }
    }

    /// `true` once every business gauge was counted.
    async fn business(&self, pool: &PgPool) -> bool {
        let m = metrics();
        for gauge in &self.business {
            let Ok(rows) =
                sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(gauge.sql.clone())).fetch_all(pool).await
            else {
                return false;
            };
            let (family, label) = match gauge.gauge {
                Business::OpenCases => (&m.open_cases, "status"),
                Business::OverdueLanes => (&m.overdue_lanes, "department"),
            };
            family.clear();
            for (value, count) in rows {
                family.get_or_create(&vec![(label, value)]).set(count);
            }
        }
        true
    }
}
