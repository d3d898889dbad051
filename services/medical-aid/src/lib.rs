//! Medical aid (医疗救助): part of the out-of-pocket cost that basic and
//! critical-illness insurance left, up to an annual cap per person.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

#[derive(Debug, clap::Parser)]
#[command(name = "medical-aid", about = "OneDoor medical aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = "MEDICAL_AID_PORT", default_value_t = 8081)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::MedicalPolicy,
}
