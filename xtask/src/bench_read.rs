//! `cargo xtask bench read`: the window's reads with a province's worth of
//! cases in intake's database.
//!
//! Release builds on their own servers ([`crate::platform`]). A few real
//! applications go through the API; their case views are then copied in
//! SQL to `--cases` rows over 100 townships (new ids, numbers, townships and
//! submission times; the events are not copied: both reads measured here
//! read the projection, as production does for all but the few cases whose
//! paused deadline moves with the date). Then, one request at a time, it asks
//! for random cases' views and for filtered pages of one township's list, and
//! prints p50/p99 of each. The last line is JSON.

use crate::bench::percentile_ms;
use anyhow::{Context, Result, ensure};
use onedoor_http_kit::Role;
use onedoor_test_support::driver::{SECRET, tokens};
use onedoor_test_support::sample::SampleApplication;
use serde_json::json;
use std::time::Instant;

const TOWNSHIPS: usize = 100;

pub fn run(cases: usize, requests: usize) -> Result<()> {
    crate::up::build_services(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let platform = crate::platform::Platform::start(&runtime, "onedoor-bench-read-", SECRET, false)?;
    let intake_db = crate::up::database_url(&platform.admin_url, "onedoor_intake");
    let figures = runtime.block_on(measure(&platform.urls()[0], &intake_db, cases, requests));
    platform.stop();
    println!("{}", figures?);
    Ok(())
}

fn township(t: usize) -> String {
    format!("330102{:03}", t + 1)
}

fn clerk(township: &str) -> String {
    tokens::token(Role::WindowClerk, Some(township), None, "clerk-1")
}

async fn measure(intake: &str, database: &str, cases: usize, requests: usize) -> Result<serde_json::Value> {
    let http = reqwest::Client::new();
    // Templates: real submissions, four lines each, in the first township.
    let first = township(0);
    for n in 0..20 {
        let applicant =
            onedoor_test_support::id_number(&format!("3301021965{:02}{:02}{:03}", 1 + n % 12, 1 + n % 28, n));
        let mut form = SampleApplication::household_of_two(&applicant).four_lines().json();
        form["household"]["division_code"] = json!(format!("{first}001"));
        let res =
            http.post(format!("{intake}/api/v1/applications")).bearer_auth(clerk(&first)).json(&form).send().await?;
        ensure!(res.status() == 201, "a template application was refused: {}", res.text().await?);
    }
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(database).await?;
    let started = Instant::now();
    let copies = cases.saturating_sub(20) as i64;
    sqlx::query(
        "WITH template AS (SELECT row_number() OVER (ORDER BY case_id) - 1 AS n, * FROM case_views),
              copy AS (SELECT g, gen_random_uuid() AS id, '330102' || lpad((g % 100 + 1)::text, 3, '0') AS township
                         FROM generate_series(1, $1::bigint) g)
         INSERT INTO case_views (case_id, case_number, township, status, submitted_at, next_deadline, version, view,
                                 applicant_id_number, household_id, owner)
         SELECT copy.id, copy.township || '-2026-' || lpad(copy.g::text, 7, '0'), copy.township, t.status,
                t.submitted_at - copy.g * interval '20 seconds', t.next_deadline - (copy.g % 40)::int, t.version,
                jsonb_set(jsonb_set(t.view, '{case_id}', to_jsonb(copy.id::text)),
                          '{division_code}', to_jsonb(copy.township || '001')),
                t.applicant_id_number, t.household_id, t.owner
           FROM copy JOIN template t ON t.n = copy.g % 20",
    )
    .bind(copies)
    .execute(&pool)
    .await
    .context("copying the case views")?;
    sqlx::query("ANALYZE case_views").execute(&pool).await?;
    let loaded = started.elapsed();
    let size: String =
        sqlx::query_scalar("SELECT pg_size_pretty(pg_total_relation_size('case_views'))").fetch_one(&pool).await?;
    println!("{cases} cases in case_views ({size}) in {:.1} s", loaded.as_secs_f64());

    // Random cases of every township, each asked for by its own township's clerk.
    let sample: Vec<(String, String)> =
        sqlx::query_as("SELECT case_id::text, township FROM case_views TABLESAMPLE SYSTEM (1) LIMIT $1")
            .bind(requests as i64)
            .fetch_all(&pool)
            .await?;
    let mut views = Vec::with_capacity(sample.len());
    for (case_id, township) in &sample {
        let token = clerk(township);
        let at = Instant::now();
        let res = http.get(format!("{intake}/api/v1/cases/{case_id}")).bearer_auth(&token).send().await?;
        ensure!(res.status() == 200, "case {case_id}: {}", res.status());
        res.bytes().await?;
        views.push(at.elapsed());
    }
    let busy = township(1);
    let per_township: i64 =
        sqlx::query_scalar("SELECT count(*) FROM case_views WHERE township = $1").bind(&busy).fetch_one(&pool).await?;
    let mut pages = Vec::new();
    let token = clerk(&busy);
    for (i, filter) in ["status=in_progress", "overdue=true", "status=in_progress&overdue=false", ""]
        .iter()
        .cycle()
        .take(requests)
        .enumerate()
    {
        let at = Instant::now();
        let res = http.get(format!("{intake}/api/v1/cases?limit=20&{filter}")).bearer_auth(&token).send().await?;
        ensure!(res.status() == 200, "list page {i} ({filter}): {}", res.status());
        res.bytes().await?;
        pages.push(at.elapsed());
    }
    let (view50, view99) = (percentile_ms(&views, 0.5), percentile_ms(&views, 0.99));
    let (page50, page99) = (percentile_ms(&pages, 0.5), percentile_ms(&pages, 0.99));
    println!("case view   p50 {view50:>7.2} ms   p99 {view99:>7.2} ms   ({} requests)", views.len());
    println!(
        "list page   p50 {page50:>7.2} ms   p99 {page99:>7.2} ms   ({} requests, {per_township} cases in the township)",
        pages.len()
    );
    Ok(json!({
        "cases": cases,
        "townships": TOWNSHIPS,
        "cases_in_listed_township": per_township,
        "load_seconds": (loaded.as_secs_f64() * 10.0).round() / 10.0,
        "case_view": {"p50_ms": view50, "p99_ms": view99, "requests": views.len()},
        "list_page": {"p50_ms": page50, "p99_ms": page99, "requests": pages.len()},
    }))
}
