//! The courses service's integration tests: one binary, one module per
//! area, each driving the real service on a loopback port over its own
//! seeded database (SQLite, or PostgreSQL with `TEST_DATABASE_URL`).
//!
//! One binary rather than one per file: the workspace links each test
//! binary against every crate it uses, and a link is most of what an
//! incremental test build costs. Run one area with a filter, e.g.
//! `cargo nextest run -p courses -E 'test(/^catalog::/)'`.

mod helpers;

mod admin;
mod bad_input;
mod cache;
mod catalog;
mod client;
mod openapi;
mod seeding;
