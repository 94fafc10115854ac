//! The progress service's integration tests: one binary, one module per
//! area, each driving the real service on a loopback port beside a real
//! courses service, each over its own database (SQLite, or PostgreSQL with
//! `TEST_DATABASE_URL`). `access` and `event_races` also consume from a
//! real NATS server with JetStream (127.0.0.1:4222, or `NATS_URL`).
//!
//! One binary rather than one per file: a link is most of what an
//! incremental test build costs. Run one area with a filter, e.g.
//! `cargo nextest run -p progress -E 'test(/^event_races::/)'`.

mod helpers;

mod access;
mod authorization;
mod bad_input;
mod enrollments;
mod event_races;
mod lessons;
mod openapi;
mod profiles;
