use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_service_host::healthcheck_if_asked("INTAKE_PORT", 8080);
    let telemetry = onedoor_telemetry::init("intake")?;
    let config = intake::config::Config::parse();
    if config.host.migrate_only {
        let result = intake::migrate(&config).await;
        tracing::info!(ok = result.is_ok(), "migrations applied");
        telemetry.shutdown();
        return result;
    }
    let app = intake::App::build(config).await?;
    tracing::info!(address = %app.address(), "intake listening");
    let result = app.run_until(onedoor_http_kit::shutdown_signal()).await;
    telemetry.shutdown();
    result
}
