//! Intake's configuration, from the environment only. The files it names
//! (a materials catalogue, further holiday arrangements) are read here, once,
//! at start-up, and handed to the pure domain.

use crate::domain::calendar::WorkingCalendar;
use crate::domain::case::Deadlines;
use crate::domain::materials::MaterialsCatalogue;
use anyhow::Context;
use onedoor_contracts::aid_line::AID_LINES;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "intake", about = "OneDoor intake: the window's service")]
pub struct Config {
    #[command(flatten)]
    pub host: onedoor_service_host::HostConfig,
    #[arg(long, env = "INTAKE_PORT", default_value_t = 8080)]
    pub port: u16,
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
        Policy::load(self.materials_file.as_deref(), self.holiday_calendar_dir.as_deref())
    }
}

impl Policy {
    /// Reads the catalogue (the default one without a file), the time limits
    /// and the calendar. Any of them malformed or incomplete is an error:
    /// intake does not start on guesses.
    pub fn load(materials_file: Option<&Path>, holiday_calendar_dir: Option<&Path>) -> anyhow::Result<Self> {
        let catalogue = match materials_file {
            Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)
                .with_context(|| format!("the materials catalogue {}", path.display()))?,
            None => MaterialsCatalogue::default(),
        };
        Ok(Self { catalogue, deadlines: deadlines_from_env()?, calendar: calendar(holiday_calendar_dir)? })
    }
}

/// Each line's working-day limit: its variable in the table of aid lines
/// (`ONEDOOR_DEADLINE_MEDICAL_DAYS`, ...), else the table's national default.
fn deadlines_from_env() -> anyhow::Result<Deadlines> {
    let mut days = std::collections::BTreeMap::new();
    for line in &AID_LINES {
        let n = match std::env::var(line.deadline_env) {
            Ok(v) if !v.trim().is_empty() => {
                v.trim().parse().with_context(|| format!("{} must be a number of working days", line.deadline_env))?
            }
            _ => line.default_working_days,
        };
        days.insert(line.department, n);
    }
    Deadlines::new(days).map_err(anyhow::Error::msg)
}

/// The shipped holiday arrangements plus every `*.json` in `extra_dir`.
fn calendar(extra_dir: Option<&Path>) -> anyhow::Result<WorkingCalendar> {
    let mut calendar = WorkingCalendar::shipped();
    if let Some(dir) = extra_dir {
        let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(entry.path())?;
                calendar.add(&text).map_err(|e| anyhow::anyhow!("{}: {e}", entry.path().display()))?;
            }
        }
    }
    Ok(calendar)
}

#[cfg(test)]
mod tests {
    use super::calendar;
    use chrono::NaiveDate;

    /// What a mounted ConfigMap looks like: the arrangement (through
    /// Kubernetes' `..data` link folder) beside files that are not one.
    #[test]
    fn next_years_arrangement_is_read_from_the_mounted_folder() {
        let dir = std::env::temp_dir().join(format!("onedoor-calendar-{}", std::process::id()));
        let data = dir.join("..data");
        std::fs::create_dir_all(&data).unwrap();
        let arrangement = r#"{"country": "CN", "year": 2027, "source": "test",
            "holidays": [{"name": "元旦", "days": ["2027-01-01"]}],
            "make_up_workdays": ["2027-01-09"]}"#;
        std::fs::write(dir.join("cn-holidays-2027.json"), arrangement).unwrap();
        std::fs::write(dir.join("README.md"), "not an arrangement").unwrap();
        std::fs::write(data.join("ignored.txt"), "not one either").unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();

        let shipped = calendar(None).unwrap();
        assert!(!shipped.knows(2027));
        let configured = calendar(Some(&dir)).unwrap();
        assert!(configured.knows(2027) && configured.knows(2026));
        assert!(!configured.is_working_day(day("2027-01-01")), "the holiday");
        assert!(configured.is_working_day(day("2027-01-09")), "the make-up Saturday");

        std::fs::write(dir.join("cn-holidays-2028.json"), "{not json").unwrap();
        assert!(calendar(Some(&dir)).is_err(), "a malformed arrangement stops intake at start-up");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
