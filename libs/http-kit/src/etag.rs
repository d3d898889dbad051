//! ETags and `If-Match` on event-sourced resources: the ETag is the
//! stream's version, so a client's stale copy is refused (412), not
//! overwritten. A view with fields that change with the date alone (an
//! overdue flag, a deadline that moves while paused) adds the day
//! ([`dated_etag`]), so a cache is not served yesterday's; `If-Match` still
//! compares the version only.

use crate::problem::Problem;
use axum::http::{HeaderMap, HeaderValue, header};

pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

/// `"<version>.<YYYYMMDD>"`: the ETag of a view that also depends on the day.
pub fn dated_etag(version: i64, day: chrono::NaiveDate) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}.{}\"", day.format("%Y%m%d"))).expect("digits are a valid header")
}

/// 412 when the request's `If-Match` names another version than `current`.
pub fn check_if_match(headers: &HeaderMap, current: i64) -> Result<(), Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(()) };
    let wanted = value.to_str().unwrap_or_default().trim().trim_start_matches("W/").trim_matches('"');
    let wanted = wanted.split('.').next().unwrap_or_default();
    if wanted == "*" || wanted == current.to_string() {
        Ok(())
    } else {
        Err(Problem::precondition_failed(format!("the resource is at version {current}, not {wanted}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_the_current_version_or_a_star() {
        let mut h = HeaderMap::new();
        assert!(check_if_match(&h, 3).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"3\""));
        assert!(check_if_match(&h, 3).is_ok());
        assert_eq!(check_if_match(&h, 4).unwrap_err().status, 412);
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(check_if_match(&h, 4).is_ok());
        h.insert(header::IF_MATCH, dated_etag(4, chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()));
        assert!(check_if_match(&h, 4).is_ok(), "a dated ETag matches on its version, whatever the day");
        assert_eq!(check_if_match(&h, 5).unwrap_err().status, 412);
    }
}
