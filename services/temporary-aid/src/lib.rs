//! Temporary aid (临时救助): help for a sudden hardship, in multiples of the local dibao line.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

#[derive(Debug, clap::Parser)]
#[command(name = "temporary-aid", about = "OneDoor temporary-aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = "TEMPORARY_AID_PORT", default_value_t = 8084)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::TemporaryPolicy,
}
