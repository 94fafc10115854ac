//! RED metrics by route template and the in-flight gauge.
//!
//! Sits inside the server span so each observation's exemplar is the
//! request's own trace id.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use prometheus_client::metrics::gauge::Gauge;
use tower::{Layer, Service};

use crate::metrics::{Method, Metrics, Route, ServerLabels, ServiceLabel, TraceExemplar};

#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    in_flight: Gauge,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let in_flight = metrics
            .server_in_flight
            .get_or_create(&ServiceLabel {
                service: metrics.service.clone(),
            })
            .clone();
        Self { metrics, in_flight }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = RecordMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordMetrics {
            inner,
            metrics: self.metrics.clone(),
            in_flight: self.in_flight.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecordMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
    in_flight: Gauge,
}

// === impl RecordMetrics ===

/// Decrements the in-flight gauge when the request ends, including when
/// the client goes away and the future is dropped unfinished.
struct InFlight(Gauge);

impl InFlight {
    fn start(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl<S, B, ResBody> Service<Request<B>> for RecordMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let labels = ServerLabels {
            service: self.metrics.service.clone(),
            method: Method::from(req.method()),
            route: Route::of(&req),
            status: 0,
        };
        // Set by the trace layer above, for sampled requests only.
        let exemplar = req.extensions_mut().remove::<TraceExemplar>();
        ResponseFuture {
            inner: self.inner.call(req),
            metrics: self.metrics.clone(),
            labels: Some(labels),
            exemplar,
            start: Instant::now(),
            _in_flight: InFlight::start(&self.in_flight),
        }
    }
}

pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        metrics: Arc<Metrics>,
        labels: Option<ServerLabels>,
        exemplar: Option<TraceExemplar>,
        start: Instant,
        _in_flight: InFlight,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some(mut labels) = this.labels.take() {
            labels.status = match &result {
                Ok(res) => res.status().as_u16(),
                Err(_) => 500,
            };
            this.metrics.server_duration.get_or_create(&labels).observe(
                this.start.elapsed().as_secs_f64(),
                this.exemplar.take(),
                None,
            );
        }
        Poll::Ready(result)
    }
}
