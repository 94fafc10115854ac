//! The mesh's integration tests: one binary, one module per layer or
//! concern, through the real router and, where the connection matters,
//! real servers and clients on loopback ports.
//!
//! nextest runs each test in its own process, and some tests rely on it:
//! `telemetry::init` sets the baggage allow-list once per process, and the
//! span-recording tracer is process-wide when it can be (see `helpers`).
//!
//! One binary rather than one per file: a link is most of what an
//! incremental test build costs. Run one area with a filter, e.g.
//! `cargo nextest run -p mesh -E 'test(/^tracecontext::/)'`.

mod helpers;

mod baggage;
mod balance;
mod cardinality_inbound_metrics;
mod connections;
mod db;
mod errors;
mod faults;
mod fuzz_trace_context;
mod hygiene_telemetry;
mod inbound_metrics;
mod inbound_trace;
mod logs;
mod metrics_switch;
mod outbound;
mod shed;
mod tracecontext;
