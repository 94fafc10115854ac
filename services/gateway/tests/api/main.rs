//! The gateway's integration tests: one binary, one module per area, each
//! driving the real gateway on a loopback port, with the real users
//! service behind it where a test needs one. The gateway's routes through
//! every real service are tested end to end in loadgen's suite
//! (`loadgen/tests/e2e/gateway.rs`).
//!
//! One binary rather than one per file: a link is most of what an
//! incremental test build costs. Run one area with a filter, e.g.
//! `cargo nextest run -p gateway -E 'test(/^rate_limit::/)'`.

mod lockout;
mod openapi;
mod rate_limit;
mod slow_clients;
