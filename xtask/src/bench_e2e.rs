//! `cargo xtask bench e2e`: complete applications through the whole loop,
//! as the people at the window and in the departments drive it.
//!
//! Release builds of the five services on their own servers with production
//! durability ([`crate::platform`]). Each household: the clerk submits a
//! four-line application; in each department the caseworker signs for the
//! referral as soon as it shows in the department's inbox, proposes, the
//! approver approves where the amount is above the caseworker's authority,
//! and the caseworker pays; then the window's case view is read until it
//! shows every lane paid.
//! Closed loop (`--concurrency` households at once) or open loop (`--rate`
//! new households a second, however slow the platform).
//!
//! Prints complete applications a second, p50/p99 of the submission, of each
//! referral's arrival (first seen in the department's inbox after the
//! submission), of each caseworker command and of the case view's
//! convergence (first view with every lane paid after the last payment), CPU
//! seconds per application of each process and errors by kind.
//!
//! Arrival is watched as caseworkers watch it: one reader per department
//! lists the inbox's newly referred lanes every 20 ms (whatever the number of
//! households in flight), which bounds its resolution. Earlier versions of
//! this benchmark had every lane try to sign for its referral with a short
//! backoff until it existed: ten refused sign-fors per lane at saturation,
//! two thirds of the departments' database round trips, which measured the
//! load generator more than the platform. Convergence is found by reading
//! the case view with a short backoff (5 ms, growing to 40 ms). The last
//! line is one JSON object.

use crate::bench::percentile_ms;
use anyhow::{Result, bail};
use onedoor_contracts::Department;
use onedoor_http_kit::Role;
use onedoor_test_support::driver::{SECRET, tokens};
use onedoor_test_support::sample::{SampleApplication, four_requests};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct E2eArgs {
    /// Complete applications to drive.
    #[arg(long, default_value_t = 400)]
    households: usize,
    /// Households in flight at once (closed loop; ignored with --rate).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// New households a second, whatever the platform's pace (open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// The lines each household applies for.
    #[arg(long, value_delimiter = ',', default_value = "medical,education,housing,temporary")]
    lines: Vec<Department>,
    /// Townships the households live in, each with its own window clerk
    /// (a county's service halls; one township's case numbers are taken in turn).
    #[arg(long, default_value_t = 16)]
    townships: usize,
    /// Also print PostgreSQL's costliest statements (pg_stat_statements), per application.
    #[arg(long)]
    statements: bool,
}

/// Gives up on a household that has not converged in this time.
const PATIENCE: Duration = Duration::from_secs(120);

pub fn run(args: E2eArgs) -> Result<()> {
    if args.lines.is_empty() {
        bail!("--lines names at least one line");
    }
    crate::up::build_services(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let platform = crate::platform::Platform::start(&runtime, "onedoor-bench-e2e-", SECRET, args.statements)?;
    let mut processes: Vec<(String, u32, bool)> =
        platform.services.iter().filter_map(|s| Some((s.name.clone(), s.pid()?, false))).collect();
    processes.extend(platform.pg.pid().map(|p| ("postgres".to_string(), p, true)));
    processes.extend(platform.nats.pid().map(|p| ("nats-server".to_string(), p, false)));
    processes.push(("driver (this benchmark)".to_string(), std::process::id(), false));

    let urls = platform.urls();
    let bench = Arc::new(Bench::new(urls, &args.lines, args.townships.clamp(1, 999)));
    let cpu_before = cpu_seconds(&processes);
    let started = Instant::now();
    runtime.block_on(drive(bench.clone(), &args));
    let elapsed = started.elapsed();
    let cpu_after = cpu_seconds(&processes);
    let statements = if args.statements {
        Some((runtime.block_on(platform.statements(60))?, runtime.block_on(platform.statement_calls())?))
    } else {
        None
    };
    let commits = runtime.block_on(platform.commits())?;
    let messages = runtime.block_on(platform.stream_messages())?;
    platform.stop();

    let stats = bench.stats.lock().map(|s| s.clone()).unwrap_or_default();
    let completed = stats.complete.len();
    let per_application = |seconds: f64| ((seconds / completed.max(1) as f64) * 1e5).round() / 100.0;
    let cpu: BTreeMap<String, f64> = processes
        .iter()
        .zip(cpu_before.iter().zip(&cpu_after))
        .map(|((name, _, _), (before, after))| (name.clone(), per_application(after - before)))
        .collect();
    let throughput = (completed as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0;
    let mode = match args.rate {
        Some(r) => format!("open loop, {r} new households/s"),
        None => format!("closed loop, {} households at once", args.concurrency),
    };
    println!("{completed} of {} applications complete in {:.1} s ({mode})", args.households, elapsed.as_secs_f64());
    println!("complete applications/s: {throughput}");
    let mut latencies = serde_json::Map::new();
    let mut show = |name: String, samples: &[Duration]| {
        let (p50, p99) = (percentile_ms(samples, 0.50), percentile_ms(samples, 0.99));
        println!("  {name:<32} p50 {p50:>8.1} ms   p99 {p99:>8.1} ms   ({} samples)", samples.len());
        latencies.insert(name, json!({"p50_ms": p50, "p99_ms": p99, "samples": samples.len()}));
    };
    show("submission".into(), &stats.submission);
    for (d, samples) in &stats.arrival {
        show(format!("referral arrival {d}"), samples);
    }
    for (action, samples) in &stats.commands {
        show(format!("command {action}"), samples);
    }
    show("case view convergence".into(), &stats.convergence);
    show("whole application".into(), &stats.complete);
    println!("CPU ms per application:");
    for (name, ms) in &cpu {
        println!("  {name:<32} {ms:>8.2}");
    }
    let per_app = |n: f64| (n / completed.max(1) as f64 * 10.0).round() / 10.0;
    println!("transactions committed per application:");
    for (db, n) in &commits {
        println!("  {db:<32} {:>8.1}", per_app(*n as f64));
    }
    println!("messages published per application (JetStream, fsync'd):");
    for (stream, n) in &messages {
        println!("  {stream:<32} {:>8.1}", per_app(*n as f64));
    }
    if let Some((statements, calls)) = &statements {
        println!("statements per application (besides BEGIN and COMMIT):");
        for (db, n) in calls {
            println!("  {db:<32} {:>8.1}", per_app(*n as f64));
        }
        println!("PostgreSQL's most frequent statements (calls and ms per application, mean ms):");
        for (db, calls, total, mean, query) in statements {
            let query: String = query.chars().take(110).collect();
            println!(
                "  {db:<18} {:>6.1} calls {:>7.2} ms  {mean:>6.3} mean  {query}",
                per_app(*calls as f64),
                total / completed.max(1) as f64
            );
        }
    }
    if stats.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors: {:?}", stats.errors);
    }
    println!(
        "{}",
        json!({
            "households": args.households,
            "completed": completed,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "concurrency": args.rate.is_none().then_some(args.concurrency),
            "rate": args.rate,
            "townships": args.townships,
            "lines": args.lines.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "seconds": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "applications_per_s": throughput,
            "latency": latencies,
            "cpu_ms_per_application": cpu,
            "commits_per_application": commits.iter().map(|(db, n)| (db.clone(), per_app(*n as f64))).collect::<BTreeMap<_, _>>(),
            "messages_per_application": messages.iter().map(|(s, n)| (s.clone(), per_app(*n as f64))).collect::<BTreeMap<_, _>>(),
            "errors": stats.errors,
        })
    );
    if completed < args.households {
        bail!("{} applications did not complete", args.households - completed);
    }
    Ok(())
}

/// Drives `households` complete four-line applications, `concurrency` at
/// once, on a running platform (intake first in `urls`): `bench rebuild`'s
/// realistic case histories. The number that completed.
pub(crate) async fn complete_households(urls: Vec<String>, households: usize, concurrency: usize) -> usize {
    let bench = Arc::new(Bench::new(urls, &Department::ALL, 16));
    let args = E2eArgs {
        households,
        concurrency,
        rate: None,
        lines: Department::ALL.to_vec(),
        townships: 16,
        statements: false,
    };
    drive(bench.clone(), &args).await;
    bench.stats.lock().map(|s| s.complete.len()).unwrap_or(0)
}

/// What the households measured.
#[derive(Clone, Default)]
struct Stats {
    submission: Vec<Duration>,
    arrival: BTreeMap<Department, Vec<Duration>>,
    commands: BTreeMap<&'static str, Vec<Duration>>,
    convergence: Vec<Duration>,
    complete: Vec<Duration>,
    errors: BTreeMap<String, usize>,
}

/// The referrals a department's inbox has shown, and when first.
#[derive(Default)]
struct Inbox {
    seen: Mutex<std::collections::HashMap<String, Instant>>,
    arrived: tokio::sync::Notify,
}

/// How often each department's inbox is read for new referrals.
const INBOX_POLL: Duration = Duration::from_millis(20);

struct Bench {
    http: reqwest::Client,
    intake: String,
    departments: BTreeMap<Department, String>,
    inboxes: BTreeMap<Department, Inbox>,
    lines: Vec<Department>,
    stats: Mutex<Stats>,
    /// The township codes, each with its clerk's token.
    townships: Vec<(String, String)>,
}

impl Bench {
    fn new(urls: Vec<String>, lines: &[Department], townships: usize) -> Self {
        let departments = Department::ALL.into_iter().zip(urls.iter().skip(1).cloned()).collect();
        Self {
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a plain HTTP client"),
            intake: urls[0].clone(),
            departments,
            inboxes: lines.iter().map(|d| (*d, Inbox::default())).collect(),
            lines: lines.to_vec(),
            stats: Mutex::new(Stats::default()),
            townships: (1..=townships)
                .map(|t| {
                    let township = format!("330102{t:03}");
                    let clerk = tokens::token(Role::WindowClerk, Some(&township), None, &format!("clerk-{t}"));
                    (township, clerk)
                })
                .collect(),
        }
    }

    fn record(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut stats) = self.stats.lock() {
            f(&mut stats);
        }
    }

    fn error(&self, kind: String) {
        self.record(|s| *s.errors.entry(kind).or_default() += 1);
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) {
        self.error(format!("{what}: {}", if e.is_timeout() { "timeout" } else { "connection" }));
    }

    /// One request; transport failures count as errors of `what` and give `None`.
    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
        match request.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                Some((status, res.json().await.unwrap_or(Value::Null)))
            }
            Err(e) => {
                self.transport_error(what, &e);
                None
            }
        }
    }

    /// The application of household `n` in `township`: a unique applicant (born in the
    /// 1960s; see [`onedoor_test_support::sample::child_of`] for why one decade).
    fn form(&self, n: usize, township: &str) -> Value {
        let first17 = format!(
            "330102196{}{:02}{:02}{:03}",
            (n / 336_000) % 10,
            1 + (n / 28_000) % 12,
            1 + (n / 1000) % 28,
            n % 1000
        );
        let applicant = onedoor_test_support::id_number(&first17);
        let requests: Vec<Value> =
            four_requests().into_iter().filter(|r| self.lines.iter().any(|d| r["aid"] == d.as_str())).collect();
        let mut form = SampleApplication::household_of_two(&applicant).requests(requests).json();
        form["household"]["division_code"] = json!(format!("{township}001"));
        form
    }

    /// Drives household `n` from submission to a case view with every lane paid.
    async fn household(self: Arc<Self>, n: usize) {
        let (township, clerk) = &self.townships[n % self.townships.len()];
        let started = Instant::now();
        let request = self
            .http
            .post(format!("{}/api/v1/applications", self.intake))
            .bearer_auth(clerk)
            .header("Idempotency-Key", format!("bench-{n}"))
            .json(&self.form(n, township));
        let Some((status, view)) = self.send("submission", request).await else { return };
        let accepted = Instant::now();
        if status != 201 {
            return self.error(format!("submission {status}"));
        }
        self.record(|s| s.submission.push(accepted - started));
        let case_id = view["case_id"].as_str().unwrap_or_default().to_string();
        let mut lanes = tokio::task::JoinSet::new();
        for lane in view["lanes"].as_array().cloned().unwrap_or_default() {
            let Ok(d) = lane["department"].as_str().unwrap_or_default().parse::<Department>() else { continue };
            let referral = lane["referral_id"].as_str().unwrap_or_default().to_string();
            lanes.spawn(self.clone().lane(d, referral, accepted));
        }
        let mut last_payment = accepted;
        while let Some(paid) = lanes.join_next().await {
            match paid {
                Ok(Some(at)) => last_payment = last_payment.max(at),
                _ => return,
            }
        }
        // The window keeps the view open and asks to be answered when it changes.
        let url = format!("{}/api/v1/cases/{case_id}", self.intake);
        let mut etag: Option<String> = None;
        loop {
            let mut request = self.http.get(&url).bearer_auth(clerk);
            if let Some(etag) = &etag {
                request = request.header("if-none-match", etag).header("prefer", "wait=5");
            }
            match request.send().await {
                Ok(res) if res.status() == 200 => {
                    etag = res.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let view: Value = res.json().await.unwrap_or(Value::Null);
                    if view["lanes"].as_array().is_some_and(|l| l.iter().all(|l| l["status"] == "disbursed")) {
                        let now = Instant::now();
                        return self.record(|s| {
                            s.convergence.push(now - last_payment);
                            s.complete.push(now - started);
                        });
                    }
                }
                Ok(res) if res.status() == 304 => {}
                Ok(res) => return self.error(format!("case view {}", res.status().as_u16())),
                Err(e) => return self.transport_error("case view", &e),
            }
            if started.elapsed() > PATIENCE {
                return self.error("case view never converged".into());
            }
        }
    }

    /// One department's work on its referral; the instant the payment was recorded.
    async fn lane(self: Arc<Self>, d: Department, referral: String, accepted: Instant) -> Option<Instant> {
        let base = format!("{}/api/v1/referrals/{referral}", self.departments[&d]);
        let caseworker = tokens::caseworker(d);
        // Arrival: the first inbox reading that shows the referral.
        let inbox = &self.inboxes[&d];
        let arrived = loop {
            let notified = inbox.arrived.notified();
            if let Some(at) = inbox.seen.lock().ok().and_then(|seen| seen.get(&referral).copied()) {
                break at;
            }
            if accepted.elapsed() > PATIENCE {
                self.error(format!("{d} referral never arrived"));
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        };
        self.record(|s| s.arrival.entry(d).or_default().push(arrived.saturating_duration_since(accepted)));
        self.command("sign-for", &format!("{base}/sign-for"), &caseworker, &json!({})).await?;
        let proposal = json!({"outcome": "approve"});
        let mut view = self.command("proposal", &format!("{base}/proposal"), &caseworker, &proposal).await?;
        if view["status"] == "proposed" {
            let approval = json!({"approve": true, "reason": "符合救助条件"});
            view = self.command("approval", &format!("{base}/approval"), &tokens::approver(d), &approval).await?;
        }
        let payment = json!({
            "amount_fen": view["approved_amount_fen"],
            "channel": "bank_card",
            "reference": format!("BENCH-{referral}"),
        });
        self.command("disbursement", &format!("{base}/disbursement"), &caseworker, &payment).await?;
        Some(Instant::now())
    }

    async fn command(&self, action: &'static str, url: &str, token: &str, body: &Value) -> Option<Value> {
        let started = Instant::now();
        match self.send(action, self.http.post(url).bearer_auth(token).json(body)).await? {
            (200, view) => {
                let took = started.elapsed();
                self.record(|s| s.commands.entry(action).or_default().push(took));
                Some(view)
            }
            (status, body) => {
                self.error(format!("{action} {status} {}", body["code"].as_str().unwrap_or_default()));
                None
            }
        }
    }
}

impl Bench {
    /// Reads `d`'s inbox of newly referred lanes every [`INBOX_POLL`] until
    /// `stop`, noting when each referral first shows.
    async fn watch_inbox(self: Arc<Self>, d: Department, stop: tokio_util::sync::CancellationToken) {
        let url = format!("{}/api/v1/referrals?status=referred&limit=100", self.departments[&d]);
        let caseworker = tokens::caseworker(d);
        let inbox = &self.inboxes[&d];
        while !stop.is_cancelled() {
            let read = Instant::now();
            if let Some((200, page)) = self.send("inbox", self.http.get(&url).bearer_auth(&caseworker)).await {
                let ids = page["items"].as_array().into_iter().flatten().filter_map(|i| i["referral_id"].as_str());
                if let Ok(mut seen) = inbox.seen.lock() {
                    for id in ids {
                        seen.entry(id.to_string()).or_insert(read);
                    }
                }
                inbox.arrived.notify_waiters();
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(INBOX_POLL.saturating_sub(read.elapsed())) => {}
            }
        }
    }
}

async fn drive(bench: Arc<Bench>, args: &E2eArgs) {
    let stop = tokio_util::sync::CancellationToken::new();
    let watchers: Vec<_> =
        bench.lines.iter().map(|d| tokio::spawn(bench.clone().watch_inbox(*d, stop.clone()))).collect();
    let mut running = tokio::task::JoinSet::new();
    match args.rate {
        Some(rate) => {
            let start = tokio::time::Instant::now();
            for n in 0..args.households {
                tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate.max(0.001))).await;
                running.spawn(bench.clone().household(n));
            }
        }
        None => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..args.concurrency.max(1) {
                let (bench, next, total) = (bench.clone(), next.clone(), args.households);
                running.spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            break;
                        }
                        bench.clone().household(n).await;
                    }
                });
            }
        }
    }
    while running.join_next().await.is_some() {}
    stop.cancel();
    for watcher in watchers {
        let _ = watcher.await;
    }
}

/// CPU seconds (user + system) each process has used so far; with
/// `children`, also its children's, live and reaped (PostgreSQL's backends).
fn cpu_seconds(processes: &[(String, u32, bool)]) -> Vec<f64> {
    let ticks = clock_ticks();
    let all: Vec<(u32, u32, [u64; 4])> = std::fs::read_dir("/proc")
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).filter_map(stat).collect())
        .unwrap_or_default();
    processes
        .iter()
        .map(|(_, pid, children)| {
            let own = all
                .iter()
                .find(|(p, _, _)| p == pid)
                .map(|(_, _, t)| if *children { t.iter().sum::<u64>() } else { t[0] + t[1] });
            let kids: u64 = if *children {
                all.iter().filter(|(_, parent, _)| parent == pid).map(|(_, _, t)| t[0] + t[1]).sum()
            } else {
                0
            };
            (own.unwrap_or(0) + kids) as f64 / ticks
        })
        .collect()
}

/// pid, parent pid, and utime, stime, cutime, cstime in clock ticks.
fn stat(pid: u32) -> Option<(u32, u32, [u64; 4])> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((pid, num(1)? as u32, [num(11)?, num(12)?, num(13)?, num(14)?]))
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}
