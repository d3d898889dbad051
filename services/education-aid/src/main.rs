use clap::Parser;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onedoor_service_host::healthcheck_if_asked(education_aid::LINE.port_env, education_aid::LINE.default_port);
    let config = education_aid::Config::parse();
    onedoor_department_workflow::run(config.host, config.port, Arc::new(config.policy)).await
}
