//! The department's domain, pure: no IO, no HTTP types; time, ids and the
//! policy's recommendation are passed in.
//!
//! - [`lane`]: one department's part of one case: commands, events, the fold.
//! - [`view`]: what caseworkers and approvers see of a referral.
//! - [`policy`]: what each department plugs in.

pub mod lane;
pub mod policy;
pub mod view;
