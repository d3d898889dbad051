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
    pub fn start(runtime: &tokio::runtime::Runtime, prefix: &str, secret: &str) -> Result<Self> {
        let tools = Tools::ensure()?;
        let dir = scratch_dir(prefix)?;
        let pg = PostgresServer::start(&tools, &dir.path().join("pg"), 0, Durability::Full)?;
        let nats = NatsServer::start(&tools, &dir.path().join("nats"), 0)?;
        let admin_url = pg.url("postgres");
        runtime.block_on(crate::up::create_databases(&admin_url))?;
        let mut services = Vec::new();
        for s in aid_line::services() {
            let port = free_port()?;
            let envs = vec![
                ("DATABASE_URL".to_string(), crate::up::database_url(&admin_url, s.database)),
                ("NATS_URL".to_string(), nats.url()),
                (s.port_env.to_string(), port.to_string()),
                ("ONEDOOR_HOST".to_string(), "127.0.0.1".to_string()),
                ("ONEDOOR_JWT_SECRET".to_string(), secret.to_string()),
                ("ONEDOOR_DOCUMENT_STORE".to_string(), dir.path().join("documents").display().to_string()),
            ];
            let mut service = ServiceProcess::new(s.service, port, envs, dir.path().join(format!("{}.log", s.service)));
            service.start(Duration::from_secs(90)).with_context(|| format!("starting {}", s.service))?;
            services.push(service);
        }
        Ok(Self { pg, nats, services, admin_url, dir })
    }

    pub fn urls(&self) -> Vec<String> {
        self.services.iter().map(ServiceProcess::url).collect()
    }

    /// Stops the services, newest first, then (on drop) the servers.
    pub fn stop(mut self) {
        for s in self.services.iter_mut().rev() {
            s.stop();
        }
    }
}
