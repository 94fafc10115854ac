//! Expectations: signals a scenario should make the system produce,
//! checked from the services' own `/metrics` (what an operator's
//! Prometheus would see), not from the load generator's side.
//!
//! ```toml
//! [[expect]]
//! name = "the gateway's breaker to payments opens"
//! service = "gateway"
//! metric = "http_client_circuit_breaker_transitions_total"
//! labels = { destination = "payments", state = "open" }
//! check = "increase >= 1"
//! during = ["10s", "40s"]
//! ```
//!
//! A [`Watcher`] scrapes every replica of the services the expectations
//! name once a second while the run lasts, asking the platform for the
//! replicas each time (so replicas added by a scale are scraped too), and
//! keeps only the series the expectations select. [`Observations::evaluate`]
//! then judges each one:
//!
//! - `increase`: the sum over series of the counter's increase within the
//!   window. A value that went down is a reset (the replica restarted):
//!   its new value is all increase. A series that was not there at the
//!   first scrape (a replica started during the run, a label set seen for
//!   the first time, a restarted process with a new `service_instance_id`)
//!   counts from 0.
//! - `max` / `min`: over every scrape in the window and every series.
//! - `last`: the sum across series at the last scrape in the window.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::Arc,
    time::Duration,
};

use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    check::{Op, split},
    human::{HumanDuration, error_chain, scale_duration},
    platform::Platform,
    scrape::Scrape,
    summary::CheckResult,
};

/// One `[[expect]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawExpectation")]
pub struct Expectation {
    pub name: Option<String>,
    /// Whose replicas are scraped.
    pub service: String,
    /// The sample name as exposed (`..._total` for a counter).
    pub metric: String,
    /// Every series carrying all of these (a subset match).
    pub labels: BTreeMap<String, String>,
    pub check: Check,
    /// `None`: the whole run.
    pub during: Option<Window>,
}

/// `increase >= 1`, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub aggregate: Aggregate,
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Increase,
    Max,
    Min,
    Last,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Increase => "increase",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Last => "last",
        }
    }
}

impl std::str::FromStr for Check {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (subject, op, value) = split(text)?;
        let aggregate = match subject {
            "increase" => Aggregate::Increase,
            "max" => Aggregate::Max,
            "min" => Aggregate::Min,
            "last" => Aggregate::Last,
            other => {
                return Err(format!(
                    "{text:?}: unknown aggregate {other:?} (use increase, max, min or last)"
                ));
            }
        };
        let value = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{text:?}: {value:?} is not a number"))?;
        Ok(Self {
            aggregate,
            op,
            value,
        })
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.aggregate.as_str(), self.op, self.value)
    }
}

/// From `start` to `end`, offsets from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Duration,
    pub end: Duration,
}

impl Window {
    fn contains(self, t: f64) -> bool {
        t >= self.start.as_secs_f64() && t <= self.end.as_secs_f64()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    name: Option<String>,
    service: String,
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    check: String,
    during: Option<[HumanDuration; 2]>,
}

impl TryFrom<RawExpectation> for Expectation {
    type Error = String;

    fn try_from(raw: RawExpectation) -> Result<Self, String> {
        let valid_name = |s: &str| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        if !valid_name(&raw.metric) {
            return Err(format!(
                "{:?} is not a metric name (letters, digits, `_`, `:`), e.g. \"http_server_requests_total\"",
                raw.metric
            ));
        }
        if raw.service.trim().is_empty() {
            return Err("`service` must not be empty".into());
        }
        let check = raw.check.parse()?;
        let during = match raw.during {
            Some([start, end]) if start.0 >= end.0 => {
                return Err(format!(
                    "`during` must end after it starts, not [{:?}, {:?}]",
                    start.0, end.0
                ));
            }
            Some([start, end]) => Some(Window {
                start: start.0,
                end: end.0,
            }),
            None => None,
        };
        Ok(Self {
            name: raw.name,
            service: raw.service,
            metric: raw.metric,
            labels: raw.labels,
            check,
            during,
        })
    }
}

impl Expectation {
    /// The window multiplied by `k` (`--duration-scale`).
    pub fn scaled(&self, k: f64) -> Self {
        let mut scaled = self.clone();
        scaled.during = self.during.map(|w| Window {
            start: scale_duration(w.start, k),
            end: scale_duration(w.end, k),
        });
        scaled
    }

    /// `metric{a="x",b="y"}`, as PromQL would select it.
    pub fn selector(&self) -> String {
        selector(&self.metric, &self.labels)
    }

    /// Its `name`, else `gateway: metric{labels} increase >= 1`.
    pub fn title(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}: {} {}", self.service, self.selector(), self.check))
    }
}

fn selector(metric: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return metric.to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{metric}{{{}}}", pairs.join(","))
}

// === what the scrapes saw ===

/// One series of one process: a restarted replica (new
/// `service_instance_id`) is a new series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    replica: String,
    instance: String,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Series {
    /// Present at the first round: its first value was there before the
    /// run, a baseline, not an increase.
    from_start: bool,
    /// (round, value), rounds increasing.
    points: Vec<(u32, f64)>,
}

/// What one expectation kept.
#[derive(Debug, Default)]
struct Track {
    series: BTreeMap<SeriesKey, Series>,
    /// The metric exists on the service (a sample or a `# TYPE` line),
    /// whatever its labels.
    metric_seen: bool,
    /// A few label sets of the metric that did not match, for the hint.
    unmatched: BTreeSet<BTreeMap<String, String>>,
    /// Every label name the metric's samples carried.
    label_names: BTreeSet<String>,
}

const UNMATCHED_KEPT: usize = 3;

/// How the scrapes of one service went.
#[derive(Debug, Default)]
struct ServiceScrapes {
    replicas: BTreeSet<String>,
    /// Rounds with at least one successful scrape.
    ok_rounds: BTreeSet<u32>,
    /// Per replica (or `discovery`): failed scrapes and the last reason.
    failed: BTreeMap<String, (u64, String)>,
}

/// Everything the watcher kept, to be evaluated at the end.
#[derive(Debug)]
pub struct Observations {
    expectations: Vec<Expectation>,
    /// When each round was scraped, seconds from the start of the run.
    rounds: Vec<f64>,
    tracks: Vec<Track>,
    services: BTreeMap<String, ServiceScrapes>,
}

/// Metric suffixes of one family: a `# TYPE x counter` exposes `x_total`.
const SUFFIXES: [&str; 6] = ["_total", "_count", "_sum", "_bucket", "_created", "_info"];

impl Observations {
    pub fn new(expectations: Vec<Expectation>) -> Self {
        let services = expectations
            .iter()
            .map(|e| (e.service.clone(), ServiceScrapes::default()))
            .collect();
        Self {
            tracks: expectations.iter().map(|_| Track::default()).collect(),
            expectations,
            rounds: Vec::new(),
            services,
        }
    }

    /// The services to scrape.
    pub fn services(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }

    /// Starts a round of scrapes taken `t` seconds into the run.
    pub fn begin_round(&mut self, t: f64) {
        self.rounds.push(t);
    }

    fn round(&self) -> Option<u32> {
        u32::try_from(self.rounds.len().checked_sub(1)?).ok()
    }

    /// The platform could not list `service`'s replicas this round.
    pub fn record_discovery_failure(&mut self, service: &str, error: String) {
        if let Some(s) = self.services.get_mut(service) {
            let failed = s.failed.entry("discovery".into()).or_default();
            failed.0 += 1;
            failed.1 = error;
        }
    }

    /// One replica's `/metrics` text this round, or why it could not be read.
    pub fn record(&mut self, service: &str, replica: &str, scrape: Result<&str, String>) {
        let Some(round) = self.round() else {
            return;
        };
        let Some(scrapes) = self.services.get_mut(service) else {
            return;
        };
        scrapes.replicas.insert(replica.to_owned());
        let parsed = scrape.and_then(|text| Scrape::parse(text).map(|s| (text, s)));
        let (text, scrape) = match parsed {
            Ok(ok) => ok,
            Err(error) => {
                let failed = scrapes.failed.entry(replica.to_owned()).or_default();
                failed.0 += 1;
                failed.1 = error;
                return;
            }
        };
        scrapes.ok_rounds.insert(round);
        let instance = scrape
            .find("build_info", &[])
            .find_map(|s| s.label("service_instance_id"))
            .unwrap_or_default()
            .to_owned();
        let families: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for (expectation, track) in self.expectations.iter().zip(&mut self.tracks) {
            if expectation.service != service {
                continue;
            }
            let family = SUFFIXES
                .iter()
                .find_map(|s| expectation.metric.strip_suffix(s))
                .unwrap_or(&expectation.metric);
            if families.contains(expectation.metric.as_str()) || families.contains(family) {
                track.metric_seen = true;
            }
            for sample in scrape
                .samples
                .iter()
                .filter(|s| s.name == expectation.metric)
            {
                track.metric_seen = true;
                for name in sample.labels.keys() {
                    if !track.label_names.contains(name) {
                        track.label_names.insert(name.clone());
                    }
                }
                let matches = expectation
                    .labels
                    .iter()
                    .all(|(k, v)| sample.label(k) == Some(v.as_str()));
                if !matches {
                    if track.unmatched.len() < UNMATCHED_KEPT {
                        track.unmatched.insert(sample.labels.clone());
                    }
                    continue;
                }
                let key = SeriesKey {
                    replica: replica.to_owned(),
                    instance: instance.clone(),
                    labels: sample.labels.clone(),
                };
                let series = track.series.entry(key).or_insert_with(|| Series {
                    from_start: round == 0,
                    points: Vec::new(),
                });
                series.points.push((round, sample.value));
            }
        }
    }

    /// Each expectation judged, in the order given.
    pub fn evaluate(&self) -> Vec<CheckResult> {
        self.expectations
            .iter()
            .zip(&self.tracks)
            .map(|(e, t)| self.judge(e, t))
            .collect()
    }

    fn judge(&self, expectation: &Expectation, track: &Track) -> CheckResult {
        let window = expectation.during.unwrap_or(Window {
            start: Duration::ZERO,
            end: Duration::MAX,
        });
        let over = match expectation.during {
            Some(w) => format!(
                "over {}–{}",
                humantime::format_duration(w.start),
                humantime::format_duration(w.end)
            ),
            None => "over the run".into(),
        };
        let empty = ServiceScrapes::default();
        let scrapes = self.services.get(&expectation.service).unwrap_or(&empty);
        let in_window = |round: u32| window.contains(self.rounds[round as usize]);
        let failures = describe_failures(scrapes);
        let fail = |detail: String| CheckResult {
            name: expectation.title(),
            passed: false,
            observed: None,
            detail,
        };

        if scrapes.ok_rounds.is_empty() {
            let attempts: u64 = scrapes.failed.values().map(|(n, _)| n).sum();
            return fail(format!(
                "could not scrape any {} replica ({attempts} attempts failed{})",
                expectation.service,
                scrapes
                    .failed
                    .values()
                    .next_back()
                    .map(|(_, why)| format!("; last: {why}"))
                    .unwrap_or_default()
            ));
        }
        let rounds_in_window = scrapes.ok_rounds.iter().filter(|&&r| in_window(r)).count();
        if rounds_in_window == 0 {
            return fail(format!(
                "no scrape of {} fell {over} (the run lasted {:.1} s)",
                expectation.service,
                self.rounds.last().copied().unwrap_or_default()
            ));
        }
        let coverage = format!(
            "{} replicas scraped, {rounds_in_window} scrapes{failures}",
            scrapes.replicas.len()
        );

        let observed = if track.series.is_empty() {
            // A label the metric never carries is a typo, not "nothing
            // happened": it must not let `increase == 0` pass.
            let unknown: Vec<&str> = if track.label_names.is_empty() {
                Vec::new()
            } else {
                expectation
                    .labels
                    .keys()
                    .filter(|k| !track.label_names.contains(*k))
                    .map(String::as_str)
                    .collect()
            };
            if !unknown.is_empty() {
                return fail(format!(
                    "`{}` on {} has no label {} (its labels: {}): is the label name right? ({coverage})",
                    expectation.metric,
                    expectation.service,
                    unknown.join(", "),
                    track
                        .label_names
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            match (track.metric_seen, expectation.check.aggregate) {
                // The family exists, these labels never showed up: nothing
                // happened, which `increase == 0` may well expect.
                (true, Aggregate::Increase | Aggregate::Last) => Some(0.0),
                (true, _) => {
                    return fail(format!(
                        "no series of `{}` on {} had {}{} ({coverage})",
                        expectation.metric,
                        expectation.service,
                        selector("", &expectation.labels),
                        hint(track),
                    ));
                }
                (false, _) => {
                    return fail(format!(
                        "no series matched `{}` on {}: is the metric name right? ({coverage})",
                        expectation.selector(),
                        expectation.service
                    ));
                }
            }
        } else {
            match expectation.check.aggregate {
                Aggregate::Increase => {
                    Some(track.series.values().map(|s| increase(s, in_window)).sum())
                }
                Aggregate::Max => points_in(track, in_window).reduce(f64::max),
                Aggregate::Min => points_in(track, in_window).reduce(f64::min),
                Aggregate::Last => {
                    let last = scrapes
                        .ok_rounds
                        .iter()
                        .rev()
                        .find(|&&r| in_window(r))
                        .copied();
                    last.map(|round| {
                        track
                            .series
                            .values()
                            .flat_map(|s| s.points.iter())
                            .filter(|(r, _)| *r == round)
                            .map(|(_, v)| v)
                            .sum()
                    })
                }
            }
        };
        let Some(observed) = observed else {
            return fail(format!(
                "`{}` had no sample {over} ({coverage})",
                expectation.selector()
            ));
        };
        let check = &expectation.check;
        CheckResult {
            name: expectation.title(),
            passed: check.op.holds(observed, check.value),
            observed: Some(observed),
            detail: format!(
                "{} = {} {over} ({coverage}); expected {} {}",
                check.aggregate.as_str(),
                number(observed),
                check.op,
                number(check.value)
            ),
        }
    }
}

/// The values of every matching series in the window.
fn points_in<'a>(
    track: &'a Track,
    in_window: impl Fn(u32) -> bool + 'a,
) -> impl Iterator<Item = f64> + 'a {
    track
        .series
        .values()
        .flat_map(|s| s.points.iter())
        .filter(move |(r, _)| in_window(*r))
        .map(|(_, v)| *v)
}

/// A counter's increase over the rounds `in_window` accepts: each step's
/// rise is counted at the round it was seen; a drop is a reset, and the
/// new value is all rise. A series first seen after the first round rose
/// from 0.
fn increase(series: &Series, in_window: impl Fn(u32) -> bool) -> f64 {
    let mut previous = if series.from_start { None } else { Some(0.0) };
    let mut total = 0.0;
    for &(round, value) in &series.points {
        if let Some(before) = previous
            && in_window(round)
        {
            total += if value >= before {
                value - before
            } else {
                value
            };
        }
        previous = Some(value);
    }
    total
}

fn hint(track: &Track) -> String {
    if track.unmatched.is_empty() {
        return String::new();
    }
    let seen: Vec<String> = track.unmatched.iter().map(|l| selector("", l)).collect();
    format!("; seen: {}", seen.join(", "))
}

fn describe_failures(scrapes: &ServiceScrapes) -> String {
    if scrapes.failed.is_empty() {
        return String::new();
    }
    let total: u64 = scrapes.failed.values().map(|(n, _)| n).sum();
    let each: Vec<String> = scrapes
        .failed
        .iter()
        .map(|(replica, (n, why))| format!("{replica}: {n}, last: {why}"))
        .collect();
    format!("; {total} scrapes failed ({})", each.join("; "))
}

/// `3`, `0.25`: no trailing `.0` on whole numbers.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

// === the watcher ===

/// Scrapes the services the expectations name while a run lasts.
pub struct Watcher {
    platform: Arc<dyn Platform>,
    observations: Observations,
    interval: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("platform", &self.platform.name())
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    pub fn new(platform: Arc<dyn Platform>, expectations: Vec<Expectation>) -> Self {
        Self {
            platform,
            observations: Observations::new(expectations),
            interval: Duration::from_secs(1),
            http: reqwest::Client::new(),
        }
    }

    /// Scrape every `interval` instead of every second.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Scrapes a round at once, then every interval until `stop`
    /// completes, then one last round (what happened in the last second
    /// counts too); returns what it saw. Rounds are `t0`-relative.
    pub async fn run(mut self, t0: Instant, stop: impl Future<Output = ()>) -> Observations {
        if self.observations.expectations.is_empty() {
            return self.observations;
        }
        let mut tick = tokio::time::interval(self.interval);
        // A slow round (a hung replica) delays the next instead of
        // bunching scrapes up afterwards.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = tick.tick() => self.round(t0).await,
            }
        }
        self.round(t0).await;
        self.observations
    }

    async fn round(&mut self, t0: Instant) {
        self.observations.begin_round(t0.elapsed().as_secs_f64());
        for service in self.observations.services() {
            let replicas = match self.platform.replicas(&service).await {
                Ok(replicas) => replicas,
                Err(error) => {
                    self.observations
                        .record_discovery_failure(&service, error.to_string());
                    continue;
                }
            };
            let scrapes = futures::future::join_all(
                replicas
                    .iter()
                    .map(|r| scrape(&self.http, &r.base_url, self.interval)),
            )
            .await;
            for (replica, text) in replicas.iter().zip(scrapes) {
                self.observations.record(
                    &service,
                    &replica.name,
                    text.as_deref().map_err(Clone::clone),
                );
            }
        }
    }
}

/// `GET <base_url>/metrics` as OpenMetrics, within `budget` (at least 2 s:
/// a loaded replica is slow, not gone).
async fn scrape(
    http: &reqwest::Client,
    base_url: &str,
    budget: Duration,
) -> Result<String, String> {
    let res = http
        .get(format!("{base_url}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .timeout(budget.max(Duration::from_secs(2)))
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    if !res.status().is_success() {
        return Err(format!("/metrics answered {}", res.status()));
    }
    res.text().await.map_err(|e| error_chain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        expect: Vec<Expectation>,
    }

    fn expectation(toml_table: &str) -> Expectation {
        toml::from_str::<File>(&format!("[[expect]]\n{toml_table}"))
            .map(|mut f| f.expect.remove(0))
            .unwrap()
    }

    fn breaker(check: &str, during: &str) -> Expectation {
        expectation(&format!(
            r#"
            service = "gateway"
            metric = "transitions_total"
            labels = {{ destination = "payments", state = "open" }}
            check = "{check}"
            {during}
            "#
        ))
    }

    /// A scrape of one replica: `transitions_total` with `open` at `open`,
    /// and a `closed` series always at 5.
    fn text(instance: &str, open: Option<f64>) -> String {
        let mut text = format!(
            "# TYPE build_info gauge\nbuild_info{{service_instance_id=\"{instance}\"}} 1\n# TYPE transitions counter\n"
        );
        text.push_str("transitions_total{destination=\"payments\",state=\"closed\"} 5\n");
        if let Some(v) = open {
            text.push_str(&format!(
                "transitions_total{{destination=\"payments\",state=\"open\"}} {v}\n"
            ));
        }
        text.push_str("# EOF\n");
        text
    }

    /// Rounds at 0, 1, 2, ... s; `scrapes[round]` = (replica, instance, open).
    fn observe(e: Expectation, scrapes: &[&[(&str, &str, Option<f64>)]]) -> CheckResult {
        let mut obs = Observations::new(vec![e]);
        for (t, round) in scrapes.iter().enumerate() {
            obs.begin_round(t as f64);
            for (replica, instance, open) in *round {
                obs.record("gateway", replica, Ok(&text(instance, *open)));
            }
        }
        obs.evaluate().remove(0)
    }

    #[test]
    fn increase_sums_rises_across_replicas() {
        let result = observe(
            breaker("increase >= 3", ""),
            &[
                &[("g0", "a", Some(2.0)), ("g1", "b", Some(0.0))],
                &[("g0", "a", Some(3.0)), ("g1", "b", Some(1.0))],
                &[("g0", "a", Some(4.0)), ("g1", "b", Some(1.0))],
            ],
        );
        assert!(result.passed, "{result:?}");
        assert_eq!(
            result.observed,
            Some(3.0),
            "the 2 before the run is a baseline"
        );
        assert_eq!(
            result.detail,
            "increase = 3 over the run (2 replicas scraped, 3 scrapes); expected >= 3"
        );
        assert_eq!(
            result.name,
            "gateway: transitions_total{destination=\"payments\",state=\"open\"} increase >= 3"
        );
    }

    #[test]
    fn a_label_the_metric_never_carries_fails_even_an_expected_zero() {
        let typo = expectation(
            r#"
            service = "gateway"
            metric = "transitions_total"
            labels = { destinaton = "payments" }
            check = "increase == 0"
            "#,
        );
        let result = observe(typo, &[&[("g0", "a", None)], &[("g0", "a", None)]]);
        assert!(!result.passed, "{result:?}");
        assert!(
            result.detail.contains("has no label destinaton"),
            "{}",
            result.detail
        );
        // The right label, a value not seen yet: nothing happened, a pass.
        let result = observe(
            breaker("increase == 0", ""),
            &[&[("g0", "a", None)], &[("g0", "a", None)]],
        );
        assert!(result.passed, "{result:?}");
    }

    #[test]
    fn a_reset_or_a_new_process_counts_from_zero() {
        // g0 restarts in place (same instance id, counter drops), g1 is
        // replaced by a new process (new id), g2 appears mid-run.
        let result = observe(
            breaker("increase >= 1", ""),
            &[
                &[("g0", "a", Some(5.0)), ("g1", "b", Some(7.0))],
                &[
                    ("g0", "a", Some(1.0)),
                    ("g1", "c", Some(2.0)),
                    ("g2", "d", Some(4.0)),
                ],
                &[
                    ("g0", "a", Some(2.0)),
                    ("g1", "c", Some(2.0)),
                    ("g2", "d", Some(4.0)),
                ],
            ],
        );
        // g0: 1 (reset) + 1; g1: 2 (new instance); g2: 4.
        assert_eq!(result.observed, Some(8.0));
    }

    #[test]
    fn a_series_that_appears_during_the_run_counts_from_zero() {
        // The breaker's `open` series does not exist until it first opens.
        let result = observe(
            breaker("increase >= 1", ""),
            &[
                &[("g0", "a", None)],
                &[("g0", "a", None)],
                &[("g0", "a", Some(1.0))],
            ],
        );
        assert!(result.passed, "{result:?}");
        assert_eq!(result.observed, Some(1.0));
    }

    #[test]
    fn only_the_window_counts() {
        let rounds: &[&[(&str, &str, Option<f64>)]] = &[
            &[("g0", "a", Some(0.0))],
            &[("g0", "a", Some(1.0))],
            &[("g0", "a", Some(1.0))],
            &[("g0", "a", Some(3.0))],
            &[("g0", "a", Some(10.0))],
        ];
        let result = observe(breaker("increase == 2", r#"during = ["2s", "3s"]"#), rounds);
        assert_eq!(result.observed, Some(2.0), "{result:?}");
        assert!(result.passed);
        assert!(
            result
                .detail
                .contains("over 2s–3s (1 replicas scraped, 2 scrapes)"),
            "{}",
            result.detail
        );
        let max = observe(breaker("max <= 3", r#"during = ["1s", "3s"]"#), rounds);
        assert_eq!(max.observed, Some(3.0));
        let min = observe(breaker("min >= 1", r#"during = ["1s", "4s"]"#), rounds);
        assert_eq!(min.observed, Some(1.0));
        let last = observe(breaker("last == 3", r#"during = ["0s", "3s"]"#), rounds);
        assert_eq!(last.observed, Some(3.0));
        assert!(last.passed);
        let late = observe(
            breaker("increase >= 1", r#"during = ["30s", "40s"]"#),
            rounds,
        );
        assert!(!late.passed);
        assert!(
            late.detail
                .contains("no scrape of gateway fell over 30s–40s"),
            "{}",
            late.detail
        );
    }

    #[test]
    fn last_sums_the_replicas_at_the_last_scrape() {
        let result = observe(
            breaker("last == 3", ""),
            &[
                &[("g0", "a", Some(9.0)), ("g1", "b", Some(9.0))],
                &[("g0", "a", Some(1.0)), ("g1", "b", Some(2.0))],
            ],
        );
        assert_eq!(result.observed, Some(3.0));
    }

    #[test]
    fn no_match_says_why() {
        let mut typo = breaker("increase >= 1", "");
        typo.metric = "transitons_total".into();
        let result = observe(typo, &[&[("g0", "a", Some(1.0))]]);
        assert!(!result.passed);
        assert_eq!(result.observed, None);
        assert!(
            result.detail.starts_with(
                "no series matched `transitons_total{destination=\"payments\",state=\"open\"}` on gateway: is the metric name right?"
            ),
            "{}",
            result.detail
        );

        // The family is there, never with these labels: nothing happened.
        let never = observe(breaker("increase == 0", ""), &[&[("g0", "a", None)]]);
        assert!(never.passed, "{never:?}");
        assert_eq!(never.observed, Some(0.0));
        let max = observe(breaker("max >= 1", ""), &[&[("g0", "a", None)]]);
        assert!(!max.passed);
        assert!(
            max.detail
                .contains("seen: {destination=\"payments\",state=\"closed\"}"),
            "{}",
            max.detail
        );
    }

    #[test]
    fn scrape_failures_are_counted_not_fatal() {
        let mut obs = Observations::new(vec![breaker("increase >= 1", "")]);
        for t in 0..3 {
            obs.begin_round(f64::from(t));
            obs.record("gateway", "g0", Ok(&text("a", Some(f64::from(t)))));
            obs.record("gateway", "g1", Err("connection refused".into()));
        }
        obs.begin_round(3.0);
        obs.record_discovery_failure("gateway", "the launcher is gone".into());
        let result = obs.evaluate().remove(0);
        assert!(result.passed);
        assert!(
            result.detail.ends_with(
                "(2 replicas scraped, 3 scrapes; 4 scrapes failed (discovery: 1, last: the launcher is gone; g1: 3, last: connection refused)); expected >= 1"
            ),
            "{}",
            result.detail
        );

        let mut down = Observations::new(vec![breaker("increase >= 1", "")]);
        down.begin_round(0.0);
        down.record("gateway", "g0", Err("connection refused".into()));
        let result = down.evaluate().remove(0);
        assert!(!result.passed);
        assert_eq!(
            result.detail,
            "could not scrape any gateway replica (1 attempts failed; last: connection refused)"
        );
    }

    #[test]
    fn mistakes_in_the_file_are_named() {
        let parse = |table: &str| {
            toml::from_str::<File>(&format!("[[expect]]\n{table}"))
                .map(drop)
                .unwrap_err()
                .to_string()
        };
        let base = "service = \"gateway\"\nmetric = \"x_total\"\n";
        for (rest, expected) in [
            ("check = \"rate >= 1\"", "unknown aggregate \"rate\""),
            ("check = \"increase >= lots\"", "\"lots\" is not a number"),
            (
                "check = \"increase 1\"",
                "expected `<subject> <op> <value>`",
            ),
            (
                "check = \"max < 1\"\nduring = [\"40s\", \"10s\"]",
                "must end after it starts",
            ),
            ("check = \"max < 1\"\nwhen = 1", "unknown field `when`"),
        ] {
            let err = parse(&format!("{base}{rest}"));
            assert!(err.contains(expected), "{rest}\n→ {err}");
        }
        let err = parse("service = \"gateway\"\nmetric = \"x-total\"\ncheck = \"max < 1\"");
        assert!(err.contains("is not a metric name"), "{err}");
    }

    #[test]
    fn scaling_moves_the_window() {
        let e = breaker("increase >= 1", r#"during = ["10s", "40s"]"#).scaled(0.5);
        assert_eq!(
            e.during,
            Some(Window {
                start: Duration::from_secs(5),
                end: Duration::from_secs(20)
            })
        );
        assert_eq!(breaker("max < 1", "").scaled(0.5).during, None);
    }
}
