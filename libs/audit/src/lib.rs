//! The audit trail: who read or changed what, in each service's own
//! database (PIPL art. 51, MLPS 2.0 level 3 security audit).
//!
//! Every request of a member of staff under `/api/v1/` is recorded by one
//! middleware ([`record_access`]), not by each handler, so a new endpoint
//! cannot forget it: who (token subject and role), the action (method and
//! route template, and the names, never the values, of the query
//! parameters), the outcome (status), the case, referral, household or
//! document it touched (from the path, or noted by the code that loaded it:
//! `onedoor_http_kit::access`), the purpose where one is asked, and the
//! trace. Ids only: auditors see the trail, never the personal data.
//!
//! A command's entry can commit with the command itself
//! ([`commit_with_entry`]); the others are written after the answer
//! without locking anything, several per commit ([`Recorder`]). All are
//! then sealed into a hash
//! chain by a background sealer ([`chain::seal_continuously`]): a chain
//! written inline would serialise every request of the service on the chain
//! head until its transaction commits. Editing, removing or reordering a
//! sealed entry breaks the chain, and [`chain::verify`] names the first
//! broken link; the table itself refuses updates, deletes younger than six
//! months and truncation (see the migration). See ADR 0013.

pub mod chain;
pub mod http;
mod trail;

pub use trail::{Entry, Recorder, commit_with_entry, record_access};

/// The audit trail's migrations (the service host runs them in every
/// service's database beside the event store's).
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}
