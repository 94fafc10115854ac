//! loadgen: load generator, scenario runner and local launcher for LearnSphere.
//!
//! A map, from the bottom up (a module uses only those above it, and the
//! command line in `main.rs` uses them all):
//!
//! - **Values people write and read:** [`human`] (durations, error chains),
//!   [`summary`] (the `summary.json` types every part shares).
//! - **Traces and logs**, from their own crate: [`otlp_sink`] (an OTLP
//!   receiver over gRPC and HTTP, the span and log-record models, the
//!   traces a run keeps), which [`receive`] (`loadgen receive`), `run
//!   --capture-traces`, the report and the tests use.
//! - **Load:** [`journeys`] (what a simulated user does, and the one list
//!   of them), run by the `load_engine` crate (plans, executors,
//!   schedules, the recorder and its statistics, live progress; `loadgen
//!   bench` is its `bench`).
//! - **Running services:** [`platform`] (local, Compose and Kubernetes
//!   drivers, and the services' admin API). The local system itself is
//!   the `launcher` crate's (`loadgen up`, `System`, the control API).
//! - **Scenarios:** [`scenario`] (the language and its plan), [`stage`] (a
//!   scenario's `[system]` applied to a target), [`timeline`] (events at
//!   their times), [`scrape`], [`expect`] and [`check`] (what is measured
//!   and judged), [`verdict`], [`run`] (one scenario run, end to end).
//! - **Reports:** [`report`] (the terminal table and `report.html`).
//! - **The operator console:** [`console`] (the page and its API on `loadgen
//!   up`'s control API listener: faults, scenario runs as `loadgen run`
//!   children).

#![forbid(unsafe_code)]

pub mod check;
pub mod console;
pub mod expect;
pub mod human;
pub mod journeys;
pub mod platform;
pub mod receive;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scrape;
pub mod stage;
pub mod summary;
pub mod timeline;
pub mod verdict;
