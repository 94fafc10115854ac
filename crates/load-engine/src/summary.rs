//! A run's results as plain values that serialise: what
//! [`RunStats::summary_parts`](crate::RunStats::summary_parts) fills, for a
//! results file or a report.
//!
//! Durations are milliseconds (`_ms`, fractional), times are seconds from
//! the start of the run (`_s`), rates are per second. The serde shapes are
//! a contract for whoever writes them out (a results file may publish a
//! schema of them): adding a field is compatible, renaming, retyping or
//! removing one is not.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

/// A duration as the fractional milliseconds of the `_ms` fields.
pub(crate) fn summary_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a run measured, as serialisable values.
#[derive(Debug, Clone)]
pub struct SummaryParts {
    /// Every journey together.
    pub overall: Stats,
    /// Per journey, in the order the plan names them.
    pub journeys: Vec<NamedStats>,
    /// Per request type, by name.
    pub requests: Vec<NamedStats>,
    pub executors: Vec<ExecutorSummary>,
    /// One point per second of the run.
    pub series: Vec<SeriesPoint>,
    /// The slowest journeys (corrected latency), slowest first.
    pub slowest: Vec<Sample>,
    /// A sample of the failed journeys, earliest first.
    pub failed: Vec<Sample>,
}

/// Counts and latency of a set of journeys or requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub errors: u64,
    /// `errors / count` (0 when nothing ran).
    pub error_rate: f64,
    /// Completed per second over the run.
    pub rate: f64,
    /// From the intended start: what a user arriving on schedule waited
    /// (coordinated-omission corrected).
    pub latency_ms: Percentiles,
    /// From the moment the request was really sent.
    pub uncorrected_latency_ms: Percentiles,
    /// Error kind (`503 dependency_unavailable`, `timeout`) → count.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// HTTP status → count (requests only; empty for journeys).
    pub status_counts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamedStats {
    pub name: String,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecutorSummary {
    pub name: String,
    /// `constant-arrival-rate`, `ramping-arrival-rate` or `constant-vus`.
    pub kind: String,
    pub start_s: f64,
    pub duration_s: f64,
    /// Arrivals the schedule asked for (open model); iterations started
    /// (closed model).
    pub scheduled: u64,
    /// Arrivals that started a journey.
    pub started: u64,
    /// Arrivals not started because `max_in_flight` journeys were
    /// already running: the shortfall the system (or the load generator) caused.
    pub dropped: u64,
    /// Arrivals that started more than 10 ms after their scheduled time.
    pub late: u64,
    /// The latest start, behind schedule.
    pub max_lateness_ms: f64,
    /// Mean scheduled arrivals per second (open model).
    pub target_rate: f64,
    /// Mean started per second.
    pub achieved_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeriesPoint {
    /// Seconds from the start (the end of this one-second bucket).
    pub t_s: f64,
    /// Arrivals scheduled in this second, all open-model executors.
    pub target_rate: f64,
    /// Arrivals started in this second, open-model executors (the
    /// counterpart of `target_rate`).
    pub achieved_rate: f64,
    /// Journeys completed in this second, and how many failed.
    pub completed: u64,
    pub errors: u64,
    /// Corrected latency of the journeys completed in this second.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Journeys in flight at the end of the second.
    pub in_flight: u64,
    /// Arrivals dropped in this second.
    pub dropped: u64,
}

/// One journey run, kept because it was slow or failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    pub journey: String,
    /// The request that took longest (slow) or failed first (failed).
    pub request: Option<String>,
    /// 32 hex digits; `None` if tracing was off.
    pub trace_id: Option<String>,
    pub start_s: f64,
    /// Corrected (from the intended start).
    pub latency_ms: f64,
    pub uncorrected_latency_ms: f64,
    pub status: Option<u16>,
    pub error: Option<String>,
}
