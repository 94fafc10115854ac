//! A load engine: it runs journeys (what one simulated user does) against
//! the clock, as a plan of executors says, and measures what happened.
//! It knows nothing of HTTP or of the system under load: a journey makes
//! its requests however it likes and hands each one to the engine to
//! time and classify.
//!
//! - **What to run:** a [`Plan`] of [`ExecutorPlan`]s, each with a
//!   [`Model`] (open: a constant or ramping arrival rate, [`Stage`]s, with
//!   a [`Pool`] of journeys in flight; closed: virtual users with a
//!   [`ThinkTime`]) and [`WeightedJourney`]s to pick from.
//! - **The journey contract:** [`Journey`], run with an [`Iteration`] whose
//!   [`request`](Iteration::request) times each request and records its
//!   [`Outcome`].
//! - **Running:** [`Run::start`] with [`RunOptions`], [`Live`] while it
//!   runs (statistics so far, the last seconds as [`Recent`], the phase,
//!   stop), [`Run::finish`] for the results.
//! - **Results:** [`RunStats`] (an [`Aggregate`] per journey, per request
//!   type and overall, [`ExecutorStats`], any [`Window`] of whole
//!   seconds), and as serialisable values ([`SummaryParts`]: [`Stats`],
//!   [`SeriesPoint`]s, the slowest and failed journeys as [`Sample`]s).
//! - **Traces worth keeping:** [`TraceEvent`]s tell a [`TraceListener`]
//!   when a trace enters or leaves the slowest and failed sets.
//! - **Metrics:** [`EngineMetrics`], the offered load as Prometheus
//!   families with trace exemplars, under the caller's prefix.
//! - **[`bench`](mod@bench):** one URL, GET, over keep-alive HTTP/1.1 connections
//!   (like wrk and wrk2), through the same engine.
//!
//! ```text
//! Plan ──► Run::start ──► executors ──► journey tasks ──► Recorder shards
//!                │         (schedule,     (Journey::run,     (push, no
//!                │          pool, VUs)     Iteration)         histograms)
//!                │                                               │ 4 Hz
//!                └──► Live ◄── RunStats ◄──────────── Collector ◄┘
//!                     (stats so far, last seconds,      (histograms, samples,
//!                      phase, stop)                      metrics, trace events)
//! ```
//!
//! Open-model executors compute each arrival's time from the run's start
//! and measure every journey from that intended time, so a system that
//! stalls shows its stall in the latency instead of quietly receiving
//! less load (coordinated omission; Gil Tene, "How NOT to Measure
//! Latency"). The uncorrected figure, from the moment the work really
//! started, is kept beside it. When the pool of journeys is exhausted the
//! shortfall is counted (late, dropped), never absorbed by lowering the
//! rate.
//!
//! A journey, and a plan that runs it 50 times a second:
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//!
//! use load_engine::{
//!     ExecutorPlan, Iteration, Journey, JourneyFuture, Model, Outcome, Plan, Pool, Run,
//!     RunOptions, WeightedJourney,
//! };
//!
//! /// One visit: a single request (a short sleep stands in for the call).
//! struct Ping;
//!
//! impl Journey for Ping {
//!     fn run<'a>(&'a self, it: &'a mut Iteration) -> JourneyFuture<'a> {
//!         Box::pin(async move {
//!             let call = async {
//!                 tokio::time::sleep(Duration::from_millis(2)).await;
//!                 Ok::<u16, String>(200)
//!             };
//!             let classify = |answer: &Result<u16, String>| match answer {
//!                 Ok(status) => Outcome::ok(*status),
//!                 Err(kind) => Outcome::failed(None, kind.clone()),
//!             };
//!             let _ = it.request("GET /ping", call, classify).await;
//!         })
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), load_engine::PlanError> {
//! let plan = Plan {
//!     executors: vec![ExecutorPlan {
//!         name: "steady".into(),
//!         start: Duration::ZERO,
//!         model: Model::ConstantArrivalRate {
//!             rate: 50.0,
//!             duration: Duration::from_millis(200),
//!             pool: Pool::new(10),
//!         },
//!         journeys: vec![WeightedJourney {
//!             name: "ping",
//!             weight: 1,
//!             journey: Arc::new(Ping),
//!         }],
//!     }],
//! };
//! let run = Run::start(plan, RunOptions::default())?;
//! let live = run.live(); // stats so far, the last seconds; live.stop() ends it early
//! let stats = run.finish().await;
//! let ping = stats.journey("ping").expect("the plan names it");
//! assert_eq!(ping.count(), 10);
//! println!("p99 {:?}", ping.latency(0.99));
//! let parts = stats.summary_parts(); // serialisable: overall, journeys, series, slowest...
//! # drop((live, parts));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod bench;
mod executor;
mod journey;
mod live;
mod metrics;
mod plan;
mod recorder;
mod run;
mod samples;
mod schedule;
mod state;
mod stats;
mod summary;

pub use journey::{Iteration, Journey, JourneyFuture, Outcome, RequestRecord};
pub use live::{Live, Recent};
pub use metrics::EngineMetrics;
pub use plan::{ExecutorPlan, Model, Plan, PlanError, Pool, ThinkTime, WeightedJourney};
pub use run::{Run, RunOptions};
pub use samples::{SampleReason, TraceEvent, TraceListener};
pub use schedule::Stage;
pub use stats::{Aggregate, ExecutorStats, RunStats, Window};
pub use summary::{
    ExecutorSummary, NamedStats, Percentiles, Sample, SeriesPoint, Stats, SummaryParts,
};
