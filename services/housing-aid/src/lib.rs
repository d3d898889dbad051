//! Housing aid (住房救助): rent subsidy, or renovation of a dilapidated house rated C or D.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

/// This department's row of the table of aid lines.
pub const LINE: &onedoor_contracts::aid_line::AidLine = onedoor_contracts::Department::Housing.line();

#[derive(Debug, clap::Parser)]
#[command(name = "housing-aid", about = "OneDoor housing-aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = LINE.port_env, default_value_t = LINE.default_port)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::HousingPolicy,
}
