//! Scenario files: what `loadgen run` reads (`docs/scenarios.md` is the
//! reference).
//!
//! A file is read in two steps: TOML into the `raw` shapes below (syntax,
//! types, unknown keys), then into [`Scenario`], checking what TOML cannot
//! (a journey that exists, a stage list for a ramp, a comparison that
//! parses). Every error names the file, the line and the column of the
//! offending value.

use std::{collections::BTreeMap, fmt, ops::Range, path::Path, time::Duration};

use serde::Deserialize;
use toml::Spanned;

mod plan;

use crate::{
    check::{self, Op},
    expect::Expectation,
    timeline::Event,
};

/// The journeys a scenario can name, with what each does (shown by
/// `loadgen scenarios --journeys` and in errors).
pub const JOURNEYS: &[(&str, &str)] = &[
    (
        "browse",
        "anonymous: a catalog page, a course, its course page",
    ),
    (
        "signup",
        "a new learner registers and logs in (joins the learner pool)",
    ),
    (
        "checkout",
        "a learner opens a course page, buys the course, lists their enrollments",
    ),
    (
        "study",
        "a learner reads their progress, completes the next lesson, lists enrollments",
    ),
];

/// The scenarios shipped with loadgen, embedded so `loadgen run steady`
/// works from any directory.
pub const SHIPPED: &[(&str, &str)] = &[
    ("steady", include_str!("../scenarios/steady.toml")),
    (
        "promotion-surge",
        include_str!("../scenarios/promotion-surge.toml"),
    ),
    (
        "course-redeploy",
        include_str!("../scenarios/course-redeploy.toml"),
    ),
    (
        "payments-outage",
        include_str!("../scenarios/payments-outage.toml"),
    ),
    (
        "slow-payment-provider",
        include_str!("../scenarios/slow-payment-provider.toml"),
    ),
    (
        "progress-down",
        include_str!("../scenarios/progress-down.toml"),
    ),
    (
        "broker-outage",
        include_str!("../scenarios/broker-outage.toml"),
    ),
];

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

/// The generated data journeys draw on.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Learners registered (and given one course each) before the load
    /// starts, so `study` and `checkout` have someone to be.
    pub learners: usize,
    /// The exponent of the Zipf law course choices follow over the
    /// catalog's popularity ranking: 0 is uniform, 1.1 puts about a
    /// third of the choices on the top ten of 260 courses.
    pub course_popularity: f64,
    /// Share of checkouts that pick a course the learner already owns
    /// (the gateway answers 200 without charging).
    pub repeat_checkout: f64,
}

impl Default for DataSpec {
    fn default() -> Self {
        Self {
            learners: 20,
            course_popularity: 1.1,
            repeat_checkout: 0.05,
        }
    }
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
    fn parse(word: &str) -> Result<Self, String> {
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
    fn parse_limit(self, text: &str) -> Result<f64, String> {
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
    fn is_executor_stat(self) -> bool {
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
    /// Reads a scenario: a path to a TOML file, or the name of a shipped
    /// one.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        let path = Path::new(name_or_path);
        if path.exists() || name_or_path.ends_with(".toml") {
            let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
                location: name_or_path.to_owned(),
                message: format!("cannot read it: {e}"),
            })?;
            return Self::parse(&text, name_or_path);
        }
        match SHIPPED.iter().find(|(name, _)| *name == name_or_path) {
            Some((name, text)) => Self::parse(text, &format!("shipped:{name}")),
            None => Err(ScenarioError {
                location: name_or_path.to_owned(),
                message: format!(
                    "no such file, and not a shipped scenario (those are: {})",
                    SHIPPED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// Parses and checks a scenario; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ScenarioError> {
        let at = |span: Option<Range<usize>>, message: String| ScenarioError {
            location: match span {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{source}:{line}:{col}")
                }
                None => source.to_owned(),
            },
            message,
        };
        let raw: raw::File = toml::from_str(text).map_err(|e| {
            // The crate's message is multi-line with a snippet; the first
            // line after the position header is what went wrong.
            let message = e.message().trim().to_owned();
            at(e.span(), message)
        })?;
        let mut scenario = raw.check().map_err(|(span, message)| at(span, message))?;
        scenario.source = source.to_owned();
        Ok(scenario)
    }

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

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A human duration (`20s`, `1m30s`).
fn duration(value: &Spanned<String>) -> Result<Duration, (Option<Range<usize>>, String)> {
    let d = humantime::parse_duration(value.get_ref()).map_err(|e| {
        (
            Some(value.span()),
            format!(
                "{:?} is not a duration like 30s or 1m: {e}",
                value.get_ref()
            ),
        )
    })?;
    if d > MAX_DURATION {
        return Err((
            Some(value.span()),
            format!(
                "{:?} is longer than a scenario may run ({})",
                value.get_ref(),
                humantime::format_duration(MAX_DURATION)
            ),
        ));
    }
    Ok(d)
}

/// The longest duration or offset a scenario may name: a day is a long
/// soak; the per-second series are sized from the run's length.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The TOML shapes, as written.
mod raw {
    use super::*;

    type Checked<T> = Result<T, (Option<Range<usize>>, String)>;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        name: Spanned<String>,
        #[serde(default)]
        description: String,
        duration: Spanned<String>,
        #[serde(default = "default_seed")]
        seed: u64,
        #[serde(default)]
        data: Option<Data>,
        #[serde(default)]
        system: Option<System>,
        #[serde(default, rename = "executor")]
        executors: Vec<Spanned<Executor>>,
        #[serde(default)]
        timeline: Vec<Event>,
        #[serde(default, rename = "threshold")]
        thresholds: Vec<Spanned<Threshold>>,
        #[serde(default, rename = "expect")]
        expectations: Vec<Expectation>,
    }

    fn default_seed() -> u64 {
        1
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Data {
        learners: Option<usize>,
        course_popularity: Option<Spanned<f64>>,
        repeat_checkout: Option<Spanned<f64>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct System {
        #[serde(default)]
        replicas: BTreeMap<Spanned<String>, usize>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Executor {
        name: Spanned<String>,
        #[serde(rename = "type")]
        kind: Spanned<String>,
        start: Option<Spanned<String>>,
        duration: Option<Spanned<String>>,
        journeys: Spanned<BTreeMap<Spanned<String>, u32>>,
        max_in_flight: Option<usize>,
        rate: Option<Spanned<f64>>,
        start_rate: Option<Spanned<f64>>,
        stages: Option<Spanned<Vec<RawStage>>>,
        vus: Option<Spanned<usize>>,
        think_time: Option<Spanned<ThinkTime>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawStage {
        duration: Spanned<String>,
        target: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    pub enum ThinkTime {
        Fixed(String),
        Range([String; 2]),
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Threshold {
        journey: Option<Spanned<String>>,
        request: Option<String>,
        executor: Option<Spanned<String>>,
        check: Spanned<String>,
        during: Option<Spanned<[String; 2]>>,
        #[serde(default)]
        abort_on_fail: bool,
        grace: Option<Spanned<String>>,
    }

    impl File {
        pub fn check(self) -> Checked<Scenario> {
            let name = self.name.get_ref().trim().to_owned();
            if name.is_empty() {
                return Err((Some(self.name.span()), "a scenario needs a name".into()));
            }
            let total = duration(&self.duration)?;
            if total.is_zero() {
                return Err((
                    Some(self.duration.span()),
                    "the duration must be positive".into(),
                ));
            }
            let data = match self.data {
                None => DataSpec::default(),
                Some(d) => d.check()?,
            };
            let system = match self.system {
                None => SystemSpec::default(),
                Some(s) => s.check()?,
            };
            if self.executors.is_empty() {
                return Err((
                    None,
                    "a scenario needs at least one [[executor]] (see docs/scenarios.md)".into(),
                ));
            }
            let mut executors: Vec<ExecutorSpec> = Vec::new();
            for e in self.executors {
                let span = e.span();
                let e = e.into_inner().check(total)?;
                if executors.iter().any(|x| x.name == e.name) {
                    return Err((Some(span), format!("two executors are named {:?}", e.name)));
                }
                executors.push(e);
            }
            let journeys: Vec<&str> = executors
                .iter()
                .flat_map(|e| e.journeys.iter().map(|(n, _)| *n))
                .collect();
            let executor_names: Vec<&str> = executors.iter().map(|e| e.name.as_str()).collect();
            let thresholds = self
                .thresholds
                .into_iter()
                .map(|t| t.into_inner().check(&journeys, &executor_names))
                .collect::<Checked<Vec<_>>>()?;
            let load_ends = executors
                .iter()
                .map(|e| e.start + e.duration)
                .max()
                .unwrap_or_default();
            for event in &self.timeline {
                if event.at >= load_ends {
                    return Err((
                        None,
                        format!(
                            "a timeline event at {} comes after the load ends ({}): it would never fire",
                            humantime::format_duration(event.at),
                            humantime::format_duration(load_ends)
                        ),
                    ));
                }
                if event.at > total {
                    return Err((
                        None,
                        format!(
                            "a timeline event at {} comes after the end of the run ({})",
                            humantime::format_duration(event.at),
                            humantime::format_duration(total)
                        ),
                    ));
                }
            }
            Ok(Scenario {
                name,
                description: self.description.trim().to_owned(),
                source: String::new(),
                duration: total,
                seed: self.seed,
                data,
                system,
                executors,
                timeline: self.timeline,
                thresholds,
                expectations: self.expectations,
                duration_scale: 1.0,
            })
        }
    }

    impl Data {
        fn check(self) -> Checked<DataSpec> {
            let defaults = DataSpec::default();
            let popularity = match self.course_popularity {
                Some(p) if !(0.0..=5.0).contains(p.get_ref()) => {
                    return Err((
                        Some(p.span()),
                        "course_popularity is a Zipf exponent from 0 (uniform) to 5".into(),
                    ));
                }
                Some(p) => p.into_inner(),
                None => defaults.course_popularity,
            };
            let repeat = match self.repeat_checkout {
                Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                    return Err((
                        Some(r.span()),
                        "repeat_checkout is a share from 0 to 1".into(),
                    ));
                }
                Some(r) => r.into_inner(),
                None => defaults.repeat_checkout,
            };
            Ok(DataSpec {
                learners: self.learners.unwrap_or(defaults.learners),
                course_popularity: popularity,
                repeat_checkout: repeat,
            })
        }
    }

    impl System {
        fn check(self) -> Checked<SystemSpec> {
            let mut replicas = BTreeMap::new();
            for (service, count) in self.replicas {
                let span = service.span();
                let service = service.into_inner();
                crate::system::parse_replicas(&format!("{service}={count}"))
                    .map_err(|e| (Some(span), e))?;
                replicas.insert(service, count);
            }
            Ok(SystemSpec {
                replicas,
                env: self.env,
            })
        }
    }

    impl Executor {
        fn check(self, total: Duration) -> Checked<ExecutorSpec> {
            let name = self.name.get_ref().trim().to_owned();
            if name.is_empty() {
                return Err((Some(self.name.span()), "an executor needs a name".into()));
            }
            let start = match &self.start {
                Some(s) => duration(s)?,
                None => Duration::ZERO,
            };
            let run_for = match &self.duration {
                Some(d) => duration(d)?,
                None => total.saturating_sub(start),
            };
            if start + run_for > total {
                let span = self
                    .duration
                    .as_ref()
                    .or(self.start.as_ref())
                    .map(Spanned::span);
                return Err((
                    span,
                    format!(
                        "executor {name:?} runs until {}, after the end of the scenario ({})",
                        humantime::format_duration(start + run_for),
                        humantime::format_duration(total)
                    ),
                ));
            }
            let kind_span = self.kind.span();
            let forbid = |field: &str, present: bool| -> Checked<()> {
                if present {
                    Err((
                        Some(kind_span.clone()),
                        format!(
                            "`{field}` does not apply to a {} executor",
                            self.kind.get_ref()
                        ),
                    ))
                } else {
                    Ok(())
                }
            };
            let positive_rate = |r: &Spanned<f64>| -> Checked<f64> {
                let v = *r.get_ref();
                if (0.0..=1_000_000.0).contains(&v) {
                    Ok(v)
                } else {
                    Err((
                        Some(r.span()),
                        "a rate is journeys per second, from 0 to 1,000,000".into(),
                    ))
                }
            };
            let kind = match self.kind.get_ref().as_str() {
                "constant-arrival-rate" => {
                    forbid("start_rate", self.start_rate.is_some())?;
                    forbid("stages", self.stages.is_some())?;
                    forbid("vus", self.vus.is_some())?;
                    forbid("think_time", self.think_time.is_some())?;
                    let rate = self.rate.as_ref().ok_or_else(|| {
                        (
                            Some(kind_span.clone()),
                            "a constant-arrival-rate executor needs `rate` (journeys per second)"
                                .to_owned(),
                        )
                    })?;
                    ExecutorKind::ConstantArrivalRate {
                        rate: positive_rate(rate)?,
                    }
                }
                "ramping-arrival-rate" => {
                    forbid("rate", self.rate.is_some())?;
                    forbid("vus", self.vus.is_some())?;
                    forbid("think_time", self.think_time.is_some())?;
                    let stages_raw = self.stages.ok_or_else(|| {
                        (
                            Some(kind_span.clone()),
                            "a ramping-arrival-rate executor needs `stages = [{ duration = \"10s\", target = 50 }, ...]`".to_owned(),
                        )
                    })?;
                    let stages_span = stages_raw.span();
                    let mut stages = Vec::new();
                    for s in stages_raw.into_inner() {
                        let d = duration(&s.duration)?;
                        if !(s.target.is_finite() && (0.0..=1_000_000.0).contains(&s.target)) {
                            return Err((
                                Some(s.duration.span()),
                                "a stage's target is journeys per second, from 0 to 1,000,000"
                                    .into(),
                            ));
                        }
                        stages.push(Stage {
                            duration: d,
                            target: s.target,
                        });
                    }
                    if stages.is_empty() {
                        return Err((Some(stages_span), "`stages` is empty".into()));
                    }
                    let staged: Duration = stages.iter().map(|s| s.duration).sum();
                    if staged > run_for {
                        return Err((
                            Some(stages_span),
                            format!(
                                "the stages last {}, longer than the executor runs ({})",
                                humantime::format_duration(staged),
                                humantime::format_duration(run_for)
                            ),
                        ));
                    }
                    let start_rate = match &self.start_rate {
                        Some(r) => positive_rate(r)?,
                        None => 0.0,
                    };
                    ExecutorKind::RampingArrivalRate { start_rate, stages }
                }
                "constant-vus" => {
                    forbid("rate", self.rate.is_some())?;
                    forbid("start_rate", self.start_rate.is_some())?;
                    forbid("stages", self.stages.is_some())?;
                    forbid("max_in_flight", self.max_in_flight.is_some())?;
                    let vus = self.vus.as_ref().ok_or_else(|| {
                        (
                            Some(kind_span.clone()),
                            "a constant-vus executor needs `vus` (concurrent users)".to_owned(),
                        )
                    })?;
                    if !(1..=10_000).contains(vus.get_ref()) {
                        return Err((Some(vus.span()), "vus is from 1 to 10,000".into()));
                    }
                    let think_time = match &self.think_time {
                        None => (Duration::ZERO, Duration::ZERO),
                        Some(t) => {
                            let span = t.span();
                            let parse = |s: &str| {
                                humantime::parse_duration(s).map_err(|e| {
                                    (
                                        Some(span.clone()),
                                        format!("{s:?} is not a duration like 500ms: {e}"),
                                    )
                                })
                            };
                            let (lo, hi) = match t.get_ref() {
                                ThinkTime::Fixed(d) => (parse(d)?, parse(d)?),
                                ThinkTime::Range([a, b]) => (parse(a)?, parse(b)?),
                            };
                            if lo > hi {
                                return Err((
                                    Some(span),
                                    "think_time = [min, max] needs min <= max".into(),
                                ));
                            }
                            (lo, hi)
                        }
                    };
                    ExecutorKind::ConstantVus {
                        vus: *vus.get_ref(),
                        think_time,
                    }
                }
                other => {
                    return Err((
                        Some(kind_span),
                        format!(
                            "unknown executor type {other:?}: use constant-arrival-rate, \
                             ramping-arrival-rate or constant-vus"
                        ),
                    ));
                }
            };
            let journeys_span = self.journeys.span();
            let mut journeys = Vec::new();
            for (journey, weight) in self.journeys.into_inner() {
                let known = JOURNEYS
                    .iter()
                    .find(|(n, _)| *n == journey.get_ref().as_str())
                    .map(|(n, _)| *n)
                    .ok_or_else(|| {
                        (
                            Some(journey.span()),
                            format!(
                                "unknown journey {:?}: the journeys are {}",
                                journey.get_ref(),
                                JOURNEYS
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                journeys.push((known, weight));
            }
            if journeys.iter().all(|(_, w)| *w == 0) {
                return Err((
                    Some(journeys_span),
                    "`journeys` needs at least one journey with a weight above 0, e.g. { browse = 1 }"
                        .into(),
                ));
            }
            let max_in_flight = self.max_in_flight.unwrap_or(1_000);
            if max_in_flight == 0 {
                return Err((Some(kind_span), "max_in_flight must be at least 1".into()));
            }
            Ok(ExecutorSpec {
                name,
                kind,
                start,
                duration: run_for,
                journeys,
                max_in_flight,
            })
        }
    }

    impl Threshold {
        fn check(self, journeys: &[&str], executors: &[&str]) -> Checked<super::Threshold> {
            let check_span = self.check.span();
            let (subject, op, value) =
                check::split(self.check.get_ref()).map_err(|e| (Some(check_span.clone()), e))?;
            let stat = Stat::parse(subject).map_err(|e| (Some(check_span.clone()), e))?;
            let limit = stat
                .parse_limit(value)
                .map_err(|e| (Some(check_span.clone()), e))?;
            let scopes = [
                self.journey.is_some(),
                self.request.is_some(),
                self.executor.is_some(),
            ];
            if scopes.iter().filter(|s| **s).count() > 1 {
                return Err((
                    Some(check_span),
                    "a threshold names at most one of journey, request and executor".into(),
                ));
            }
            let scope = if let Some(j) = self.journey {
                if !journeys.contains(&j.get_ref().as_str()) {
                    return Err((
                        Some(j.span()),
                        format!("no executor runs the journey {:?}", j.get_ref()),
                    ));
                }
                Scope::Journey(j.into_inner())
            } else if let Some(r) = self.request {
                Scope::Request(r)
            } else if let Some(e) = self.executor {
                if !executors.contains(&e.get_ref().as_str()) {
                    return Err((
                        Some(e.span()),
                        format!("no executor is named {:?}", e.get_ref()),
                    ));
                }
                Scope::Executor(e.into_inner())
            } else {
                Scope::Overall
            };
            let executor_scope = matches!(scope, Scope::Executor(_));
            if stat.is_executor_stat() != executor_scope {
                return Err((
                    Some(check_span),
                    if executor_scope {
                        "an executor threshold checks achieved_ratio or dropped".into()
                    } else {
                        format!("{subject} applies to executors: add executor = \"<name>\"")
                    },
                ));
            }
            let during = match &self.during {
                None => None,
                Some(w) => {
                    let [a, b] = w.get_ref();
                    let parse = |s: &str| {
                        humantime::parse_duration(s)
                            .map_err(|e| (Some(w.span()), format!("{s:?}: {e}")))
                    };
                    let (from, to) = (parse(a)?, parse(b)?);
                    if from >= to {
                        return Err((Some(w.span()), "during = [from, to] needs from < to".into()));
                    }
                    // Windows come from the per-second series, which keep
                    // the corrected latency of journeys.
                    let windowable = matches!(scope, Scope::Overall | Scope::Journey(_))
                        && matches!(
                            stat,
                            Stat::Latency {
                                corrected: true,
                                ..
                            } | Stat::ErrorRate
                                | Stat::Rate
                                | Stat::Count
                        );
                    if !windowable {
                        return Err((
                            Some(w.span()),
                            "`during` applies to journeys (or all of them) and to corrected \
                             latency quantiles, error_rate, rate and count"
                                .into(),
                        ));
                    }
                    Some((from, to))
                }
            };
            let grace = match &self.grace {
                Some(g) => duration(g)?,
                None => Duration::ZERO,
            };
            // Judged while the run goes on, a count or a rate is still
            // growing: only what can be judged early may stop a run.
            if self.abort_on_fail
                && !matches!(
                    stat,
                    Stat::Latency { .. } | Stat::MeanLatency | Stat::ErrorRate
                )
            {
                return Err((
                    Some(check_span),
                    "abort_on_fail applies to latency and error_rate thresholds, which a \
                     run in progress can already fail"
                        .into(),
                ));
            }
            let name = format!("{scope}: {}", self.check.get_ref().trim());
            Ok(super::Threshold {
                name,
                scope,
                stat,
                op,
                limit,
                during,
                abort_on_fail: self.abort_on_fail,
                grace,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
duration = "10s"

[[executor]]
name = "a"
type = "constant-arrival-rate"
rate = 10
journeys = { browse = 1 }
"#;

    fn err(text: &str) -> String {
        Scenario::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn every_shipped_scenario_parses() {
        for (name, text) in SHIPPED {
            let s = Scenario::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&s.name, name, "file name and scenario name agree");
            assert!(!s.thresholds.is_empty(), "{name} has thresholds");
            assert!(!s.expectations.is_empty(), "{name} has expectations");
            assert!(!s.description.is_empty(), "{name} says what it is");
        }
    }

    /// Scenarios shipped for Kubernetes (deploy/k8s/loadgen/scenarios, mounted
    /// into the loadgen Job) parse, check something, and leave scaling to
    /// the autoscalers (a `scale` event would fight them).
    #[test]
    fn every_kubernetes_scenario_parses() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/k8s/loadgen/scenarios"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("deploy/k8s/loadgen/scenarios exists") {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let s = Scenario::load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                Some(s.name.as_str()),
                path.file_stem().and_then(|n| n.to_str())
            );
            assert!(
                !s.thresholds.is_empty() && !s.expectations.is_empty(),
                "{} checks something",
                s.name
            );
            assert!(
                s.timeline
                    .iter()
                    .all(|event| !matches!(event.action, crate::timeline::Action::Scale { .. })),
                "{} scales by hand",
                s.name
            );
            seen += 1;
        }
        assert!(seen >= 1, "no scenario in {dir}");
    }

    #[test]
    fn a_minimal_scenario_gets_defaults() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(s.duration, Duration::from_secs(10));
        let e = &s.executors[0];
        assert_eq!(e.duration, Duration::from_secs(10));
        assert_eq!(e.kind, ExecutorKind::ConstantArrivalRate { rate: 10.0 });
        assert_eq!(e.journeys, vec![("browse", 1)]);
        assert_eq!(s.data, DataSpec::default());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = err("name = \"t\"\nduration = 10s\n");
        assert!(e.starts_with("t.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let text = MINIMAL.replace("rate = 10", "rate = 10\nrat = 3");
        let e = err(&text);
        assert!(e.starts_with("t.toml:9:"), "{e}");
        assert!(e.contains("rat"), "{e}");
    }

    #[test]
    fn an_unknown_journey_is_named_with_its_line() {
        let e = err(&MINIMAL.replace("browse = 1", "brows = 1"));
        assert!(e.starts_with("t.toml:9:"), "{e}");
        assert!(e.contains("unknown journey \"brows\""), "{e}");
        assert!(e.contains("browse, signup, checkout, study"), "{e}");
    }

    #[test]
    fn fields_of_another_executor_type_are_refused() {
        let e = err(&MINIMAL.replace("rate = 10", "rate = 10\nvus = 3"));
        assert!(e.contains("`vus` does not apply"), "{e}");
        let e = err(&MINIMAL.replace("rate = 10", ""));
        assert!(e.contains("needs `rate`"), "{e}");
    }

    #[test]
    fn ramps_and_closed_models_parse() {
        let text = r#"
name = "t"
duration = "1m"
[[executor]]
name = "ramp"
type = "ramping-arrival-rate"
start_rate = 5
stages = [{ duration = "10s", target = 50 }, { duration = "20s", target = 0 }]
journeys = { signup = 1, checkout = 3 }
[[executor]]
name = "learners"
type = "constant-vus"
vus = 4
think_time = ["500ms", "2s"]
start = "10s"
journeys = { study = 1 }
"#;
        let s = Scenario::parse(text, "t.toml").unwrap();
        assert_eq!(s.executors[1].duration, Duration::from_secs(50));
        assert_eq!(
            s.executors[1].kind,
            ExecutorKind::ConstantVus {
                vus: 4,
                think_time: (Duration::from_millis(500), Duration::from_secs(2))
            }
        );
        let ExecutorKind::RampingArrivalRate { start_rate, stages } = &s.executors[0].kind else {
            panic!("a ramp")
        };
        assert_eq!(*start_rate, 5.0);
        assert_eq!(stages.len(), 2);
        let e = err(&text.replace("\"20s\", target = 0", "\"2m\", target = 0"));
        assert!(e.contains("longer than the executor runs"), "{e}");
    }

    #[test]
    fn thresholds_parse_their_units() {
        let text = format!(
            "{MINIMAL}
[[threshold]]
journey = \"browse\"
check = \"p99 < 800ms\"
[[threshold]]
check = \"error_rate <= 2%\"
during = [\"2s\", \"8s\"]
abort_on_fail = true
grace = \"3s\"
[[threshold]]
executor = \"a\"
check = \"achieved_ratio >= 0.95\"
[[threshold]]
check = \"uncorrected_p99.9 < 1s\"
"
        );
        let s = Scenario::parse(&text, "t.toml").unwrap();
        let t = &s.thresholds;
        assert_eq!(t[0].name, "browse: p99 < 800ms");
        assert_eq!(
            t[0].stat,
            Stat::Latency {
                quantile: 0.99,
                corrected: true
            }
        );
        assert_eq!(t[0].limit, 800.0);
        assert_eq!(t[1].limit, 0.02);
        assert_eq!(t[1].op, Op::Le);
        assert_eq!(
            t[1].during,
            Some((Duration::from_secs(2), Duration::from_secs(8)))
        );
        assert!(t[1].abort_on_fail);
        assert_eq!(t[2].scope, Scope::Executor("a".into()));
        assert_eq!(t[2].limit, 0.95);
        assert_eq!(
            t[3].stat,
            Stat::Latency {
                quantile: 0.999,
                corrected: false
            }
        );
        assert_eq!(t[3].limit, 1000.0);
    }

    #[test]
    fn bad_thresholds_say_what_is_wrong() {
        let with = |check: &str| err(&format!("{MINIMAL}\n[[threshold]]\ncheck = \"{check}\"\n"));
        assert!(with("p98 < 1s").contains("unknown statistic"));
        assert!(with("p99 < fast").contains("not a duration"));
        assert!(with("error_rate < lots").contains("not a ratio"));
        assert!(with("p99 1s").contains("expected `<subject> <op> <value>`"));
        assert!(with("dropped < 1").contains("applies to executors"));
        let e = with("p99 < fast");
        assert!(e.starts_with("t.toml:12:"), "{e}");
    }

    #[test]
    fn windows_and_durations_have_limits() {
        let with = |extra: &str| err(&format!("{MINIMAL}\n{extra}"));
        let e =
            with("[[threshold]]\ncheck = \"uncorrected_p99 < 1s\"\nduring = [\"1s\", \"2s\"]\n");
        assert!(e.contains("`during` applies to"), "{e}");
        let e = with(
            "[[threshold]]\nrequest = \"GET /api/courses\"\ncheck = \"error_rate < 1%\"\nduring = [\"1s\", \"2s\"]\n",
        );
        assert!(e.contains("`during` applies to"), "{e}");
        let e = err(&MINIMAL.replace("\"10s\"", "\"100000y\""));
        assert!(e.contains("longer than a scenario may run"), "{e}");
        let e =
            with("[[timeline]]\nat = \"10s\"\naction = \"clear-faults\"\nservice = \"payments\"\n");
        assert!(e.contains("would never fire"), "{e}");
    }

    #[test]
    fn scaling_shortens_every_duration() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap().scaled(0.1);
        assert_eq!(s.duration, Duration::from_secs(1));
        assert_eq!(s.executors[0].duration, Duration::from_secs(1));
        assert_eq!(s.duration_scale, 0.1);
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
