//! The external card processor, simulated in-process.
//!
//! It behaves like a remote dependency an operator has to watch: log-normal
//! latency with a long tail, a share of declines and of failures, and a
//! bounded pool of concurrent calls per replica (like a processor's
//! connection or rate limit), so saturation shows as waiting callers and
//! scaling payments out visibly adds capacity. Each call is a client span
//! named like the HTTP call it stands for, so traces read as if the
//! provider were real.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use mesh::{
    latency::LogNormalLatency,
    metrics::{LATENCY_BUCKETS, TraceExemplar},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, exemplar::HistogramWithExemplars, family::Family, gauge::Gauge},
    registry::Unit,
};
use rand::Rng as _;
use tokio::sync::Semaphore;
use tracing::{Instrument as _, field::Empty};

use crate::{
    config::ProviderConfig,
    domain::{Amount, IdempotencyKey},
    model::DeclineReason,
};

/// No simulated call takes longer than this, whatever the distribution's
/// far tail draws, so one sample cannot hold a pool slot for minutes.
const LATENCY_CAP: Duration = Duration::from_secs(30);

/// What the provider decided about an answered charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Declined(DeclineReason),
}

/// The provider's answer: its reference for the charge and the decision.
///
/// A decline is an answer, not an error: like Adyen's "Refused" result it
/// arrives as a successful call whose body says no, so the client span is
/// not marked as failed for a card the bank turned down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswer {
    /// The provider's id for the attempt (`ch_...`), declined ones included.
    pub reference: String,
    pub decision: Decision,
}

/// The call failed: no decision was made and nothing was charged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("payment provider answered 503 Service Unavailable")]
    Unavailable,
}

/// A handle on the simulated provider; clones share the pool and metrics.
#[derive(Clone, Debug)]
pub struct Provider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None` when the median is zero: answer at once (tests).
    latency: Option<LogNormalLatency>,
    decline_rate: f64,
    error_rate: f64,
    pool: Semaphore,
    metrics: ProviderMetrics,
}

// === impl Provider ===

impl Provider {
    /// A provider configured by `config`, its metrics registered in `metrics`.
    pub fn new(config: &ProviderConfig, metrics: &mesh::Metrics) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.latency_p99 >= config.latency_median,
            "--provider-latency-p99 ({:?}) must be at least --provider-latency-median ({:?})",
            config.latency_p99,
            config.latency_median,
        );
        // Two operator-friendly numbers pin down the whole distribution.
        let latency = if config.latency_median.is_zero() {
            None
        } else {
            Some(LogNormalLatency::new(
                config.latency_median,
                config.latency_p99,
            )?)
        };
        let size = usize::try_from(config.concurrency)?;
        Ok(Self {
            inner: Arc::new(Inner {
                latency,
                decline_rate: config.decline_rate,
                error_rate: config.error_rate,
                pool: Semaphore::new(size),
                metrics: ProviderMetrics::register(metrics, i64::from(config.concurrency)),
            }),
        })
    }

    /// `POST /v1/charges`: asks the provider to charge `amount`.
    ///
    /// Waits for a pool slot first; the span and the duration histogram
    /// cover the wait, because that is the latency payments experiences,
    /// and the span records the wait separately (`payment.provider.pool_wait_ms`)
    /// so a trace tells a saturated pool from a slow provider.
    pub async fn charge(
        &self,
        key: &IdempotencyKey,
        amount: &Amount,
    ) -> Result<ProviderAnswer, ProviderError> {
        // OpenTelemetry HTTP client conventions, with `peer.service` naming
        // the dependency in service graphs; `provider.invalid` (RFC 2606)
        // says plainly that no such host is contacted.
        let span = tracing::info_span!(
            "payment provider",
            otel.name = "POST /v1/charges",
            otel.kind = "client",
            otel.status_code = Empty,
            peer.service = "payment-provider",
            server.address = "provider.invalid",
            server.port = 443,
            http.request.method = "POST",
            url.full = "https://provider.invalid/v1/charges",
            http.response.status_code = Empty,
            error.type = Empty,
            payment.idempotency_key = key.as_str(),
            payment.amount_cents = amount.cents(),
            payment.currency = amount.currency().as_str(),
            payment.provider.pool_wait_ms = Empty,
            payment.provider.outcome = Empty,
            payment.provider.reference = Empty,
            payment.decline_reason = Empty,
        );
        self.call().instrument(span).await
    }

    async fn call(&self) -> Result<ProviderAnswer, ProviderError> {
        let inner = &*self.inner;
        let span = tracing::Span::current();
        let start = Instant::now();
        let _slot = {
            let _waiting = GaugeGuard::inc(&inner.metrics.pool_waiting);
            // `acquire` fails only on a closed semaphore; this one never closes.
            inner
                .pool
                .acquire()
                .await
                .map_err(|_| ProviderError::Unavailable)?
        };
        let _in_use = GaugeGuard::inc(&inner.metrics.pool_in_use);
        span.record(
            "payment.provider.pool_wait_ms",
            start.elapsed().as_secs_f64() * 1000.0,
        );

        let (delay, answer) = self.draw();
        tokio::time::sleep(delay).await;

        let outcome = match &answer {
            Ok(answer) => {
                span.record("http.response.status_code", 200);
                span.record("payment.provider.reference", answer.reference.as_str());
                match answer.decision {
                    Decision::Approved => ProviderOutcome::approved,
                    Decision::Declined(reason) => {
                        span.record("payment.decline_reason", reason.as_str());
                        ProviderOutcome::declined
                    }
                }
            }
            Err(_) => {
                span.record("http.response.status_code", 503);
                span.record("otel.status_code", "ERROR");
                span.record("error.type", "503");
                ProviderOutcome::error
            }
        };
        span.record("payment.provider.outcome", outcome.as_str());
        inner
            .metrics
            .requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        inner.metrics.duration.observe(
            start.elapsed().as_secs_f64(),
            TraceExemplar::current(),
            None,
        );
        answer
    }

    /// Draws this call's latency and answer. The thread-local RNG is not
    /// `Send`, so it lives only in this synchronous function, never across
    /// an `.await`.
    fn draw(&self) -> (Duration, Result<ProviderAnswer, ProviderError>) {
        let inner = &*self.inner;
        let mut rng = rand::rng();
        let delay = inner
            .latency
            .as_ref()
            .map_or(Duration::ZERO, |d| d.sample(&mut rng, LATENCY_CAP));
        // Failures first: a failed call makes no decision, and the decline
        // rate is the share of answered calls that are declined.
        if rng.random_bool(inner.error_rate) {
            return (delay, Err(ProviderError::Unavailable));
        }
        let decision = if rng.random_bool(inner.decline_rate) {
            let reason = DeclineReason::ALL[rng.random_range(0..DeclineReason::ALL.len())];
            Decision::Declined(reason)
        } else {
            Decision::Approved
        };
        let reference = format!("ch_{}", uuid::Uuid::new_v4().simple());
        (
            delay,
            Ok(ProviderAnswer {
                reference,
                decision,
            }),
        )
    }
}

// === impl ProviderMetrics ===

/// How a provider call ended (the `outcome` label).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum ProviderOutcome {
    approved,
    declined,
    error,
}

impl ProviderOutcome {
    const ALL: [Self; 3] = [Self::approved, Self::declined, Self::error];

    fn as_str(self) -> &'static str {
        match self {
            Self::approved => "approved",
            Self::declined => "declined",
            Self::error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: ProviderOutcome,
}

/// The provider's metrics, in the service's registry beside the mesh's.
#[derive(Debug)]
struct ProviderMetrics {
    pool_in_use: Gauge,
    pool_waiting: Gauge,
    requests: Family<OutcomeLabels, Counter>,
    duration: HistogramWithExemplars<TraceExemplar>,
}

impl ProviderMetrics {
    fn register(metrics: &mesh::Metrics, pool_size: i64) -> Self {
        let pool_in_use = Gauge::default();
        metrics.register(
            "payments_provider_pool_in_use",
            "Provider calls in flight on this replica",
            pool_in_use.clone(),
        );
        let pool_waiting = Gauge::default();
        metrics.register(
            "payments_provider_pool_waiting",
            "Provider calls waiting for a free slot in this replica's pool",
            pool_waiting.clone(),
        );
        let size = Gauge::<i64>::default();
        size.set(pool_size);
        metrics.register(
            "payments_provider_pool_size",
            "Provider calls this replica may have in flight (--provider-concurrency)",
            size,
        );
        let requests = Family::<OutcomeLabels, Counter>::default();
        // Every outcome exists from the start, at zero, so `rate()` and
        // alerts see the first decline or error rather than a new series.
        for outcome in ProviderOutcome::ALL {
            let _ = requests.get_or_create(&OutcomeLabels { outcome });
        }
        // prometheus-client appends `_total` to counters itself.
        metrics.register(
            "payments_provider_requests",
            "Provider calls by outcome: approved, declined, or error (no answer)",
            requests.clone(),
        );
        let duration = HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter());
        metrics.register_with_unit(
            "payments_provider_request_duration",
            "Provider call latency as payments sees it, waiting for a pool slot included",
            Unit::Seconds,
            duration.clone(),
        );
        Self {
            pool_in_use,
            pool_waiting,
            requests,
            duration,
        }
    }
}

/// Increments a gauge for as long as it lives, so the gauge stays right
/// even when the call is cancelled mid-wait.
struct GaugeGuard<'a>(&'a Gauge);

impl<'a> GaugeGuard<'a> {
    fn inc(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(median_ms: u64, p99_ms: u64, decline_rate: f64, error_rate: f64) -> Provider {
        let identity = mesh::ServiceIdentity {
            name: "payments".into(),
            version: "test",
            instance_id: "test".into(),
        };
        let config = ProviderConfig {
            latency_median: Duration::from_millis(median_ms),
            latency_p99: Duration::from_millis(p99_ms),
            decline_rate,
            error_rate,
            concurrency: 4,
        };
        Provider::new(&config, &mesh::Metrics::new(&identity)).expect("valid provider config")
    }

    #[test]
    fn latency_has_the_configured_median_and_p99() {
        let provider = provider(40, 250, 0.0, 0.0);
        let mut samples: Vec<Duration> = (0..20_000).map(|_| provider.draw().0).collect();
        samples.sort();
        let median = samples[samples.len() / 2].as_secs_f64();
        let p99 = samples[samples.len() * 99 / 100].as_secs_f64();
        assert!((0.036..0.044).contains(&median), "median {median}");
        assert!((0.20..0.31).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn a_zero_median_answers_at_once() {
        assert_eq!(provider(0, 0, 0.0, 0.0).draw().0, Duration::ZERO);
    }

    #[test]
    fn a_p99_below_the_median_is_rejected() {
        let identity = mesh::ServiceIdentity {
            name: "payments".into(),
            version: "test",
            instance_id: "test".into(),
        };
        let config = ProviderConfig {
            latency_median: Duration::from_millis(50),
            latency_p99: Duration::from_millis(10),
            decline_rate: 0.0,
            error_rate: 0.0,
            concurrency: 1,
        };
        assert!(Provider::new(&config, &mesh::Metrics::new(&identity)).is_err());
    }

    #[test]
    fn rates_of_one_always_decline_or_fail() {
        let declining = provider(0, 0, 1.0, 0.0);
        let failing = provider(0, 0, 0.0, 1.0);
        for _ in 0..100 {
            assert!(matches!(
                declining.draw().1,
                Ok(ProviderAnswer {
                    decision: Decision::Declined(_),
                    ..
                })
            ));
            assert!(failing.draw().1.is_err());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_pool_wait_for_a_slot() {
        let provider = provider(100, 100, 0.0, 0.0);
        let key = IdempotencyKey::parse("k").expect("key");
        let amount = Amount::new(100, "USD").expect("amount");
        let start = tokio::time::Instant::now();
        // Pool of 4, constant 100 ms calls: 8 calls take two rounds.
        let calls = (0..8).map(|_| provider.charge(&key, &amount));
        let answers = futures::future::join_all(calls).await;
        assert!(answers.iter().all(Result::is_ok));
        let elapsed = start.elapsed();
        assert!(
            (Duration::from_millis(199)..=Duration::from_millis(201)).contains(&elapsed),
            "{elapsed:?}"
        );
    }
}
