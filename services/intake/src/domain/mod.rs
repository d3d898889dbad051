//! Intake's domain, pure: no IO, no HTTP types; time, ids and configuration
//! (the calendar, the catalogue, the time limits) are passed in.

pub mod application;
pub mod case;
pub mod household;
pub mod materials;
pub mod view;

/// One invalid field of a form: where, a stable code, and what is expected.
/// The HTTP layer answers these as the `errors` of a problem+json 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// JSON path of the field, e.g. `household.members[1].id_number`.
    pub field: String,
    pub code: String,
    pub message: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into(), message: message.into() }
    }
}
