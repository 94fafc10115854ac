//! The contract between the engine and the journeys it runs.
//!
//! A journey is one user's visit (browse the catalog, check out a course):
//! one or more requests in a row. The engine decides *when* each journey
//! starts; the journey makes its requests through [`Iteration::request`],
//! which times them and classifies the answer, so the engine can keep
//! histograms per journey and per request type without knowing HTTP.

use std::{future::Future, pin::Pin, time::Instant};

use rand::{SeedableRng as _, rngs::SmallRng};

/// What a journey's future looks like.
pub type JourneyFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One kind of visit. Implementations hold whatever they share between
/// runs (clients, the pool of registered users) and are called
/// concurrently.
pub trait Journey: Send + Sync + 'static {
    /// Runs one visit. Each request goes through `it.request(...)`; a
    /// journey that cannot go on (no course to buy) calls `it.fail(...)`
    /// and returns.
    fn run<'a>(&'a self, it: &'a mut Iteration) -> JourneyFuture<'a>;
}

/// How one request ended, as the load generator counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The HTTP status, if an answer came back.
    pub status: Option<u16>,
    /// `None` when the request did what the journey needed (a 402
    /// decline can be an expected answer); otherwise a short, bounded
    /// kind such as `503 dependency_unavailable`, `timeout` or `connect`.
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(status: u16) -> Self {
        Self {
            status: Some(status),
            error: None,
        }
    }

    pub fn failed(status: Option<u16>, kind: impl Into<String>) -> Self {
        Self {
            status,
            error: Some(kind.into()),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// One timed request of an iteration.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The request type, e.g. `GET /api/courses`.
    pub name: &'static str,
    /// When it should have started: the journey's scheduled start for
    /// the first request (so a late start counts against it: coordinated
    /// omission), the moment it was sent for the later ones, which wait
    /// on their predecessors by design.
    pub intended: Instant,
    pub started: Instant,
    pub ended: Instant,
    pub outcome: Outcome,
}

/// One run of a journey: its schedule, its randomness and the record of
/// its requests, handed to [`Journey::run`] by the engine.
pub struct Iteration {
    journey: &'static str,
    intended: Instant,
    started: Instant,
    trace_id: Option<String>,
    records: Vec<RequestRecord>,
    failure: Option<String>,
    rng: SmallRng,
}

impl Iteration {
    /// An iteration of `journey` scheduled for `intended` and starting now.
    pub fn new(journey: &'static str, intended: Instant, seed: u64) -> Self {
        Self {
            journey,
            intended,
            started: Instant::now(),
            trace_id: None,
            records: Vec::with_capacity(4),
            failure: None,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn journey(&self) -> &'static str {
        self.journey
    }

    /// When the engine meant this iteration to start.
    pub fn intended(&self) -> Instant {
        self.intended
    }

    /// When it really started (later than intended when the load
    /// generator or the system fell behind).
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    /// The trace this iteration's requests belong to (32 hex digits), so
    /// the slowest and failed ones can be linked to it.
    pub fn set_trace_id(&mut self, trace_id: String) {
        self.trace_id = Some(trace_id);
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// Times `call` as the request type `name`, classifying its result
    /// with `classify`, and hands the result back.
    pub async fn request<T, E>(
        &mut self,
        name: &'static str,
        call: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, E> {
        let intended = if self.records.is_empty() {
            self.intended
        } else {
            Instant::now()
        };
        let started = Instant::now();
        let result = call.await;
        let ended = Instant::now();
        let outcome = classify(&result);
        if let (None, Some(kind)) = (&self.failure, &outcome.error) {
            self.failure = Some(format!("{name}: {kind}"));
        }
        self.records.push(RequestRecord {
            name,
            intended,
            started,
            ended,
            outcome,
        });
        result
    }

    /// Marks the iteration failed without a request (the journey could
    /// not go on); the first failure is the one reported.
    pub fn fail(&mut self, kind: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(kind.into());
        }
    }

    /// The first failure, `request type: kind`, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub fn records(&self) -> &[RequestRecord] {
        &self.records
    }

    /// Hands the records to the engine once the journey returned.
    pub fn into_records(self) -> (Vec<RequestRecord>, Option<String>, Option<String>) {
        (self.records, self.failure, self.trace_id)
    }
}
