//! The engine's own metrics while it runs, so a dashboard shows the load
//! offered next to the system's answer to it.
//!
//! The caller chooses the names' prefix (register into
//! `registry.sub_registry_with_prefix("myload")`) and the latency buckets
//! (the system's own, so both sides of a dashboard bucket alike); the
//! names below follow the prefix.
//!
//! Nothing here is touched by a journey: the engine's collector updates
//! them a few times a second from what it merged, so the hot path never
//! takes the histograms' locks. Labels are bounded by the plan (executor
//! and journey names, request types, a fixed set of outcomes).

use std::sync::{Arc, atomic::AtomicU64};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        exemplar::HistogramWithExemplars,
        family::{Family, MetricConstructor},
        gauge::Gauge,
    },
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExecutorLabel {
    executor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArrivalLabels {
    executor: String,
    /// `started` or `dropped`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JourneyLabels {
    journey: &'static str,
    /// `ok`, `error` or `abandoned`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JourneyLabel {
    journey: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    request: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

/// The exemplar on a latency observation: the trace of the journey that
/// made it (OpenMetrics exemplars; `# {trace_id="..."}`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceExemplar {
    trace_id: String,
}

type Latency = HistogramWithExemplars<TraceExemplar>;

/// Makes the latency histograms, all with the caller's buckets.
#[derive(Clone, Debug)]
struct Buckets(Arc<[f64]>);

impl MetricConstructor<Latency> for Buckets {
    fn new_metric(&self) -> Latency {
        HistogramWithExemplars::new(self.0.iter().copied())
    }
}

/// The engine's metric families, registered into the caller's registry
/// (which the caller serves, as OpenMetrics so the exemplars show).
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    target_rate: Family<ExecutorLabel, Gauge<f64, AtomicU64>>,
    arrivals: Family<ArrivalLabels, Counter>,
    late: Family<ExecutorLabel, Counter>,
    in_flight: Family<ExecutorLabel, Gauge>,
    journeys: Family<JourneyLabels, Counter>,
    journey_duration: Family<JourneyLabel, Latency, Buckets>,
    request_duration: Family<RequestLabels, Latency, Buckets>,
}

impl EngineMetrics {
    /// Registers the families into `registry` under the names below (give
    /// it a prefix with `sub_registry_with_prefix`). Latency histograms
    /// use `latency_buckets`, upper bounds in seconds.
    pub fn register(registry: &mut Registry, latency_buckets: &[f64]) -> Self {
        let buckets = Buckets(latency_buckets.into());
        let metrics = Self {
            target_rate: Family::default(),
            arrivals: Family::default(),
            late: Family::default(),
            in_flight: Family::default(),
            journeys: Family::default(),
            journey_duration: Family::new_with_constructor(buckets.clone()),
            request_duration: Family::new_with_constructor(buckets),
        };
        registry.register(
            "target_arrival_rate",
            "Arrivals per second the executor's schedule asks for now (open model)",
            metrics.target_rate.clone(),
        );
        registry.register(
            "arrivals",
            "Scheduled arrivals by what became of them: started, or dropped (the pool and backlog were full, or too late)",
            metrics.arrivals.clone(),
        );
        registry.register(
            "late_arrivals",
            "Arrivals started more than 10 ms behind schedule",
            metrics.late.clone(),
        );
        registry.register(
            "journeys_in_flight",
            "Journeys running now",
            metrics.in_flight.clone(),
        );
        registry.register(
            "journeys",
            "Journeys finished, by journey and outcome (ok, error, abandoned at the end of the grace period)",
            metrics.journeys.clone(),
        );
        registry.register_with_unit(
            "journey_duration",
            "Journey latency from its intended start (coordinated-omission corrected)",
            Unit::Seconds,
            metrics.journey_duration.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Request latency from the moment it was sent, by request type and outcome",
            Unit::Seconds,
            metrics.request_duration.clone(),
        );
        metrics
    }

    /// Handles for one run's executors, journeys and request types,
    /// resolved once so updates do not look labels up.
    pub(crate) fn handles(&self, executors: &[String], journeys: &[&'static str]) -> Handles {
        let executors = executors
            .iter()
            .map(|name| {
                let label = ExecutorLabel {
                    executor: name.clone(),
                };
                let arrivals = |outcome| {
                    self.arrivals.get_or_create_owned(&ArrivalLabels {
                        executor: name.clone(),
                        outcome,
                    })
                };
                ExecutorHandles {
                    target_rate: self.target_rate.get_or_create_owned(&label),
                    started: arrivals("started"),
                    dropped: arrivals("dropped"),
                    late: self.late.get_or_create_owned(&label),
                    in_flight: self.in_flight.get_or_create_owned(&label),
                    seen: Seen::default(),
                }
            })
            .collect();
        let journeys = journeys
            .iter()
            .map(|journey| {
                let outcome = |outcome| {
                    self.journeys
                        .get_or_create_owned(&JourneyLabels { journey, outcome })
                };
                JourneyHandles {
                    ok: outcome("ok"),
                    error: outcome("error"),
                    abandoned: outcome("abandoned"),
                    seen_abandoned: 0,
                    duration: self
                        .journey_duration
                        .get_or_create_owned(&JourneyLabel { journey }),
                }
            })
            .collect();
        Handles {
            metrics: self.clone(),
            executors,
            journeys,
            requests: Vec::new(),
        }
    }
}

/// What the counters were last set from, so they can be advanced by the
/// difference (a counter only goes up).
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    started: u64,
    dropped: u64,
    late: u64,
}

#[derive(Debug)]
struct ExecutorHandles {
    target_rate: Gauge<f64, AtomicU64>,
    started: Counter,
    dropped: Counter,
    late: Counter,
    in_flight: Gauge,
    seen: Seen,
}

#[derive(Debug)]
struct JourneyHandles {
    ok: Counter,
    error: Counter,
    abandoned: Counter,
    seen_abandoned: u64,
    duration: Latency,
}

/// One run's resolved metric handles.
#[derive(Debug)]
pub(crate) struct Handles {
    metrics: EngineMetrics,
    executors: Vec<ExecutorHandles>,
    journeys: Vec<JourneyHandles>,
    /// By the run's request-type index: (ok, error).
    requests: Vec<(Latency, Latency)>,
}

/// An executor's counts, as the collector read them.
pub(crate) struct ExecutorReading {
    pub target_rate: f64,
    pub started: u64,
    pub dropped: u64,
    pub late: u64,
    pub in_flight: u64,
}

fn exemplar(trace_id: Option<&str>) -> Option<TraceExemplar> {
    trace_id.map(|t| TraceExemplar {
        trace_id: t.to_owned(),
    })
}

impl Handles {
    pub(crate) fn executor(&mut self, i: usize, now: &ExecutorReading) {
        let Some(e) = self.executors.get_mut(i) else {
            return;
        };
        e.target_rate.set(now.target_rate);
        e.started.inc_by(now.started.saturating_sub(e.seen.started));
        e.dropped.inc_by(now.dropped.saturating_sub(e.seen.dropped));
        e.late.inc_by(now.late.saturating_sub(e.seen.late));
        e.in_flight
            .set(i64::try_from(now.in_flight).unwrap_or(i64::MAX));
        e.seen = Seen {
            started: now.started,
            dropped: now.dropped,
            late: now.late,
        };
    }

    /// Journeys abandoned so far, by journey index.
    pub(crate) fn abandoned(&mut self, counts: &[u64]) {
        for (j, now) in self.journeys.iter_mut().zip(counts) {
            j.abandoned.inc_by(now.saturating_sub(j.seen_abandoned));
            j.seen_abandoned = *now;
        }
    }

    pub(crate) fn journey(&self, journey: usize, ok: bool, latency_s: f64, trace_id: Option<&str>) {
        let Some(j) = self.journeys.get(journey) else {
            return;
        };
        if ok { &j.ok } else { &j.error }.inc();
        j.duration.observe(latency_s, exemplar(trace_id), None);
    }

    pub(crate) fn request(
        &mut self,
        index: usize,
        name: &'static str,
        ok: bool,
        latency_s: f64,
        trace_id: Option<&str>,
    ) {
        // Request types are numbered in the order they first appear, so a
        // new one is always the next index.
        if self.requests.len() == index {
            let labels = |outcome| RequestLabels {
                request: name,
                outcome,
            };
            let family = &self.metrics.request_duration;
            self.requests.push((
                family.get_or_create_owned(&labels("ok")),
                family.get_or_create_owned(&labels("error")),
            ));
        }
        let Some((ok_h, error_h)) = self.requests.get(index) else {
            return;
        };
        if ok { ok_h } else { error_h }.observe(latency_s, exemplar(trace_id), None);
    }
}
