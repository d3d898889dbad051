use clap::Parser;
use std::sync::Arc;

/// mimalloc rather than glibc's malloc, whose locks and consolidation took a
/// tenth of the machine's CPU under load (docs/adr/0012).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_service_host::healthcheck_if_asked(temporary_aid::LINE.port_env, temporary_aid::LINE.default_port);
    let config = temporary_aid::Config::parse();
    onedoor_department_workflow::run(config.host, config.port, Arc::new(config.policy)).await
}
