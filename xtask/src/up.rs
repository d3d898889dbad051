//! `cargo xtask up`: the platform on one machine, for a newcomer's first run.
//!
//! Provisions NATS (JetStream, `sync_interval: always`) and PostgreSQL into
//! `.onedoor/data` (kept between runs) unless `NATS_URL` / `DATABASE_URL`
//! point at servers of your own, creates one database per service, and stops
//! everything cleanly on Ctrl-C.

use anyhow::{Context, Result};
use onedoor_local_servers::{Durability, NatsServer, PostgresServer, Tools};

/// One database per service: no service reads another's data.
pub const SERVICE_DATABASES: [&str; 5] =
    ["onedoor_intake", "onedoor_medical", "onedoor_education", "onedoor_housing", "onedoor_temporary"];

#[derive(clap::Args)]
pub struct UpArgs {
    /// Port of the provisioned nats-server.
    #[arg(long, env = "ONEDOOR_NATS_PORT", default_value_t = 14222)]
    nats_port: u16,
    /// Port of the provisioned PostgreSQL.
    #[arg(long, env = "ONEDOOR_PG_PORT", default_value_t = 15432)]
    pg_port: u16,
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
    let data = crate::root().join(".onedoor/data");
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
    runtime.block_on(async {
        create_databases(&admin_url).await?;
        println!();
        println!("OneDoor infrastructure is up (data in {}):", data.display());
        println!("  NATS_URL={nats_url}");
        for db in SERVICE_DATABASES {
            println!("  {db}: {}", database_url(&admin_url, db));
        }
        println!();
        println!("Development tokens: cargo xtask token --role window_clerk --township 330102001");
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        anyhow::Ok(())
    })?;
    println!("stopping…");
    drop(postgres);
    drop(nats);
    Ok(())
}

pub async fn create_databases(admin_url: &str) -> Result<()> {
    use sqlx::Connection;
    let mut admin =
        sqlx::PgConnection::connect(admin_url).await.with_context(|| format!("connecting to {admin_url}"))?;
    for db in SERVICE_DATABASES {
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
