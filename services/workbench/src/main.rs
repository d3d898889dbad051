use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_http_kit::health::healthcheck_if_asked(workbench::PORT_ENV, workbench::DEFAULT_PORT);
    workbench::run(workbench::Config::parse()).await
}
