//! Intake: the one door (一门受理). Window clerks submit one application for
//! every kind of aid; intake issues the one-time notice of missing materials,
//! refers each requested line to its department, and keeps the one case view
//! that every department's replies are projected into.
//!
//! The floor plan (the same in the department workflow, see ADR 0007):
//! `http.rs` and `reports.rs` are the handlers (HTTP and broker), `domain/`
//! is pure, `store.rs` holds every SQL statement, `stored.rs` the events'
//! stored format, `integration.rs` the contract events going out and coming in.

pub mod case_watch;
pub mod config;
pub mod domain;
mod folded;
pub mod http;
pub mod integration;
pub mod notifications;
pub mod reports;
pub mod store;
pub mod stored;

use chrono::Datelike;
use config::{Config, Policy};
use notifications::SmsProvider;
use onedoor_contracts::Department;
use onedoor_documents::DocumentStore;
use onedoor_service_host::{Host, Service};
use std::sync::Arc;

/// Intake as the service host runs it.
pub struct Intake {
    policy: Arc<Policy>,
    documents: DocumentStore,
    sms: Arc<dyn SmsProvider>,
}

impl Intake {
    pub fn new(policy: Policy, documents: DocumentStore) -> Self {
        Self { policy: Arc::new(policy), documents, sms: Arc::new(notifications::LogProvider) }
    }

    /// Messages to applicants leave through `sms` (the log provider otherwise).
    pub fn with_sms(mut self, sms: Arc<dyn SmsProvider>) -> Self {
        self.sms = sms;
        self
    }

    /// Reads intake's policy (catalogue, time limits, calendar), its
    /// document store and its SMS provider from `config`.
    pub fn configure(config: &Config) -> anyhow::Result<Self> {
        let sms = notifications::provider(&config.sms_provider, config.aliyun.settings())?;
        Ok(Self::new(config.policy()?, DocumentStore::open(&config.document_store)?).with_sms(sms))
    }

    /// Intake with the default catalogue, the time limits of the environment
    /// (or the table's), the shipped calendar and the document store of the
    /// environment (tests).
    pub fn with_defaults() -> anyhow::Result<Self> {
        Ok(Self::new(Policy::load(None, None)?, DocumentStore::from_env()?))
    }

    /// The same with its documents in `documents` (tests sharing one store with departments).
    pub fn with_documents(documents: DocumentStore) -> anyhow::Result<Self> {
        Ok(Self::new(Policy::load(None, None)?, documents))
    }
}

impl Service for Intake {
    fn name(&self) -> String {
        "intake".into()
    }

    fn migrator(&self) -> sqlx::migrate::Migrator {
        store::migrator()
    }

    /// The lookup columns hold keyed hashes, never ID numbers (ADR 0015), and
    /// the log and the views hold personal fields only sealed (ADR 0018):
    /// what an earlier release wrote otherwise is re-keyed and sealed (or,
    /// for an erased household, erased).
    async fn upgrade(&self, pool: &sqlx::PgPool, keyring: &onedoor_personal_data::Keyring) -> anyhow::Result<()> {
        let rekeyed = store::rekey_lookups(pool, keyring).await?;
        let (events, views) = store::seal_plain(pool, keyring).await?;
        if rekeyed > 0 || events != Default::default() || views > 0 {
            tracing::info!(
                lookup_rows = rekeyed,
                sealed = events.sealed,
                erased = events.erased,
                ownerless = events.ownerless,
                views,
                "what an earlier release stored in the clear sealed or re-keyed"
            );
        }
        Ok(())
    }

    async fn assemble(self, host: &mut Host) -> anyhow::Result<(axum::Router, utoipa::openapi::OpenApi)> {
        let this_year = onedoor_working_calendar::local_date(chrono::Utc::now()).year();
        for year in [this_year, this_year + 1] {
            if !self.policy.calendar.knows(year) {
                tracing::warn!(
                    year,
                    "no official holiday arrangement loaded for this year: deadlines count weekends only"
                );
            }
        }
        host.publish_outbox(onedoor_contracts::intake::STREAM, vec![onedoor_contracts::intake::subjects()]);
        // An idempotency key keeps the answer it gave (and a keyed hash of
        // the application): kept a week for retries, then removed (PIPL art. 19).
        host.housekeeping(
            "expired idempotency keys",
            std::time::Duration::from_secs(3600),
            store::EXPIRE_IDEMPOTENCY_KEYS,
        );
        host.business_gauge(
            onedoor_service_host::Business::OpenCases,
            "SELECT status, count(*) FROM case_views WHERE status <> 'closed' GROUP BY status",
        );
        for department in Department::ALL {
            host.consume(
                reports::consumer_spec(department),
                Arc::new(reports::LaneReports {
                    department,
                    keyring: host.keyring.clone(),
                    policy: self.policy.clone(),
                }),
            );
        }
        let sending = notifications::Notifications {
            provider: self.sms.clone(),
            keyring: host.keyring.clone(),
            policy: self.policy.clone(),
        };
        host.consume(notifications::consumer_spec(), Arc::new(sending));
        let case_watch = Arc::new(case_watch::CaseWatch::default());
        let (watch, pool) = (case_watch.clone(), host.work_pool.clone());
        host.background(move |shutdown| watch.watch(pool, shutdown));
        Ok(http::router(http::AppState {
            pool: host.pool.clone(),
            keyring: host.keyring.clone(),
            policy: self.policy,
            documents: self.documents,
            case_watch,
        }))
    }
}
