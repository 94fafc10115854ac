//! What the scrapes saw, kept per expectation, and the judging of it.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use super::{Aggregate, Expectation, Window, selector};
use crate::{scrape::Scrape, summary::CheckResult};

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
            match nothing_matched(expectation, track, &coverage) {
                Ok(observed) => observed,
                Err(detail) => return fail(detail),
            }
        } else {
            aggregate(expectation.check.aggregate, track, scrapes, in_window)
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

/// What an expectation observed when no series matched: 0 when the
/// metric exists and nothing happened (for `increase` and `last`), else
/// why nothing can be said.
fn nothing_matched(
    expectation: &Expectation,
    track: &Track,
    coverage: &str,
) -> Result<Option<f64>, String> {
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
        return Err(format!(
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
        (true, Aggregate::Increase | Aggregate::Last) => Ok(Some(0.0)),
        (true, _) => Err(format!(
            "no series of `{}` on {} had {}{} ({coverage})",
            expectation.metric,
            expectation.service,
            selector("", &expectation.labels),
            hint(track),
        )),
        (false, _) => Err(format!(
            "no series matched `{}` on {}: is the metric name right? ({coverage})",
            expectation.selector(),
            expectation.service
        )),
    }
}

/// The matching series aggregated over the rounds `in_window` accepts
/// (`None`: no sample in the window).
fn aggregate(
    aggregate: Aggregate,
    track: &Track,
    scrapes: &ServiceScrapes,
    in_window: impl Fn(u32) -> bool + Copy,
) -> Option<f64> {
    match aggregate {
        Aggregate::Increase => Some(track.series.values().map(|s| increase(s, in_window)).sum()),
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
