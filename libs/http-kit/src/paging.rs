//! Paging of lists ordered newest first: the common query (`status`,
//! `limit`, `cursor`) and opaque cursors that name the last item of a page.

use crate::problem::{FieldError, Problem};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A list position: the (time, id) of the last item of a page.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

pub fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, Uuid::parse_str(id).ok()?))
}

/// The common query of every list: `status`, `limit` (1–100, default 20) and `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub status: Option<String>,
    pub limit: i64,
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
}

impl ListParams {
    /// Checks every parameter at once; `statuses` are the allowed values of `status`.
    pub fn parse(
        status: Option<String>,
        statuses: &[&str],
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> Result<Self, Problem> {
        let mut errors = Vec::new();
        if let Some(s) = &status
            && !statuses.contains(&s.as_str())
        {
            errors.push(FieldError::new("status", "invalid_value", format!("one of {}", statuses.join(", "))));
        }
        let limit = limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            errors.push(FieldError::new("limit", "out_of_range", "between 1 and 100"));
        }
        let cursor = match cursor.map(decode_cursor) {
            Some(None) => {
                errors.push(FieldError::new("cursor", "invalid_cursor", "use next_cursor of a previous page"));
                None
            }
            Some(c) => c,
            None => None,
        };
        if errors.is_empty() { Ok(Self { status, limit, cursor }) } else { Err(Problem::validation(errors)) }
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The page of `rows` (fetched with [`ListParams::fetch`], each with its
    /// time and id) and the cursor of the next page, if there is one.
    pub fn page<T>(&self, rows: Vec<(DateTime<Utc>, Uuid, T)>) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for (at, id, item) in rows.into_iter().take(self.limit as usize) {
            last = Some((at, id));
            items.push(item);
        }
        (items, if more { last.map(|(at, id)| encode_cursor(at, id)) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_795_468_573_837_057).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("zzz"), None);
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_follow() {
        let params = ListParams::parse(None, &[], Some(2), None).unwrap();
        let at = DateTime::from_timestamp_micros(1).unwrap();
        let rows = |n: usize| (0..n).map(|i| (at, Uuid::now_v7(), i)).collect::<Vec<_>>();
        let (items, next) = params.page(rows(3));
        assert_eq!((items, next.is_some()), (vec![0, 1], true));
        let (items, next) = params.page(rows(2));
        assert_eq!((items, next), (vec![0, 1], None));
    }
}
