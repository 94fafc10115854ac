//! Per-edge metrics: one histogram series per source, destination, route
//! template, status and outcome, with the call's trace as exemplar.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::{OutboundError, OutboundRequest};
use crate::metrics::{EdgeLabels, Method, Metrics, Outcome, Route};

#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    destination: Arc<str>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>, destination: Arc<str>) -> Self {
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
    metrics: Arc<Metrics>,
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
            source: self.metrics.service().clone(),
            destination: self.destination.clone(),
            method: Method::from(req.request.method()),
            route: Route::Static(req.route),
            status: 0,
            outcome: Outcome::success,
        };
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
                Err(_) => (0, Outcome::error),
            };
            metrics.client_duration.get_or_create(&labels).observe(
                start.elapsed().as_secs_f64(),
                exemplar,
                None,
            );
            result
        })
    }
}
