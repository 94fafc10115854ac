//! A circuit breaker per destination.
//!
//! Closed, it counts outcomes. It opens after `consecutive_failures`
//! failures in a row, or when at least `min_requests` calls in the current
//! window failed at `failure_rate` or more. Open, it fails calls at once
//! (the caller answers 503 in microseconds instead of waiting on a
//! destination that is not answering, and the destination gets room to
//! recover). After `open_for` it is half-open: it lets `half_open_probes`
//! calls through at once, and one more at once for each that succeeds
//! (the allowance doubles every round trip, as TCP's slow start does);
//! `half_open_probes` successes close it, and any failure opens it again
//! for twice as long, up to `max_open_for`. Calls over the allowance fail
//! fast, as when open.
//!
//! Why a ramp and not one probe: the breaker cannot tell a destination
//! that recovered an hour ago from one still down until a call returns, so
//! the first burst after a quiet period meets it half-open. With a single
//! probe, that burst failed whole but for one call (49 of 50). With a few
//! at once it gets that many through in the same round trip, and a
//! destination that just came back is not handed its whole load before a
//! handful of calls have shown it can take them. Closing needs as many
//! successes as the first allowance, which a busy caller gathers within
//! about one round trip and a quiet one needs no more than (its calls fit
//! in the allowance anyway).
//!
//! A failure is no response (refused, broken, timed out) or a 5xx; a 4xx
//! is an answer. The breaker sits outside the retries, so it judges calls
//! as the caller saw them, and an open breaker spends no retry budget.
//! State is the `http_client_circuit_breaker_state` gauge; transitions are
//! counted and logged.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{
    error::OutboundError,
    metrics::{BreakerState, OutboundMetrics, TransitionLabels},
    request::OutboundRequest,
};

/// When the breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug)]
pub struct BreakerSettings {
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub min_requests: u32,
    pub window: Duration,
    pub open_for: Duration,
    pub max_open_for: Duration,
    /// Calls let through at once when half-open, and the successes that
    /// close it (at least 1).
    pub half_open_probes: u32,
}

#[derive(Debug)]
enum State {
    Closed {
        consecutive: u32,
        window_start: Instant,
        calls: u32,
        failures: u32,
    },
    Open {
        until: Instant,
        /// Times opened in a row without closing, for the backoff.
        reopened: u32,
    },
    HalfOpen {
        /// Which half-open spell this is: a probe of an earlier one that
        /// finishes late must not count toward this one.
        spell: u64,
        /// Probes let through and not finished yet.
        in_flight: u32,
        /// Probes allowed in flight at once: `half_open_probes`, plus one
        /// per success.
        allowed: u32,
        succeeded: u32,
        reopened: u32,
    },
}

/// One destination's breaker, shared by every clone of its client.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
    /// Half-open spells so far, numbering each one.
    spells: std::sync::atomic::AtomicU64,
    gauge: Gauge,
    metrics: Arc<OutboundMetrics>,
    destination: Arc<str>,
}

/// What the breaker let through: a normal call or a probe of a
/// half-open spell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    Call,
    Probe { spell: u64 },
}

impl Breaker {
    pub fn new(
        settings: BreakerSettings,
        metrics: Arc<OutboundMetrics>,
        destination: Arc<str>,
    ) -> Self {
        let gauge = metrics
            .breaker_state
            .get_or_create(&metrics.edge(&destination))
            .clone();
        gauge.set(BreakerState::closed.as_gauge());
        Self {
            settings,
            state: Mutex::new(State::Closed {
                consecutive: 0,
                window_start: Instant::now(),
                calls: 0,
                failures: 0,
            }),
            spells: std::sync::atomic::AtomicU64::new(0),
            gauge,
            metrics,
            destination,
        }
    }

    /// The current state (for tests and logs).
    pub fn state(&self) -> BreakerState {
        match *self.state.lock().expect("breaker lock") {
            State::Closed { .. } => BreakerState::closed,
            State::Open { until, .. } if Instant::now() < until => BreakerState::open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::half_open,
        }
    }

    fn transition(&self, state: &mut State, next: State) {
        let to = match next {
            State::Closed { .. } => BreakerState::closed,
            State::Open { .. } => BreakerState::open,
            State::HalfOpen { .. } => BreakerState::half_open,
        };
        *state = next;
        self.gauge.set(to.as_gauge());
        self.metrics
            .breaker_transitions
            .get_or_create(&TransitionLabels {
                source: self.metrics.source().clone(),
                destination: self.destination.clone(),
                state: to,
            })
            .inc();
        match to {
            BreakerState::open => {
                tracing::warn!(destination = %self.destination, "circuit breaker opened: failing calls fast")
            }
            BreakerState::half_open => {
                tracing::info!(destination = %self.destination, "circuit breaker half-open: probing")
            }
            BreakerState::closed => {
                tracing::info!(destination = %self.destination, "circuit breaker closed")
            }
        }
    }

    fn closed(now: Instant) -> State {
        State::Closed {
            consecutive: 0,
            window_start: now,
            calls: 0,
            failures: 0,
        }
    }

    /// Lets a call through, or says how long the breaker stays open.
    fn admit(&self) -> Result<Admit, Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("breaker lock");
        match *state {
            State::Closed { .. } => Ok(Admit::Call),
            State::Open { until, reopened } => {
                if now < until {
                    return Err(until - now);
                }
                let spell = self
                    .spells
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.transition(
                    &mut state,
                    State::HalfOpen {
                        spell,
                        in_flight: 1,
                        allowed: self.settings.half_open_probes.max(1),
                        succeeded: 0,
                        reopened,
                    },
                );
                Ok(Admit::Probe { spell })
            }
            State::HalfOpen {
                spell,
                ref mut in_flight,
                allowed,
                ..
            } => {
                if *in_flight < allowed {
                    *in_flight += 1;
                    Ok(Admit::Probe { spell })
                } else {
                    // Over the allowance: fail fast until probes come back.
                    Err(Duration::from_secs(1))
                }
            }
        }
    }

    /// A probe whose caller gave up on it before it finished (the call's
    /// future was dropped: the deadline is inside the breaker, so this is
    /// the caller's own choice, such as a join whose other half failed).
    /// It says nothing about the destination; it only frees its place, so
    /// abandoned probes cannot wedge the breaker half-open.
    fn abandoned(&self, admitted: Admit) {
        let mut state = self.state.lock().expect("breaker lock");
        if let (
            Admit::Probe { spell: probe },
            State::HalfOpen {
                spell, in_flight, ..
            },
        ) = (admitted, &mut *state)
            && probe == *spell
        {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    fn record(&self, admitted: Admit, failed: bool) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("breaker lock");
        let s = self.settings;
        match &mut *state {
            State::Closed {
                consecutive,
                window_start,
                calls,
                failures,
            } => {
                if now.duration_since(*window_start) >= s.window {
                    (*window_start, *calls, *failures) = (now, 0, 0);
                }
                *calls += 1;
                if failed {
                    *failures += 1;
                    *consecutive += 1;
                } else {
                    *consecutive = 0;
                }
                let by_streak = *consecutive >= s.consecutive_failures.max(1);
                let by_rate = *calls >= s.min_requests.max(1)
                    && f64::from(*failures) >= s.failure_rate * f64::from(*calls);
                if failed && (by_streak || by_rate) {
                    self.transition(
                        &mut state,
                        State::Open {
                            until: now + s.open_for,
                            reopened: 0,
                        },
                    );
                }
            }
            State::HalfOpen {
                spell,
                in_flight,
                allowed,
                succeeded,
                reopened,
            } if admitted == (Admit::Probe { spell: *spell }) => {
                let reopened = *reopened;
                *in_flight = in_flight.saturating_sub(1);
                if failed {
                    let open_for = s
                        .open_for
                        .saturating_mul(2u32.saturating_pow((reopened + 1).min(16)))
                        .min(s.max_open_for.max(s.open_for));
                    self.transition(
                        &mut state,
                        State::Open {
                            until: now + open_for,
                            reopened: reopened + 1,
                        },
                    );
                } else {
                    *succeeded += 1;
                    // Slow start: the success's place is free again, and
                    // one more beside it.
                    *allowed = allowed.saturating_add(1);
                    if *succeeded >= s.half_open_probes.max(1) {
                        self.transition(&mut state, Self::closed(now));
                    }
                }
            }
            // Calls admitted before the breaker opened, or probes of an
            // earlier half-open spell, finish later; they do not change an
            // open or half-open breaker's mind.
            State::HalfOpen { .. } | State::Open { .. } => {}
        }
    }
}

#[derive(Clone, Debug)]
pub struct BreakerLayer {
    breaker: Arc<Breaker>,
}

impl BreakerLayer {
    pub fn new(breaker: Arc<Breaker>) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CircuitBreaker<S> {
    inner: S,
    breaker: Arc<Breaker>,
}

// === impl CircuitBreaker ===

impl<S> Service<OutboundRequest> for CircuitBreaker<S>
where
    S: Service<OutboundRequest, Response = reqwest::Response, Error = OutboundError>,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OutboundError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: OutboundRequest) -> Self::Future {
        let admitted = match self.breaker.admit() {
            Ok(admitted) => admitted,
            Err(retry_after) => {
                let destination = self.breaker.destination.clone();
                return Box::pin(async move {
                    Err(OutboundError::CircuitOpen {
                        destination,
                        retry_after,
                    })
                });
            }
        };
        let fut = self.inner.call(req);
        let breaker = self.breaker.clone();
        Box::pin(async move {
            // Should the caller give up on the call, a probe must not stay
            // "in flight" forever.
            let guard = ProbeGuard {
                breaker: &breaker,
                admitted,
                done: false,
            };
            let result = fut.await;
            let failed = match &result {
                Ok(res) => res.status().is_server_error(),
                Err(_) => true,
            };
            guard.finish(failed);
            result
        })
    }
}

/// Frees an abandoned probe's place ([`Breaker::abandoned`]).
struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    admitted: Admit,
    done: bool,
}

impl ProbeGuard<'_> {
    fn finish(mut self, failed: bool) {
        self.done = true;
        self.breaker.record(self.admitted, failed);
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.abandoned(self.admitted);
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt as _;

    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }

    fn request() -> OutboundRequest {
        OutboundRequest::new(
            "/payments",
            reqwest::Request::new(
                http::Method::GET,
                "http://payments/payments".parse().unwrap(),
            ),
        )
    }

    fn response(status: u16) -> Result<reqwest::Response, OutboundError> {
        let mut res = http::Response::new("");
        *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
        Ok(reqwest::Response::from(res))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_failures_fails_fast_and_closes_after_a_good_probe() {
        let (registry, metrics) = OutboundMetrics::for_tests();
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (h, c) = (healthy.clone(), calls.clone());
        let inner = tower::service_fn(move |_req: OutboundRequest| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ok = h.load(std::sync::atomic::Ordering::Relaxed);
            async move { if ok { response(200) } else { response(503) } }
        });
        let breaker = Arc::new(Breaker::new(settings(), metrics.clone(), "payments".into()));
        let svc = BreakerLayer::new(breaker.clone()).layer(inner);

        for _ in 0..5 {
            let res = svc.clone().oneshot(request()).await.unwrap();
            assert_eq!(res.status(), 503);
        }
        assert_eq!(breaker.state(), BreakerState::open);
        let gauge =
            "http_client_circuit_breaker_state{source=\"gateway\",destination=\"payments\"} 2";
        assert!(registry.encode_openmetrics().contains(gauge));

        // Open: no call reaches the destination, and no time passes.
        let before = calls.load(std::sync::atomic::Ordering::Relaxed);
        let start = Instant::now();
        let err = svc.clone().oneshot(request()).await.unwrap_err();
        assert!(matches!(err, OutboundError::CircuitOpen { .. }), "{err:?}");
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), before);

        // Still failing at the probe: open again, for longer.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(svc.clone().oneshot(request()).await.unwrap().status(), 503);
        assert_eq!(breaker.state(), BreakerState::open);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(breaker.state(), BreakerState::open, "backed off to 10 s");

        // Recovered: the next probe closes it.
        healthy.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(svc.clone().oneshot(request()).await.unwrap().status(), 200);
        assert_eq!(breaker.state(), BreakerState::closed);
        let text = registry.encode_openmetrics();
        assert!(text.contains("http_client_circuit_breaker_transitions_total{source=\"gateway\",destination=\"payments\",state=\"open\"} 2"), "{text}");
        assert!(text.contains("http_client_circuit_breaker_transitions_total{source=\"gateway\",destination=\"payments\",state=\"closed\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn four_hundreds_are_answers_not_failures() {
        let (_, metrics) = OutboundMetrics::for_tests();
        let inner = tower::service_fn(|_req: OutboundRequest| async { response(404) });
        let breaker = Arc::new(Breaker::new(settings(), metrics, "payments".into()));
        let svc = BreakerLayer::new(breaker.clone()).layer(inner);
        for _ in 0..50 {
            svc.clone().oneshot(request()).await.unwrap();
        }
        assert_eq!(breaker.state(), BreakerState::closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_high_failure_rate_opens_it_without_a_streak() {
        let (_, metrics) = OutboundMetrics::for_tests();
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let inner = tower::service_fn(move |_req: OutboundRequest| {
            // Alternate: never two failures in a row, 50% failing.
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move { response(if i.is_multiple_of(2) { 500 } else { 200 }) }
        });
        let breaker = Arc::new(Breaker::new(settings(), metrics, "payments".into()));
        let svc = BreakerLayer::new(breaker.clone()).layer(inner);
        for _ in 0..19 {
            svc.clone().oneshot(request()).await.unwrap();
        }
        assert_eq!(breaker.state(), BreakerState::closed, "below min_requests");
        for _ in 0..2 {
            let _ = svc.clone().oneshot(request()).await;
        }
        assert_eq!(breaker.state(), BreakerState::open);
    }

    fn metrics() -> Arc<OutboundMetrics> {
        OutboundMetrics::for_tests().1
    }

    /// A call the mock destination answers with `status` after `delay_ms`.
    fn call(delay_ms: u64, status: u16) -> OutboundRequest {
        OutboundRequest::new(
            "/payments",
            reqwest::Request::new(
                http::Method::GET,
                format!("http://payments/payments?delay={delay_ms}&status={status}")
                    .parse()
                    .unwrap(),
            ),
        )
    }

    /// A destination that answers as each [`call`] asks.
    fn scripted() -> impl Service<
        OutboundRequest,
        Response = reqwest::Response,
        Error = OutboundError,
        Future = impl Future<Output = Result<reqwest::Response, OutboundError>> + Send,
    > + Clone {
        tower::service_fn(|req: OutboundRequest| {
            let query: std::collections::HashMap<String, String> = req
                .request
                .url()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let delay = Duration::from_millis(query["delay"].parse().unwrap());
            let status: u16 = query["status"].parse().unwrap();
            async move {
                tokio::time::sleep(delay).await;
                response(status)
            }
        })
    }

    /// A breaker over [`scripted`], opened by five failures; `probes` at
    /// once when half-open.
    async fn opened(
        probes: u32,
    ) -> (
        Arc<Breaker>,
        impl Service<
            OutboundRequest,
            Response = reqwest::Response,
            Error = OutboundError,
            Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>,
        > + Clone,
    ) {
        let settings = BreakerSettings {
            half_open_probes: probes,
            ..settings()
        };
        let breaker = Arc::new(Breaker::new(settings, metrics(), "payments".into()));
        let svc = BreakerLayer::new(breaker.clone()).layer(scripted());
        for _ in 0..5 {
            let _ = svc.clone().oneshot(call(0, 503)).await;
        }
        assert_eq!(breaker.state(), BreakerState::open);
        (breaker, svc)
    }

    fn is_circuit_open(result: &Result<reqwest::Response, OutboundError>) -> bool {
        matches!(result, Err(OutboundError::CircuitOpen { .. }))
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_burst_after_a_quiet_period_gets_the_whole_allowance() {
        let (breaker, svc) = opened(10).await;
        // The outage ended long ago; nobody called meanwhile.
        tokio::time::advance(Duration::from_secs(3600)).await;

        // Fifty calls at once, each taking 20 ms.
        let burst =
            || futures::future::join_all((0..50).map(|_| svc.clone().oneshot(call(20, 200))));
        let results = burst().await;
        let through = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|res| res.status() == 200))
            .count();
        let refused = results.iter().filter(|r| is_circuit_open(r)).count();
        // With a single probe this was 1 and 49.
        assert_eq!((through, refused), (10, 40));
        // Ten successes close it: the next burst goes through whole.
        assert_eq!(breaker.state(), BreakerState::closed);
        assert!(burst().await.iter().all(|r| r.is_ok()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_allowance_grows_with_each_success_and_one_failure_reopens() {
        let (breaker, svc) = opened(2).await;
        tokio::time::advance(Duration::from_secs(5)).await;

        // Two probes in flight: a third call fails fast.
        let slow = tokio::spawn(svc.clone().oneshot(call(1000, 200)));
        let fast = tokio::spawn(svc.clone().oneshot(call(10, 200)));
        tokio::task::yield_now().await;
        assert!(is_circuit_open(&svc.clone().oneshot(call(0, 200)).await));
        assert_eq!(breaker.state(), BreakerState::half_open);

        // One success: its place and one more, so two calls at once again
        // beside the slow one; a third is refused.
        assert_eq!(fast.await.unwrap().unwrap().status(), 200);
        let a = tokio::spawn(svc.clone().oneshot(call(100, 200)));
        let b = tokio::spawn(svc.clone().oneshot(call(50, 503)));
        tokio::task::yield_now().await;
        assert!(is_circuit_open(&svc.clone().oneshot(call(0, 200)).await));

        // The failure opens it again, for twice as long, although the
        // other probes were fine.
        assert_eq!(b.await.unwrap().unwrap().status(), 503);
        assert_eq!(breaker.state(), BreakerState::open);
        assert_eq!(a.await.unwrap().unwrap().status(), 200);
        assert_eq!(slow.await.unwrap().unwrap().status(), 200);
        assert_eq!(
            breaker.state(),
            BreakerState::open,
            "late successes change nothing"
        );
        let err = svc.clone().oneshot(call(0, 200)).await.unwrap_err();
        let OutboundError::CircuitOpen { retry_after, .. } = err else {
            panic!("{err:?}")
        };
        assert!(retry_after > Duration::from_secs(5), "{retry_after:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_of_an_earlier_spell_does_not_count() {
        let (breaker, svc) = opened(2).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        // Spell 1: a slow success and a quick failure, which reopens it
        // for 10 s.
        let late = tokio::spawn(svc.clone().oneshot(call(15_000, 200)));
        tokio::task::yield_now().await;
        assert_eq!(
            svc.clone().oneshot(call(0, 503)).await.unwrap().status(),
            503
        );
        assert_eq!(breaker.state(), BreakerState::open);

        // Spell 2: one probe in flight when spell 1's slow one succeeds.
        tokio::time::advance(Duration::from_secs(10)).await;
        let current = tokio::spawn(svc.clone().oneshot(call(10_000, 200)));
        tokio::task::yield_now().await;
        assert_eq!(late.await.unwrap().unwrap().status(), 200);
        // Had it counted, this success would be the second and close it.
        assert_eq!(
            svc.clone().oneshot(call(0, 200)).await.unwrap().status(),
            200
        );
        assert_eq!(breaker.state(), BreakerState::half_open);
        assert_eq!(current.await.unwrap().unwrap().status(), 200);
        assert_eq!(breaker.state(), BreakerState::closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_its_place_and_judges_nothing() {
        let (breaker, svc) = opened(1).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        // The caller gives up on the probe (its future is dropped).
        let abandoned = tokio::time::timeout(
            Duration::from_millis(10),
            svc.clone().oneshot(call(1000, 200)),
        )
        .await;
        assert!(abandoned.is_err());
        assert_eq!(breaker.state(), BreakerState::half_open);
        // Its place is free: the next call is the probe, and closes it.
        assert_eq!(
            svc.clone().oneshot(call(0, 200)).await.unwrap().status(),
            200
        );
        assert_eq!(breaker.state(), BreakerState::closed);
    }
}
