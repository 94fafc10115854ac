//! The TOML shapes of a scenario file, as written, and their checks into
//! the model ([`Scenario`]): what TOML cannot check (a journey that
//! exists, a stage list for a ramp, a comparison that parses), each error
//! with the span of the offending value.

use std::{collections::BTreeMap, ops::Range, time::Duration};

use serde::Deserialize;
use toml::Spanned;

use super::model::{
    ExecutorKind, ExecutorSpec, MAX_DURATION, Scenario, Scope, Stage, Stat, SystemSpec,
};
use crate::{
    check,
    expect::Expectation,
    journeys::{DataSpec, JOURNEYS},
    timeline::Event,
};

/// A value that failed its check: where (when known), and why.
pub(super) type Checked<T> = Result<T, (Option<Range<usize>>, String)>;

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
            launcher::services::parse_replicas(&format!("{service}={count}"))
                .map_err(|e| (Some(span), e))?;
            replicas.insert(service, count);
        }
        Ok(SystemSpec {
            replicas,
            env: self.env,
        })
    }
}

/// An executor type, the fields that belong to it alone (the others take
/// name, start, duration and journeys too), and how its model is read.
struct ExecutorType {
    name: &'static str,
    fields: &'static [&'static str],
    model: fn(&Executor, &ExecutorContext) -> Checked<ExecutorKind>,
}

/// Every executor type a scenario can name.
const EXECUTOR_TYPES: [ExecutorType; 3] = [
    ExecutorType {
        name: "constant-arrival-rate",
        fields: &["rate", "max_in_flight"],
        model: Executor::constant_arrival_rate,
    },
    ExecutorType {
        name: "ramping-arrival-rate",
        fields: &["start_rate", "stages", "max_in_flight"],
        model: Executor::ramping_arrival_rate,
    },
    ExecutorType {
        name: "constant-vus",
        fields: &["vus", "think_time"],
        model: Executor::constant_vus,
    },
];

/// What a type's model is checked against: how long the executor runs,
/// and where its type was named (for errors about the fields it lacks).
struct ExecutorContext {
    run_for: Duration,
    kind_span: Range<usize>,
}

/// The highest rate a scenario may ask for, in journeys per second.
const MAX_RATE: f64 = 1_000_000.0;

impl Executor {
    fn check(self, total: Duration) -> Checked<ExecutorSpec> {
        let name = self.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err((Some(self.name.span()), "an executor needs a name".into()));
        }
        let (start, run_for) = self.window(&name, total)?;
        let context = ExecutorContext {
            run_for,
            kind_span: self.kind.span(),
        };
        let kind = self.kind.get_ref().as_str();
        let Some(executor_type) = EXECUTOR_TYPES.iter().find(|t| t.name == kind) else {
            let [a, b, c] = EXECUTOR_TYPES.map(|t| t.name);
            return Err((
                Some(context.kind_span),
                format!("unknown executor type {kind:?}: use {a}, {b} or {c}"),
            ));
        };
        for (field, present) in self.typed_fields() {
            if present && !executor_type.fields.contains(&field) {
                return Err((
                    Some(context.kind_span),
                    format!("`{field}` does not apply to a {kind} executor"),
                ));
            }
        }
        let model = (executor_type.model)(&self, &context)?;
        let max_in_flight = self.max_in_flight.unwrap_or(1_000);
        if max_in_flight == 0 {
            return Err((
                Some(context.kind_span),
                "max_in_flight must be at least 1".into(),
            ));
        }
        Ok(ExecutorSpec {
            name,
            kind: model,
            start,
            duration: run_for,
            journeys: self.journeys()?,
            max_in_flight,
        })
    }

    /// The fields that belong to one type or another, and whether each
    /// is given.
    fn typed_fields(&self) -> [(&'static str, bool); 6] {
        [
            ("rate", self.rate.is_some()),
            ("start_rate", self.start_rate.is_some()),
            ("stages", self.stages.is_some()),
            ("vus", self.vus.is_some()),
            ("think_time", self.think_time.is_some()),
            ("max_in_flight", self.max_in_flight.is_some()),
        ]
    }

    /// When it starts, and for how long it runs: to the end of the
    /// scenario unless it says, and never past it.
    fn window(&self, name: &str, total: Duration) -> Checked<(Duration, Duration)> {
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
        Ok((start, run_for))
    }

    fn constant_arrival_rate(&self, context: &ExecutorContext) -> Checked<ExecutorKind> {
        let rate = self.rate.as_ref().ok_or_else(|| {
            (
                Some(context.kind_span.clone()),
                "a constant-arrival-rate executor needs `rate` (journeys per second)".to_owned(),
            )
        })?;
        Ok(ExecutorKind::ConstantArrivalRate {
            rate: rate_of(rate)?,
        })
    }

    fn ramping_arrival_rate(&self, context: &ExecutorContext) -> Checked<ExecutorKind> {
        let stages_raw = self.stages.as_ref().ok_or_else(|| {
            (
                Some(context.kind_span.clone()),
                "a ramping-arrival-rate executor needs `stages = [{ duration = \"10s\", target = 50 }, ...]`".to_owned(),
            )
        })?;
        let stages_span = stages_raw.span();
        let mut stages = Vec::new();
        for s in stages_raw.get_ref() {
            let d = duration(&s.duration)?;
            if !(s.target.is_finite() && (0.0..=MAX_RATE).contains(&s.target)) {
                return Err((
                    Some(s.duration.span()),
                    "a stage's target is journeys per second, from 0 to 1,000,000".into(),
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
        if staged > context.run_for {
            return Err((
                Some(stages_span),
                format!(
                    "the stages last {}, longer than the executor runs ({})",
                    humantime::format_duration(staged),
                    humantime::format_duration(context.run_for)
                ),
            ));
        }
        let start_rate = match &self.start_rate {
            Some(r) => rate_of(r)?,
            None => 0.0,
        };
        Ok(ExecutorKind::RampingArrivalRate { start_rate, stages })
    }

    fn constant_vus(&self, context: &ExecutorContext) -> Checked<ExecutorKind> {
        let vus = self.vus.as_ref().ok_or_else(|| {
            (
                Some(context.kind_span.clone()),
                "a constant-vus executor needs `vus` (concurrent users)".to_owned(),
            )
        })?;
        if !(1..=10_000).contains(vus.get_ref()) {
            return Err((Some(vus.span()), "vus is from 1 to 10,000".into()));
        }
        let think_time = match &self.think_time {
            None => (Duration::ZERO, Duration::ZERO),
            Some(t) => think_time_of(t)?,
        };
        Ok(ExecutorKind::ConstantVus {
            vus: *vus.get_ref(),
            think_time,
        })
    }

    /// The journeys it runs with their weights, each one that exists.
    fn journeys(self) -> Checked<Vec<(&'static str, u32)>> {
        let journeys_span = self.journeys.span();
        let mut journeys = Vec::new();
        for (journey, weight) in self.journeys.into_inner() {
            let known = JOURNEYS
                .iter()
                .find(|j| j.name == journey.get_ref().as_str())
                .ok_or_else(|| {
                    let names: Vec<&str> = JOURNEYS.iter().map(|j| j.name).collect();
                    (
                        Some(journey.span()),
                        format!(
                            "unknown journey {:?}: the journeys are {}",
                            journey.get_ref(),
                            names.join(", ")
                        ),
                    )
                })?;
            journeys.push((known.name, weight));
        }
        if journeys.iter().all(|(_, w)| *w == 0) {
            return Err((
                Some(journeys_span),
                "`journeys` needs at least one journey with a weight above 0, e.g. { browse = 1 }"
                    .into(),
            ));
        }
        Ok(journeys)
    }
}

/// A rate in journeys per second, from 0 to [`MAX_RATE`].
fn rate_of(r: &Spanned<f64>) -> Checked<f64> {
    let v = *r.get_ref();
    if (0.0..=MAX_RATE).contains(&v) {
        Ok(v)
    } else {
        Err((
            Some(r.span()),
            "a rate is journeys per second, from 0 to 1,000,000".into(),
        ))
    }
}

/// A think time: fixed (`"1s"`), or drawn from `[min, max]`.
fn think_time_of(t: &Spanned<ThinkTime>) -> Checked<(Duration, Duration)> {
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
    Ok((lo, hi))
}

impl Threshold {
    fn check(self, journeys: &[&str], executors: &[&str]) -> Checked<super::model::Threshold> {
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
        Ok(super::model::Threshold {
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

/// A human duration (`20s`, `1m30s`).
fn duration(value: &Spanned<String>) -> Checked<Duration> {
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
