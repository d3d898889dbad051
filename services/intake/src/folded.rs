//! Cases folded before, kept in the process ([`onedoor_event_store::folded`]):
//! a lane report used to read, open and fold the whole stream, twenty events
//! by the end of a case, for every report. [`crate::store::load_case`] serves
//! a kept case as it is when the case's list row says nothing was appended
//! since, and otherwise reads only the events after the one it kept (if the
//! stream still holds that very event at that version). A case whose
//! household's key is gone is folded afresh and not kept, so erased fields
//! read as erased.

use crate::domain::case::Case;
use onedoor_event_store::folded::Folded;

/// The cases being worked on at once, with room.
pub static CASES: Folded<Case> = Folded::new(4096);
