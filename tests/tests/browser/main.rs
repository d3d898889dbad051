//! The workbench in a real browser (Debian's Chromium over WebDriver): the
//! pages people use, against the five real services, as window clerks,
//! caseworkers and approvers use them. Screenshots of the main pages are
//! saved to `docs/screenshots/` for the README.

#[path = "../e2e/stack.rs"]
#[allow(dead_code, unused_imports)]
mod stack;

mod harness;
mod story;
