//! Service halls work on China Standard Time (UTC+8, no daylight saving):
//! dates, deadlines, calendar years and "today" are all read on this clock,
//! in every service and on every page.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The date at the service halls at `at`.
pub fn date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&offset()).date_naive()
}

/// Today at the service halls.
pub fn today() -> NaiveDate {
    date(Utc::now())
}

#[cfg(test)]
mod tests {
    #[test]
    fn late_evening_utc_is_already_tomorrow_in_china() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T17:30:00Z").unwrap().to_utc();
        assert_eq!(super::date(at).to_string(), "2026-11-26");
    }
}
