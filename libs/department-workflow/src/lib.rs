//! The department workflow, built once for all four departments. The floor
//! plan is intake's (ADR 0007): `http.rs` (caseworkers' and approvers'
//! handlers) and `window.rs` (the window's events, from the broker) are the
//! handlers; `domain/` is pure (the referral lane, its view, the policy seam
//! each department plugs in); `store.rs` holds every SQL statement,
//! `stored.rs` the events' stored format;
//! `integration.rs` the contract events going out and coming in. A
//! department service is its policy, its configuration and a `main` that
//! hands a [`DepartmentService`] to the service host.

pub mod domain;
pub mod http;
pub mod integration;
pub mod store;
pub mod stored;
pub mod window;

use domain::policy::Policy;
use onedoor_documents::DocumentStore;
use onedoor_service_host::{Host, HostConfig, Service};
use onedoor_working_calendar::WorkingCalendar;
use std::path::PathBuf;
use std::sync::Arc;

/// One department's service, as the service host runs it.
pub struct DepartmentService {
    pub policy: Arc<dyn Policy>,
    /// The official holiday calendar, the window's, for the lanes' time limits.
    pub calendar: Arc<WorkingCalendar>,
    /// The window's scans (the same store intake writes to).
    pub documents: DocumentStore,
}

impl DepartmentService {
    /// The service with the shipped holiday arrangements plus those in
    /// `ONEDOOR_HOLIDAY_CALENDAR_DIR` (the same folder the window mounts),
    /// and the document store `ONEDOOR_DOCUMENT_STORE` names (the window's).
    pub fn from_env(policy: Arc<dyn Policy>) -> anyhow::Result<Self> {
        let dir = std::env::var_os("ONEDOOR_HOLIDAY_CALENDAR_DIR").filter(|d| !d.is_empty()).map(PathBuf::from);
        let calendar = WorkingCalendar::load(dir.as_deref()).map_err(anyhow::Error::msg)?;
        Ok(Self { policy, calendar: Arc::new(calendar), documents: DocumentStore::from_env()? })
    }
}

impl Service for DepartmentService {
    fn name(&self) -> String {
        self.policy.department().line().service.to_string()
    }

    fn migrator(&self) -> sqlx::migrate::Migrator {
        store::migrator()
    }

    /// What an earlier release stored in the clear: the lanes' personal
    /// fields are sealed (ADR 0018), the ledger's ID numbers replaced by
    /// their keyed hashes (ADR 0015).
    async fn upgrade(&self, pool: &sqlx::PgPool, keyring: &onedoor_personal_data::Keyring) -> anyhow::Result<()> {
        let lanes = store::seal_plain(pool, keyring).await?;
        let rekeyed = store::rekey_ledger(pool, keyring).await?;
        if lanes != Default::default() || rekeyed > 0 {
            tracing::info!(
                sealed = lanes.sealed,
                erased = lanes.erased,
                ownerless = lanes.ownerless,
                ledger_rows = rekeyed,
                "what an earlier release stored in the clear sealed or re-keyed"
            );
        }
        Ok(())
    }

    async fn assemble(self, host: &mut Host) -> anyhow::Result<(axum::Router, utoipa::openapi::OpenApi)> {
        let department = self.policy.department();
        host.publish_outbox(department.stream(), vec![department.subjects()]);
        host.business_gauge(onedoor_service_host::Business::OverdueLanes, store::overdue_lanes_sql(department));
        // Intake's stream is intake's to declare (the broker lets no one
        // else): until it exists the window's consumer waits for it, and
        // intake publishes nothing before declaring it.
        let window = Arc::new(window::WindowEvents {
            policy: self.policy.clone(),
            calendar: self.calendar.clone(),
            keyring: host.keyring.clone(),
        });
        for spec in window::consumer_specs(department) {
            host.consume(spec, window.clone());
        }
        tokio::spawn(window::retire_the_single_consumer(host.js.clone(), department));
        Ok(http::router(http::AppState {
            pool: host.pool.clone(),
            policy: self.policy,
            calendar: self.calendar,
            keyring: host.keyring.clone(),
            documents: self.documents,
        }))
    }
}

/// Builds a department service, ready to run (tests; `main` uses [`run`]).
pub async fn app(
    host_config: &HostConfig,
    port: u16,
    policy: Arc<dyn Policy>,
) -> anyhow::Result<onedoor_service_host::App> {
    onedoor_service_host::App::build(DepartmentService::from_env(policy)?, host_config, port).await
}

/// `main` of a department service.
pub async fn run(host_config: HostConfig, port: u16, policy: Arc<dyn Policy>) -> anyhow::Result<()> {
    onedoor_service_host::main(DepartmentService::from_env(policy)?, &host_config, port).await
}
