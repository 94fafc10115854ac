//! A scenario as checked: what the rest of loadgen reads (the plan, the
//! stage, the verdict), never the TOML it came from.

use std::{collections::BTreeMap, fmt, time::Duration};

use crate::{check::Op, expect::Expectation, journeys::DataSpec, timeline::Event};

/// A scenario, checked and ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Where it came from (a path, or `shipped:<name>`).
    pub source: String,
    pub duration: Duration,
    /// Seeds the generated data and journey choices: two runs of one
    /// scenario make the same choices in the same order.
    pub seed: u64,
    pub data: DataSpec,
    pub system: SystemSpec,
    pub executors: Vec<ExecutorSpec>,
    pub timeline: Vec<Event>,
    pub thresholds: Vec<Threshold>,
    pub expectations: Vec<Expectation>,
    /// The scale applied by [`Scenario::scaled`] (1 as read).
    pub duration_scale: f64,
}

/// What the system must look like for the story: a system loadgen
/// launches itself starts so; one given with `--target` is made so for
/// the run, as far as its platform can (`crate::stage`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemSpec {
    /// Replicas per service at start.
    pub replicas: BTreeMap<String, usize>,
    /// Extra environment for every service (e.g. a shorter
    /// `BREAKER_OPEN_FOR` so a short run sees the breaker close again).
    pub env: BTreeMap<String, String>,
}

impl SystemSpec {
    /// Neither replicas nor settings.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty() && self.env.is_empty()
    }
}

/// One executor: when journeys start, and which.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorSpec {
    pub name: String,
    pub kind: ExecutorKind,
    pub start: Duration,
    pub duration: Duration,
    /// Journey name → weight.
    pub journeys: Vec<(&'static str, u32)>,
    /// Open model: journeys of this executor allowed in flight at once;
    /// arrivals beyond it wait (and count as late) or are dropped.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorKind {
    /// Open model: `rate` journeys start per second, whatever the
    /// system's latency.
    ConstantArrivalRate { rate: f64 },
    /// Open model: the rate moves linearly from one stage's target to the
    /// next.
    RampingArrivalRate { start_rate: f64, stages: Vec<Stage> },
    /// Closed model: `vus` users, each starting its next journey
    /// `think_time` after the last one ended.
    ConstantVus {
        vus: usize,
        think_time: (Duration, Duration),
    },
}

impl ExecutorKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Self::RampingArrivalRate { .. } => "ramping-arrival-rate",
            Self::ConstantVus { .. } => "constant-vus",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// The rate reached at the end of the stage.
    pub target: f64,
}

/// A service-level objective the run must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written: `checkout: p99 < 1500ms`.
    pub name: String,
    pub scope: Scope,
    pub stat: Stat,
    pub op: Op,
    /// In the stat's unit: milliseconds, a ratio, per second, a count.
    pub limit: f64,
    /// Judge only the journeys that ended in this window (offsets).
    pub during: Option<(Duration, Duration)>,
    /// Stop the run as soon as it fails, once `grace` has passed.
    pub abort_on_fail: bool,
    pub grace: Duration,
}

/// What a threshold looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Overall,
    Journey(String),
    Request(String),
    Executor(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Overall => f.write_str("overall"),
            Scope::Journey(name) => f.write_str(name),
            Scope::Request(name) => write!(f, "request {name}"),
            Scope::Executor(name) => write!(f, "executor {name}"),
        }
    }
}

/// The statistic a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A latency quantile (0.5, 0.99, 1.0 for max), milliseconds.
    Latency {
        quantile: f64,
        corrected: bool,
    },
    MeanLatency,
    /// Failed / all, a ratio.
    ErrorRate,
    /// Completed per second.
    Rate,
    Count,
    /// Executors: started / scheduled arrivals, a ratio.
    AchievedRatio,
    /// Executors: arrivals dropped.
    Dropped,
}

impl Stat {
    pub(super) fn parse(word: &str) -> Result<Self, String> {
        let (word, corrected) = match word.strip_prefix("uncorrected_") {
            Some(rest) => (rest, false),
            None => (word, true),
        };
        let latency = |quantile| Stat::Latency {
            quantile,
            corrected,
        };
        let stat = match word {
            "p50" | "median" => latency(0.5),
            "p75" => latency(0.75),
            "p90" => latency(0.9),
            "p95" => latency(0.95),
            "p99" => latency(0.99),
            "p99.9" | "p999" => latency(0.999),
            "max" => latency(1.0),
            "mean" if corrected => Stat::MeanLatency,
            "error_rate" if corrected => Stat::ErrorRate,
            "rate" if corrected => Stat::Rate,
            "count" if corrected => Stat::Count,
            "achieved_ratio" if corrected => Stat::AchievedRatio,
            "dropped" if corrected => Stat::Dropped,
            _ => {
                return Err(format!(
                    "unknown statistic {word:?}: use p50, p90, p95, p99, p99.9, max, mean \
                     (uncorrected_p99 and so on for latency from the actual send), error_rate, \
                     rate, count, or for an executor achieved_ratio and dropped"
                ));
            }
        };
        Ok(stat)
    }

    /// Reads a limit in this stat's unit: a duration for latency
    /// (`800ms`), a percentage or ratio for ratios (`2%`, `0.02`).
    pub(super) fn parse_limit(self, text: &str) -> Result<f64, String> {
        match self {
            Stat::Latency { .. } | Stat::MeanLatency => humantime::parse_duration(text)
                .map(|d| d.as_secs_f64() * 1000.0)
                .map_err(|e| format!("{text:?} is not a duration like 800ms: {e}")),
            Stat::ErrorRate | Stat::AchievedRatio => match text.strip_suffix('%') {
                Some(pct) => pct
                    .trim()
                    .parse::<f64>()
                    .map(|p| p / 100.0)
                    .map_err(|_| format!("{text:?} is not a percentage like 2%")),
                None => text
                    .parse::<f64>()
                    .map_err(|_| format!("{text:?} is not a ratio like 0.02 or 2%")),
            },
            Stat::Rate | Stat::Count | Stat::Dropped => text
                .parse::<f64>()
                .map_err(|_| format!("{text:?} is not a number")),
        }
    }

    /// Whether it applies to executors (and only to them).
    pub(super) fn is_executor_stat(self) -> bool {
        matches!(self, Stat::AchievedRatio | Stat::Dropped)
    }
}

/// A scenario file that could not be read, with where.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ScenarioError {
    /// `file:line:column`, or just the file.
    pub location: String,
    pub message: String,
}

impl Scenario {
    /// The scenario with every duration and offset multiplied by `k`
    /// (`--duration-scale`): the same story, shorter.
    pub fn scaled(mut self, k: f64) -> Self {
        let s = |d: Duration| d.mul_f64(k);
        self.duration = s(self.duration);
        for e in &mut self.executors {
            e.start = s(e.start);
            e.duration = s(e.duration);
            if let ExecutorKind::RampingArrivalRate { stages, .. } = &mut e.kind {
                for stage in stages {
                    stage.duration = s(stage.duration);
                }
            }
        }
        self.timeline = self.timeline.into_iter().map(|e| e.scaled(k)).collect();
        self.expectations = self.expectations.into_iter().map(|e| e.scaled(k)).collect();
        for t in &mut self.thresholds {
            t.during = t.during.map(|(a, b)| (s(a), s(b)));
            t.grace = s(t.grace);
        }
        self.duration_scale *= k;
        self
    }

    /// The journeys any executor names.
    pub fn journeys(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .executors
            .iter()
            .flat_map(|e| e.journeys.iter().map(|(n, _)| *n))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// The longest duration or offset a scenario may name: a day is a long
/// soak; the per-second series are sized from the run's length.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
