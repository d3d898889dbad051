//! The platform as one: the five real service binaries, a real PostgreSQL
//! (a database each) and a real nats-server, driven through the REST APIs as
//! window clerks, caseworkers and approvers would; with an OTLP receiver to
//! follow traces, and faults (kill -9, broker down, restarts) along the way.

mod faults;
mod metrics;
mod otlp;
mod replicas;
mod stack;
mod story;
