//! `cargo xtask bench workbench`: how fast the workbench renders its pages,
//! and how much each weighs on the wire, with the platform idle.
//!
//! Provisions its own PostgreSQL and nats-server (production durability),
//! runs release builds of the five services and the workbench, loads the
//! demo applications, signs in through the development sign-in, and asks for
//! each main page `requests` times in a row. Prints p50/p95 of the server's
//! answer per page and the bytes of the page with its assets; the last line
//! is JSON. Goals (issue 11): p95 ≤ 100 ms, at most 150 KB per page.

use anyhow::{Context, Result, ensure};
use onedoor_local_servers::free_port;
use serde_json::json;
use std::time::{Duration, Instant};

pub fn run(requests: usize) -> Result<()> {
    crate::up::build_services(true)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let secret = crate::jwt_secret();
    let platform = crate::platform::Platform::start(&runtime, "onedoor-bench-workbench-", &secret, false)?;
    let services = &platform.services;
    let mut workbench = crate::up::start_workbench(services, &secret, free_port()?, true)?;
    let figures = runtime.block_on(measure(&services[0].url(), &workbench.url(), requests));
    workbench.stop();
    platform.stop();
    let figures = figures?;
    println!("{figures}");
    Ok(())
}

/// A client signed in as `who` (the development sign-in's query).
async fn signed_in(workbench: &str, who: &str) -> Result<reqwest::Client> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let answer = http.get(format!("{workbench}/dev-login?{who}")).send().await?;
    let cookie = answer
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("the development sign-in set no cookie")?
        .to_string();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    Ok(reqwest::Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build()?)
}

/// Bytes of the assets a page links to (scripts and stylesheets), each once.
async fn asset_bytes(http: &reqwest::Client, workbench: &str, html: &str) -> Result<usize> {
    let mut total = 0;
    for part in html.split("/assets/").skip(1) {
        let name: String = part.chars().take_while(|c| *c != '"').collect();
        total += http.get(format!("{workbench}/assets/{name}")).send().await?.bytes().await?.len();
    }
    Ok(total)
}

async fn measure(intake: &str, workbench: &str, requests: usize) -> Result<serde_json::Value> {
    crate::demo::load(intake).await?;
    let clerk = signed_in(workbench, "role=window_clerk&township=330102001&sub=clerk-7").await?;
    let caseworker = signed_in(workbench, "role=caseworker&department=medical&sub=cw-1").await?;
    // Wait for the demo's medical referral to reach the department.
    let started = Instant::now();
    let referral = loop {
        let page = caseworker.get(format!("{workbench}/referrals")).send().await?.text().await?;
        if let Some(at) = page.find("href=\"/referrals/") {
            let id: String = page[at + 17..].chars().take_while(|c| *c != '"').collect();
            break id;
        }
        ensure!(started.elapsed() < Duration::from_secs(30), "no referral reached the medical inbox");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let cases = clerk.get(format!("{workbench}/cases")).send().await?.text().await?;
    let at = cases.find("href=\"/cases/").context("the demo's cases are listed")?;
    let case: String = cases[at + 13..].chars().take_while(|c| *c != '"').collect();

    let pages: Vec<(&str, &reqwest::Client, String)> = vec![
        ("application form", &clerk, "/applications/new".into()),
        ("case list", &clerk, "/cases".into()),
        ("case view", &clerk, format!("/cases/{case}")),
        ("case view refresh", &clerk, format!("/cases/{case}/live")),
        ("receipt", &clerk, format!("/cases/{case}/receipt")),
        ("one-time notice", &clerk, format!("/cases/{case}/notice")),
        ("inbox", &caseworker, "/referrals".into()),
        ("referral", &caseworker, format!("/referrals/{referral}")),
    ];
    let mut results = Vec::new();
    let mut worst_p95: f64 = 0.0;
    let mut heaviest = 0;
    for (name, http, path) in pages {
        let url = format!("{workbench}{path}");
        let mut times = Vec::with_capacity(requests);
        let mut html = String::new();
        for _ in 0..requests {
            let start = Instant::now();
            let answer = http.get(&url).send().await?;
            ensure!(answer.status().is_success(), "{name}: {}", answer.status());
            html = answer.text().await?;
            times.push(start.elapsed());
        }
        let bytes = html.len() + asset_bytes(http, workbench, &html).await?;
        let (p50, p95) = (crate::bench::percentile_ms(&times, 0.5), crate::bench::percentile_ms(&times, 0.95));
        println!("{name:<20} p50 {p50:>6.1} ms   p95 {p95:>6.1} ms   {:>6.1} KB with assets", bytes as f64 / 1024.0);
        worst_p95 = worst_p95.max(p95);
        heaviest = heaviest.max(bytes);
        results.push(json!({"page": name, "p50_ms": p50, "p95_ms": p95, "bytes_with_assets": bytes}));
    }
    Ok(
        json!({"requests_per_page": requests, "worst_p95_ms": worst_p95, "heaviest_page_bytes": heaviest, "pages": results}),
    )
}
