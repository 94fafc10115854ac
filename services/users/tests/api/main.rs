//! The users service's integration tests: one binary, one module per area,
//! each driving the real service on a loopback port over its own database
//! (SQLite, or PostgreSQL with `TEST_DATABASE_URL`; `races` runs on
//! PostgreSQL only and says so when skipped).
//!
//! nextest runs each test in its own process, and `secrets_stay_out_of_logs`
//! relies on it: it installs a process-wide subscriber.
//!
//! One binary rather than one per file: a link is most of what an
//! incremental test build costs. Run one area with a filter, e.g.
//! `cargo nextest run -p users -E 'test(/^lockout::/)'`.

mod helpers;

mod accounts;
mod authorization;
mod lockout;
mod openapi;
mod races;
mod secrets_stay_out_of_logs;
mod sessions;
mod tokens;
