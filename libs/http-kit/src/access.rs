//! What a request touched, noted while it is handled, for the audit trail
//! (`onedoor-audit`). The trail's middleware opens a note per request; the
//! [`Staff`](crate::Staff) extractor writes who asked, and the code that
//! loads a case, referral, household or document writes which one, without
//! handing a recorder through every function: the note lives in a task-local
//! for the request's duration. Outside a request (consumers, tests that call
//! a store directly) noting is a no-op.

use crate::auth::Role;
use std::future::Future;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Who asked, and the records a request read or changed (ids only).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Access {
    pub actor: Option<(String, Role)>,
    pub case_id: Option<Uuid>,
    pub referral_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    pub document_id: Option<Uuid>,
    /// The purpose the member of staff stated, where one is asked.
    pub purpose: Option<String>,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<Access>>;
}

/// Runs `request` with a fresh note and returns what it noted beside its output.
pub async fn noted<F: Future>(request: F) -> (F::Output, Access) {
    let note = Arc::new(Mutex::new(Access::default()));
    let output = NOTE.scope(note.clone(), request).await;
    let access = note.lock().map(|a| a.clone()).unwrap_or_default();
    (output, access)
}

/// What the current request has noted so far (`None` outside a request).
pub fn current() -> Option<Access> {
    NOTE.try_with(|note| note.lock().map(|a| a.clone()).ok()).ok().flatten()
}

/// Adds to the current request's note (nothing outside a request).
pub fn note(change: impl FnOnce(&mut Access)) {
    let _ = NOTE.try_with(|note| {
        if let Ok(mut access) = note.lock() {
            change(&mut access);
        }
    });
}

/// Notes the purpose a member of staff stated for an access the trail must
/// explain (unmasking ID numbers, erasing a household's personal data):
/// trimmed, 4 to 200 characters, else a 400 (`purpose_length`) and nothing is
/// noted.
pub fn note_purpose(stated: &str) -> Result<(), crate::Problem> {
    let purpose = stated.trim();
    if !(4..=200).contains(&purpose.chars().count()) {
        return Err(crate::Problem::validation(vec![crate::FieldError::new(
            "purpose",
            "purpose_length",
            "4 to 200 characters",
        )]));
    }
    note(|a| a.purpose = Some(purpose.to_string()));
    Ok(())
}

/// Notes the case a request read or changed.
pub fn note_case(case_id: Uuid) {
    note(|a| a.case_id = Some(case_id));
}

/// Notes the household a request read or changed.
pub fn note_household(household_id: Uuid) {
    note(|a| a.household_id = Some(household_id));
}
