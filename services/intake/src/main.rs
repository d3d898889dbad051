use clap::Parser;

/// mimalloc rather than glibc's malloc, whose locks and consolidation took a
/// tenth of the machine's CPU under load (docs/adr/0012).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_service_host::healthcheck_if_asked("INTAKE_PORT", 8080);
    let config = intake::config::Config::parse();
    onedoor_service_host::main(intake::Intake::configure(&config)?, &config.host, config.port).await
}
