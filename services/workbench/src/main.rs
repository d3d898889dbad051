use clap::Parser;

/// mimalloc rather than glibc's malloc, whose locks and consolidation took a
/// tenth of the machine's CPU under load (docs/adr/0012).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_http_kit::health::healthcheck_if_asked(workbench::PORT_ENV, workbench::DEFAULT_PORT);
    workbench::run(workbench::Config::parse()).await
}
