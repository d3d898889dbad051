//! Intake's configuration, from the environment only. The files it names
//! (a materials catalogue, further holiday arrangements) are read here, once,
//! at start-up, and handed to the pure domain.

use crate::domain::case::Deadlines;
use crate::domain::materials::MaterialsCatalogue;
use anyhow::Context;
use onedoor_contracts::aid_line::AID_LINES;
use onedoor_working_calendar::WorkingCalendar;
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
    /// Where scanned materials are kept: a folder, or `s3://<bucket>` with the `AWS_*` variables.
    #[arg(long, env = onedoor_documents::STORE_ENV, default_value = onedoor_documents::DEFAULT_LOCATION)]
    pub document_store: String,
    /// Where messages to applicants leave: `log` (development: logged, not sent) or `aliyun`.
    #[arg(long, env = "ONEDOOR_SMS_PROVIDER", default_value = "log")]
    pub sms_provider: String,
    #[command(flatten)]
    pub aliyun: AliyunConfig,
}

/// Alibaba Cloud SMS, for `ONEDOOR_SMS_PROVIDER=aliyun`.
#[derive(Debug, Clone, clap::Args)]
pub struct AliyunConfig {
    #[arg(long, env = "ALIYUN_SMS_ENDPOINT", default_value = "https://dysmsapi.aliyuncs.com")]
    pub aliyun_sms_endpoint: String,
    #[arg(long, env = "ALIYUN_ACCESS_KEY_ID", default_value = "")]
    pub aliyun_access_key_id: String,
    #[arg(long, env = "ALIYUN_ACCESS_KEY_SECRET", default_value = "", hide_env_values = true)]
    pub aliyun_access_key_secret: String,
    /// The approved sign name (签名), shown as 【...】 in the message.
    #[arg(long, env = "ALIYUN_SMS_SIGN_NAME", default_value = "")]
    pub aliyun_sms_sign_name: String,
    #[arg(long, env = "ALIYUN_SMS_TEMPLATE_ACCEPTED", default_value = "")]
    pub aliyun_sms_template_accepted: String,
    #[arg(long, env = "ALIYUN_SMS_TEMPLATE_NOTICE", default_value = "")]
    pub aliyun_sms_template_notice: String,
    #[arg(long, env = "ALIYUN_SMS_TEMPLATE_DECISION", default_value = "")]
    pub aliyun_sms_template_decision: String,
}

impl AliyunConfig {
    pub fn settings(&self) -> crate::notifications::aliyun::Settings {
        crate::notifications::aliyun::Settings {
            endpoint: self.aliyun_sms_endpoint.clone(),
            access_key_id: self.aliyun_access_key_id.clone(),
            access_key_secret: self.aliyun_access_key_secret.clone(),
            sign_name: self.aliyun_sms_sign_name.clone(),
            templates: [
                ("accepted", &self.aliyun_sms_template_accepted),
                ("notice", &self.aliyun_sms_template_notice),
                ("decision", &self.aliyun_sms_template_decision),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        }
    }
}

/// Ten years: longer than any archives rule the pilots named, so a default
/// never erases too early.
pub const DEFAULT_RETENTION_DAYS: u32 = 3650;

/// The policy intake applies, built once from [`Config`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub catalogue: MaterialsCatalogue,
    pub deadlines: Deadlines,
    pub calendar: WorkingCalendar,
    /// How long a household's personal data is kept after its last case
    /// ended (closed or withdrawn) before an operator may erase it: local
    /// archives practice, `ONEDOOR_RETENTION_DAYS` (default 3650). It must
    /// be longer than the streams keep messages, which the erasure cannot
    /// reach (intake warns at start-up otherwise).
    pub retention_days: u32,
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
        Ok(Self {
            catalogue,
            deadlines: deadlines_from_env()?,
            retention_days: match std::env::var("ONEDOOR_RETENTION_DAYS") {
                Ok(v) if !v.trim().is_empty() => {
                    v.trim().parse().context("ONEDOOR_RETENTION_DAYS must be a number of days")?
                }
                _ => DEFAULT_RETENTION_DAYS,
            },
            calendar: WorkingCalendar::load(holiday_calendar_dir).map_err(anyhow::Error::msg)?,
        })
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
