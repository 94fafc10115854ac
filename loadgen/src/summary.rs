//! `summary.json`: the machine-readable result of a run. Its schema is
//! `docs/summary.schema.json`; `schema_version` changes whenever a field
//! changes meaning or goes away (adding fields does not).
//!
//! Durations are milliseconds (`_ms`, fractional), times are seconds from
//! the start of the run (`_s`), rates are per second.
//!
//! The statistics inside it ([`Stats`], [`NamedStats`], [`ExecutorSummary`],
//! [`SeriesPoint`], [`Sample`]) are the load engine's, written as it gives
//! them: a change to their fields in `load_engine` is a change to this
//! schema too.

use load_engine::{ExecutorSummary, NamedStats, Sample, SeriesPoint, Stats};
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Links {
    /// Trace ids link to `{jaeger}/trace/{trace_id}` when set.
    pub jaeger: Option<String>,
}
