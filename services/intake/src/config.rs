//! Intake's configuration, from the environment only.

use crate::domain::calendar::WorkingCalendar;
use crate::domain::case::Deadlines;
use crate::domain::materials::MaterialsCatalogue;
use onedoor_contracts::Department;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "intake", about = "OneDoor intake: the window's service")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = "INTAKE_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Working-day time limits per department.
    #[arg(long, env = "ONEDOOR_DEADLINE_MEDICAL_DAYS", default_value_t = 20)]
    pub medical_days: u32,
    #[arg(long, env = "ONEDOOR_DEADLINE_EDUCATION_DAYS", default_value_t = 15)]
    pub education_days: u32,
    #[arg(long, env = "ONEDOOR_DEADLINE_HOUSING_DAYS", default_value_t = 30)]
    pub housing_days: u32,
    #[arg(long, env = "ONEDOOR_DEADLINE_TEMPORARY_DAYS", default_value_t = 5)]
    pub temporary_days: u32,
    /// A JSON materials catalogue replacing the default one.
    #[arg(long, env = "ONEDOOR_MATERIALS_FILE")]
    pub materials_file: Option<PathBuf>,
    /// A folder of further holiday arrangements (one JSON file per year).
    #[arg(long, env = "ONEDOOR_HOLIDAY_CALENDAR_DIR")]
    pub holiday_calendar_dir: Option<PathBuf>,
}

/// The policy intake applies, built once from [`Config`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub catalogue: MaterialsCatalogue,
    pub deadlines: Deadlines,
    pub calendar: WorkingCalendar,
}

impl Config {
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let catalogue = match &self.materials_file {
            Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
            None => MaterialsCatalogue::default(),
        };
        let deadlines = Deadlines(
            [
                (Department::Medical, self.medical_days),
                (Department::Education, self.education_days),
                (Department::Housing, self.housing_days),
                (Department::Temporary, self.temporary_days),
            ]
            .into(),
        );
        let calendar = WorkingCalendar::load(self.holiday_calendar_dir.as_deref()).map_err(anyhow::Error::msg)?;
        Ok(Policy { catalogue, deadlines, calendar })
    }
}
