//! Working days on the official holiday calendar (限时办结制: time limits are
//! counted in working days). A year's arrangement lists days off and the
//! weekend days that are working days (调休 make-up workdays); the State
//! Council publishes next year's late in the year. For a year with no
//! arrangement loaded only weekends can be counted, and [`WorkingCalendar::knows`]
//! says so, so the service can warn.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

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
const SHIPPED: &[&str] = &[include_str!("../../calendar/cn-holidays-2026.json")];

/// Service halls work on China Standard Time: dates and deadlines are local.
pub fn local_date(at: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    onedoor_contracts::china_time::date(at)
}

impl WorkingCalendar {
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

    #[test]
    fn paused_working_days_are_counted_between_two_dates() {
        // Fri 27 Nov to Wed 2 Dec: Mon, Tue, Wed.
        assert_eq!(calendar().working_days_between(d(2026, 11, 27), d(2026, 12, 2)), 3);
        assert_eq!(calendar().working_days_between(d(2026, 12, 2), d(2026, 12, 2)), 0);
    }
}
