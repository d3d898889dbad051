//! Streams folded before, kept in the process, so that a change to a
//! stream (a case, a lane) need not read and open its events again when
//! nothing was appended since this process folded it.
//!
//! An entry is the folded state with the version and the id of the last
//! event folded into it. It is only a hint: a caller uses it only when the
//! stream is known to stand at that very version with that very event
//! (typically from the read model's row, locked and written in the same
//! transaction as every append). Version alone would not do: the
//! transaction that appended the kept event may have rolled back, and
//! another process may have appended a different event at that version
//! since. The entries hold opened personal fields in memory, as any
//! request does while it runs; they are bounded in number and never written
//! anywhere, and a caller keeps nothing whose household's key is gone.

use std::collections::BTreeMap;
use std::sync::Mutex;
use uuid::Uuid;

/// A stream's state as folded here, with where its stream stood.
#[derive(Debug, Clone)]
pub struct Kept<T> {
    pub state: T,
    pub version: i64,
    pub last_event: Uuid,
}

/// The folded streams of one kind, by stream id.
pub struct Folded<T> {
    entries: Mutex<BTreeMap<Uuid, Kept<T>>>,
    /// The most entries kept: the streams being worked on at once, with room.
    capacity: usize,
}

impl<T: Clone> Folded<T> {
    pub const fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(BTreeMap::new()), capacity }
    }

    /// What was kept of the stream, whatever the stream holds now.
    pub fn get(&self, id: Uuid) -> Option<Kept<T>> {
        self.entries.lock().expect("folded streams").get(&id).cloned()
    }

    /// The state kept, only if it was folded up to exactly `version`, whose
    /// event is `last_event`.
    pub fn at(&self, id: Uuid, version: i64, last_event: Uuid) -> Option<T> {
        let entries = self.entries.lock().expect("folded streams");
        entries.get(&id).filter(|k| k.version == version && k.last_event == last_event).map(|k| k.state.clone())
    }

    /// Keeps `state`, folded up to `version` whose event is `last_event`,
    /// unless a later version is kept.
    pub fn keep(&self, id: Uuid, state: &T, version: i64, last_event: Uuid) {
        let mut entries = self.entries.lock().expect("folded streams");
        if entries.get(&id).is_some_and(|kept| kept.version > version) {
            return;
        }
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(id, Kept { state: state.clone(), version, last_event });
    }

    pub fn forget(&self, id: Uuid) {
        self.entries.lock().expect("folded streams").remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_state_is_served_only_at_its_own_version_and_event() {
        let folded = Folded::new(2);
        let (id, event) = (Uuid::now_v7(), Uuid::now_v7());
        folded.keep(id, &"three", 3, event);
        assert_eq!(folded.at(id, 3, event), Some("three"));
        assert_eq!(folded.at(id, 3, Uuid::now_v7()), None, "another event at that version (the kept one rolled back)");
        assert_eq!(folded.at(id, 4, event), None, "appended since");
        folded.keep(id, &"two", 2, Uuid::now_v7());
        assert_eq!(folded.at(id, 3, event), Some("three"), "an older fold does not replace a newer one");
        folded.forget(id);
        assert_eq!(folded.get(id).map(|k| k.state), None);
    }

    #[test]
    fn it_keeps_at_most_its_capacity() {
        let folded = Folded::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            folded.keep(*id, &1, 1, *id);
        }
        assert!(folded.entries.lock().unwrap().len() <= 2);
        assert_eq!(folded.at(ids[2], 1, ids[2]), Some(1), "the newest is kept");
    }
}
