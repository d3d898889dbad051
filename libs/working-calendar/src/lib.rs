//! Working days on the official holiday calendar (限时办结制: time limits are
//! counted in working days). A year's arrangement lists days off and the
//! weekend days that are working days (调休 make-up workdays); the State
//! Council publishes next year's late in the year. For a year with no
//! arrangement loaded only weekends can be counted, and [`WorkingCalendar::knows`]
//! says so, so the service can warn.
//!
//! One crate for the window and the departments, so that both count a
//! lane's time limit on the same calendar and show the same deadline.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default)]
struct YearArrangement {
    days_off: HashSet<NaiveDate>,
    make_up_workdays: HashSet<NaiveDate>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    years: BTreeMap<i32, YearArrangement>,
}

#[derive(Deserialize)]
struct ArrangementFile {
    year: i32,
    holidays: Vec<Holiday>,
    make_up_workdays: Vec<NaiveDate>,
}

#[derive(Deserialize)]
struct Holiday {
    days: Vec<NaiveDate>,
}

/// The arrangements shipped with the service.
const SHIPPED: &[&str] = &[include_str!("../calendar/cn-holidays-2026.json")];

/// Service halls work on China Standard Time: dates and deadlines are local.
pub fn local_date(at: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    onedoor_contracts::china_time::date(at)
}

impl WorkingCalendar {
    /// The shipped arrangements plus every `*.json` in `extra_dir` (a
    /// mounted ConfigMap: `ONEDOOR_HOLIDAY_CALENDAR_DIR`). A malformed
    /// arrangement is an error: a service does not start on a wrong calendar.
    pub fn load(extra_dir: Option<&Path>) -> Result<Self, String> {
        let mut calendar = Self::shipped();
        if let Some(dir) = extra_dir {
            let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
                    calendar.add(&text).map_err(|e| format!("{}: {e}", entry.path().display()))?;
                }
            }
        }
        Ok(calendar)
    }

    /// The shipped arrangements only.
    pub fn shipped() -> Self {
        let mut calendar = Self::default();
        for text in SHIPPED {
            calendar.add(text).expect("the shipped arrangements parse (tested)");
        }
        calendar
    }

    /// Adds one year's arrangement (JSON, the format of `calendar/`); a later
    /// arrangement of the same year replaces the earlier one.
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let file: ArrangementFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let year = YearArrangement {
            days_off: file.holidays.into_iter().flat_map(|h| h.days).collect(),
            make_up_workdays: file.make_up_workdays.into_iter().collect(),
        };
        self.years.insert(file.year, year);
        Ok(())
    }

    /// Whether the official arrangement of `year` is loaded.
    pub fn knows(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if let Some(year) = self.years.get(&day.year()) {
            if year.make_up_workdays.contains(&day) {
                return true;
            }
            if year.days_off.contains(&day) {
                return false;
            }
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The `n`-th working day after `start` (start itself not counted).
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut day = start;
        let mut left = n;
        while left > 0 {
            day += Duration::days(1);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days in `(from, to]`: how long a clock was paused.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut day = from;
        while day < to {
            day += Duration::days(1);
            if self.is_working_day(day) {
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn calendar() -> WorkingCalendar {
        WorkingCalendar::shipped()
    }

    #[test]
    fn national_day_week_is_off_and_its_make_up_saturday_is_worked() {
        let c = calendar();
        assert!(!c.is_working_day(d(2026, 10, 1)));
        assert!(!c.is_working_day(d(2026, 10, 7)));
        assert!(c.is_working_day(d(2026, 10, 10)), "Saturday 10 October is a make-up workday");
        assert!(!c.is_working_day(d(2026, 10, 11)));
    }

    #[test]
    fn five_working_days_from_the_eve_of_national_day_skip_the_holiday_week() {
        // 30 Sep (Wed) + 5: 8, 9, 10 (make-up Sat), 12, 13 October.
        assert_eq!(calendar().add_working_days(d(2026, 9, 30), 5), d(2026, 10, 13));
    }

    #[test]
    fn twenty_working_days_in_an_ordinary_month() {
        // Mon 23 Nov 2026 + 20 working days = Mon 21 Dec 2026.
        assert_eq!(calendar().add_working_days(d(2026, 11, 23), 20), d(2026, 12, 21));
    }

    #[test]
    fn a_year_without_an_arrangement_counts_only_weekends_and_says_so() {
        let c = calendar();
        assert!(c.knows(2026));
        assert!(!c.knows(2027));
        assert!(c.is_working_day(d(2027, 1, 4)));
        assert!(!c.is_working_day(d(2027, 1, 2)));
    }

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

        let shipped = WorkingCalendar::load(None).unwrap();
        assert!(!shipped.knows(2027));
        let configured = WorkingCalendar::load(Some(&dir)).unwrap();
        assert!(configured.knows(2027) && configured.knows(2026));
        assert!(!configured.is_working_day(d(2027, 1, 1)), "the holiday");
        assert!(configured.is_working_day(d(2027, 1, 9)), "the make-up Saturday");

        std::fs::write(dir.join("cn-holidays-2028.json"), "{not json").unwrap();
        assert!(WorkingCalendar::load(Some(&dir)).is_err(), "a malformed arrangement stops the service at start-up");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paused_working_days_are_counted_between_two_dates() {
        // Fri 27 Nov to Wed 2 Dec: Mon, Tue, Wed.
        assert_eq!(calendar().working_days_between(d(2026, 11, 27), d(2026, 12, 2)), 3);
        assert_eq!(calendar().working_days_between(d(2026, 12, 2), d(2026, 12, 2)), 0);
    }
}
