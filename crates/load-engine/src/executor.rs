//! The executors: when journeys start.
//!
//! Open model (arrival rates): one scheduler task per executor walks the
//! arrival times computed from the run's start, sleeping until the next
//! one is due (an absolute deadline, so lateness never accumulates) and
//! starting every arrival that is due on waking. Each journey runs in its
//! own task holding a permit of the executor's pool; an arrival that finds
//! the pool full waits in a bounded backlog, and is dropped if it would
//! start more than `max_lateness` behind schedule.
//!
//! Closed model (virtual users): one task per user runs journeys back to
//! back with a think time between them.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use rand::{Rng as _, RngCore as _, SeedableRng as _, rngs::SmallRng};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::sleep_until,
};

use crate::{
    journey::Iteration,
    plan::{Model, Pool},
    state::{ExecutorState, Shared},
    stats::Completion,
};

/// Counts a journey in flight for as long as it lives, so a journey that
/// panics still leaves the count (and the end of the run) right.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Runs journey `pick` of executor `e` as scheduled for `intended`, and
/// hands its records to the recorder (or counts it abandoned).
async fn run_journey(
    shared: &Shared,
    e: &ExecutorState,
    pick: usize,
    intended: Instant,
    seed: u64,
) {
    let Some((journey, index)) = e.journeys.get(pick) else {
        return;
    };
    let mut it = Iteration::new(shared.journey_names[*index], intended, seed);
    let mut abandon = shared.abandon.subscribe();
    let finished = {
        let run = journey.run(&mut it);
        tokio::select! {
            biased;
            () = run => true,
            _ = abandon.wait_for(|abandon| *abandon) => false,
        }
    };
    let returned = Instant::now();
    if !finished {
        e.abandoned.fetch_add(1, Relaxed);
        shared.journey_abandoned[*index].fetch_add(1, Relaxed);
        return;
    }
    let started = it.started();
    let (records, failure, trace_id) = it.into_records();
    shared.recorder.push(Completion {
        journey: *index,
        intended,
        started,
        returned,
        records,
        failure,
        trace_id,
    });
}

/// Runs executor `i` to its end (or until the run stops scheduling).
pub(crate) async fn run(shared: Arc<Shared>, i: usize, seed: u64) {
    let e = &shared.executors[i];
    let begin = shared.t0 + e.start;
    let mut stop = shared.stop.subscribe();
    tokio::select! {
        () = sleep_until(begin.into()) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    match &e.model {
        Model::ConstantArrivalRate { pool, .. } | Model::RampingArrivalRate { pool, .. } => {
            open(shared.clone(), i, pool.clone(), seed).await;
        }
        Model::ConstantVus {
            vus,
            duration,
            think_time,
            iterations,
        } => {
            let end = begin + *duration;
            let mut users = tokio::task::JoinSet::new();
            for vu in 0..*vus {
                let shared = shared.clone();
                let (think, iterations) = ((think_time.min, think_time.max), *iterations);
                let seed = seed ^ u64::from(vu).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                users.spawn(async move { user(&shared, i, end, think, iterations, seed).await });
            }
            while users.join_next().await.is_some() {}
        }
    }
}

/// The open model's scheduler.
async fn open(shared: Arc<Shared>, i: usize, pool: Pool, seed: u64) {
    let e = &shared.executors[i];
    let Some(schedule) = &e.schedule else {
        return;
    };
    let begin = shared.t0 + e.start;
    let permits = Arc::new(Semaphore::new(pool.max_in_flight));
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut stop = shared.stop.subscribe();
    let mut arrivals = schedule.arrivals().map(|at| begin + at);
    let mut next = arrivals.next();
    let mut backlog: VecDeque<Instant> = VecDeque::new();
    // A permit that came free while we waited for one.
    let mut freed: Option<OwnedSemaphorePermit> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = Instant::now();
        // Everything due by now joins the backlog, in order.
        while let Some(at) = next.filter(|at| *at <= now) {
            e.scheduled.fetch_add(1, Relaxed);
            e.scheduled_per_second.add(shared.second_of(at));
            if backlog.len() >= pool.max_backlog {
                e.count_drop(&shared, now);
            } else {
                backlog.push_back(at);
            }
            next = arrivals.next();
        }
        // Start as many as the pool allows; drop those already too late.
        while let Some(&at) = backlog.front() {
            if now.saturating_duration_since(at) > pool.max_lateness {
                backlog.pop_front();
                e.count_drop(&shared, now);
                continue;
            }
            let Some(permit) = freed
                .take()
                .or_else(|| permits.clone().try_acquire_owned().ok())
            else {
                break;
            };
            backlog.pop_front();
            e.count_start(&shared, at, now);
            let pick = e.pick(&mut rng);
            let seed = rng.next_u64();
            let shared = shared.clone();
            // Counted here, not in the task, so the collector never sees a
            // started journey that is not yet in flight.
            e.in_flight.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let e = &shared.executors[i];
                let _in_flight = InFlight(&e.in_flight);
                let _permit = permit;
                run_journey(&shared, e, pick, at, seed).await;
            });
        }
        if backlog.is_empty() {
            // Nothing is waiting for it: hand it back to the pool.
            freed = None;
        }
        // Wake for the next arrival, for the backlog's head running out of
        // time, or for a free permit if anything is waiting for one.
        let wake = match (next, backlog.front()) {
            (None, None) => break,
            (Some(at), None) => at,
            (at, Some(head)) => {
                let expires = *head + pool.max_lateness + Duration::from_micros(1);
                at.map_or(expires, |at| at.min(expires))
            }
        };
        let waiting = !backlog.is_empty();
        tokio::select! {
            () = sleep_until(wake.into()) => {}
            permit = permits.clone().acquire_owned(), if waiting => freed = permit.ok(),
            _ = stop.changed() => {}
        }
    }
    // Arrivals that fell due while scheduling was stopping (the plan's
    // end reached a scheduler running behind) were still asked for: they
    // count, as dropped, like those still waiting, which never started.
    let now = Instant::now();
    while let Some(at) = next.filter(|at| *at <= now) {
        e.scheduled.fetch_add(1, Relaxed);
        e.scheduled_per_second.add(shared.second_of(at));
        e.count_drop(&shared, now);
        next = arrivals.next();
    }
    for _ in backlog.drain(..) {
        e.count_drop(&shared, now);
    }
}

/// One closed-model user.
async fn user(
    shared: &Shared,
    i: usize,
    end: Instant,
    (think_min, think_max): (Duration, Duration),
    iterations: Option<u64>,
    seed: u64,
) {
    let e = &shared.executors[i];
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut stop = shared.stop.subscribe();
    let mut done = 0;
    loop {
        let now = Instant::now();
        if *stop.borrow() || now >= end || iterations.is_some_and(|n| done >= n) {
            break;
        }
        // A closed-model user starts when the previous journey and think
        // time are over: its intended start is now, there is no schedule
        // to fall behind.
        e.scheduled.fetch_add(1, Relaxed);
        e.count_start(shared, now, now);
        let pick = e.pick(&mut rng);
        {
            let _in_flight = InFlight::enter(&e.in_flight);
            run_journey(shared, e, pick, now, rng.next_u64()).await;
        }
        done += 1;
        if iterations.is_some_and(|n| done >= n) {
            break;
        }
        let think = if think_max > think_min {
            rng.random_range(think_min..=think_max)
        } else {
            think_min
        };
        if !think.is_zero() {
            let until = (Instant::now() + think).min(end);
            tokio::select! {
                () = sleep_until(until.into()) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
}
