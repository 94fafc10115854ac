//! Load shedding: at most `CONCURRENCY_LIMIT` requests are served at once;
//! one more is answered 503 with `Retry-After: 1` at once, never queued.
//!
//! Under overload a queue only makes every request late (and every
//! caller's deadline pass while it waits); an immediate 503 costs the
//! caller one round trip and lets it retry elsewhere, on another replica,
//! while the admitted requests keep their latency. This is the
//! concurrency-limit half of what linkerd2-proxy and Finagle do at the
//! edge of a service; tower's own `LoadShed` + `ConcurrencyLimit` would
//! answer with an error the router cannot turn into our JSON body.
//!
//! The slot is held until the response body has been sent (or dropped),
//! not just until the handler returns: a streamed body is still work.

use std::{
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as HttpBody;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{BoxError, Layer, Service};

use super::HeldResponse;
use crate::{
    error::error_response,
    metrics::{Metrics, Route, ServiceLabel},
};

/// Labels of the shed counter: which route was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    pub service: Arc<str>,
    pub route: Route,
}

/// The concurrency limit of one service, shared by every route: the
/// limit is on the replica's work, whatever the route.
#[derive(Clone, Debug)]
pub struct ShedLayer {
    /// `None`: no limit.
    slots: Option<Arc<Semaphore>>,
    service: Arc<str>,
    shed: Family<ShedLabels, Counter>,
}

impl ShedLayer {
    /// The limit `limit` (0: none) and its metrics, registered in
    /// `metrics`. Once per service: the families are registered here.
    pub fn new(metrics: &Metrics, limit: usize) -> Self {
        let shed = Family::<ShedLabels, Counter>::default();
        metrics.register(
            "http_server_shed_requests",
            "Inbound requests refused with 503 because the replica was at its concurrency limit",
            shed.clone(),
        );
        let configured = Family::<ServiceLabel, Gauge>::default();
        metrics.register(
            "http_server_concurrency_limit",
            "Inbound requests this replica serves at once before shedding (0: no limit)",
            configured.clone(),
        );
        let service = metrics.service().clone();
        configured
            .get_or_create(&ServiceLabel {
                service: service.clone(),
            })
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
        // `Semaphore::MAX_PERMITS` is far above any sensible limit; a
        // larger one is no limit in practice, and would panic.
        let slots =
            (limit > 0).then(|| Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))));
        Self {
            slots,
            service,
            shed,
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            layer: self.clone(),
            series: Arc::new(OnceLock::new()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Shed<S> {
    inner: S,
    layer: ShedLayer,
    /// Set once this route's shed series exists (see `call`). Shared by
    /// the clones axum makes of the route's service per request.
    series: Arc<OnceLock<()>>,
}

// === impl Shed ===

impl<S> Shed<S> {
    fn labels<B>(&self, req: &Request<B>) -> ShedLabels {
        ShedLabels {
            service: self.layer.service.clone(),
            route: Route::of(req),
        }
    }
}

/// The answer to a request over the limit.
fn overloaded() -> Response<Body> {
    let mut res = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "this replica is at its concurrency limit; retry shortly",
    );
    // One second: long enough for in-flight requests to drain, short
    // enough that a retry soon finds room.
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

impl<S, B, ResBody> Service<Request<B>> for Shed<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The route's series exists, at zero, from its first request on:
        // `rate()` over it is then 0, not "no data", and the catalogue
        // test sees every documented family exported.
        self.series.get_or_init(|| {
            let _ = self.layer.shed.get_or_create(&self.labels(&req));
        });
        let permit = match &self.layer.slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    self.layer.shed.get_or_create(&self.labels(&req)).inc();
                    // Not a log line per request: under overload that
                    // would be thousands a second. The span has it.
                    tracing::debug!("request shed: at the concurrency limit");
                    return ResponseFuture::refused(overloaded());
                }
            },
        };
        ResponseFuture::admitted(self.inner.call(req), permit)
    }
}

/// The future of [`Shed`]: the answer holding its slot until sent, or the
/// 503 of a shed request.
pub type ResponseFuture<F> = HeldResponse<F, OwnedSemaphorePermit>;
