//! `summary.json`: the machine-readable result of a run. Its schema is
//! `docs/summary.schema.json`; `schema_version` changes whenever a field
//! changes meaning or goes away (adding fields does not).
//!
//! Durations are milliseconds (`_ms`, fractional), times are seconds from
//! the start of the run (`_s`), rates are per second.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub verdict: Verdict,
    /// Every journey together.
    pub overall: Stats,
    /// Per journey, by name.
    pub journeys: Vec<NamedStats>,
    /// Per request type (`GET /api/courses/{course_id}`), by name.
    pub requests: Vec<NamedStats>,
    pub executors: Vec<ExecutorSummary>,
    pub timeline: Vec<TimelineRecord>,
    pub thresholds: Vec<CheckResult>,
    pub expectations: Vec<CheckResult>,
    /// One point per second of the run.
    pub series: Vec<SeriesPoint>,
    /// The slowest journeys (corrected latency), slowest first.
    pub slowest: Vec<Sample>,
    /// A sample of the failed journeys, earliest first.
    pub failed: Vec<Sample>,
    pub links: Links,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    /// The file it was read from, as given, or `shipped:<name>`.
    pub file: String,
    /// Every duration and offset in the file was multiplied by this.
    pub duration_scale: f64,
    /// `local`, `compose` or `kubernetes`.
    pub platform: String,
    /// The gateway the journeys went to.
    pub target: String,
    /// What the run did to a system it did not start to give it the
    /// scenario's `[system]` (replicas, settings), and what it could not
    /// do; empty when it started the system itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// Every threshold and expectation held and the run was not aborted.
    pub passed: bool,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// One line per failed check.
    pub failures: Vec<String>,
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
    /// already running: the shortfall the system (or loadgen) caused.
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
pub struct TimelineRecord {
    /// When it was due.
    pub at_s: f64,
    /// When it really fired.
    pub fired_s: f64,
    /// `fault`, `clear-faults`, `scale`, `crash` or `restart`.
    pub action: String,
    pub service: String,
    /// What it did, for people (`payments → 3 replicas`).
    pub detail: String,
    pub ok: bool,
    pub error: Option<String>,
    /// How long the action took (a rolling restart takes a while).
    pub took_ms: f64,
}

/// A threshold or an expectation, as judged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    /// As written in the scenario, e.g. `checkout: p99 < 800ms`.
    pub name: String,
    pub passed: bool,
    /// The value measured, in the check's unit (ms, ratio, per second);
    /// `None` when nothing could be measured.
    pub observed: Option<f64>,
    /// What was compared, for people (`p99 = 912.3 ms, limit 800 ms`).
    pub detail: String,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Links {
    /// Trace ids link to `{jaeger}/trace/{trace_id}` when set.
    pub jaeger: Option<String>,
}
