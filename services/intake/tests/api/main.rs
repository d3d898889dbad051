//! Black-box tests of intake: the service on port 0 against a real
//! PostgreSQL and a real nats-server, driven through its REST API and the
//! departments' events on JetStream.

mod applications;
mod audit;
mod case_view;
mod erasure;
mod households;
mod notifications;
mod support;
mod window_lookups;
