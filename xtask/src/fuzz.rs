//! `cargo xtask fuzz-api`: schemathesis against every operation of every
//! service's OpenAPI document, on the running platform (its own servers),
//! with a token of each service's working role. Part of the test command
//! with a bounded number of examples per operation; it fails on any 5xx,
//! any response outside the documented schemas or content types, and any
//! dropped connection or timeout.
//!
//! schemathesis is pinned and installed into a virtual environment of the
//! project's tools (`.onedoor/tools/schemathesis`), from PyPI.

use crate::platform::Platform;
use anyhow::{Context, Result, bail};
use onedoor_contracts::{Department, aid_line};
use onedoor_http_kit::auth::Role;
use std::path::PathBuf;
use std::process::Command;

/// The schemathesis release the checks are written against.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// What every response is checked for.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,content_type_conformance";

/// Examples per operation and phase in the test command (bounded: about
/// two minutes on the 2-core machine).
pub const TEST_EXAMPLES: u32 = 20;

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Examples generated per operation and phase.
    #[arg(long, default_value_t = TEST_EXAMPLES)]
    pub examples: u32,
}

/// The `st` command, installed on first use.
fn schemathesis() -> Result<PathBuf> {
    let venv = crate::root().join(".onedoor/tools/schemathesis");
    let st = venv.join("bin/st");
    let pinned = venv.join("pinned");
    if st.is_file() && std::fs::read_to_string(&pinned).is_ok_and(|p| p == SCHEMATHESIS) {
        return Ok(st);
    }
    eprintln!("onedoor: installing {SCHEMATHESIS} from PyPI into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !Command::new(&python).arg("-m").arg("venv").arg(&venv).status()?.success() {
        bail!("{python} -m venv failed");
    }
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "-q", "--disable-pip-version-check", SCHEMATHESIS]);
    if !pip.status().context("running pip")?.success() {
        bail!("pip could not install {SCHEMATHESIS}");
    }
    std::fs::write(&pinned, SCHEMATHESIS)?;
    Ok(st)
}

/// A token of `role` (clerks in the sample township; department staff in
/// the service's department).
fn token(secret: &str, role: Role, department: Option<Department>) -> String {
    let sub = format!("fuzzer-{}", role.as_str());
    onedoor_test_support::staff_token(secret, role, Some(onedoor_test_support::sample::TOWNSHIP), department, &sub)
}

pub fn run(args: FuzzArgs) -> Result<()> {
    let st = schemathesis()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let secret = crate::jwt_secret();
    let platform = Platform::start(&runtime, "onedoor-fuzz-", &secret, false)?;
    let hooks = crate::root().join("tests/fuzz");
    let seeded = runtime.block_on(seed(&platform.urls()[0], &secret))?;
    let dead_letters = runtime.block_on(seed_dead_letters(&platform, &secret))?;
    let mut failed = Vec::new();
    for ((service, url), dead_letter) in aid_line::services().into_iter().zip(platform.urls()).zip(dead_letters) {
        let department = department_of(service.service);
        // Path ids name a real case, referral or dead letter, so that
        // operations reach their logic instead of answering 404 to made-up ids.
        let mut ids = match department {
            None => serde_json::json!({
                "case_id": seeded["case_id"],
                "household_id": seeded["household_id"],
                "document_id": seeded["document_id"],
            }),
            Some(d) => {
                let lane = seeded["lanes"].as_array().into_iter().flatten().find(|l| l["department"] == d.as_str());
                serde_json::json!({
                    "referral_id": lane.map(|l| l["referral_id"].clone()),
                    "document_id": seeded["document_id"],
                })
            }
        };
        ids["sequence"] = dead_letter.into();
        let working = if department.is_some() { Role::Caseworker } else { Role::WindowClerk };
        // Each operation under the role it is for: the service's working
        // role, operators for the operators' endpoints, auditors for the trail.
        let passes: [(Role, &[&str]); 3] = [
            (working, &["--exclude-tag", "operations", "--exclude-tag", "audit"]),
            (Role::Operator, &["--include-tag", "operations"]),
            (Role::Auditor, &["--include-tag", "audit"]),
        ];
        for (role, filter) in passes {
            println!("fuzz-api: {} as {}", service.service, role.as_str());
            let status = Command::new(&st)
                .args(["run", &format!("{url}/api-docs/openapi.json"), "--url", &url])
                .args(filter)
                .args(["--checks", CHECKS, "--max-examples", &args.examples.to_string()])
                .args(["--request-timeout", "10", "--generation-deterministic", "--no-color"])
                .arg("--header")
                .arg(format!("Authorization: Bearer {}", token(&secret, role, department)))
                .arg("--report-dir")
                .arg(platform.dir.path().join(format!("{}-{}", service.service, role.as_str())))
                // Its example cache lands beside the run's logs, not in the project.
                .current_dir(platform.dir.path())
                .env("SCHEMATHESIS_HOOKS", "onedoor_fuzz_hooks")
                .env("ONEDOOR_FUZZ_IDS", ids.to_string())
                .env("PYTHONPATH", &hooks)
                .status()
                .context("running schemathesis")?;
            if !status.success() {
                failed.push(format!("{} as {}", service.service, role.as_str()));
            }
        }
    }
    if !failed.is_empty() {
        let kept = platform.dir.keep();
        bail!(
            "schemathesis found failures in {} (see above; the services' logs are in {})",
            failed.join(", "),
            kept.display()
        );
    }
    println!("fuzz-api: every operation of the five services held under schemathesis ({} examples)", args.examples);
    Ok(())
}

/// One four-line application of the township the fuzzer's clerk works in,
/// submitted through intake's API, with a scan of one of its materials: the
/// ids the fuzzed operations use (case, household, referrals, document).
async fn seed(intake: &str, secret: &str) -> Result<serde_json::Value> {
    let applicant = onedoor_test_support::id_number("33010219800307999");
    let form = onedoor_test_support::sample::SampleApplication::household_of_two(&applicant).four_lines().json();
    let http = reqwest::Client::new();
    let clerk = token(secret, Role::WindowClerk, None);
    let answer = http.post(format!("{intake}/api/v1/applications")).bearer_auth(&clerk).json(&form).send().await?;
    let status = answer.status();
    let mut created: serde_json::Value = answer.json().await?;
    if !status.is_success() {
        bail!("the fuzz run's seed application was refused: {status} {created}");
    }
    let case_id = created["case_id"].as_str().unwrap_or_default().to_string();
    let answer = http
        .post(format!("{intake}/api/v1/cases/{case_id}/documents?material=income_statement"))
        .bearer_auth(&clerk)
        .header("Content-Type", "application/pdf")
        .body(b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec())
        .send()
        .await?;
    let status = answer.status();
    let scan: serde_json::Value = answer.json().await?;
    if !status.is_success() {
        bail!("the fuzz run's seed scan was refused: {status} {scan}");
    }
    created["document_id"] = scan["document_id"].clone();
    let view: serde_json::Value =
        http.get(format!("{intake}/api/v1/cases/{case_id}")).bearer_auth(&clerk).send().await?.json().await?;
    created["household_id"] = view["household_id"].clone();
    Ok(created)
}

/// The department `service` works for; `None` for intake.
fn department_of(service: &str) -> Option<Department> {
    aid_line::AID_LINES.iter().find(|l| l.service == service).map(|l| l.department)
}

/// One dead letter in each service's own stream, so that the operators'
/// replay is fuzzed on a real one: a message the service's consumer cannot
/// decode, published by the operators' broker user on a subject it reads
/// (a department's report for intake, a referral for a department). Every
/// replay fails again (422) and it stays. Their sequences, in the order of
/// [`aid_line::services`].
async fn seed_dead_letters(platform: &Platform, secret: &str) -> Result<Vec<u64>> {
    let broker = async_nats::ConnectOptions::with_nkey(platform.nats.seed(onedoor_broker_access::OPERATOR))
        .connect(platform.nats.url())
        .await?;
    let js = async_nats::jetstream::new(broker);
    let http = reqwest::Client::new();
    let operator = token(secret, Role::Operator, None);
    let mut sequences = Vec::new();
    for (service, url) in aid_line::services().into_iter().zip(platform.urls()) {
        let subject = match department_of(service.service) {
            None => format!("{}.medical.referral.signed_for", onedoor_contracts::SUBJECT_PREFIX),
            Some(d) => onedoor_contracts::intake::referral_subject(d),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(onedoor_messaging::EVENT_ID_HEADER, uuid::Uuid::now_v7().to_string().as_str());
        js.publish_with_headers(subject, headers, "not an event".into()).await?.await?;
        let started = std::time::Instant::now();
        loop {
            let list = http.get(format!("{url}/api/v1/admin/dead-letters")).bearer_auth(&operator).send().await?;
            let page: serde_json::Value = list.json().await?;
            if let Some(sequence) = page["items"][0]["sequence"].as_u64() {
                sequences.push(sequence);
                break;
            }
            if started.elapsed() > std::time::Duration::from_secs(30) {
                bail!("{} did not dead-letter the fuzz run's undecodable message", service.service);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    Ok(sequences)
}
