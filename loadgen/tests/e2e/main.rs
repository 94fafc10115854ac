//! loadgen's integration tests, in one binary.
//!
//! Most are end to end: the five services as real processes under the
//! launcher (or `loadgen` itself, as a user runs it), on free loopback
//! ports, over SQLite or, with `TEST_DATABASE_URL`, PostgreSQL. `support`
//! starts and inspects such a system. `receive` runs `loadgen receive`
//! alone. `reports` and `summary_schema` render and validate a populated
//! summary (`report_fixture`) through the public API, with nothing
//! running.
//!
//! One binary rather than one per file: each end-to-end file linked all
//! five services, and a link is most of what an incremental test build
//! costs. Run one area with a filter, e.g.
//! `cargo nextest run -p loadgen -E 'test(/^checkout::/)'`.
//! `.config/nextest.toml` runs `scenarios` alone and retries once.

mod report_fixture;
mod support;

mod checkout;
mod console;
mod dashboards;
mod events;
mod gateway;
mod lifecycle;
mod logs;
mod platform;
mod receive;
mod replicas;
mod reports;
mod resilience;
mod scenarios;
mod security;
mod summary_schema;
