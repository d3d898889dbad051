//! Housing aid (住房救助): rent subsidy, or renovation of a dilapidated house rated C or D.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

#[derive(Debug, clap::Parser)]
#[command(name = "housing-aid", about = "OneDoor housing-aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = "HOUSING_AID_PORT", default_value_t = 8083)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::HousingPolicy,
}
