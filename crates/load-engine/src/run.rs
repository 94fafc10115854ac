//! One run of a plan: starting the executors, collecting what they
//! record, and ending (at the plan's end or on [`Live::stop`]) with a
//! grace period for the journeys still in flight.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle, time::sleep_until};

use crate::{
    executor,
    live::{Live, Progress},
    metrics::{EngineMetrics, ExecutorReading, Handles},
    plan::{Plan, PlanError},
    recorder::Recorder,
    samples::{Candidate, Samples, TraceEvent, TraceListener},
    state::{ExecutorState, Shared},
    stats::{Completion, ExecutorStats, RunStats},
    summary::{Sample, summary_ms},
};

/// How often the collector merges what was recorded: often enough for a
/// progress line at 4 Hz and a fresh "last seconds" view, rarely enough
/// that merging stays a small, batched cost.
const COLLECT_EVERY: Duration = Duration::from_millis(250);

/// How long abandoned journeys get to notice and unwind before the run
/// returns without them.
const ABANDON_WAIT: Duration = Duration::from_secs(1);

/// How a run behaves, beyond its plan.
#[derive(Clone)]
pub struct RunOptions {
    /// After the plan ends (or is stopped), how long journeys in flight
    /// may take to finish before they are abandoned and counted as such.
    pub grace: Duration,
    /// Draw a progress line on stderr (only ever when it is a terminal).
    pub progress: bool,
    /// How many of the slowest journeys to keep.
    pub slowest: usize,
    /// How many failed journeys to keep (a uniform sample).
    pub failed: usize,
    /// Seeds every choice the engine makes (journey picks, think times,
    /// each iteration's randomness), so a run's load is reproducible.
    pub seed: u64,
    pub metrics: Option<EngineMetrics>,
    /// Told when a trace enters or leaves the slowest and failed sets.
    pub on_trace: Option<TraceListener>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            // Long enough for a journey of a few requests that started just
            // before the end; short enough that a hung system does not hold
            // the report hostage.
            grace: Duration::from_secs(5),
            progress: true,
            slowest: 20,
            failed: 50,
            seed: 0x6c6f_6164_6765_6e21,
            metrics: None,
            on_trace: None,
        }
    }
}

/// A plan being run. Start it with [`Run::start`], watch it through
/// [`Run::live`], and get the results from [`Run::finish`].
pub struct Run {
    shared: Arc<Shared>,
    executors: Vec<JoinHandle<()>>,
    collector: JoinHandle<()>,
    collect_final: watch::Sender<bool>,
    progress: Option<Progress>,
    grace: Duration,
}

impl Run {
    /// Checks the plan and starts it now. Must be called within a Tokio
    /// runtime.
    pub fn start(plan: Plan, options: RunOptions) -> Result<Run, PlanError> {
        plan.validate()?;
        let t0 = Instant::now();
        let planned = plan.duration();
        // Every second of the plan and the grace period, and one to spare
        // for the abandon wait.
        let seconds = usize::try_from((planned + options.grace + ABANDON_WAIT).as_secs())
            .unwrap_or(usize::MAX / 2)
            + 2;

        let mut journey_names: Vec<&'static str> = Vec::new();
        for e in &plan.executors {
            for j in &e.journeys {
                if !journey_names.contains(&j.name) {
                    journey_names.push(j.name);
                }
            }
        }
        let index = |name: &'static str| {
            journey_names
                .iter()
                .position(|n| *n == name)
                .expect("every journey was listed above")
        };
        let executors: Vec<ExecutorState> = plan
            .executors
            .iter()
            .map(|e| ExecutorState::new(e, seconds, index))
            .collect();
        let executor_stats = executors
            .iter()
            .map(|e| executor_stats(e, Duration::ZERO))
            .collect();
        let stats = RunStats::new(
            t0,
            planned,
            &journey_names,
            executor_stats,
            Samples::new(options.slowest, options.failed, options.seed),
        );
        let handles = options.metrics.as_ref().map(|m| {
            let names: Vec<String> = executors.iter().map(|e| e.name.clone()).collect();
            m.handles(&names, &journey_names)
        });
        let shared = Arc::new(Shared {
            t0,
            planned,
            journey_abandoned: journey_names.iter().map(|_| AtomicU64::new(0)).collect(),
            journey_names,
            executors,
            recorder: Recorder::new(),
            stats: Mutex::new(stats),
            phase: Mutex::new(String::new()),
            stop: watch::Sender::new(false),
            abandon: watch::Sender::new(false),
            stopped_early: AtomicBool::new(false),
            ended: Mutex::new(None),
        });

        let executors = (0..shared.executors.len())
            .map(|i| {
                let seed = options.seed ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                tokio::spawn(executor::run(shared.clone(), i, seed))
            })
            .collect();
        let (collect_final, final_rx) = watch::channel(false);
        let collector = tokio::spawn(
            Collector {
                shared: shared.clone(),
                handles,
                on_trace: options.on_trace.clone(),
                batch: Vec::new(),
                spare: Vec::new(),
                request_types: Vec::new(),
                events: Vec::new(),
            }
            .run(final_rx),
        );
        let live = Live::new(shared.clone());
        let progress = options.progress.then(|| Progress::start(live)).flatten();
        Ok(Run {
            shared,
            executors,
            collector,
            collect_final,
            progress,
            grace: options.grace,
        })
    }

    /// A handle on the run while it runs.
    pub fn live(&self) -> Live {
        Live::new(self.shared.clone())
    }

    /// Waits for the plan to end (or for [`Live::stop`]), gives the
    /// journeys still in flight the grace period, abandons the rest, and
    /// returns everything measured.
    pub async fn finish(mut self) -> RunStats {
        let shared = self.shared.clone();
        let mut stop = shared.stop.subscribe();
        let all_done = async {
            for handle in &mut self.executors {
                let _ = handle.await;
            }
        };
        tokio::select! {
            () = all_done => {}
            () = sleep_until((shared.t0 + shared.planned).into()) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        shared.stop.send_replace(true);
        *shared.ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());

        // The grace period: executors wind down (users finish their
        // journey) and journeys in flight finish. Checked every 10 ms:
        // this runs once, at the end, and nothing waits on its precision.
        let settled = |executors: &[JoinHandle<()>]| {
            executors.iter().all(JoinHandle::is_finished) && shared.in_flight() == 0
        };
        let deadline = Instant::now() + self.grace;
        while !settled(&self.executors) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if !settled(&self.executors) {
            shared.abandon.send_replace(true);
            let deadline = Instant::now() + ABANDON_WAIT;
            while !settled(&self.executors) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        for handle in &self.executors {
            handle.abort();
        }

        self.collect_final.send_replace(true);
        let _ = (&mut self.collector).await;
        if let Some(progress) = self.progress.take() {
            progress.finish().await;
        }
        shared.lock_stats().clone()
    }
}

impl Drop for Run {
    /// A run dropped without [`Run::finish`] (the caller gave up on an
    /// error) must not go on loading the system in the background.
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
        self.shared.abandon.send_replace(true);
        for handle in &self.executors {
            handle.abort();
        }
        self.collector.abort();
        if let Some(progress) = self.progress.take() {
            progress.abort();
        }
    }
}

fn executor_stats(e: &ExecutorState, elapsed: Duration) -> ExecutorStats {
    ExecutorStats {
        name: e.name.clone(),
        kind: e.kind,
        start: e.start,
        duration: e.duration,
        target_rate: e.schedule.as_ref().map(|s| s.mean_rate()),
        scheduled: e.scheduled.load(Relaxed),
        started: e.started.load(Relaxed),
        dropped: e.dropped.load(Relaxed),
        late: e.late.load(Relaxed),
        max_lateness: Duration::from_micros(e.max_lateness_us.load(Relaxed)),
        abandoned: e.abandoned.load(Relaxed),
        in_flight: e.in_flight.load(Relaxed),
        active: elapsed.saturating_sub(e.start).min(e.duration),
    }
}

/// Merges the recorder's shards into the run's statistics, keeps the
/// samples and the metrics up to date, and tells the trace listener.
struct Collector {
    shared: Arc<Shared>,
    handles: Option<Handles>,
    on_trace: Option<TraceListener>,
    batch: Vec<Completion>,
    spare: Vec<Completion>,
    request_types: Vec<usize>,
    events: Vec<TraceEvent>,
}

impl Collector {
    async fn run(mut self, mut last: watch::Receiver<bool>) {
        let mut tick = self.shared.t0;
        let mut copied_to = 0;
        loop {
            tick += COLLECT_EVERY;
            let is_last = tokio::select! {
                () = sleep_until(tick.into()) => false,
                _ = last.wait_for(|l| *l) => true,
            };
            // A collector that fell behind (a stalled runtime) skips the
            // ticks it missed rather than running them back to back.
            let now = Instant::now();
            while tick + COLLECT_EVERY <= now {
                tick += COLLECT_EVERY;
            }
            copied_to = self.collect(now, copied_to, is_last);
            if is_last {
                break;
            }
        }
    }

    /// One merge. Seconds from `copied_to` on get the executors' counts
    /// again (arrivals can still be counted in the last second or two);
    /// returns where to start next time.
    fn collect(&mut self, now: Instant, copied_to: usize, is_last: bool) -> usize {
        let shared = self.shared.clone();
        shared.recorder.drain(&mut self.batch, &mut self.spare);
        let batch = std::mem::take(&mut self.batch);
        let elapsed = shared.elapsed();
        let current = shared.second_of(now);
        let in_flight = shared.in_flight();
        {
            let mut stats = shared.lock_stats();
            for c in &batch {
                stats.record(c, &mut self.request_types);
                self.observe(&mut stats, c);
            }
            stats.elapsed = elapsed;
            stats.stopped_early = shared.stopped_early.load(Relaxed);
            for (s, e) in stats.executors.iter_mut().zip(&shared.executors) {
                *s = executor_stats(e, elapsed);
            }
            // The per-second arrival counts: the last few seconds are
            // still moving; the final merge copies everything.
            let from = if is_last {
                0
            } else {
                copied_to.saturating_sub(2)
            };
            for second in from..=current {
                let (mut scheduled, mut started, mut dropped) = (0, 0, 0);
                for e in &shared.executors {
                    // Target and achieved compare like for like: the
                    // open-model executors' schedule against their starts
                    // (closed-model users have no target to miss).
                    if e.schedule.is_some() {
                        scheduled += e.scheduled_per_second.get(second);
                        started += e.started_per_second.get(second);
                    }
                    dropped += e.dropped_per_second.get(second);
                }
                let s = stats.second_mut(second);
                s.scheduled = scheduled;
                s.started = started;
                s.dropped = dropped;
            }
            // Sampled at every merge: the last one in a second stands for
            // its end.
            stats.second_mut(current).in_flight = in_flight;
        }
        if let Some(handles) = &mut self.handles {
            for (i, e) in shared.executors.iter().enumerate() {
                let at = elapsed.saturating_sub(e.start);
                handles.executor(
                    i,
                    &ExecutorReading {
                        // Nothing is asked for before the executor starts.
                        target_rate: match &e.schedule {
                            Some(s) if elapsed >= e.start => s.rate_at(at),
                            _ => 0.0,
                        },
                        started: e.started.load(Relaxed),
                        dropped: e.dropped.load(Relaxed),
                        late: e.late.load(Relaxed),
                        in_flight: e.in_flight.load(Relaxed),
                    },
                );
            }
            let abandoned: Vec<u64> = shared
                .journey_abandoned
                .iter()
                .map(|a| a.load(Relaxed))
                .collect();
            handles.abandoned(&abandoned);
        }
        if let Some(listener) = &self.on_trace {
            for event in &self.events {
                listener(event);
            }
        }
        self.events.clear();
        // Keep the allocation for the next merge.
        self.batch = batch;
        self.batch.clear();
        current
    }

    /// The samples and metrics for one completion.
    fn observe(&mut self, stats: &mut RunStats, c: &Completion) {
        let shared = &*self.shared;
        let journey = shared.journey_names.get(c.journey).copied().unwrap_or("?");
        let latency = c.latency();
        let failed = c.failure.is_some();
        let make = || {
            // A slow journey is told by its slowest request, a failed one
            // by the request that failed first.
            let request = if failed {
                c.records.iter().find(|r| !r.outcome.is_ok())
            } else {
                c.records.iter().max_by_key(|r| r.ended - r.started)
            };
            Sample {
                journey: journey.to_owned(),
                request: request.map(|r| r.name.to_owned()),
                trace_id: c.trace_id.clone(),
                start_s: c
                    .intended
                    .saturating_duration_since(shared.t0)
                    .as_secs_f64(),
                latency_ms: summary_ms(latency),
                uncorrected_latency_ms: summary_ms(c.uncorrected_latency()),
                status: request.and_then(|r| r.outcome.status),
                error: c.failure.clone(),
            }
        };
        stats.samples.offer(
            &Candidate {
                latency,
                failed,
                make: &make,
            },
            &mut self.events,
        );
        if let Some(handles) = &mut self.handles {
            let trace_id = c.trace_id.as_deref();
            handles.journey(c.journey, !failed, latency.as_secs_f64(), trace_id);
            for (r, i) in c.records.iter().zip(&self.request_types) {
                let took = r.ended.saturating_duration_since(r.started);
                handles.request(*i, r.name, r.outcome.is_ok(), took.as_secs_f64(), trace_id);
            }
        }
    }
}
