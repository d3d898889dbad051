//! The department workflow, built once for all four departments: a referral
//! lane per case ([`lane`]), what each department plugs in ([`policy`]), the
//! window's events taken in ([`window`]), the caseworkers' and approvers'
//! REST API ([`http`]), and the service around them ([`App`]). A department
//! service is its policy, its configuration and a `main` calling [`App`].

pub mod http;
pub mod lane;
pub mod policy;
pub mod store;
pub mod view;
pub mod window;

use onedoor_service_host::{Host, HostConfig};
use policy::Policy;
use std::net::SocketAddr;
use std::sync::Arc;

/// A department service, built and listening (port 0 picks a free port: tests).
pub struct App {
    host: Host,
    router: axum::Router,
    listener: tokio::net::TcpListener,
}

impl App {
    pub async fn build(host_config: &HostConfig, port: u16, policy: Arc<dyn Policy>) -> anyhow::Result<Self> {
        let department = policy.department();
        let auth = Arc::new(host_config.authenticator()?);
        let service = format!("{department}-aid");
        let mut host = Host::connect(&service, host_config).await?;
        store::migrate(&host.pool).await?;
        host.publish_outbox(department.stream(), vec![department.subjects()]).await?;
        // Intake declares its stream; declaring it here too (same configuration)
        // lets a department start first without losing referrals.
        onedoor_messaging::ensure_stream(
            &host.js,
            onedoor_contracts::intake::STREAM,
            vec![onedoor_contracts::intake::subjects()],
        )
        .await?;
        host.consume(window::consumer_spec(department), Arc::new(window::WindowEvents { policy: policy.clone() }));
        let mut openapi = utoipa::openapi::OpenApiBuilder::new()
            .info(
                utoipa::openapi::InfoBuilder::new()
                    .title(format!("OneDoor {service}"))
                    .description(Some(format!(
                        "The {department} department's referral lanes: caseworkers and approvers."
                    )))
                    .version(env!("CARGO_PKG_VERSION"))
                    .build(),
            )
            .build();
        openapi.security =
            Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
        let (api, openapi) = http::router(http::AppState { pool: host.pool.clone(), policy }, openapi);
        let router = onedoor_http_kit::service_router(api.merge(host.operations()), openapi, auth, host.readiness());
        let listener = tokio::net::TcpListener::bind((host_config.host.as_str(), port)).await?;
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

/// `main` of a department service: telemetry, the app, SIGTERM.
pub async fn run_service(
    service: &str,
    host_config: HostConfig,
    port: u16,
    policy: Arc<dyn Policy>,
) -> anyhow::Result<()> {
    let telemetry = onedoor_telemetry::init(service)?;
    if host_config.migrate_only {
        let result = async {
            store::migrate(&onedoor_service_host::connect_database(&host_config).await?).await?;
            anyhow::Ok(())
        }
        .await;
        tracing::info!(ok = result.is_ok(), "migrations applied");
        telemetry.shutdown();
        return result;
    }
    let app = App::build(&host_config, port, policy).await?;
    tracing::info!(address = %app.address(), "{service} listening");
    let result = app.run_until(onedoor_http_kit::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
