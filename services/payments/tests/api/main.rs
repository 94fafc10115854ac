//! The payments service's integration tests: one binary, one module per
//! area, each driving the real service on a loopback port over its own
//! database (SQLite, or PostgreSQL with `TEST_DATABASE_URL`), with the
//! simulated provider.
//!
//! One binary rather than one per file: a link is most of what an
//! incremental test build costs. Run one area with a filter, e.g.
//! `cargo nextest run -p payments -E 'test(/^key_leases::/)'`.

mod helpers;

mod authorization;
mod bad_input;
mod charges;
mod client;
mod concurrency;
mod key_leases;
mod openapi;
mod provider_outcomes;
mod purchases;
mod refunds;
