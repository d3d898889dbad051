//! The four departments against real PostgreSQL and nats-server, each with
//! intake in front of it: referrals come from the window's API, lane commands
//! go through the department's API, and the window's case view follows.

mod documents;
mod harness;
mod household_loop;
mod lanes;
mod privacy;
