//! The platform's promises, checked against a real PostgreSQL and a real
//! nats-server: an accepted application is never lost, an event is never
//! acted on twice, and an operator can follow one application as one trace.

mod aid_lines;
mod broker;
#[path = "../common/mod.rs"]
mod common;
mod consumers;
mod database_tls;
mod event_store;
mod http_kit;
mod identity;
mod migrations;
mod outbox_relay;
mod stream_limits;

pub use common::*;
