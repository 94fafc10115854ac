//! otlp-sink: an in-memory OpenTelemetry trace receiver, for tests that
//! assert on the spans a system really exported and for load generators
//! that keep the traces of their slowest and failed requests.
//!
//! It speaks both OTLP transports an exporter can be configured with:
//! gRPC (`TraceService/Export`) and HTTP (`POST /v1/traces`, protobuf or
//! OTLP/JSON), either optionally gzip-compressed. What arrives is decoded
//! into a plain span model, with hex ids and attributes in sorted maps.
//!
//! The public surface:
//!
//! - [`Receiver`]: the span store and its queries (`spans`, `trace`,
//!   `wait_for`, `stats`); [`Receiver::start`] serves it and returns a
//!   [`RunningReceiver`] (its ports, `shutdown`);
//!   [`Receiver::query_router`] is a read-only HTTP API over it for
//!   scripts and scrapers.
//! - [`Receiver::with_capture`]: instead of the plain buffer, a store that
//!   groups spans by trace and keeps the traces pinned with
//!   [`Receiver::keep`] within fixed budgets ([`CaptureLimits`],
//!   [`CaptureStats`]).
//! - [`span`]: the span model ([`span::CapturedSpan`] and its parts).
//!
//! Inside, one thing per file: `receiver` (the handle and its store),
//! `capture` (the trace store), `convert` (OTLP types to the span model),
//! `grpc` and `http` (the transports), `server` (serving both), `query`
//! (the query API).
//!
//! Its bounds: memory is bounded (a span count, or byte budgets with
//! capture); a request is at most [`MAX_REQUEST_BYTES`] after
//! decompression; only traces are received (no metrics or logs), nothing
//! is persisted, and nothing is forwarded. It depends on none of
//! LearnSphere's crates.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use otlp_sink::Receiver;
//!
//! let running = Receiver::new()
//!     .start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap())
//!     .await?;
//! // Point a service at running.grpc_endpoint() or running.http_endpoint() ...
//! let spans = running
//!     .wait_for(Duration::from_secs(10), |spans| spans.iter().any(|s| s.name == "GET /healthz"))
//!     .await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod capture;
mod convert;
mod grpc;
mod http;
mod query;
mod receiver;
#[cfg(test)]
mod samples;
mod server;
pub mod span;

pub use crate::capture::{CaptureLimits, CaptureStats};
pub use crate::http::HTTP_TRACES_PATH;
pub use crate::receiver::{DEFAULT_MAX_SPANS, MAX_REQUEST_BYTES, Receiver, ReceiverStats};
pub use crate::server::{ReceiverError, RunningReceiver};
