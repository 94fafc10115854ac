//! Retries with a budget, for idempotent calls only.
//!
//! A call is retried when it is safe to send twice — `GET`/`HEAD`, or a
//! `POST` carrying an `Idempotency-Key` the destination deduplicates on —
//! and the failure says another replica might do better: a refused or
//! broken connection, or a 502/503/504. One failure is retried whatever
//! the method: a refused connection, because the request never left this
//! process (no byte of it was sent), so sending it to another replica is
//! its first delivery, not a second one (Envoy's `connect-failure`, and
//! Linkerd's proxies, treat it the same way). A timeout is not retried: the
//! deadline (outside this layer) is the caller's whole budget of time.
//!
//! Retries draw on a budget shared by all calls to the destination
//! (Finagle's and Linkerd's retry budget, tower's `TpsBudget`): at most a
//! ratio of recent requests plus a small floor per second. When a
//! destination fails outright, retries then add a bounded fraction of load
//! instead of multiplying it, which is how retry storms start.
//! Waits between attempts back off exponentially with jitter, so replicas
//! that come back are not hit by synchronized waves.

use std::{sync::Arc, time::Duration};

use http::{Method, StatusCode};
use tower::retry::{
    Policy,
    backoff::{Backoff as _, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff as _},
    budget::{Budget as _, TpsBudget},
};
use tower::util::rng::HasherRng;

use super::{
    error::OutboundError,
    metrics::{OutboundMetrics, RetryLabels, RetryReason},
    request::OutboundRequest,
};

/// Retry settings for one destination.
#[derive(Clone, Copy, Debug)]
pub struct RetrySettings {
    /// Retries allowed as a fraction of requests (0.2: one retry per five).
    pub budget_ratio: f32,
    /// Retries allowed per second whatever the request rate, so a quiet
    /// client can still retry.
    pub min_per_second: u32,
    /// Attempts per call, the first one included.
    pub max_attempts: u32,
    /// First backoff; doubled per attempt, with jitter, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetrySettings {
    /// How long deposits count towards the budget (Finagle's default).
    pub const BUDGET_TTL: Duration = Duration::from_secs(10);

    /// The floor the budget allows whatever the traffic: the retries that
    /// `min_per_second` accumulates over the budget's window.
    pub fn floor(&self) -> u64 {
        u64::from(self.min_per_second) * Self::BUDGET_TTL.as_secs()
    }
}

/// The retry policy of one destination; cloned per call, so `attempts`
/// and `backoff` are the call's own while the budget is shared.
#[derive(Clone)]
pub struct RetryPolicy {
    budget: Arc<TpsBudget>,
    backoff: ExponentialBackoff<HasherRng>,
    max_attempts: u32,
    attempts: u32,
    metrics: Arc<OutboundMetrics>,
    destination: Arc<str>,
}

impl RetryPolicy {
    pub fn new(
        settings: RetrySettings,
        metrics: Arc<OutboundMetrics>,
        destination: Arc<str>,
    ) -> Self {
        let budget = TpsBudget::new(
            RetrySettings::BUDGET_TTL,
            settings.min_per_second,
            settings.budget_ratio.clamp(0.0, 1000.0),
        );
        let max = settings.max_backoff.max(Duration::from_millis(1));
        let backoff = ExponentialBackoffMaker::new(
            settings.min_backoff.min(max),
            max,
            // Up to the whole base again: attempts spread over [b, 2b].
            1.0,
            HasherRng::default(),
        )
        .expect("backoff bounds are ordered and non-zero")
        .make_backoff();
        Self {
            budget: Arc::new(budget),
            backoff,
            max_attempts: settings.max_attempts.max(1),
            attempts: 0,
            metrics,
            destination,
        }
    }
}

/// Whether sending `req` twice is safe.
fn is_idempotent(req: &reqwest::Request) -> bool {
    match *req.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => true,
        Method::POST | Method::PUT | Method::DELETE => {
            req.headers().contains_key("idempotency-key")
        }
        _ => false,
    }
}

fn retry_reason(result: &Result<reqwest::Response, OutboundError>) -> Option<RetryReason> {
    match result {
        Ok(res) => matches!(
            res.status(),
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        )
        .then_some(RetryReason::unavailable),
        Err(OutboundError::Connect { .. }) => Some(RetryReason::connect),
        Err(OutboundError::Transport { .. }) => Some(RetryReason::transport),
        Err(_) => None,
    }
}

// === impl RetryPolicy ===

impl Policy<OutboundRequest, reqwest::Response, OutboundError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut OutboundRequest,
        result: &mut Result<reqwest::Response, OutboundError>,
    ) -> Option<Self::Future> {
        // Every retryable call pays into the budget once, on its first answer.
        if self.attempts == 0 {
            self.budget.deposit();
        }
        self.attempts += 1;
        let reason = retry_reason(result)?;
        if reason != RetryReason::connect && !is_idempotent(&req.request) {
            return None;
        }
        if self.attempts >= self.max_attempts {
            return None;
        }
        if !self.budget.withdraw() {
            self.metrics
                .retries_exhausted
                .get_or_create(&self.metrics.edge(&self.destination))
                .inc();
            tracing::debug!(destination = %self.destination, "retry budget exhausted");
            return None;
        }
        self.metrics
            .retries
            .get_or_create(&RetryLabels {
                source: self.metrics.source().clone(),
                destination: self.destination.clone(),
                reason,
            })
            .inc();
        let wait = self.backoff.next_backoff();
        // A span event on the client span (this runs inside it), so the
        // trace shows why the call took more than one attempt.
        tracing::info!(
            retry.attempt = i64::from(self.attempts + 1),
            retry.reason = ?reason,
            status = result.as_ref().map(|r| i64::from(r.status().as_u16())).unwrap_or(0),
            "retrying"
        );
        Some(wait)
    }

    fn clone_request(&mut self, req: &OutboundRequest) -> Option<OutboundRequest> {
        // Every request is kept for a possible retry (bodies are `Bytes`:
        // a clone is a reference count), since a refused connection is
        // retried whatever the method; `retry` decides.
        Some(OutboundRequest {
            route: req.route,
            request: req.request.try_clone()?,
            exemplar: None,
            timeout: req.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tower::{Layer as _, Service as _, ServiceExt as _, retry::RetryLayer};

    use super::*;

    fn metrics() -> Arc<OutboundMetrics> {
        OutboundMetrics::for_tests().1
    }

    fn settings() -> RetrySettings {
        RetrySettings {
            budget_ratio: 0.2,
            min_per_second: 1,
            max_attempts: 3,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
        }
    }

    fn request(method: Method, key: Option<&str>) -> OutboundRequest {
        let mut req = reqwest::Request::new(method, "http://payments/payments".parse().unwrap());
        if let Some(key) = key {
            req.headers_mut()
                .insert("idempotency-key", key.parse().unwrap());
        }
        OutboundRequest::new("/payments", req)
    }

    fn broken() -> OutboundError {
        OutboundError::Transport {
            destination: "payments".into(),
            source: "connection reset".into(),
        }
    }

    fn refused() -> OutboundError {
        OutboundError::Connect {
            destination: "payments".into(),
            source: "connection refused".into(),
        }
    }

    /// With every attempt failing, total attempts stay within
    /// requests × (1 + ratio) + floor, the budget's promise.
    #[tokio::test(start_paused = true)]
    async fn retries_never_exceed_the_budget() {
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = attempts.clone();
        let failing = tower::service_fn(move |_req: OutboundRequest| {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Err::<reqwest::Response, _>(refused()) }
        });
        let settings = settings();
        let (registry, metrics) = OutboundMetrics::for_tests();
        let mut svc =
            RetryLayer::new(RetryPolicy::new(settings, metrics, "payments".into())).layer(failing);
        let requests = 500u32;
        for _ in 0..requests {
            let res = svc
                .ready()
                .await
                .unwrap()
                .call(request(Method::GET, None))
                .await;
            assert!(res.is_err());
        }
        let total = u64::from(attempts.load(Ordering::Relaxed));
        let bound = (f64::from(requests) * (1.0 + f64::from(settings.budget_ratio))) as u64
            + settings.floor();
        assert!(total > u64::from(requests), "some retries happen: {total}");
        assert!(total <= bound, "{total} attempts > budget bound {bound}");
        let text = registry.encode_openmetrics();
        assert!(
            text.contains("http_client_retry_budget_exhausted_total{"),
            "{text}"
        );
        let retries: u64 = text
            .lines()
            .filter(|l| l.starts_with("http_client_retries_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(retries, total - u64::from(requests), "every retry counted");
    }

    /// A broken connection may have delivered the request: only calls that
    /// are safe to repeat are retried. A refused one delivered nothing:
    /// every call is retried.
    #[tokio::test(start_paused = true)]
    async fn only_idempotent_calls_are_retried_unless_the_connection_was_refused() {
        for (method, key, error, expected) in [
            (Method::GET, None, broken as fn() -> OutboundError, 3),
            (Method::POST, None, broken, 1),
            (Method::POST, Some("k1"), broken, 3),
            (Method::POST, None, refused, 3),
        ] {
            let attempts = Arc::new(AtomicU32::new(0));
            let counted = attempts.clone();
            let failing = tower::service_fn(move |_req: OutboundRequest| {
                counted.fetch_add(1, Ordering::Relaxed);
                async move { Err::<reqwest::Response, _>(error()) }
            });
            let mut svc =
                RetryLayer::new(RetryPolicy::new(settings(), metrics(), "payments".into()))
                    .layer(failing);
            let _ = svc
                .ready()
                .await
                .unwrap()
                .call(request(method.clone(), key))
                .await;
            assert_eq!(
                attempts.load(Ordering::Relaxed),
                expected,
                "{method} key={key:?} {:?}",
                error()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_succeeds_after_a_refused_connection() {
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = attempts.clone();
        let flaky = tower::service_fn(move |_req: OutboundRequest| {
            let n = counted.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    Err(refused())
                } else {
                    Ok(reqwest::Response::from(http::Response::new("ok")))
                }
            }
        });
        let mut svc = RetryLayer::new(RetryPolicy::new(settings(), metrics(), "payments".into()))
            .layer(flaky);
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(request(Method::GET, None))
            .await;
        assert_eq!(res.unwrap().status(), StatusCode::OK);
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
    }
}
