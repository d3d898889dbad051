//! Intake: the one door (一门受理). Window clerks submit one application for
//! every kind of aid; intake issues the one-time notice of missing materials,
//! refers each requested line to its department, and keeps the one case view
//! that every department's replies are projected into.

pub mod config;
pub mod domain;
pub mod http;
pub mod integration;
pub mod lanes;
pub mod store;

use chrono::Datelike;
use config::Config;
use onedoor_contracts::Department;
use onedoor_service_host::Host;
use std::net::SocketAddr;
use std::sync::Arc;

/// Applies intake's migrations (`--migrate-only`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = onedoor_service_host::connect_database(&config.host).await?;
    store::migrate(&pool).await?;
    Ok(())
}

/// Intake, built and listening, ready to run (port 0 picks a free port: tests).
pub struct App {
    host: Host,
    router: axum::Router,
    listener: tokio::net::TcpListener,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let auth = Arc::new(config.host.authenticator()?);
        let policy = Arc::new(config.policy()?);
        let this_year = domain::case::local_date(chrono::Utc::now()).year();
        for year in [this_year, this_year + 1] {
            if !policy.calendar.knows(year) {
                tracing::warn!(
                    year,
                    "no official holiday arrangement loaded for this year: deadlines count weekends only"
                );
            }
        }
        let mut host = Host::connect("intake", &config.host).await?;
        store::migrate(&host.pool).await?;
        host.publish_outbox(onedoor_contracts::intake::STREAM, vec![onedoor_contracts::intake::subjects()]).await?;
        for department in Department::ALL {
            host.consume(lanes::consumer_spec(department), Arc::new(lanes::LaneReports { policy: policy.clone() }));
        }
        let (api, openapi) = http::router(http::AppState { pool: host.pool.clone(), policy });
        let router = onedoor_http_kit::service_router(api.merge(host.operations()), openapi, auth, host.readiness());
        let listener = tokio::net::TcpListener::bind((config.host.host.as_str(), config.port)).await?;
        Ok(Self { host, router, listener })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.host.serve(self.listener, self.router, stop).await?;
        Ok(())
    }
}
