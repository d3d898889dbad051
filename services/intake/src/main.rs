use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_service_host::healthcheck_if_asked("INTAKE_PORT", 8080);
    let config = intake::config::Config::parse();
    onedoor_service_host::main(intake::Intake::configure(&config)?, &config.host, config.port).await
}
