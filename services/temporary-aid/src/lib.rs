//! Temporary aid (临时救助): help for a sudden hardship, in multiples of the local dibao line.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

/// This department's row of the table of aid lines.
pub const LINE: &onedoor_contracts::aid_line::AidLine = onedoor_contracts::Department::Temporary.line();

#[derive(Debug, clap::Parser)]
#[command(name = "temporary-aid", about = "OneDoor temporary-aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = LINE.port_env, default_value_t = LINE.default_port)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::TemporaryPolicy,
}
