//! Intake's domain, pure: no IO, time and ids passed in.

pub mod application;
pub mod calendar;
pub mod case;
pub mod identity;
pub mod materials;
