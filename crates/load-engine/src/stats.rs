//! What a run measured, while it runs and after: counts and
//! coordinated-omission corrected latency per journey, per request type
//! and per executor, one bucket per second for windows and the series,
//! and the slowest and failed journeys.
//!
//! Latency is recorded in microseconds. The run totals keep three
//! significant figures (HdrHistogram: p99 of 812.4 ms is known to
//! ±0.4 ms); the per-second buckets keep two, which is plenty for a
//! threshold over a window and keeps an hour-long run's buckets small.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

use crate::{
    samples::Samples,
    summary::{
        ExecutorSummary, NamedStats, Percentiles, SeriesPoint, Stats, SummaryParts, summary_ms,
    },
};

/// Significant figures of the run totals.
const TOTAL_SIGFIG: u8 = 3;
/// Significant figures of the per-second buckets.
const SECOND_SIGFIG: u8 = 2;
/// Distinct error kinds (and statuses) kept per journey or request type;
/// the rest are counted as `other`. Kinds are meant to be short and
/// bounded, but a journey that puts a message in one must not grow the
/// results without end.
const MAX_KINDS: usize = 64;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn new_histogram<T: hdrhistogram::Counter>(sigfig: u8) -> Histogram<T> {
    // Auto-resizing from 1 µs: memory follows the slowest value actually
    // seen, not a guessed maximum.
    Histogram::new(sigfig).expect("1 to 5 significant figures are valid")
}

/// Records `d`, growing the histogram to fit it (`saturating_record`
/// would clamp to the current, small, range instead).
fn record<T: hdrhistogram::Counter>(h: &mut Histogram<T>, d: Duration) {
    let us = micros(d);
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

fn quantile<T: hdrhistogram::Counter>(h: &Histogram<T>, q: f64) -> Duration {
    if h.is_empty() {
        Duration::ZERO
    } else {
        Duration::from_micros(h.value_at_quantile(q))
    }
}

/// Counts and latency of a set of journeys or of requests of one type.
#[derive(Debug, Clone)]
pub struct Aggregate {
    count: u64,
    errors: u64,
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    errors_by_kind: BTreeMap<String, u64>,
    status_counts: BTreeMap<u16, u64>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self {
            count: 0,
            errors: 0,
            corrected: new_histogram(TOTAL_SIGFIG),
            uncorrected: new_histogram(TOTAL_SIGFIG),
            errors_by_kind: BTreeMap::new(),
            status_counts: BTreeMap::new(),
        }
    }
}

impl Aggregate {
    pub(crate) fn record(
        &mut self,
        corrected: Duration,
        uncorrected: Duration,
        error: Option<&str>,
        status: Option<u16>,
    ) {
        self.count += 1;
        record(&mut self.corrected, corrected);
        record(&mut self.uncorrected, uncorrected);
        if let Some(kind) = error {
            self.errors += 1;
            let kinds = self.errors_by_kind.len();
            match self.errors_by_kind.get_mut(kind) {
                Some(n) => *n += 1,
                None if kinds < MAX_KINDS => {
                    self.errors_by_kind.insert(kind.to_owned(), 1);
                }
                None => *self.errors_by_kind.entry("other".to_owned()).or_default() += 1,
            }
        }
        if let Some(status) = status {
            *self.status_counts.entry(status).or_default() += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// `errors / count`, 0 when nothing ran.
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }

    /// Latency at quantile `q` (0.99 for p99) from the intended start:
    /// what a user arriving on schedule waited. Zero when nothing ran.
    pub fn latency(&self, q: f64) -> Duration {
        quantile(&self.corrected, q)
    }

    /// Latency at quantile `q` from the moment the work really started.
    pub fn uncorrected_latency(&self, q: f64) -> Duration {
        quantile(&self.uncorrected, q)
    }

    pub fn mean_latency(&self) -> Duration {
        Duration::from_secs_f64(self.corrected.mean() / 1e6)
    }

    pub fn max_latency(&self) -> Duration {
        quantile(&self.corrected, 1.0)
    }

    /// Corrected latency in microseconds, for anything the accessors
    /// above do not answer.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.corrected
    }

    pub fn uncorrected_histogram(&self) -> &Histogram<u64> {
        &self.uncorrected
    }

    /// Error kind → count.
    pub fn errors_by_kind(&self) -> &BTreeMap<String, u64> {
        &self.errors_by_kind
    }

    /// HTTP status → count (requests only).
    pub fn status_counts(&self) -> &BTreeMap<u16, u64> {
        &self.status_counts
    }

    fn summary(&self, over: Duration) -> Stats {
        Stats {
            count: self.count,
            errors: self.errors,
            error_rate: self.error_rate(),
            rate: per_second(self.count, over),
            latency_ms: percentiles(&self.corrected),
            uncorrected_latency_ms: percentiles(&self.uncorrected),
            errors_by_kind: self.errors_by_kind.clone(),
            status_counts: self
                .status_counts
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
        }
    }
}

fn per_second(n: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        n as f64 / over.as_secs_f64()
    }
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |q| summary_ms(quantile(h, q));
    Percentiles {
        p50: ms(0.5),
        p90: ms(0.9),
        p95: ms(0.95),
        p99: ms(0.99),
        p999: ms(0.999),
        max: ms(1.0),
        mean: h.mean() / 1e3,
    }
}

/// An executor's arrivals: what the schedule asked for and what happened.
#[derive(Debug, Clone)]
pub struct ExecutorStats {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) start: Duration,
    pub(crate) duration: Duration,
    /// `None` for the closed model, which has no target.
    pub(crate) target_rate: Option<f64>,
    pub(crate) scheduled: u64,
    pub(crate) started: u64,
    pub(crate) dropped: u64,
    pub(crate) late: u64,
    pub(crate) max_lateness: Duration,
    pub(crate) abandoned: u64,
    pub(crate) in_flight: u64,
    /// How long it has been running (up to its duration, or until the
    /// run was stopped).
    pub(crate) active: Duration,
}

impl ExecutorStats {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `constant-arrival-rate`, `ramping-arrival-rate` or `constant-vus`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn start(&self) -> Duration {
        self.start
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Arrivals the schedule asked for so far (open model); iterations
    /// begun (closed model).
    pub fn scheduled(&self) -> u64 {
        self.scheduled
    }

    /// Arrivals that started a journey.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Arrivals dropped: too late to start, or the backlog was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Arrivals that started more than 10 ms behind schedule.
    pub fn late(&self) -> u64 {
        self.late
    }

    pub fn max_lateness(&self) -> Duration {
        self.max_lateness
    }

    /// Journeys still running when the grace period ran out.
    pub fn abandoned(&self) -> u64 {
        self.abandoned
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The mean rate the schedule asks for, per second; `None` for the
    /// closed model.
    pub fn target_rate(&self) -> Option<f64> {
        self.target_rate
    }

    /// Journeys started per second while the executor ran.
    pub fn achieved_rate(&self) -> f64 {
        per_second(self.started, self.active)
    }

    fn summary(&self) -> ExecutorSummary {
        ExecutorSummary {
            name: self.name.clone(),
            kind: self.kind.to_owned(),
            start_s: self.start.as_secs_f64(),
            duration_s: self.duration.as_secs_f64(),
            scheduled: self.scheduled,
            started: self.started,
            dropped: self.dropped,
            late: self.late,
            max_lateness_ms: summary_ms(self.max_lateness),
            target_rate: self.target_rate.unwrap_or(0.0),
            achieved_rate: self.achieved_rate(),
        }
    }
}

/// One journey's completions in one second.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecondJourney {
    count: u64,
    errors: u64,
    /// Corrected latency, µs; `None` until the first completion.
    latency: Option<Histogram<u32>>,
}

/// One second of the run (`[s, s + 1)` from the start).
#[derive(Debug, Clone, Default)]
pub(crate) struct Second {
    /// Open-model arrivals due in this second, every executor.
    pub(crate) scheduled: u64,
    pub(crate) started: u64,
    pub(crate) dropped: u64,
    /// Journeys running at the end of the second (the last look in it).
    pub(crate) in_flight: u64,
    journeys: Vec<SecondJourney>,
}

/// Completions, errors and latency over a window of whole seconds,
/// for one journey or for all of them.
#[derive(Debug, Clone)]
pub struct Window {
    pub from: Duration,
    pub to: Duration,
    pub completed: u64,
    pub errors: u64,
    /// Open-model arrivals due, started and dropped (every executor).
    pub scheduled: u64,
    pub started: u64,
    pub dropped: u64,
    latency: Histogram<u32>,
}

impl Window {
    pub fn error_rate(&self) -> f64 {
        if self.completed == 0 {
            0.0
        } else {
            self.errors as f64 / self.completed as f64
        }
    }

    /// Corrected latency at quantile `q` (two significant figures).
    pub fn latency(&self, q: f64) -> Duration {
        quantile(&self.latency, q)
    }

    /// Completed per second.
    pub fn rate(&self) -> f64 {
        per_second(self.completed, self.to.saturating_sub(self.from))
    }

    /// Arrivals due per second.
    pub fn target_rate(&self) -> f64 {
        per_second(self.scheduled, self.to.saturating_sub(self.from))
    }

    /// Arrivals started per second.
    pub fn achieved_rate(&self) -> f64 {
        per_second(self.started, self.to.saturating_sub(self.from))
    }
}

/// Everything a run measured so far (see [`crate::Live::with_stats`]) or
/// in all (from [`crate::Run::finish`]).
#[derive(Debug, Clone)]
pub struct RunStats {
    pub(crate) t0: Instant,
    pub(crate) planned: Duration,
    /// From the start until no more journeys were started: the end of the
    /// plan, or the moment it was stopped. Rates are over this span.
    pub(crate) elapsed: Duration,
    pub(crate) stopped_early: bool,
    pub(crate) overall: Aggregate,
    pub(crate) journeys: Vec<(&'static str, Aggregate)>,
    pub(crate) requests: Vec<(&'static str, Aggregate)>,
    request_index: HashMap<&'static str, usize>,
    pub(crate) executors: Vec<ExecutorStats>,
    pub(crate) seconds: Vec<Second>,
    pub(crate) samples: Samples,
}

/// One completed journey, as the recorder hands it over.
pub(crate) struct Completion {
    pub journey: usize,
    pub intended: Instant,
    pub started: Instant,
    /// When `run` returned: the end, if the journey made no request.
    pub returned: Instant,
    pub records: Vec<crate::RequestRecord>,
    pub failure: Option<String>,
    pub trace_id: Option<String>,
}

impl Completion {
    /// When the journey's last request ended.
    pub fn ended(&self) -> Instant {
        self.records.last().map_or(self.returned, |r| r.ended)
    }

    /// From the intended start to the end.
    pub fn latency(&self) -> Duration {
        self.ended().saturating_duration_since(self.intended)
    }

    /// From the real start to the end.
    pub fn uncorrected_latency(&self) -> Duration {
        self.ended().saturating_duration_since(self.started)
    }
}

impl RunStats {
    pub(crate) fn new(
        t0: Instant,
        planned: Duration,
        journeys: &[&'static str],
        executors: Vec<ExecutorStats>,
        samples: Samples,
    ) -> Self {
        Self {
            t0,
            planned,
            elapsed: Duration::ZERO,
            stopped_early: false,
            overall: Aggregate::default(),
            journeys: journeys
                .iter()
                .map(|j| (*j, Aggregate::default()))
                .collect(),
            requests: Vec::new(),
            request_index: HashMap::new(),
            executors,
            seconds: Vec::new(),
            samples,
        }
    }

    /// Index of the second that `at` falls in.
    pub(crate) fn second_of(&self, at: Instant) -> usize {
        usize::try_from(at.saturating_duration_since(self.t0).as_secs()).unwrap_or(usize::MAX)
    }

    pub(crate) fn second_mut(&mut self, s: usize) -> &mut Second {
        // Bounded by the plan plus the grace period: completions cannot end
        // later than the run.
        if s >= self.seconds.len() {
            self.seconds.resize_with(s + 1, Second::default);
        }
        &mut self.seconds[s]
    }

    /// Adds one completed journey; returns the index of each of its
    /// requests' types (for the caller's metrics).
    pub(crate) fn record(&mut self, c: &Completion, request_types: &mut Vec<usize>) {
        let latency = c.latency();
        let uncorrected = c.uncorrected_latency();
        let failure = c.failure.as_deref();
        self.overall.record(latency, uncorrected, failure, None);
        if let Some((_, journey)) = self.journeys.get_mut(c.journey) {
            journey.record(latency, uncorrected, failure, None);
        }
        request_types.clear();
        for r in &c.records {
            let i = match self.request_index.get(r.name) {
                Some(i) => *i,
                None => {
                    self.requests.push((r.name, Aggregate::default()));
                    self.request_index.insert(r.name, self.requests.len() - 1);
                    self.requests.len() - 1
                }
            };
            request_types.push(i);
            self.requests[i].1.record(
                r.ended.saturating_duration_since(r.intended),
                r.ended.saturating_duration_since(r.started),
                r.outcome.error.as_deref(),
                r.outcome.status,
            );
        }
        let journeys = self.journeys.len();
        let second = self.second_of(c.ended());
        let second = self.second_mut(second);
        if second.journeys.len() < journeys {
            second
                .journeys
                .resize_with(journeys, SecondJourney::default);
        }
        if let Some(j) = second.journeys.get_mut(c.journey) {
            j.count += 1;
            j.errors += u64::from(failure.is_some());
            record(
                j.latency
                    .get_or_insert_with(|| new_histogram(SECOND_SIGFIG)),
                latency,
            );
        }
    }

    /// When the run started.
    pub fn started_at(&self) -> Instant {
        self.t0
    }

    /// How long the plan runs, if not stopped early.
    pub fn planned(&self) -> Duration {
        self.planned
    }

    /// How long journeys were being started: the plan's length, or less
    /// if it was stopped. Rates are over this span.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Whether [`crate::Live::stop`] ended the run before its plan did.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }

    /// Every journey together.
    pub fn overall(&self) -> &Aggregate {
        &self.overall
    }

    pub fn journey(&self, name: &str) -> Option<&Aggregate> {
        self.journeys
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a)
    }

    pub fn journeys(&self) -> impl Iterator<Item = (&'static str, &Aggregate)> {
        self.journeys.iter().map(|(n, a)| (*n, a))
    }

    /// By request type, e.g. `GET /api/courses`.
    pub fn request(&self, name: &str) -> Option<&Aggregate> {
        self.request_index.get(name).map(|i| &self.requests[*i].1)
    }

    pub fn requests(&self) -> impl Iterator<Item = (&'static str, &Aggregate)> {
        self.requests.iter().map(|(n, a)| (*n, a))
    }

    pub fn executor(&self, name: &str) -> Option<&ExecutorStats> {
        self.executors.iter().find(|e| e.name == name)
    }

    pub fn executors(&self) -> &[ExecutorStats] {
        &self.executors
    }

    /// Completions per second over the run.
    pub fn rate(&self, aggregate: &Aggregate) -> f64 {
        per_second(aggregate.count(), self.elapsed)
    }

    /// Journeys dropped, every executor.
    pub fn dropped(&self) -> u64 {
        self.executors.iter().map(|e| e.dropped).sum()
    }

    /// Journeys abandoned at the end of the grace period.
    pub fn abandoned(&self) -> u64 {
        self.executors.iter().map(|e| e.abandoned).sum()
    }

    /// Journeys that ended in `[from, to)`, rounded out to whole seconds
    /// (a window from 10.5 s covers the second from 10 s), for `journey`
    /// or, with `None`, for all of them. `None` if no such journey.
    pub fn window(&self, from: Duration, to: Duration, journey: Option<&str>) -> Option<Window> {
        let only = match journey {
            Some(name) => Some(self.journeys.iter().position(|(n, _)| *n == name)?),
            None => None,
        };
        Some(self.window_of(from, to, only))
    }

    /// [`Self::window`] over every journey.
    pub fn window_all(&self, from: Duration, to: Duration) -> Window {
        self.window_of(from, to, None)
    }

    fn window_of(&self, from: Duration, to: Duration, only: Option<usize>) -> Window {
        let first = usize::try_from(from.as_secs()).unwrap_or(usize::MAX);
        let last = usize::try_from(to.as_secs_f64().ceil() as u64).unwrap_or(usize::MAX);
        let mut window = Window {
            from: Duration::from_secs(first as u64),
            to: Duration::from_secs(last.max(first) as u64),
            completed: 0,
            errors: 0,
            scheduled: 0,
            started: 0,
            dropped: 0,
            latency: new_histogram(SECOND_SIGFIG),
        };
        for second in self.seconds.iter().take(last).skip(first) {
            window.scheduled += second.scheduled;
            window.started += second.started;
            window.dropped += second.dropped;
            for (i, j) in second.journeys.iter().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                window.completed += j.count;
                window.errors += j.errors;
                if let Some(h) = &j.latency {
                    // Same significant figures, auto-resizing: cannot fail.
                    let _ = window.latency.add(h);
                }
            }
        }
        window
    }

    /// The results as serialisable values.
    pub fn summary_parts(&self) -> SummaryParts {
        let named = |list: &[(&'static str, Aggregate)]| {
            list.iter()
                .map(|(name, a)| NamedStats {
                    name: (*name).to_owned(),
                    stats: a.summary(self.elapsed),
                })
                .collect()
        };
        let mut requests: Vec<NamedStats> = named(&self.requests);
        requests.sort_by(|a, b| a.name.cmp(&b.name));
        let series = self
            .seconds
            .iter()
            .enumerate()
            .map(|(s, second)| {
                let mut latency = new_histogram::<u32>(SECOND_SIGFIG);
                let (mut completed, mut errors) = (0, 0);
                for j in &second.journeys {
                    completed += j.count;
                    errors += j.errors;
                    if let Some(h) = &j.latency {
                        let _ = latency.add(h);
                    }
                }
                SeriesPoint {
                    t_s: (s + 1) as f64,
                    target_rate: second.scheduled as f64,
                    achieved_rate: second.started as f64,
                    completed,
                    errors,
                    p50_ms: summary_ms(quantile(&latency, 0.5)),
                    p99_ms: summary_ms(quantile(&latency, 0.99)),
                    max_ms: summary_ms(quantile(&latency, 1.0)),
                    in_flight: second.in_flight,
                    dropped: second.dropped,
                }
            })
            .collect();
        SummaryParts {
            overall: self.overall.summary(self.elapsed),
            journeys: named(&self.journeys),
            requests,
            executors: self.executors.iter().map(ExecutorStats::summary).collect(),
            series,
            slowest: self.samples.slowest(),
            failed: self.samples.failed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, RequestRecord, samples::Samples};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stats(t0: Instant) -> RunStats {
        RunStats::new(
            t0,
            ms(10_000),
            &["browse", "checkout"],
            vec![],
            Samples::new(3, 3, 1),
        )
    }

    fn completion(
        t0: Instant,
        journey: usize,
        at: Duration,
        took: Duration,
        error: bool,
    ) -> Completion {
        let intended = t0 + at;
        Completion {
            journey,
            intended,
            started: intended,
            returned: intended + took,
            records: vec![RequestRecord {
                name: "GET /x",
                intended,
                started: intended,
                ended: intended + took,
                outcome: if error {
                    Outcome::failed(Some(503), "503 overloaded")
                } else {
                    Outcome::ok(200)
                },
            }],
            failure: error.then(|| "GET /x: 503 overloaded".to_owned()),
            trace_id: None,
        }
    }

    #[test]
    fn windows_count_what_ended_in_their_seconds() {
        let t0 = Instant::now();
        let mut s = stats(t0);
        let mut scratch = Vec::new();
        // browse: 10 ok per second for 10 s; checkout fails in seconds 4..6 only.
        for sec in 0..10u64 {
            for i in 0..10u64 {
                s.record(
                    &completion(t0, 0, ms(sec * 1000 + i * 50), ms(5), false),
                    &mut scratch,
                );
                let bad = (4..6).contains(&sec) && i < 5;
                s.record(
                    &completion(t0, 1, ms(sec * 1000 + i * 50), ms(20), bad),
                    &mut scratch,
                );
            }
        }
        assert_eq!(s.overall().count(), 200);
        assert_eq!(s.journey("checkout").unwrap().errors(), 10);
        let request = s.request("GET /x").unwrap();
        assert_eq!(request.count(), 200);
        assert_eq!(request.status_counts()[&503], 10);
        assert_eq!(request.errors_by_kind()["503 overloaded"], 10);

        let during = s.window(ms(4_000), ms(6_000), Some("checkout")).unwrap();
        assert_eq!(during.completed, 20);
        assert_eq!(during.errors, 10);
        assert!((during.error_rate() - 0.5).abs() < 1e-9);
        let after = s.window(ms(6_000), ms(10_000), Some("checkout")).unwrap();
        assert_eq!(after.errors, 0);
        let all = s.window(ms(0), ms(10_000), None).unwrap();
        assert_eq!(all.completed, 200);
        assert!((all.rate() - 20.0).abs() < 1e-9);
        // Two significant figures: 20 ms is known to within 1%.
        let p99 = all.latency(0.99).as_secs_f64();
        assert!((0.0198..=0.0202).contains(&p99), "{p99}");
        assert!(s.window(ms(0), ms(1), Some("nope")).is_none());
    }

    #[test]
    fn the_summary_has_one_point_per_second_and_the_run_totals() {
        let t0 = Instant::now();
        let mut s = stats(t0);
        s.elapsed = ms(3_000);
        let mut scratch = Vec::new();
        for i in 0..30u64 {
            s.record(
                &completion(t0, 0, ms(i * 100), ms(1 + i), i == 29),
                &mut scratch,
            );
        }
        let parts = s.summary_parts();
        assert_eq!(parts.series.len(), 3);
        assert_eq!(parts.series[0].t_s, 1.0);
        assert_eq!(parts.series[2].completed, 10);
        assert_eq!(parts.series[2].errors, 1);
        assert_eq!(parts.overall.count, 30);
        assert!((parts.overall.rate - 10.0).abs() < 1e-9);
        assert!((parts.overall.latency_ms.max - 30.0).abs() < 0.05);
        assert_eq!(parts.journeys.len(), 2);
        assert_eq!(parts.journeys[1].stats.count, 0);
        assert_eq!(parts.requests[0].name, "GET /x");
        assert_eq!(parts.requests[0].stats.status_counts["200"], 29);
    }

    #[test]
    fn corrected_latency_counts_from_the_intended_start() {
        let t0 = Instant::now();
        let mut s = stats(t0);
        let mut c = completion(t0, 0, ms(0), ms(5), false);
        // Started 100 ms late (the pool was full), then took 5 ms.
        c.started = c.intended + ms(100);
        c.records[0].started = c.started;
        c.records[0].ended = c.started + ms(5);
        s.record(&c, &mut Vec::new());
        let browse = s.journey("browse").unwrap();
        assert_eq!(browse.latency(0.5).as_millis(), 105);
        assert_eq!(browse.uncorrected_latency(0.5).as_millis(), 5);
        assert_eq!(s.request("GET /x").unwrap().latency(1.0).as_millis(), 105);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut a = Aggregate::default();
        for i in 0..(MAX_KINDS + 10) {
            a.record(ms(1), ms(1), Some(&format!("kind {i}")), None);
        }
        assert_eq!(a.errors_by_kind().len(), MAX_KINDS + 1);
        assert_eq!(a.errors_by_kind()["other"], 10);
    }
}
