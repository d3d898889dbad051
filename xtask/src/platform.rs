//! The whole platform on throwaway servers, for the tasks that measure or
//! attack it (`bench e2e`, `bench workbench`, `chaos`): a PostgreSQL with
//! production durability (fsync on every commit), a nats-server with
//! `sync_interval: always`, one database per service and the five services
//! as separate processes on free loopback ports, as `up` runs them.

use anyhow::{Context, Result};
use onedoor_contracts::aid_line;
use onedoor_local_servers::{Durability, NatsServer, PostgresServer, ServiceProcess, Tools, free_port, scratch_dir};
use std::time::Duration;

pub struct Platform {
    pub pg: PostgresServer,
    pub nats: NatsServer,
    /// Intake first, then the departments in the order of [`aid_line::services`].
    pub services: Vec<ServiceProcess>,
    /// The superuser's URL of the `postgres` database.
    pub admin_url: String,
    /// Servers' data and every process's log; removed on drop unless kept.
    pub dir: tempfile::TempDir,
}

impl Platform {
    /// Starts the servers and the five services (built beforehand with
    /// [`crate::up::build_services`]), each trusting development tokens signed with `secret`.
    /// With `statements`, PostgreSQL records every statement's calls and time
    /// (`pg_stat_statements`, read with [`Platform::statements`]).
    pub fn start(runtime: &tokio::runtime::Runtime, prefix: &str, secret: &str, statements: bool) -> Result<Self> {
        let tools = Tools::ensure()?;
        let dir = scratch_dir(prefix)?;
        let mut pg = PostgresServer::start(&tools, &dir.path().join("pg"), 0, Durability::Full)?;
        let nats = NatsServer::start(&tools, &dir.path().join("nats"), 0)?;
        let admin_url = pg.url("postgres");
        if statements {
            runtime.block_on(admin(&admin_url, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"))?;
            pg.stop();
            pg.restart()?;
            runtime.block_on(admin(&admin_url, "CREATE EXTENSION pg_stat_statements"))?;
        }
        runtime.block_on(crate::up::create_databases(&admin_url))?;
        let mut services = Vec::new();
        for s in aid_line::services() {
            let port = free_port()?;
            let mut envs = nats.service_env(s.service);
            envs.extend([
                ("DATABASE_URL".to_string(), crate::up::database_url(&admin_url, s.database)),
                (s.port_env.to_string(), port.to_string()),
                ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
                ("ONEDOOR_JWT_SECRET".to_string(), secret.to_string()),
                ("ONEDOOR_DOCUMENT_STORE".to_string(), dir.path().join("documents").display().to_string()),
            ]);
            let mut service = ServiceProcess::new(s.service, port, envs, dir.path().join(format!("{}.log", s.service)));
            service.start(Duration::from_secs(90)).with_context(|| format!("starting {}", s.service))?;
            services.push(service);
        }
        Ok(Self { pg, nats, services, admin_url, dir })
    }

    pub fn urls(&self) -> Vec<String> {
        self.services.iter().map(ServiceProcess::url).collect()
    }

    /// The statements that took the most of PostgreSQL's time since the
    /// start: database, calls, total and mean milliseconds, and the text.
    pub async fn statements(&self, top: i64) -> Result<Vec<(String, i64, f64, f64, String)>> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        Ok(sqlx::query_as(
            "SELECT d.datname::text, s.calls, s.total_exec_time, s.mean_exec_time,
                    regexp_replace(s.query, '\\s+', ' ', 'g')
               FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
              ORDER BY s.calls DESC LIMIT $1",
        )
        .bind(top)
        .fetch_all(&mut conn)
        .await?)
    }

    /// Statements executed in each service's database (round trips, not counting BEGIN and COMMIT).
    pub async fn statement_calls(&self) -> Result<Vec<(String, i64)>> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        Ok(sqlx::query_as(
            "SELECT d.datname::text, SUM(s.calls)::bigint FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
              WHERE d.datname LIKE 'onedoor%' AND s.query NOT IN ('BEGIN', 'COMMIT', 'ROLLBACK') GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await?)
    }

    /// Transactions committed in each service's database since the start.
    pub async fn commits(&self) -> Result<Vec<(String, i64)>> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        Ok(sqlx::query_as(
            "SELECT datname::text, xact_commit FROM pg_stat_database WHERE datname LIKE 'onedoor%' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await?)
    }

    /// The messages each stream holds (every one published and acknowledged
    /// by JetStream since the start: no stream of the platform ages out
    /// within a benchmark's run).
    pub async fn stream_messages(&self) -> Result<Vec<(String, u64)>> {
        use futures::TryStreamExt;
        let seed = self.nats.seed(onedoor_broker_access::OPERATOR);
        let client = async_nats::ConnectOptions::with_nkey(seed).connect(self.nats.url()).await?;
        let js = async_nats::jetstream::new(client);
        let streams: Vec<_> = js.streams().try_collect().await?;
        let mut counts: Vec<(String, u64)> = streams.into_iter().map(|s| (s.config.name, s.state.messages)).collect();
        counts.sort();
        Ok(counts)
    }

    /// Stops the services, newest first, then (on drop) the servers.
    pub fn stop(mut self) {
        for s in self.services.iter_mut().rev() {
            s.stop();
        }
    }
}

async fn admin(url: &str, sql: &'static str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    Ok(())
}
