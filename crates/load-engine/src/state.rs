//! What a run's tasks share: the run's clock, stop signals, recorder and
//! stats ([`Shared`]), and each executor's plan and live counters
//! ([`ExecutorState`]). The executors write it; the collector and
//! [`Live`](crate::Live) read it. It imports neither, so neither imports
//! the other through it.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use rand::{Rng as _, rngs::SmallRng};
use tokio::sync::watch;

use crate::{
    journey::Journey,
    plan::{ExecutorPlan, Model, Pool},
    recorder::Recorder,
    schedule::ArrivalSchedule,
    stats::RunStats,
};

/// What the executors, the collector and [`Live`](crate::Live) share.
pub(crate) struct Shared {
    pub t0: Instant,
    pub planned: Duration,
    pub journey_names: Vec<&'static str>,
    pub journey_abandoned: Box<[AtomicU64]>,
    pub executors: Vec<ExecutorState>,
    pub recorder: Recorder,
    pub stats: Mutex<RunStats>,
    pub phase: Mutex<String>,
    /// Set: start no more journeys.
    pub stop: watch::Sender<bool>,
    /// Set: give up on the journeys still running.
    pub abandon: watch::Sender<bool>,
    /// [`Live::stop`](crate::Live::stop) was called (rather than the plan ending).
    pub stopped_early: AtomicBool,
    /// When scheduling stopped; the run's elapsed time from then on.
    pub ended: Mutex<Option<Instant>>,
}

impl Shared {
    /// The second of the run that `at` falls in.
    pub(crate) fn second_of(&self, at: Instant) -> usize {
        usize::try_from(at.saturating_duration_since(self.t0).as_secs()).unwrap_or(usize::MAX)
    }

    pub(crate) fn elapsed(&self) -> Duration {
        let end = self
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(Instant::now);
        end.saturating_duration_since(self.t0)
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.executors
            .iter()
            .map(|e| e.in_flight.load(Relaxed))
            .sum()
    }

    pub(crate) fn lock_stats(&self) -> std::sync::MutexGuard<'_, RunStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts per second of the run, written by the executor's tasks and read
/// by the collector; sized for the whole run up front so the hot path only
/// does an atomic add.
pub(crate) struct PerSecond(Box<[AtomicU64]>);

impl PerSecond {
    fn new(seconds: usize) -> Self {
        Self((0..seconds.max(1)).map(|_| AtomicU64::new(0)).collect())
    }

    pub(crate) fn add(&self, second: usize) {
        // Anything past the end (a clock far beyond the plan) lands in the
        // last second rather than being lost.
        let i = second.min(self.0.len() - 1);
        self.0[i].fetch_add(1, Relaxed);
    }

    pub(crate) fn get(&self, second: usize) -> u64 {
        self.0.get(second).map_or(0, |c| c.load(Relaxed))
    }
}

/// One executor's plan and live counters.
pub(crate) struct ExecutorState {
    pub name: String,
    pub kind: &'static str,
    pub start: Duration,
    pub duration: Duration,
    pub model: Model,
    pub schedule: Option<ArrivalSchedule>,
    /// The executor's journeys, as (journey, index in the run's table).
    pub(crate) journeys: Vec<(Arc<dyn Journey>, usize)>,
    /// Running sums of the weights, for picking by weight.
    cumulative: Vec<u64>,
    pub scheduled: AtomicU64,
    pub started: AtomicU64,
    pub dropped: AtomicU64,
    pub late: AtomicU64,
    pub abandoned: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_lateness_us: AtomicU64,
    pub scheduled_per_second: PerSecond,
    pub started_per_second: PerSecond,
    pub dropped_per_second: PerSecond,
}

impl ExecutorState {
    /// `journey_index` maps a journey name to its index in the run.
    pub(crate) fn new(
        plan: &ExecutorPlan,
        seconds: usize,
        journey_index: impl Fn(&'static str) -> usize,
    ) -> Self {
        let mut total = 0;
        let mut journeys = Vec::new();
        let mut cumulative = Vec::new();
        // Weight-0 journeys are never picked; leaving them out keeps the
        // pick a plain search over positive steps.
        for j in plan.journeys.iter().filter(|j| j.weight > 0) {
            total += u64::from(j.weight);
            journeys.push((j.journey.clone(), journey_index(j.name)));
            cumulative.push(total);
        }
        Self {
            name: plan.name.clone(),
            kind: plan.model.kind(),
            start: plan.start,
            duration: plan.model.duration(),
            schedule: plan.model.schedule(),
            model: plan.model.clone(),
            journeys,
            cumulative,
            scheduled: AtomicU64::new(0),
            started: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            late: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_lateness_us: AtomicU64::new(0),
            scheduled_per_second: PerSecond::new(seconds),
            started_per_second: PerSecond::new(seconds),
            dropped_per_second: PerSecond::new(seconds),
        }
    }

    /// A journey, by weight.
    pub(crate) fn pick(&self, rng: &mut SmallRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let r = rng.random_range(0..total);
        self.cumulative.partition_point(|c| *c <= r)
    }

    pub(crate) fn count_start(&self, shared: &Shared, intended: Instant, now: Instant) {
        self.started.fetch_add(1, Relaxed);
        self.started_per_second.add(shared.second_of(now));
        let lateness = now.saturating_duration_since(intended);
        if lateness > Pool::LATE {
            self.late.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX);
        self.max_lateness_us.fetch_max(us, Relaxed);
    }

    pub(crate) fn count_drop(&self, shared: &Shared, now: Instant) {
        self.dropped.fetch_add(1, Relaxed);
        self.dropped_per_second.add(shared.second_of(now));
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;
    use crate::{
        journey::{Iteration, JourneyFuture},
        plan::WeightedJourney,
    };

    struct Nothing;
    impl Journey for Nothing {
        fn run<'a>(&'a self, _it: &'a mut Iteration) -> JourneyFuture<'a> {
            Box::pin(async {})
        }
    }

    #[test]
    fn journeys_are_picked_by_weight() {
        let weighted = |name, weight| WeightedJourney {
            name,
            weight,
            journey: Arc::new(Nothing),
        };
        let plan = ExecutorPlan {
            name: "mix".into(),
            start: Duration::ZERO,
            model: Model::ConstantArrivalRate {
                rate: 1.0,
                duration: Duration::from_secs(1),
                pool: Pool::new(1),
            },
            journeys: vec![
                weighted("browse", 7),
                weighted("never", 0),
                weighted("buy", 3),
            ],
        };
        let names = ["browse", "never", "buy"];
        let e = ExecutorState::new(&plan, 1, |n| names.iter().position(|x| *x == n).unwrap());
        let mut rng = SmallRng::seed_from_u64(3);
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[e.journeys[e.pick(&mut rng)].1] += 1;
        }
        assert_eq!(counts[1], 0);
        let browse = f64::from(counts[0]) / 100_000.0;
        assert!((browse - 0.7).abs() < 0.01, "{counts:?}");
    }
}
