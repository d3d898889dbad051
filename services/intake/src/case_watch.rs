//! The window waiting for its case to change. A clerk keeps the case view
//! open while the household waits, and the departments' replies change it
//! within seconds; asking again and again costs a request, a read and an
//! audit entry each time, and still shows a change only at the next ask.
//! So the case view can be asked with `If-None-Match` and `Prefer: wait=N`
//! (RFC 7240): the answer comes as soon as the case changes, or after N
//! seconds as `304 Not Modified`.
//!
//! Waiting costs no connection. One watcher per process wakes when this
//! process commits anything (`event_store::outbox::commits`, as the relay
//! does) and reads the versions of every case someone waits on, in one
//! statement, then wakes the waiters of the cases that moved; a change
//! committed by another replica is seen within [`RECHECK`]. A waiter then
//! reads its view as any request does.

use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the watcher reads the versions even if this process committed
/// nothing (another replica's change).
pub const RECHECK: Duration = Duration::from_secs(1);

/// The longest wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The cases someone waits on, by id: the version the waiters have, and how
/// to wake them.
#[derive(Default)]
pub struct CaseWatch {
    waiting: Mutex<HashMap<Uuid, Waiting>>,
    /// Wakes the watcher when a waiter arrives: its case may have moved
    /// since the waiter read it.
    arrived: Notify,
}

struct Waiting {
    version: i64,
    waiters: usize,
    changed: Arc<Notify>,
}

impl CaseWatch {
    /// Waits until case `case_id` has moved past `version` (`true`) or
    /// `wait` is over (`false`).
    pub async fn changed(&self, case_id: Uuid, version: i64, wait: Duration) -> bool {
        let changed = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let entry =
                waiting.entry(case_id).or_insert_with(|| Waiting { version, waiters: 0, changed: Default::default() });
            // Waiters who have different versions: the oldest counts; the others ask again when woken.
            entry.version = entry.version.min(version);
            entry.waiters += 1;
            entry.changed.clone()
        };
        self.arrived.notify_one();
        let woken = tokio::time::timeout(wait, changed.notified()).await.is_ok();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = waiting.get_mut(&case_id) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                waiting.remove(&case_id);
            }
        }
        woken
    }

    /// The cases waited on and the versions their waiters have.
    fn waited(&self) -> (Vec<Uuid>, Vec<i64>) {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.iter().map(|(id, w)| (*id, w.version)).unzip()
    }

    /// Wakes the waiters of `case_id`, which has moved past their version.
    /// Until they are gone, every round wakes them again: one who registered
    /// but was not yet listening is woken by the next.
    fn moved(&self, case_id: Uuid) {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = waiting.get(&case_id) {
            entry.changed.notify_waiters();
        }
    }

    /// Reads the versions of the cases waited on after each commit of this
    /// process and every [`RECHECK`], until `shutdown`.
    pub async fn watch(self: Arc<Self>, pool: PgPool, shutdown: CancellationToken) {
        let mut commits = onedoor_event_store::outbox::commits();
        loop {
            let (ids, versions) = self.waited();
            if ids.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.arrived.notified() => continue,
                }
            }
            let moved: Result<Vec<Uuid>, sqlx::Error> = sqlx::query_scalar(
                "SELECT v.case_id FROM case_views v \
                   JOIN unnest($1::uuid[], $2::bigint[]) AS w(case_id, version) USING (case_id) \
                  WHERE v.version > w.version",
            )
            .bind(&ids)
            .bind(&versions)
            .fetch_all(&pool)
            .await;
            match moved {
                Ok(moved) => moved.into_iter().for_each(|id| self.moved(id)),
                Err(error) => tracing::warn!(%error, "reading the versions of cases waited on failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = commits.changed() => {}
                _ = self.arrived.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }
}

/// The wait a request asks for with `Prefer: wait=N` (seconds; RFC 7240),
/// at most [`MAX_WAIT`]; `None` if it asks for none.
pub fn preferred_wait(headers: &axum::http::HeaderMap) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().strip_prefix("wait="))
        .find_map(|s| s.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_WAIT))
        .filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn prefer(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", value.parse().unwrap());
        preferred_wait(&headers)
    }

    #[test]
    fn the_wait_is_read_from_prefer_and_capped() {
        assert_eq!(prefer("wait=10"), Some(Duration::from_secs(10)));
        assert_eq!(prefer("respond-async, wait=5"), Some(Duration::from_secs(5)));
        assert_eq!(prefer("wait=3600"), Some(MAX_WAIT));
        assert_eq!(prefer("wait=0"), None);
        assert_eq!(prefer("wait=soon"), None);
        assert_eq!(prefer("return=minimal"), None);
        assert_eq!(preferred_wait(&HeaderMap::new()), None);
    }
}
