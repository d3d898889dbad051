//! `cargo xtask bench rebuild`: how fast operators can rebuild every case
//! view from intake's event log (`POST /api/v1/admin/case-views/rebuild`).
//!
//! Release builds on their own servers ([`crate::platform`]). A few hundred
//! households go through the whole loop (submission to payment: real case
//! histories of about twenty events); their case streams are then copied in
//! SQL under new case ids (and case numbers) to `--cases` cases. The rebuild job is started
//! through the operators' API and followed until done; the figure is the
//! case events folded a second. The last line is JSON.

use anyhow::{Context, Result, ensure};
use onedoor_test_support::driver::{SECRET, tokens};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub fn run(cases: usize) -> Result<()> {
    crate::up::build_services(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let platform = crate::platform::Platform::start(&runtime, "onedoor-bench-rebuild-", SECRET, false)?;
    let intake_db = crate::up::database_url(&platform.admin_url, "onedoor_intake");
    let figures = runtime.block_on(measure(platform.urls(), &intake_db, cases));
    platform.stop();
    println!("{}", figures?);
    Ok(())
}

async fn measure(urls: Vec<String>, database: &str, cases: usize) -> Result<Value> {
    let templates = cases.clamp(1, 300);
    let completed = crate::bench_e2e::complete_households(urls.clone(), templates, 32).await;
    ensure!(completed == templates, "only {completed} of {templates} template households completed");
    // Let the last lane reports and notifications land before copying.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pool = sqlx::PgPool::connect(database).await?;
    let copies = (cases / templates).saturating_sub(1) as i64;
    sqlx::query(
        "WITH copies AS (
             SELECT s.stream_id, g, gen_random_uuid()::text AS id
               FROM (SELECT DISTINCT stream_id FROM events WHERE stream_type = 'case') s
               CROSS JOIN generate_series(1, $1::bigint) g)
         INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version, payload, metadata)
         SELECT gen_random_uuid(), c.id, e.stream_type, e.version, e.event_type, e.schema_version,
                -- A copy's case number is its own (case numbers are unique).
                CASE WHEN e.payload ? 'case_number'
                     THEN jsonb_set(e.payload, '{case_number}', to_jsonb((e.payload ->> 'case_number') || '-' || c.g))
                     ELSE e.payload END,
                e.metadata
           FROM copies c JOIN events e ON e.stream_id = c.stream_id
          ORDER BY c.id, e.version",
    )
    .bind(copies)
    .execute(&pool)
    .await
    .context("copying the case streams")?;
    let (streams, events): (i64, i64) =
        sqlx::query_as("SELECT count(DISTINCT stream_id), count(*) FROM events WHERE stream_type = 'case'")
            .fetch_one(&pool)
            .await?;
    println!("{streams} cases, {events} case events in intake's log");

    let http = reqwest::Client::new();
    let operator = tokens::operator();
    let started = Instant::now();
    let res = http.post(format!("{}/api/v1/admin/case-views/rebuild", urls[0])).bearer_auth(&operator).send().await?;
    ensure!(res.status() == 202, "the rebuild was refused: {}", res.status());
    let job: Value = res.json().await?;
    let progress =
        format!("{}/api/v1/admin/case-views/rebuild/{}", urls[0], job["job_id"].as_str().unwrap_or_default());
    let job = loop {
        let job: Value = http.get(&progress).bearer_auth(&operator).send().await?.json().await?;
        match job["status"].as_str() {
            Some("done") => break job,
            Some("running") => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => anyhow::bail!("the rebuild failed: {job}"),
        }
    };
    let took = started.elapsed().as_secs_f64();
    let rate = (events as f64 / took).round();
    println!("rebuilt {} cases in {took:.1} s: {rate} events/s", job["cases_done"]);
    Ok(json!({"cases": streams, "events": events, "seconds": (took * 10.0).round() / 10.0, "events_per_s": rate}))
}
