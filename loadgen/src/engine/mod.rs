//! The load engine: executors schedule journeys against the clock and a
//! recorder keeps what happened.
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
//! ```no_run
//! # async fn f(plan: loadgen::engine::Plan) -> Result<(), loadgen::engine::PlanError> {
//! use loadgen::engine::{Run, RunOptions};
//! let run = Run::start(plan, RunOptions::default())?;
//! let live = run.live(); // thresholds once a second, live.stop() to abort
//! let stats = run.finish().await;
//! let p99 = stats.journey("checkout").map(|j| j.latency(0.99));
//! let parts = stats.summary_parts(); // overall, journeys, series, slowest...
//! # Ok(()) }
//! ```

pub mod bench;
mod executor;
pub mod journey;
mod live;
mod metrics;
mod plan;
mod recorder;
mod run;
mod samples;
pub mod schedule;
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
