//! The journeys worth looking at afterwards: the N slowest (corrected
//! latency) and a bounded, uniform sample of the failed ones, each with
//! its trace id so the report can link to the trace.
//!
//! Trace capture keeps only the spans of traces it is told to keep, so
//! the sets announce their changes as they happen: a [`TraceEvent::Keep`]
//! when a trace id enters them, a [`TraceEvent::Release`] when it has
//! left both (a trace can be slow and failed at once).

use std::{sync::Arc, time::Duration};

use rand::{Rng as _, SeedableRng as _, rngs::SmallRng};

use crate::summary::Sample;

/// Why a trace is being kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleReason {
    Slow,
    Failed,
}

/// A change to the set of traces worth keeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// Keep this trace's spans: it is among the slowest or the failed.
    Keep {
        trace_id: String,
        reason: SampleReason,
    },
    /// No set holds it any more; its spans may go.
    Release { trace_id: String },
}

/// Told about every [`TraceEvent`], in order, from the engine's collector
/// (a few times a second, never from a journey): keep it quick.
pub type TraceListener = Arc<dyn Fn(&TraceEvent) + Send + Sync>;

/// A candidate for the sets, built only if it gets in.
pub(crate) struct Candidate<'a> {
    /// Corrected.
    pub latency: Duration,
    pub failed: bool,
    pub make: &'a dyn Fn() -> Sample,
}

#[derive(Debug, Clone)]
struct Kept {
    latency: Duration,
    sample: Sample,
}

/// The slowest journeys and a sample of the failed ones.
#[derive(Debug, Clone)]
pub(crate) struct Samples {
    slowest: Vec<Kept>,
    max_slowest: usize,
    failed: Vec<Kept>,
    max_failed: usize,
    failed_seen: u64,
    rng: SmallRng,
}

impl Samples {
    pub(crate) fn new(max_slowest: usize, max_failed: usize, seed: u64) -> Self {
        Self {
            slowest: Vec::with_capacity(max_slowest),
            max_slowest,
            failed: Vec::with_capacity(max_failed),
            max_failed,
            failed_seen: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn holds(&self, trace_id: &str) -> bool {
        self.slowest
            .iter()
            .chain(&self.failed)
            .any(|k| k.sample.trace_id.as_deref() == Some(trace_id))
    }

    /// Offers one completed journey to both sets.
    pub(crate) fn offer(&mut self, c: &Candidate<'_>, events: &mut Vec<TraceEvent>) {
        // The slowest: replace the fastest of the kept ones once full. The
        // comparison comes first, so most journeys cost one comparison.
        if self.max_slowest > 0 {
            let fastest = self
                .slowest
                .iter()
                .enumerate()
                .min_by_key(|(_, k)| k.latency)
                .map(|(i, k)| (i, k.latency));
            let slot = match fastest {
                _ if self.slowest.len() < self.max_slowest => Some(None),
                Some((i, latency)) if c.latency > latency => Some(Some(i)),
                _ => None,
            };
            if let Some(slot) = slot {
                let kept = Kept {
                    latency: c.latency,
                    sample: (c.make)(),
                };
                self.put(SampleReason::Slow, slot, kept, events);
            }
        }
        // The failed: reservoir sampling (Vitter's algorithm R), so the
        // sample is uniform over the whole run, not just its first errors.
        if c.failed && self.max_failed > 0 {
            self.failed_seen += 1;
            let slot = if self.failed.len() < self.max_failed {
                Some(None)
            } else {
                let j = self.rng.random_range(0..self.failed_seen);
                usize::try_from(j)
                    .ok()
                    .filter(|j| *j < self.max_failed)
                    .map(Some)
            };
            if let Some(slot) = slot {
                let kept = Kept {
                    latency: c.latency,
                    sample: (c.make)(),
                };
                self.put(SampleReason::Failed, slot, kept, events);
            }
        }
    }

    /// Puts `kept` in a set (at `slot`, or at the end), announcing the
    /// trace it brings in and the one it pushes out.
    fn put(
        &mut self,
        reason: SampleReason,
        slot: Option<usize>,
        kept: Kept,
        events: &mut Vec<TraceEvent>,
    ) {
        if let Some(trace_id) = &kept.sample.trace_id
            && !self.holds(trace_id)
        {
            events.push(TraceEvent::Keep {
                trace_id: trace_id.clone(),
                reason,
            });
        }
        let set = match reason {
            SampleReason::Slow => &mut self.slowest,
            SampleReason::Failed => &mut self.failed,
        };
        let evicted = match slot {
            Some(i) => Some(std::mem::replace(&mut set[i], kept)),
            None => {
                set.push(kept);
                None
            }
        };
        if let Some(trace_id) = evicted.and_then(|e| e.sample.trace_id)
            && !self.holds(&trace_id)
        {
            events.push(TraceEvent::Release { trace_id });
        }
    }

    /// Slowest first.
    pub(crate) fn slowest(&self) -> Vec<Sample> {
        let mut kept = self.slowest.clone();
        kept.sort_by_key(|k| std::cmp::Reverse(k.latency));
        kept.into_iter().map(|k| k.sample).collect()
    }

    /// Earliest first.
    pub(crate) fn failed(&self) -> Vec<Sample> {
        let mut kept: Vec<Sample> = self.failed.iter().map(|k| k.sample.clone()).collect();
        kept.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(s: &mut Samples, ms: u64, failed: bool, trace: &str) -> Vec<TraceEvent> {
        let mut events = Vec::new();
        let latency = Duration::from_millis(ms);
        let make = || Sample {
            journey: "checkout".into(),
            request: Some("POST /api/checkout".into()),
            trace_id: Some(trace.into()),
            start_s: ms as f64 / 1e3,
            latency_ms: ms as f64,
            uncorrected_latency_ms: ms as f64,
            status: Some(200),
            error: None,
        };
        s.offer(
            &Candidate {
                latency,
                failed,
                make: &make,
            },
            &mut events,
        );
        events
    }

    fn keep(t: &str, reason: SampleReason) -> TraceEvent {
        TraceEvent::Keep {
            trace_id: t.into(),
            reason,
        }
    }

    fn release(t: &str) -> TraceEvent {
        TraceEvent::Release { trace_id: t.into() }
    }

    #[test]
    fn the_slowest_set_keeps_the_n_slowest_and_announces_changes() {
        let mut s = Samples::new(2, 0, 1);
        assert_eq!(
            offer(&mut s, 10, false, "a"),
            [keep("a", SampleReason::Slow)]
        );
        assert_eq!(
            offer(&mut s, 30, false, "b"),
            [keep("b", SampleReason::Slow)]
        );
        // Faster than both: not kept, nothing said.
        assert_eq!(offer(&mut s, 5, false, "c"), []);
        // Slower than "a": "a" goes.
        assert_eq!(
            offer(&mut s, 20, false, "d"),
            [keep("d", SampleReason::Slow), release("a")]
        );
        let slowest: Vec<_> = s
            .slowest()
            .into_iter()
            .map(|x| x.trace_id.unwrap())
            .collect();
        assert_eq!(slowest, ["b", "d"]);
    }

    #[test]
    fn a_trace_in_both_sets_is_released_only_when_it_leaves_both() {
        let mut s = Samples::new(1, 5, 1);
        assert_eq!(
            offer(&mut s, 10, true, "a"),
            [keep("a", SampleReason::Slow)]
        );
        // Slower: "a" leaves the slowest but is still a kept failure.
        assert_eq!(
            offer(&mut s, 20, false, "b"),
            [keep("b", SampleReason::Slow)]
        );
        assert_eq!(s.failed().len(), 1);
    }

    #[test]
    fn the_failed_sample_is_bounded_and_spans_the_run() {
        let mut s = Samples::new(0, 10, 7);
        let mut kept = 0i64;
        for i in 0..10_000u64 {
            for e in offer(&mut s, i, true, &format!("t{i}")) {
                match e {
                    TraceEvent::Keep { .. } => kept += 1,
                    TraceEvent::Release { .. } => kept -= 1,
                }
            }
        }
        let failed = s.failed();
        assert_eq!(failed.len(), 10);
        assert_eq!(kept, 10, "every eviction is announced");
        // Uniform over the run: not just the first ten errors.
        assert!(failed.iter().any(|f| f.start_s > 1.0));
        assert!(failed.windows(2).all(|w| w[0].start_s <= w[1].start_s));
    }
}
