//! A circuit breaker per destination.
//!
//! Closed, it counts outcomes. It opens after `consecutive_failures`
//! failures in a row, or when at least `min_requests` calls in the current
//! window failed at `failure_rate` or more. Open, it fails calls at once
//! (the caller answers 503 in microseconds instead of waiting on a
//! destination that is not answering, and the destination gets room to
//! recover). After `open_for` it lets a single probe through (half-open):
//! success closes it, failure opens it again for twice as long, up to
//! `max_open_for`.
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
    OutboundError, OutboundRequest,
    metrics::{BreakerState, DestinationLabels, TransitionLabels},
};
use crate::metrics::Metrics;

/// When the breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug)]
pub struct BreakerSettings {
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub min_requests: u32,
    pub window: Duration,
    pub open_for: Duration,
    pub max_open_for: Duration,
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
        probing: bool,
        reopened: u32,
    },
}

/// One destination's breaker, shared by every clone of its client.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
    gauge: Gauge,
    metrics: Arc<Metrics>,
    destination: Arc<str>,
}

/// What the breaker let through: a normal call or the half-open probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    Call,
    Probe,
}

impl Breaker {
    pub fn new(settings: BreakerSettings, metrics: Arc<Metrics>, destination: Arc<str>) -> Self {
        let gauge = metrics
            .outbound
            .breaker_state
            .get_or_create(&DestinationLabels {
                source: metrics.service().clone(),
                destination: destination.clone(),
            })
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
            .outbound
            .breaker_transitions
            .get_or_create(&TransitionLabels {
                source: self.metrics.service().clone(),
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
                self.transition(
                    &mut state,
                    State::HalfOpen {
                        probing: true,
                        reopened,
                    },
                );
                Ok(Admit::Probe)
            }
            State::HalfOpen {
                ref mut probing, ..
            } => {
                if *probing {
                    // One probe at a time; the rest fail fast meanwhile.
                    Err(Duration::from_secs(1))
                } else {
                    *probing = true;
                    Ok(Admit::Probe)
                }
            }
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
            State::HalfOpen { reopened, probing } if admitted == Admit::Probe => {
                let reopened = *reopened;
                *probing = false;
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
                    self.transition(&mut state, Self::closed(now));
                }
            }
            // Calls admitted before the breaker opened finish later; they
            // do not change an open breaker's mind.
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
            // Should the caller give up on the call (its own deadline), a
            // probe must not stay "in progress" forever.
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

/// Records an abandoned call as a failure, so a dropped probe cannot wedge
/// the breaker half-open.
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
        if !self.done && self.admitted == Admit::Probe {
            self.breaker.record(self.admitted, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt as _;

    use super::*;
    use crate::ServiceIdentity;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(30),
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
        let metrics = Arc::new(Metrics::new(&ServiceIdentity {
            name: "gateway".into(),
            version: "test",
            instance_id: "i".into(),
        }));
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
        assert!(metrics.encode_openmetrics().contains(gauge));

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
        let text = metrics.encode_openmetrics();
        assert!(text.contains("http_client_circuit_breaker_transitions_total{source=\"gateway\",destination=\"payments\",state=\"open\"} 2"), "{text}");
        assert!(text.contains("http_client_circuit_breaker_transitions_total{source=\"gateway\",destination=\"payments\",state=\"closed\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn four_hundreds_are_answers_not_failures() {
        let metrics = Arc::new(Metrics::new(&ServiceIdentity {
            name: "gateway".into(),
            version: "test",
            instance_id: "i".into(),
        }));
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
        let metrics = Arc::new(Metrics::new(&ServiceIdentity {
            name: "gateway".into(),
            version: "test",
            instance_id: "i".into(),
        }));
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
}
