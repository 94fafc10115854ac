//! The outbound stack's metrics, registered by the stack itself (as
//! linkerd2-proxy's stacks own theirs): per-edge latency, one histogram
//! series per source, destination, route template, status and outcome,
//! with the call's trace as exemplar; and the families the resilience
//! layers report through (replicas, retries, breaker), so every mechanism
//! is visible on a dashboard.

use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Unit,
};
use tower::{Layer, Service};

use super::{error::OutboundError, fallback, request::OutboundRequest};
use crate::metrics::{LatencyFamily, Method, Metrics, Route, latency_family};

/// How an outbound call ended, from the caller's side.
///
/// A 4xx is `success`: the destination answered and the edge worked; the
/// caller's own handling of, say, a declined payment is not an edge failure
/// (the same classification Linkerd uses).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    success,
    /// No response, or a 5xx.
    error,
    /// The deadline passed.
    timeout,
    /// The circuit breaker refused the call without making it.
    circuit_open,
    /// The call failed and the caller served a fallback instead
    /// (see `outbound::fallback`).
    fallback,
}

/// Labels of the per-edge (client) metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    pub source: Arc<str>,
    pub destination: Arc<str>,
    pub method: Method,
    pub route: Route,
    /// The response status, or `0` when no response arrived.
    pub status: u16,
    pub outcome: Outcome,
}

/// Labels naming one edge's destination.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub source: Arc<str>,
    pub destination: Arc<str>,
}

/// Labels naming one replica of a destination.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub source: Arc<str>,
    pub destination: Arc<str>,
    /// `ip:port` of the replica: bounded by the number of replicas.
    pub endpoint: String,
}

/// Why a call was retried.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RetryReason {
    /// The replica refused the connection.
    connect,
    /// The connection broke before a response arrived.
    transport,
    /// The replica answered 502, 503 or 504.
    unavailable,
}

impl RetryReason {
    pub const ALL: [Self; 3] = [Self::connect, Self::transport, Self::unavailable];
}

/// Per destination, not per route: every series can then exist from the
/// start at zero, which `rate()` and alerts need.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub source: Arc<str>,
    pub destination: Arc<str>,
    pub reason: RetryReason,
}

/// A circuit breaker's state.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum BreakerState {
    closed,
    half_open,
    open,
}

impl BreakerState {
    pub const ALL: [Self; 3] = [Self::closed, Self::half_open, Self::open];

    /// The gauge value: ordered by severity, so `max` over replicas is the
    /// worst state.
    pub fn as_gauge(self) -> i64 {
        match self {
            Self::closed => 0,
            Self::half_open => 1,
            Self::open => 2,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub source: Arc<str>,
    pub destination: Arc<str>,
    pub state: BreakerState,
}

/// The outbound families, registered once per service (by `Mesh::new`)
/// in its [`Metrics`] registry, shared by every client it makes.
#[derive(Debug)]
pub struct OutboundMetrics {
    /// The `source` label: the calling service.
    source: Arc<str>,
    duration: LatencyFamily<EdgeLabels>,
    endpoints: Family<DestinationLabels, Gauge>,
    endpoints_ejected: Family<DestinationLabels, Gauge>,
    ejections: Family<DestinationLabels, Counter>,
    endpoint_requests: Family<EndpointLabels, Counter>,
    pub(crate) retries: Family<RetryLabels, Counter>,
    pub(crate) retries_exhausted: Family<DestinationLabels, Counter>,
    pub(crate) breaker_state: Family<DestinationLabels, Gauge>,
    pub(crate) breaker_transitions: Family<TransitionLabels, Counter>,
}

impl OutboundMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let m = Self {
            source: metrics.service().clone(),
            duration: latency_family(),
            endpoints: Family::default(),
            endpoints_ejected: Family::default(),
            ejections: Family::default(),
            endpoint_requests: Family::default(),
            retries: Family::default(),
            retries_exhausted: Family::default(),
            breaker_state: Family::default(),
            breaker_transitions: Family::default(),
        };
        metrics.register_with_unit(
            "http_client_request_duration",
            "Outbound calls per edge (source -> destination), by route template, status and outcome",
            Unit::Seconds,
            m.duration.clone(),
        );
        metrics.register(
            "http_client_endpoints",
            "Replicas discovery currently knows per destination",
            m.endpoints.clone(),
        );
        metrics.register(
            "http_client_endpoints_ejected",
            "Replicas currently left out of balancing after refusing connections",
            m.endpoints_ejected.clone(),
        );
        metrics.register(
            "http_client_endpoint_ejections",
            "Times a replica was ejected for refusing a connection",
            m.ejections.clone(),
        );
        metrics.register(
            "http_client_endpoint_requests",
            "Requests sent to each replica (attempts, retries included): how the balancer spreads load",
            m.endpoint_requests.clone(),
        );
        metrics.register(
            "http_client_retries",
            "Retries of idempotent calls, by reason",
            m.retries.clone(),
        );
        metrics.register(
            "http_client_retry_budget_exhausted",
            "Retries not made because the destination's retry budget was spent",
            m.retries_exhausted.clone(),
        );
        metrics.register(
            "http_client_circuit_breaker_state",
            "Circuit breaker state per destination: 0 closed, 1 half-open, 2 open",
            m.breaker_state.clone(),
        );
        metrics.register(
            "http_client_circuit_breaker_transitions",
            "Circuit breaker state changes, by the state entered",
            m.breaker_transitions.clone(),
        );
        m
    }

    /// The `source` label of every family: the calling service.
    pub(crate) fn source(&self) -> &Arc<str> {
        &self.source
    }

    /// The labels naming the edge to `destination`.
    pub(crate) fn edge(&self, destination: &Arc<str>) -> DestinationLabels {
        DestinationLabels {
            source: self.source.clone(),
            destination: destination.clone(),
        }
    }
}

#[cfg(test)]
impl OutboundMetrics {
    /// A registry for a service named `gateway`, with the outbound
    /// families registered in it.
    pub(crate) fn for_tests() -> (Arc<Metrics>, Arc<Self>) {
        let metrics = Arc::new(Metrics::new(&crate::identity::ServiceIdentity {
            name: "gateway".into(),
            version: "test",
            instance_id: "i".into(),
        }));
        let outbound = Arc::new(Self::register(&metrics));
        (metrics, outbound)
    }
}

/// One destination's handles into the balancer families.
#[derive(Clone, Debug)]
pub(crate) struct BalanceMetrics {
    labels: DestinationLabels,
    families: Arc<OutboundMetrics>,
    pub known: Gauge,
    pub ejected: Gauge,
    pub ejections: Counter,
}

impl BalanceMetrics {
    pub(crate) fn new(metrics: Arc<OutboundMetrics>, destination: Arc<str>) -> Self {
        let labels = metrics.edge(&destination);
        let outbound = &*metrics;
        let known = outbound.endpoints.get_or_create(&labels).clone();
        let ejected = outbound.endpoints_ejected.get_or_create(&labels).clone();
        let ejections = outbound.ejections.get_or_create(&labels).clone();
        // The event counters of this edge exist from the start, at zero.
        let _ = outbound.retries_exhausted.get_or_create(&labels);
        for reason in RetryReason::ALL {
            let _ = outbound.retries.get_or_create(&RetryLabels {
                source: labels.source.clone(),
                destination: labels.destination.clone(),
                reason,
            });
        }
        for state in BreakerState::ALL {
            let _ = outbound
                .breaker_transitions
                .get_or_create(&TransitionLabels {
                    source: labels.source.clone(),
                    destination: labels.destination.clone(),
                    state,
                });
        }
        Self {
            known,
            ejected,
            ejections,
            labels,
            families: metrics,
        }
    }

    pub(crate) fn endpoint_requests(&self, addr: &SocketAddr) -> Counter {
        self.families
            .endpoint_requests
            .get_or_create(&EndpointLabels {
                source: self.labels.source.clone(),
                destination: self.labels.destination.clone(),
                endpoint: addr.to_string(),
            })
            .clone()
    }
}

#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Arc<OutboundMetrics>,
    destination: Arc<str>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<OutboundMetrics>, destination: Arc<str>) -> Self {
        Self {
            metrics,
            destination,
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = RecordMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordMetrics {
            inner,
            metrics: self.metrics.clone(),
            destination: self.destination.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecordMetrics<S> {
    inner: S,
    metrics: Arc<OutboundMetrics>,
    destination: Arc<str>,
}

// === impl RecordMetrics ===

impl<S> Service<OutboundRequest> for RecordMetrics<S>
where
    S: Service<OutboundRequest, Response = reqwest::Response, Error = OutboundError>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OutboundError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: OutboundRequest) -> Self::Future {
        // Set by the trace layer above.
        let exemplar = req.exemplar.take();
        let mut labels = EdgeLabels {
            source: self.metrics.source().clone(),
            destination: self.destination.clone(),
            method: Method::from(req.request.method()),
            route: Route::Static(req.route),
            status: 0,
            outcome: Outcome::success,
        };
        // The caller said it has a fallback for this call: a failure is
        // then served degraded, and counted as such rather than as an error.
        let has_fallback = fallback::in_scope();
        let metrics = self.metrics.clone();
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            (labels.status, labels.outcome) = match &result {
                Ok(res) if res.status().is_server_error() => {
                    (res.status().as_u16(), Outcome::error)
                }
                Ok(res) => (res.status().as_u16(), Outcome::success),
                Err(OutboundError::Timeout { .. }) => (0, Outcome::timeout),
                Err(OutboundError::CircuitOpen { .. }) => (0, Outcome::circuit_open),
                Err(_) => (0, Outcome::error),
            };
            if has_fallback && labels.outcome != Outcome::success {
                labels.outcome = Outcome::fallback;
            }
            metrics.duration.get_or_create(&labels).observe(
                start.elapsed().as_secs_f64(),
                exemplar,
                None,
            );
            result
        })
    }
}
