//! Cases folded before, kept in the process so that loading a case reads
//! and opens only the events appended since (a lane report used to read,
//! open and fold the whole stream, twenty events by the end of a case, for
//! every report).
//!
//! An entry is the case and the id of the last event folded into it. It is
//! only a hint: [`crate::store::load_case`] uses it only if the stream still
//! holds that very event at that version (the transaction that appended it
//! may have rolled back, and another process may have appended since; the
//! events after it are read either way). A case whose household's key is
//! gone is folded afresh and not kept, so erased fields read as erased. The
//! entries hold opened personal fields in memory, as any request does while
//! it runs; they are bounded in number and never written anywhere.

use crate::domain::case::Case;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use uuid::Uuid;

/// How many cases are kept: the cases being worked on at once, with room.
const ENTRIES: usize = 4096;

static FOLDED: LazyLock<Mutex<HashMap<Uuid, (Case, Uuid)>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The case as last folded here, and the id of its last event.
pub fn get(case_id: Uuid) -> Option<(Case, Uuid)> {
    FOLDED.lock().expect("folded cases").get(&case_id).cloned()
}

/// Keeps `case`, whose last event is `last_event`, unless a later version is kept.
pub fn keep(case: &Case, last_event: Uuid) {
    let mut folded = FOLDED.lock().expect("folded cases");
    if folded.get(&case.case_id).is_some_and(|(kept, _)| kept.version > case.version) {
        return;
    }
    if folded.len() >= ENTRIES {
        folded.clear();
    }
    folded.insert(case.case_id, (case.clone(), last_event));
}

pub fn forget(case_id: Uuid) {
    FOLDED.lock().expect("folded cases").remove(&case_id);
}
