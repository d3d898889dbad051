//! `cargo xtask bench store`: how fast the window's durable write path is.
//!
//! Measures, against freshly provisioned servers with production durability
//! (PostgreSQL fsync on, JetStream `sync_interval: always`):
//! 1. raw single-row commits to PostgreSQL with `writers` concurrent connections;
//! 2. raw async publishes to JetStream (pipelined PubAcks);
//! 3. end to end: `writers` concurrent writers each appending one event per
//!    transaction (event + outbox row), while the outbox relay publishes them;
//!    the clock stops when the last event is acknowledged by JetStream.
//!
//! Both pipes are durable, so the slower raw rate is the physical bound; the
//! goal is `events_per_s` at least half of it. The last line is JSON.

use anyhow::{Context, Result, ensure};
use async_nats::jetstream;
use onedoor_event_store::{EventMetadata, ExpectedVersion, NewEvent, outbox};
use onedoor_local_servers::{Durability, NatsServer, PostgresServer, Tools, scratch_dir};
use onedoor_messaging::relay::{OutboxRelay, RelayConfig};
use sqlx::postgres::PgPoolOptions;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Event store + outbox + relay throughput against the raw rates of PostgreSQL and JetStream.
    Store {
        #[arg(long, default_value_t = 16)]
        writers: usize,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
    },
    /// Complete applications through the whole loop over REST (release builds, production durability).
    E2e(crate::bench_e2e::E2eArgs),
    /// The case view and the case list with many cases in intake's database.
    Read {
        #[arg(long, default_value_t = 1_000_000)]
        cases: usize,
        /// Requests of each kind.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
    /// Events per second of a full case-view rebuild through the operators' API.
    Rebuild {
        #[arg(long, default_value_t = 20_000)]
        cases: usize,
    },
    /// Server-side rendering time and weight of the workbench's main pages, the platform idle.
    Workbench {
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
}

pub fn run(which: Bench) -> Result<()> {
    if cfg!(debug_assertions) {
        // Measure optimised code: rerun this command from a release build.
        let status = crate::cargo()
            .args(["run", "--release", "--quiet", "--package", "xtask", "--", "bench"])
            .args(std::env::args().skip_while(|a| a != "bench").skip(1))
            .status()?;
        ensure!(status.success(), "the benchmark failed");
        return Ok(());
    }
    match which {
        Bench::Store { writers, events } => store(writers.max(1), events.max(writers)),
        Bench::Workbench { requests } => crate::bench_workbench::run(requests.max(1)),
        Bench::E2e(args) => crate::bench_e2e::run(args),
        Bench::Rebuild { cases } => crate::bench_rebuild::run(cases.max(1)),
        Bench::Read { cases, requests } => crate::bench_read::run(cases.max(20), requests.max(1)),
    }
}

fn store(writers: usize, events: usize) -> Result<()> {
    let tools = Tools::ensure()?;
    let dir = scratch_dir("onedoor-bench-")?;
    let pg = PostgresServer::start(&tools, &dir.path().join("pg"), 0, Durability::Full)?;
    let nats = NatsServer::start(&tools, &dir.path().join("nats"), 0)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let seed = nats.seed(onedoor_broker_access::OPERATOR);
    let figures = runtime.block_on(measure(&pg.url("postgres"), &nats.url(), &seed, writers, events))?;
    println!("{figures}");
    Ok(())
}

/// The `p` quantile of `samples` in milliseconds, to a hundredth (0 if none):
/// the one percentile of every benchmark.
pub(crate) fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let i = ((sorted.len().max(1) as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| (d.as_secs_f64() * 100_000.0).round() / 100.0)
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    (n as f64 / elapsed.as_secs_f64()).round()
}

async fn measure(
    pg_url: &str,
    nats_url: &str,
    nats_seed: &str,
    writers: usize,
    events: usize,
) -> Result<serde_json::Value> {
    let pool = PgPoolOptions::new()
        .max_connections(writers as u32 + 4)
        .connect(pg_url)
        .await
        .context("connecting to the benchmark PostgreSQL")?;
    onedoor_event_store::migrate(&pool).await?;
    let client = async_nats::ConnectOptions::with_nkey(nats_seed.to_string()).connect(nats_url).await?;
    let js = jetstream::new(client);
    let per_writer = events / writers;
    let events = per_writer * writers;

    // 1. Raw PostgreSQL: one single-row INSERT per commit.
    sqlx::query("CREATE TABLE raw_commits (id uuid PRIMARY KEY, body jsonb NOT NULL)").execute(&pool).await?;
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..per_writer {
                    sqlx::query("INSERT INTO raw_commits (id, body) VALUES ($1, $2)")
                        .bind(Uuid::now_v7())
                        .bind(serde_json::json!({"materials": ["id_card"]}))
                        .execute(&pool)
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let raw_pg = rate(events, start.elapsed());
    eprintln!("raw PostgreSQL commits: {raw_pg}/s");

    // 2. Raw JetStream: async publishes, PubAcks awaited in windows.
    onedoor_messaging::ensure_stream(&js, "RAW", vec!["raw.>".into()]).await?;
    let payload = bytes_of_event()?;
    let start = Instant::now();
    let mut in_flight = Vec::with_capacity(1000);
    for _ in 0..events {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, Uuid::now_v7().to_string().as_str());
        in_flight.push(js.publish_with_headers("raw.event", headers, payload.clone().into()).await?);
        if in_flight.len() == 1000 {
            for ack in in_flight.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in in_flight.drain(..) {
        ack.await?;
    }
    let raw_js = rate(events, start.elapsed());
    eprintln!("raw JetStream publishes: {raw_js}/s");

    // 3. End to end: each event appended and announced in one transaction, relayed to JetStream.
    onedoor_messaging::ensure_stream(&js, "INTAKE", vec![onedoor_contracts::intake::subjects()]).await?;
    let events_per_s = end_to_end(&pool, &js, writers, per_writer, false).await?;
    // The same inside explicit transactions (BEGIN .. COMMIT), as a service
    // writing read models beside its events does: one more round trip each.
    let events_per_s_in_explicit_tx = end_to_end(&pool, &js, writers, per_writer, true).await?;
    let bound = raw_pg.min(raw_js);
    eprintln!("ratio to the slower raw rate: {:.2} (goal: at least 0.5)", events_per_s / bound);
    Ok(serde_json::json!({
        "events_per_s": events_per_s,
        "events_per_s_in_explicit_tx": events_per_s_in_explicit_tx,
        "raw_pg_commits_per_s": raw_pg,
        "raw_js_publish_per_s": raw_js,
        "writers": writers,
        "events": events,
    }))
}

/// Appends `per_writer` events from each of `writers` concurrent writers, one
/// event per transaction, while the relay publishes; the clock stops when
/// JetStream has acknowledged the last one. Returns events per second.
async fn end_to_end(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    writers: usize,
    per_writer: usize,
    explicit_tx: bool,
) -> Result<f64> {
    let events = writers * per_writer;
    let before = js.get_stream("INTAKE").await?.info().await?.state.messages;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(OutboxRelay::new(pool.clone(), js.clone(), RelayConfig::default()).run(shutdown.clone()));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let case_id = Uuid::now_v7();
                let mut conn = pool.acquire().await?;
                for version in 0..per_writer {
                    let envelope = event(case_id);
                    let announcement = onedoor_event_store::outbox::OutboxMessage::announcing(&envelope)?;
                    let appended = [NewEvent::new("MaterialsSupplemented", 1, serde_json::to_value(&envelope.data)?)];
                    let stream_id = case_id.to_string();
                    let metadata =
                        EventMetadata { correlation_id: Some(case_id), actor: "bench".into(), ..Default::default() };
                    let append = |conn| {
                        onedoor_event_store::append_and_announce(
                            conn,
                            "case",
                            &stream_id,
                            ExpectedVersion::Exact(version as i64),
                            &appended,
                            &metadata,
                            std::slice::from_ref(&announcement),
                        )
                    };
                    if explicit_tx {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        append(&mut tx).await?;
                        tx.commit().await?;
                    } else {
                        // A single statement is its own transaction.
                        append(&mut conn).await?;
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let written = start.elapsed();
    while outbox::unsent_count(pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    shutdown.cancel();
    relay.await?;
    let published = js.get_stream("INTAKE").await?.info().await?.state.messages - before;
    ensure!(published as usize == events, "expected {events} more events in JetStream, found {published}");
    let rate = rate(events, elapsed);
    eprintln!(
        "end to end ({}): {events} events by {writers} writers, written in {:.2}s, all published after {:.2}s: {rate}/s",
        if explicit_tx { "BEGIN; append and announce; COMMIT" } else { "append and announce as one statement" },
        written.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    Ok(rate)
}

fn event(case_id: Uuid) -> onedoor_contracts::CloudEvent<onedoor_contracts::intake::MaterialsSupplemented> {
    onedoor_contracts::CloudEvent::new(
        onedoor_contracts::intake::MaterialsSupplemented {
            case_id,
            referral_ids: vec![],
            materials: vec!["id_card".into(), "hukou_book".into()],
            supplemented_at: chrono::Utc::now(),
        },
        chrono::Utc::now(),
    )
}

/// A realistic message body: the same size as the end-to-end events.
fn bytes_of_event() -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&event(Uuid::now_v7()))?)
}
