//! `cargo xtask chaos --rounds N`: the platform under steady load while,
//! each round, a random service, the nats-server or PostgreSQL is killed
//! with SIGKILL and started again. At the end the load stops and the run
//! checks that every accepted application reached every department once,
//! that every case view converged on the departments' lanes, and that no
//! effect happened twice. It prints the figures (the last line is JSON) and
//! fails if anything was lost, duplicated or left apart.

use anyhow::{Context, Result, bail};
use onedoor_contracts::Department;
use onedoor_test_support::driver::{Client, SECRET, tokens};
use onedoor_test_support::sample::SampleApplication;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct ChaosArgs {
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Seconds of load between two kills.
    #[arg(long, default_value_t = 3)]
    interval: u64,
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: ChaosArgs) -> Result<()> {
    crate::up::build_services(false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let platform = crate::platform::Platform::start(&runtime, "onedoor-chaos-", SECRET, false)?;
    let admin = platform.admin_url.clone();
    let crate::platform::Platform { mut pg, mut nats, mut services, dir, .. } = platform;
    let urls: Vec<String> = services.iter().map(|s| s.url()).collect();
    let stop = CancellationToken::new();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let load = runtime.spawn(load(urls.clone(), accepted.clone(), stop.clone()));

    let mut rng = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    }) | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut longest = Duration::ZERO;
    let mut kills = std::collections::BTreeMap::<String, usize>::new();
    for round in 1..=args.rounds {
        std::thread::sleep(Duration::from_secs(args.interval));
        let victim = (next() % (services.len() as u64 + 2)) as usize;
        let started = Instant::now();
        let name = match victim {
            v if v < services.len() => {
                let s = &mut services[v];
                s.kill();
                s.start(Duration::from_secs(120)).with_context(|| format!("restarting {}", s.name))?;
                s.name.clone()
            }
            v if v == services.len() => {
                nats.kill();
                nats.restart()?;
                "nats-server".into()
            }
            _ => {
                pg.kill();
                pg.restart()?;
                "postgres".into()
            }
        };
        // Recovered once every service answers ready again.
        while !services.iter().all(|s| onedoor_http_kit::health::probe_ready(s.port)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = started.elapsed();
        longest = longest.max(took);
        *kills.entry(name.clone()).or_default() += 1;
        println!("round {round}: killed {name}, recovered in {} ms", took.as_millis());
    }
    stop.cancel();
    runtime.block_on(load).ok();
    let accepted = accepted.lock().map(|a| a.clone()).unwrap_or_default();
    let verdict = runtime.block_on(verify(&urls, &admin, &accepted))?;
    let figures = json!({
        "rounds": args.rounds,
        "kills": kills,
        "applications": accepted.len(),
        "lost": verdict.lost,
        "duplicated": verdict.duplicated,
        "not_converged": verdict.apart,
        "longest_recovery_ms": longest.as_millis() as u64,
    });
    println!("{figures}");
    for mut s in services.into_iter().rev() {
        s.stop();
    }
    if verdict.lost + verdict.duplicated + verdict.apart > 0 {
        bail!("the platform lost, duplicated or failed to converge (logs in {})", dir.keep().display());
    }
    Ok(())
}

/// Steady load: new four-line applications at the window, and every
/// department working its inbox to payment, all tolerant of whatever is down.
async fn load(urls: Vec<String>, accepted: Arc<Mutex<Vec<String>>>, stop: CancellationToken) {
    let intake = Client::new(urls[0].clone());
    let mut workers = tokio::task::JoinSet::new();
    for (i, d) in Department::ALL.into_iter().enumerate() {
        let (client, stop) = (Client::new(urls[i + 1].clone()), stop.clone());
        workers.spawn(async move {
            while !stop.is_cancelled() {
                work_inbox(&client, d).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    let mut n: u64 = 0;
    while !stop.is_cancelled() {
        n += 1;
        let applicant = onedoor_test_support::id_number(&format!(
            "3301021960{:02}{:02}{:03}",
            1 + n % 12,
            1 + (n / 12) % 28,
            n % 1000
        ));
        let form = SampleApplication::household_of_two(&applicant).four_lines().json();
        let request = intake
            .http
            .post(format!("{}/api/v1/applications", intake.base))
            .bearer_auth(tokens::clerk())
            .header("Idempotency-Key", format!("chaos-{n}"))
            .json(&form);
        // A retry with the same key never creates a second case.
        for _ in 0..20 {
            if let Ok(res) = request.try_clone().expect("a JSON request clones").send().await
                && res.status().as_u16() == 201
                && let Ok(body) = res.json::<Value>().await
            {
                if let (Some(id), Ok(mut list)) = (body["case_id"].as_str(), accepted.lock()) {
                    list.push(id.to_string());
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    workers.shutdown().await;
}

/// One pass over a department's inbox: each referral moved one step on.
async fn work_inbox(client: &Client, d: Department) {
    let cw = tokens::caseworker(d);
    let Ok(res) = client.http.get(format!("{}/api/v1/referrals?limit=100", client.base)).bearer_auth(&cw).send().await
    else {
        return;
    };
    let Ok(page) = res.json::<Value>().await else { return };
    for item in page["items"].as_array().cloned().unwrap_or_default() {
        let id = item["referral_id"].as_str().unwrap_or_default();
        let approved = item["approved_amount_fen"].as_i64().unwrap_or(0);
        let (action, body, token) = match item["status"].as_str().unwrap_or_default() {
            "referred" => ("sign-for", json!({}), cw.clone()),
            "signed_for" | "under_review" => ("proposal", json!({"outcome": "approve"}), cw.clone()),
            "proposed" => ("approval", json!({"approve": true, "reason": "chaos run"}), tokens::approver(d)),
            "approved" => (
                "disbursement",
                json!({"amount_fen": approved, "channel": "bank_card", "reference": format!("C-{id}")}),
                cw.clone(),
            ),
            _ => continue,
        };
        // Raw, so that a department that is down is just skipped this pass.
        let url = format!("{}/api/v1/referrals/{id}/{action}", client.base);
        let _ = client.http.post(url).bearer_auth(&token).json(&body).send().await;
    }
}

struct Verdict {
    lost: usize,
    duplicated: usize,
    apart: usize,
}

/// Waits (up to two minutes) for the loop to settle, then counts what went wrong.
async fn verify(urls: &[String], admin: &str, accepted: &[String]) -> Result<Verdict> {
    let intake = Client::new(urls[0].clone());
    let mut pools = Vec::new();
    for line in &onedoor_contracts::aid_line::AID_LINES {
        pools.push((line.department, sqlx::PgPool::connect(&crate::up::database_url(admin, line.database)).await?));
    }
    let intake_pool = sqlx::PgPool::connect(&crate::up::database_url(admin, "onedoor_intake")).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut lost = 0;
        let mut apart = 0;
        for case_id in accepted {
            let (_, view, _) = intake.get(&tokens::clerk(), &format!("/api/v1/cases/{case_id}")).await;
            for line in view["lanes"].as_array().cloned().unwrap_or_default() {
                let d: Department = line["department"].as_str().unwrap_or("medical").parse()?;
                let pool = &pools.iter().find(|(x, _)| *x == d).expect("every department").1;
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM referral_views WHERE referral_id = $1::uuid")
                        .bind(line["referral_id"].as_str().unwrap_or_default())
                        .fetch_optional(pool)
                        .await?;
                match status {
                    None => lost += 1,
                    Some(s) if s != line["status"].as_str().unwrap_or_default() => apart += 1,
                    Some(_) => {}
                }
            }
        }
        if (lost == 0 && apart == 0) || Instant::now() > deadline {
            let mut duplicated = 0;
            for (_, pool) in &pools {
                let twice: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT stream_id FROM events WHERE event_type = 'ReferralReceived'
                     GROUP BY stream_id HAVING count(*) > 1) t",
                )
                .fetch_one(pool)
                .await?;
                duplicated += twice as usize;
            }
            let twice: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT payload->>'event_id' FROM events WHERE event_type = 'LaneReported'
                 GROUP BY 1 HAVING count(*) > 1) t",
            )
            .fetch_one(&intake_pool)
            .await?;
            duplicated += twice as usize;
            return Ok(Verdict { lost, duplicated, apart });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
