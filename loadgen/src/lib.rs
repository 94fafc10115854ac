//! loadgen: load generator, scenario runner and local launcher for LearnSphere.
//!
//! A map, from the bottom up (a module uses only those above it, and the
//! command line in `main.rs` uses them all):
//!
//! - **Values people write and read:** [`human`] (durations, error chains),
//!   [`summary`] (the `summary.json` types every part shares), [`system`]
//!   (the five services, their ports and dependencies).
//! - **Traces:** [`otlp`] (the span model), [`receiver`] (an OTLP receiver
//!   over gRPC and HTTP), [`capture`] (the traces a run keeps).
//! - **Load:** [`journeys`] (what a simulated user does), run by the
//!   `load_engine` crate (plans, executors, schedules, the recorder and its
//!   statistics, live progress; `loadgen bench` is its `bench`).
//! - **Running services:** [`launcher`] (`loadgen up` and `System`: the
//!   supervisor, replicas, the control API, the event broker, the targets
//!   file) and [`platform`] (local, Compose and Kubernetes drivers, and the
//!   services' admin API).
//! - **Scenarios:** [`scenario`] (the language and its plan), [`stage`] (a
//!   scenario's `[system]` applied to a target), [`timeline`] (events at
//!   their times), [`scrape`], [`expect`] and [`check`] (what is measured
//!   and judged), [`verdict`], [`run`] (one scenario run, end to end).
//! - **Reports:** [`report`] (the terminal table and `report.html`).

#![forbid(unsafe_code)]

pub mod capture;
pub mod check;
pub mod expect;
pub mod human;
pub mod journeys;
pub mod launcher;
pub mod otlp;
pub mod platform;
pub mod receiver;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scrape;
pub mod stage;
pub mod summary;
pub mod system;
pub mod timeline;
pub mod verdict;
