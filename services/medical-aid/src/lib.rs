//! Medical aid (医疗救助): part of the out-of-pocket cost that basic and
//! critical-illness insurance left, up to an annual cap per person.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

/// This department's row of the table of aid lines.
pub const LINE: &onedoor_contracts::aid_line::AidLine = onedoor_contracts::Department::Medical.line();

#[derive(Debug, clap::Parser)]
#[command(name = "medical-aid", about = "OneDoor medical aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = LINE.port_env, default_value_t = LINE.default_port)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::MedicalPolicy,
}
