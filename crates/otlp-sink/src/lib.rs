//! otlp-sink: an in-memory OpenTelemetry trace and log receiver, for
//! tests that assert on the spans and log records a system really
//! exported and for load generators that keep the traces of their slowest
//! and failed requests, with the log lines that explain them.
//!
//! It speaks both OTLP transports an exporter can be configured with:
//! gRPC (`TraceService/Export`, `LogsService/Export`) and HTTP
//! (`POST /v1/traces`, `POST /v1/logs`, protobuf or OTLP/JSON), either
//! optionally gzip-compressed. What arrives is decoded into plain span and
//! log-record models, with hex ids and attributes in sorted maps.
//!
//! The public surface:
//!
//! - [`Receiver`]: the store and its queries (`spans`, `trace`,
//!   `wait_for`; `logs`, `trace_logs`, `wait_for_logs`,
//!   `subscribe_logs`; `traces`, `stats`); [`Receiver::start`] serves it
//!   and returns a [`RunningReceiver`] (its ports, `shutdown`);
//!   [`Receiver::query_router`] is a read-only HTTP API over it for
//!   scripts and scrapers.
//! - [`Receiver::with_capture`]: instead of the plain buffers, a store that
//!   groups spans and log records by trace and keeps the traces pinned
//!   with [`Receiver::keep`] within fixed budgets ([`CaptureLimits`],
//!   [`CaptureStats`]).
//! - [`span`]: the span model ([`span::CapturedSpan`] and its parts);
//!   [`log`]: the log-record model ([`log::CapturedLog`],
//!   [`log::Severity`]); [`CapturedTrace`]: one trace's spans and log
//!   records together.
//!
//! Inside, one thing per file: `receiver` (the handle), `buffer` (the
//! plain store), `capture` (the trace store), `size` (what a record
//! costs), `convert` (OTLP types to the models), `grpc` and `http` (the
//! transports), `server` (serving both), `query` (the query API).
//!
//! Its bounds: memory is bounded (counts of spans and of log records, or
//! byte budgets with capture), and what is dropped is counted
//! ([`ReceiverStats`]); a request is at most [`MAX_REQUEST_BYTES`] after
//! decompression; metrics are not received, nothing is persisted, and
//! nothing is forwarded. It depends on none of LearnSphere's crates.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use otlp_sink::{Receiver, log::Severity};
//!
//! let running = Receiver::new()
//!     .start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap())
//!     .await?;
//! // Point a service at running.grpc_endpoint() or running.http_endpoint() ...
//! let spans = running
//!     .wait_for(Duration::from_secs(10), |spans| spans.iter().any(|s| s.name == "GET /healthz"))
//!     .await;
//! let errors = running
//!     .wait_for_logs(Duration::from_secs(10), |logs| {
//!         logs.iter().any(|l| l.severity >= Severity::Error)
//!     })
//!     .await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod buffer;
mod capture;
mod convert;
mod grpc;
mod http;
pub mod log;
mod query;
mod receiver;
#[cfg(test)]
mod samples;
mod server;
mod size;
pub mod span;
mod trace;

pub use crate::capture::{CaptureLimits, CaptureStats};
pub use crate::http::{HTTP_LOGS_PATH, HTTP_TRACES_PATH};
pub use crate::receiver::{
    DEFAULT_MAX_LOGS, DEFAULT_MAX_SPANS, LOG_FEED_CAPACITY, MAX_REQUEST_BYTES, Receiver,
    ReceiverStats,
};
pub use crate::server::{ReceiverError, RunningReceiver};
pub use crate::trace::CapturedTrace;
