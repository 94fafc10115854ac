//! Judging a run: a scenario's thresholds (service-level objectives)
//! against what the run measured, and the verdict's list of failures.

use std::time::Duration;

use load_engine::RunStats;

use crate::{
    scenario::{Scope, Stat, Threshold},
    summary::{CheckResult, TimelineRecord},
    timeline::Event,
};

/// What was measured for one threshold's scope (and window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub count: u64,
    pub errors: u64,
    /// The time the count was taken over, for rates.
    pub seconds: f64,
    /// Latency quantiles in milliseconds, `(quantile, corrected) → ms`,
    /// for the quantiles thresholds ask about.
    pub latency_ms: Vec<((u64, bool), f64)>,
    pub mean_ms: f64,
    /// Executors only.
    pub scheduled: u64,
    pub started: u64,
    pub dropped: u64,
}

impl View {
    /// The key a quantile is stored under (per million, so it can be
    /// compared exactly).
    pub fn key(quantile: f64) -> u64 {
        (quantile * 1_000_000.0).round() as u64
    }

    fn latency(&self, quantile: f64, corrected: bool) -> Option<f64> {
        let key = (Self::key(quantile), corrected);
        self.latency_ms
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

/// The value `stat` takes in `view`, with its unit for people; `None`
/// when there is nothing to judge (no journey completed in scope).
pub fn observe(stat: Stat, view: &View) -> Option<(f64, &'static str)> {
    let some_ran = view.count > 0;
    match stat {
        Stat::Latency {
            quantile,
            corrected,
        } if some_ran => view.latency(quantile, corrected).map(|v| (v, "ms")),
        Stat::MeanLatency if some_ran => Some((view.mean_ms, "ms")),
        Stat::ErrorRate if some_ran => Some((view.errors as f64 / view.count as f64, "ratio")),
        Stat::Rate if view.seconds > 0.0 => Some((view.count as f64 / view.seconds, "/s")),
        Stat::Count => Some((view.count as f64, "")),
        Stat::AchievedRatio if view.scheduled > 0 => {
            Some((view.started as f64 / view.scheduled as f64, "ratio"))
        }
        Stat::Dropped => Some((view.dropped as f64, "")),
        _ => None,
    }
}

fn show(value: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{value:.1} ms"),
        "ratio" => format!("{:.2}%", value * 100.0),
        "/s" => format!("{value:.1}/s"),
        _ => format!("{value}"),
    }
}

/// Judges `threshold` against `view` (`None`: its scope never ran).
pub fn judge(threshold: &Threshold, view: Option<&View>) -> CheckResult {
    let window = threshold
        .during
        .map(|(a, b)| {
            format!(
                " between {:.1}s and {:.1}s",
                a.as_secs_f64(),
                b.as_secs_f64()
            )
        })
        .unwrap_or_default();
    let Some(view) = view else {
        return CheckResult {
            name: threshold.name.clone(),
            passed: false,
            observed: None,
            detail: format!("nothing was measured for {}{window}", threshold.scope),
        };
    };
    match observe(threshold.stat, view) {
        None => CheckResult {
            name: threshold.name.clone(),
            passed: false,
            observed: None,
            detail: format!(
                "no {} completed{window}, so there is nothing to judge",
                threshold.scope
            ),
        },
        Some((value, unit)) => {
            let passed = threshold.op.holds(value, threshold.limit);
            CheckResult {
                name: threshold.name.clone(),
                passed,
                observed: Some(value),
                detail: format!(
                    "{} {} {}{window} ({} journeys{})",
                    show(value, unit),
                    if passed { "is" } else { "is not" },
                    format_args!("{} {}", threshold.op, show(threshold.limit, unit)),
                    view.count,
                    if view.errors > 0 {
                        format!(", {} failed", view.errors)
                    } else {
                        String::new()
                    }
                ),
            }
        }
    }
}

/// What a threshold's scope measured, from the run's statistics.
pub(crate) fn view(stats: &RunStats, t: &Threshold) -> Option<View> {
    let quantiles = |latency: &dyn Fn(f64, bool) -> Duration| match t.stat {
        Stat::Latency {
            quantile,
            corrected,
        } => vec![(
            (View::key(quantile), corrected),
            latency(quantile, corrected).as_secs_f64() * 1000.0,
        )],
        _ => Vec::new(),
    };
    if let Some((from, to)) = t.during {
        let window = match &t.scope {
            Scope::Overall => stats.window_all(from, to),
            Scope::Journey(name) => stats.window(from, to, Some(name))?,
            Scope::Request(_) | Scope::Executor(_) => return None,
        };
        return Some(View {
            count: window.completed,
            errors: window.errors,
            seconds: to.saturating_sub(from).as_secs_f64(),
            latency_ms: quantiles(&|q, _| window.latency(q)),
            mean_ms: 0.0,
            scheduled: window.scheduled,
            started: window.started,
            dropped: window.dropped,
        });
    }
    let aggregate = match &t.scope {
        Scope::Overall => stats.overall(),
        Scope::Journey(name) => stats.journey(name)?,
        Scope::Request(name) => stats.request(name)?,
        Scope::Executor(name) => {
            let e = stats.executor(name)?;
            return Some(View {
                count: e.started(),
                scheduled: e.scheduled(),
                started: e.started(),
                dropped: e.dropped(),
                seconds: e.duration().as_secs_f64(),
                ..View::default()
            });
        }
    };
    Some(View {
        count: aggregate.count(),
        errors: aggregate.errors(),
        seconds: stats.elapsed().as_secs_f64(),
        latency_ms: quantiles(&|q, corrected| {
            if corrected {
                aggregate.latency(q)
            } else {
                aggregate.uncorrected_latency(q)
            }
        }),
        mean_ms: aggregate.mean_latency().as_secs_f64() * 1000.0,
        ..View::default()
    })
}

/// Every threshold judged against the run's statistics.
pub(crate) fn judge_all(stats: &RunStats, thresholds: &[Threshold]) -> Vec<CheckResult> {
    thresholds
        .iter()
        .map(|t| judge(t, view(stats, t).as_ref()))
        .collect()
}

/// Why a run failed, for `summary.json`'s verdict (none: it passed): the
/// failed checks, the timeline events that failed or never fired, and
/// first, if it was aborted, why.
pub(crate) fn failures<'a>(
    checks: impl IntoIterator<Item = &'a CheckResult>,
    timeline: &[TimelineRecord],
    events: &[Event],
    ended: Duration,
    aborted: Option<&str>,
) -> Vec<String> {
    let mut failures: Vec<String> = checks
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    failures.extend(timeline.iter().filter(|r| !r.ok).map(|r| {
        format!(
            "timeline: {} {} at {:.1}s failed: {}",
            r.action,
            r.service,
            r.at_s,
            r.error.as_deref().unwrap_or("no reason given")
        )
    }));
    // An event that never fired is a story that did not happen (the run
    // was aborted or ended before it was due).
    for event in events {
        let fired = timeline.iter().any(|r| {
            (r.at_s - event.at.as_secs_f64()).abs() < 1e-6
                && r.action == event.action.name()
                && r.service == event.action.service()
        });
        if !fired {
            failures.push(format!(
                "timeline: {} {} due at {:.1}s never fired (the run ended at {:.1}s)",
                event.action.name(),
                event.action.service(),
                event.at.as_secs_f64(),
                ended.as_secs_f64()
            ));
        }
    }
    if let Some(reason) = aborted {
        failures.insert(0, format!("aborted: {reason}"));
    }
    failures
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{check::Op, scenario::Scope};

    fn threshold(stat: Stat, op: Op, limit: f64) -> Threshold {
        Threshold {
            name: "checkout: test".into(),
            scope: Scope::Journey("checkout".into()),
            stat,
            op,
            limit,
            during: None,
            abort_on_fail: false,
            grace: Duration::ZERO,
        }
    }

    fn view() -> View {
        View {
            count: 200,
            errors: 3,
            seconds: 10.0,
            latency_ms: vec![
                ((View::key(0.99), true), 912.5),
                ((View::key(0.99), false), 80.0),
            ],
            mean_ms: 40.0,
            ..View::default()
        }
    }

    #[test]
    fn a_latency_threshold_compares_the_right_quantile() {
        let p99 = Stat::Latency {
            quantile: 0.99,
            corrected: true,
        };
        let failed = judge(&threshold(p99, Op::Lt, 800.0), Some(&view()));
        assert!(!failed.passed);
        assert_eq!(failed.observed, Some(912.5));
        assert!(
            failed.detail.contains("912.5 ms is not < 800.0 ms"),
            "{}",
            failed.detail
        );
        let uncorrected = Stat::Latency {
            quantile: 0.99,
            corrected: false,
        };
        assert!(judge(&threshold(uncorrected, Op::Lt, 800.0), Some(&view())).passed);
    }

    #[test]
    fn error_rate_and_rate_are_ratios_of_the_counts() {
        let r = judge(&threshold(Stat::ErrorRate, Op::Lt, 0.01), Some(&view()));
        assert!(!r.passed, "3 of 200 is 1.5%");
        assert_eq!(r.observed, Some(0.015));
        let r = judge(&threshold(Stat::Rate, Op::Ge, 20.0), Some(&view()));
        assert!(r.passed);
        assert_eq!(r.observed, Some(20.0));
    }

    #[test]
    fn nothing_measured_fails_loudly() {
        let r = judge(&threshold(Stat::ErrorRate, Op::Lt, 0.01), None);
        assert!(!r.passed);
        assert!(r.detail.contains("nothing was measured"), "{}", r.detail);
        let empty = View::default();
        let r = judge(&threshold(Stat::ErrorRate, Op::Lt, 0.01), Some(&empty));
        assert!(!r.passed, "an error rate of nothing is no pass");
    }
}
