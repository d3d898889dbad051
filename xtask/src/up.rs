//! `cargo xtask up`: the platform on one machine, for a newcomer's first run.
//!
//! Builds the five services, provisions NATS (JetStream, `sync_interval:
//! always`) and PostgreSQL into `.onedoor/data` (kept between runs) unless
//! `NATS_URL` / `DATABASE_URL` point at servers of your own, creates one
//! database per service, starts the services on the ports of the API
//! contract, waits until each is ready, and stops everything on Ctrl-C.

use anyhow::{Context, Result, bail};
use onedoor_local_servers::{Durability, NatsServer, PostgresServer, ServiceProcess, Tools};
use std::time::Duration;

use onedoor_contracts::aid_line;

/// The web pages of the window, the departments and operators: a client of the five APIs.
pub(crate) const WORKBENCH: &str = "workbench";

#[derive(clap::Args)]
pub struct UpArgs {
    /// Port of the provisioned nats-server.
    #[arg(long, env = "ONEDOOR_NATS_PORT", default_value_t = 14222)]
    nats_port: u16,
    /// Port of the provisioned PostgreSQL.
    #[arg(long, env = "ONEDOOR_PG_PORT", default_value_t = 15432)]
    pg_port: u16,
    /// Load a few realistic applications once everything is up.
    #[arg(long)]
    demo: bool,
    /// Run release builds (optimised; a longer first build).
    #[arg(long)]
    release: bool,
}

/// The service `name` as `up` runs it: the debug build, or the release build.
fn process(name: &str, port: u16, envs: Vec<(String, String)>, release: bool) -> ServiceProcess {
    let service = ServiceProcess::new(name, port, envs, crate::root().join(format!(".onedoor/logs/{name}.log")));
    if release { service.with_binary(onedoor_local_servers::workspace_release_binary(name)) } else { service }
}

/// Builds the service binaries (they are what `up` runs; `release` for the benchmarks).
pub(crate) fn build_services(release: bool) -> Result<()> {
    let mut cargo = crate::cargo();
    cargo.args(["build", "--quiet"]);
    if release {
        cargo.arg("--release");
    }
    for s in aid_line::services() {
        cargo.args(["--bin", s.service]);
    }
    cargo.args(["--bin", WORKBENCH]);
    if !cargo.status().context("running cargo build")?.success() {
        bail!("building the services failed");
    }
    Ok(())
}

fn port_of(var: &str, default: u16) -> Result<u16> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v.parse().with_context(|| format!("{var} must be a port number")),
        _ => Ok(default),
    }
}

/// The URL of `db` on the server `admin_url` points at.
pub fn database_url(admin_url: &str, db: &str) -> String {
    match admin_url.rsplit_once('/') {
        Some((server, rest)) if server.contains("://") && !server.ends_with('/') => {
            let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            format!("{server}/{db}{query}")
        }
        _ => format!("{}/{db}", admin_url.trim_end_matches('/')),
    }
}

pub fn run(args: UpArgs) -> Result<()> {
    build_services(args.release)?;
    let data = onedoor_local_servers::server_home().join("data");
    let mut tools = None;
    let mut tools = || -> Result<Tools> {
        if tools.is_none() {
            tools = Some(Tools::ensure()?);
        }
        Ok(tools.clone().expect("just set"))
    };

    let mut nats = None;
    let nats_url = match std::env::var("NATS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let server = NatsServer::start(&tools()?, &data.join("nats"), args.nats_port)
                .context("starting nats-server (is the port taken? set --nats-port)")?;
            let url = server.url();
            nats = Some(server);
            url
        }
    };
    let mut postgres = None;
    let admin_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let server = PostgresServer::start(&tools()?, &data.join("postgres"), args.pg_port, Durability::Full)
                .context("starting PostgreSQL (is the port taken? set --pg-port)")?;
            let url = server.url("postgres");
            postgres = Some(server);
            url
        }
    };

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(create_databases(&admin_url))?;
    let secret = crate::jwt_secret();
    let mut services = Vec::new();
    for s in aid_line::services() {
        let (name, db, port_var) = (s.service, s.database, s.port_env);
        let port = port_of(port_var, s.default_port)?;
        // A provisioned server knows each service as its own broker user; a
        // server of your own (NATS_URL) is reached as it is.
        let mut envs = match &nats {
            Some(server) => server.service_env(name),
            None => vec![("NATS_URL".to_string(), nats_url.clone())],
        };
        envs.extend([
            ("DATABASE_URL".to_string(), database_url(&admin_url, db)),
            (port_var.to_string(), port.to_string()),
            ("ONEDOOR_JWT_SECRET".to_string(), secret.clone()),
            // Scans uploaded at the window, where the departments read them.
            ("ONEDOOR_DOCUMENT_STORE".to_string(), crate::root().join(".onedoor/documents").display().to_string()),
        ]);
        let mut service = process(name, port, envs, args.release);
        service
            .start(Duration::from_secs(90))
            .with_context(|| format!("starting {name} (port {port}); its log is {}", service.log.display()))?;
        services.push(service);
    }
    let mut workbench = start_workbench(&services, &secret, port_of("WORKBENCH_PORT", 8085)?, args.release)?;
    println!();
    println!("OneDoor is up (data in {}, logs in .onedoor/logs/):", data.display());
    for s in &services {
        println!("  {:<14} {}   API browser: {}/swagger-ui/", s.name, s.url(), s.url());
    }
    println!("  NATS           {nats_url}");
    if let Some(server) = &nats {
        // Each service has its own user; an operator's tool connects with this one.
        let seed = data.join("nats-operator.nk");
        write_owner_only(&seed, &server.seed(onedoor_broker_access::OPERATOR))?;
        println!("                 (as the operators: nats --nkey {})", seed.display());
    }
    println!();
    println!(
        "  Workbench      {}/   (development sign-in: choose a role at {}/dev-login)",
        workbench.url(),
        workbench.url()
    );
    println!();
    println!(
        "Development tokens (HS256, ONEDOOR_JWT_SECRET{}):",
        if std::env::var("ONEDOOR_JWT_SECRET").is_ok() { "" } else { " unset: development default" }
    );
    println!("  cargo xtask token --role window_clerk --township 330102001");
    println!("  cargo xtask token --role caseworker --department medical");
    println!("  cargo xtask token --role approver --department medical --sub approver-1");
    println!("  cargo xtask token --role operator");
    if args.demo {
        runtime.block_on(crate::demo::load(&services[0].url()))?;
    }
    println!("Press Ctrl-C to stop.");
    runtime.block_on(tokio::signal::ctrl_c())?;
    println!("stopping…");
    workbench.stop();
    for mut s in services.into_iter().rev() {
        s.stop();
    }
    drop(postgres);
    drop(nats);
    Ok(())
}

/// Starts the workbench against the services just started, with development sign-in.
pub(crate) fn start_workbench(
    services: &[ServiceProcess],
    secret: &str,
    port: u16,
    release: bool,
) -> Result<ServiceProcess> {
    let mut envs = vec![
        ("WORKBENCH_PORT".to_string(), port.to_string()),
        ("ONEDOOR_DEV_LOGIN".to_string(), "1".to_string()),
        ("ONEDOOR_JWT_SECRET".to_string(), secret.to_string()),
        ("WORKBENCH_PUBLIC_URL".to_string(), format!("http://localhost:{port}")),
    ];
    for s in services {
        envs.push((format!("{}_URL", s.name.to_uppercase().replace('-', "_")), s.url()));
    }
    let mut workbench = process(WORKBENCH, port, envs, release);
    workbench
        .start(Duration::from_secs(30))
        .with_context(|| format!("starting the workbench (port {port}); its log is {}", workbench.log.display()))?;
    Ok(workbench)
}

pub async fn create_databases(admin_url: &str) -> Result<()> {
    use sqlx::Connection;
    let mut admin =
        sqlx::PgConnection::connect(admin_url).await.with_context(|| format!("connecting to {admin_url}"))?;
    for db in aid_line::services().iter().map(|s| s.database) {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&mut admin)
            .await?;
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut admin).await?;
        }
    }
    Ok(())
}

/// Writes a secret readable by its owner only.
fn write_owner_only(path: &std::path::Path, secret: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(secret.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn service_database_urls_keep_the_server_and_options() {
        assert_eq!(
            database_url("postgres://u:p@db:5432/postgres?sslmode=require", "onedoor_intake"),
            "postgres://u:p@db:5432/onedoor_intake?sslmode=require"
        );
        assert_eq!(database_url("postgres://db:5432", "onedoor_medical"), "postgres://db:5432/onedoor_medical");
    }
}
