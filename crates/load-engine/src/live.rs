//! The run while it runs: statistics so far (for thresholds that abort
//! the run), the last few seconds (for the progress line), the current
//! phase, and a way to stop early.

use std::{
    io::IsTerminal as _,
    sync::{Arc, PoisonError, atomic::Ordering::Relaxed},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::{state::Shared, stats::RunStats};

/// A cloneable handle on a running plan.
#[derive(Clone)]
pub struct Live {
    shared: Arc<Shared>,
}

/// The last few seconds of a run, for people watching it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    pub elapsed: Duration,
    pub planned: Duration,
    pub phase: String,
    /// Over the window: journeys completed and failed.
    pub completed: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Corrected latency of the journeys completed in the window.
    pub p50: Duration,
    pub p99: Duration,
    /// Open-model arrivals due and journeys started, per second.
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub dropped: u64,
    /// Now.
    pub in_flight: u64,
}

impl Live {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Since the run started (frozen once it stopped scheduling).
    pub fn elapsed(&self) -> Duration {
        self.shared.elapsed()
    }

    /// How long the plan runs.
    pub fn planned(&self) -> Duration {
        self.shared.planned
    }

    /// Names what the run is doing now (`ramp-up`, `payments down`), for
    /// the progress line.
    pub fn set_phase(&self, phase: &str) {
        let mut current = self
            .shared
            .phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        current.clear();
        current.push_str(phase);
    }

    pub fn phase(&self) -> String {
        self.shared
            .phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Ends the run now: no more journeys start; those in flight get the
    /// grace period. The results say it was stopped early.
    pub fn stop(&self) {
        if !*self.shared.stop.borrow() {
            self.shared.stopped_early.store(true, Relaxed);
        }
        self.shared.stop.send_replace(true);
    }

    /// Whether the run has stopped starting journeys (plan over, or
    /// stopped).
    pub fn is_stopping(&self) -> bool {
        *self.shared.stop.borrow()
    }

    /// Looks at the statistics so far (merged four times a second), e.g.
    /// to check thresholds once a second. The closure runs under the
    /// statistics' lock: keep it short.
    pub fn with_stats<R>(&self, f: impl FnOnce(&RunStats) -> R) -> R {
        f(&self.shared.lock_stats())
    }

    /// The last `window` of the run, in whole seconds up to and
    /// including the current one.
    pub fn recent(&self, window: Duration) -> Recent {
        let elapsed = self.elapsed();
        let to = Duration::from_secs(elapsed.as_secs() + 1);
        let from = to.saturating_sub(window.max(Duration::from_secs(1)));
        let (w, in_flight) = {
            let stats = self.shared.lock_stats();
            (stats.window_all(from, to), self.shared.in_flight())
        };
        // The current second is partial: rates are over the time covered.
        let covered = elapsed.saturating_sub(from).max(Duration::from_millis(1));
        let per_second = |n: u64| n as f64 / covered.as_secs_f64();
        Recent {
            elapsed,
            planned: self.shared.planned,
            phase: self.phase(),
            completed: w.completed,
            errors: w.errors,
            error_rate: w.error_rate(),
            p50: w.latency(0.5),
            p99: w.latency(0.99),
            target_rate: per_second(w.scheduled),
            achieved_rate: per_second(w.started),
            dropped: w.dropped,
            in_flight,
        }
    }
}

/// The progress line on stderr, redrawn four times a second.
pub(crate) struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// `None` when stderr is not a terminal (a CI log, a pipe): a
    /// progress line there is only noise.
    pub(crate) fn start(live: Live) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(
            Some(live.planned().as_secs().max(1)),
            ProgressDrawTarget::stderr_with_hz(4),
        );
        bar.set_style(
            ProgressStyle::with_template("{bar:20.cyan/blue} {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        let task = tokio::spawn({
            let bar = bar.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    let recent = live.recent(Duration::from_secs(5));
                    bar.set_position(recent.elapsed.as_secs());
                    bar.set_message(line(&recent));
                }
            }
        });
        Some(Self { bar, task })
    }

    pub(crate) fn abort(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }

    pub(crate) async fn finish(self) {
        self.task.abort();
        let _ = self.task.await;
        self.bar.finish_and_clear();
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// `00:12/01:00 ramp-up | 1998/2000 req/s | p50 1.2 ms p99 3.4 ms (5 s) | errors 0.0% | 3 in flight`
fn line(r: &Recent) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let phase = if r.phase.is_empty() {
        String::new()
    } else {
        format!(" {}", r.phase)
    };
    let dropped = if r.dropped > 0 {
        format!(" | {} dropped", r.dropped)
    } else {
        String::new()
    };
    format!(
        "{}/{}{phase} | {:.0}/{:.0} started/s | p50 {:.1} ms p99 {:.1} ms | errors {:.1}% | {} in flight{dropped}",
        clock(r.elapsed),
        clock(r.planned),
        r.achieved_rate,
        r.target_rate,
        ms(r.p50),
        ms(r.p99),
        r.error_rate * 100.0,
        r.in_flight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_says_what_an_operator_needs() {
        let r = Recent {
            elapsed: Duration::from_secs(72),
            planned: Duration::from_secs(600),
            phase: "payments down".into(),
            completed: 9_000,
            errors: 90,
            error_rate: 0.01,
            p50: Duration::from_micros(1_200),
            p99: Duration::from_micros(34_500),
            target_rate: 2_000.0,
            achieved_rate: 1_998.4,
            dropped: 3,
            in_flight: 7,
        };
        assert_eq!(
            line(&r),
            "01:12/10:00 payments down | 1998/2000 started/s | p50 1.2 ms p99 34.5 ms | errors 1.0% | 7 in flight | 3 dropped"
        );
    }
}
