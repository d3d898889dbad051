//! Education aid (教育救助): an annual grant by school stage for children of poor households.
//!
//! The workflow is `onedoor-department-workflow`; this crate is the policy and its configuration.

pub mod policy;

#[derive(Debug, clap::Parser)]
#[command(name = "education-aid", about = "OneDoor education-aid")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = "EDUCATION_AID_PORT", default_value_t = 8082)]
    pub port: u16,
    #[command(flatten)]
    pub policy: policy::EducationPolicy,
}
