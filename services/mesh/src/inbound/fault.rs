//! Applies the faults of [`crate::fault::Faults`] to inbound requests:
//! latency before the handler, an error response or a dropped connection
//! instead of it.
//!
//! Every injection is visible: the server span gets `fault.injected =
//! true`, `fault.kind` and a "fault injected" event, and
//! `fault_injections_total` counts it by route and kind, so a scenario's
//! effect can be told from a real failure on the dashboards and in Jaeger.

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use futures::{
    TryFutureExt as _,
    future::{BoxFuture, Either, MapOk},
};
use http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tower::{BoxError, Layer, Service};
use tracing::Span;

use crate::{
    error::error_response,
    fault::{FaultKind, Faults, Injection, Outcome},
    metrics::Route,
};

#[derive(Clone, Debug)]
pub struct FaultLayer {
    faults: Faults,
}

impl FaultLayer {
    pub fn new(faults: Faults) -> Self {
        Self { faults }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = InjectFaults<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectFaults {
            inner,
            faults: self.faults.clone(),
            series: Arc::new(OnceLock::new()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct InjectFaults<S> {
    inner: S,
    faults: Faults,
    /// Set once this route's injection series exist (see `call`).
    series: Arc<OnceLock<()>>,
}

// === impl InjectFaults ===

type ToBody<B> = fn(Response<B>) -> Response<Body>;

fn to_body<B>(res: Response<B>) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    res.map(Body::new)
}

impl<S, B, ResBody> Service<Request<B>> for InjectFaults<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<
        MapOk<S::Future, ToBody<ResBody>>,
        BoxFuture<'static, Result<Response<Body>, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The route's series exist, at zero, from its first request on,
        // so a dashboard shows 0 injections rather than no data.
        self.series
            .get_or_init(|| self.faults.touch(&Route::of(&req)));
        // No fault anywhere (nearly always): one atomic load, and on.
        if self.faults.is_empty() {
            return Either::Left(self.inner.call(req).map_ok(to_body as ToBody<ResBody>));
        }
        let route = Route::of(&req);
        let Some(injection) = self.faults.injection(route.as_str(), req.method()) else {
            return Either::Left(self.inner.call(req).map_ok(to_body as ToBody<ResBody>));
        };
        self.record(&route, &injection);
        // The ready service goes into the future (it is called after the
        // delay); a clone takes its place for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            if let Some(delay) = injection.delay {
                tokio::time::sleep(delay).await;
            }
            match injection.outcome {
                Outcome::Handler => inner.call(req).await.map(to_body),
                Outcome::Error { status, fault_id } => Ok(injected_error(status, &fault_id)),
                Outcome::Abort => Ok(aborted()),
            }
        }))
    }
}

impl<S> InjectFaults<S> {
    /// Marks the injection on the server span (current here: the trace
    /// layer enters it around `call`) and counts it.
    fn record(&self, route: &Route, injection: &Injection) {
        let span = Span::current();
        span.record("fault.injected", true);
        let kinds: Vec<&str> = injection.kinds().map(FaultKind::as_str).collect();
        span.record("fault.kind", kinds.join(",").as_str());
        for kind in injection.kinds() {
            self.faults.count(route, kind);
            match (&injection.outcome, kind) {
                (_, FaultKind::latency) => tracing::info!(
                    fault.kind = kind.as_str(),
                    fault.delay_ms = injection
                        .delay
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                    "fault injected"
                ),
                // An injected failure is logged as what it looks like to
                // the caller, an error, inside the failing server span: the
                // line that explains the failed request in its trace, and
                // what the logs panels count during a fault.
                (Outcome::Error { status, fault_id }, _) => tracing::error!(
                    fault.kind = kind.as_str(),
                    fault.id = fault_id.as_str(),
                    http.response.status_code = i64::from(status.as_u16()),
                    "fault injected: answering {status}"
                ),
                _ => tracing::error!(
                    fault.kind = kind.as_str(),
                    "fault injected: closing the connection unanswered"
                ),
            }
        }
    }
}

fn injected_error(status: StatusCode, fault_id: &str) -> Response<Body> {
    error_response(
        status,
        "fault_injected",
        format!("this error was injected by fault {fault_id} (admin API)"),
    )
}

/// A response the client never receives: its body fails on the first
/// poll, before hyper has flushed the head, and hyper then closes the
/// connection with nothing written. The client sees the connection close
/// (hyper: "connection closed before message completed"), as when a
/// process dies mid-request. Inside the mesh the request still ends
/// with a status, 500, so the span and the RED metrics count it as the
/// failure it is.
fn aborted() -> Response<Body> {
    let mut res = Response::new(Body::new(AbortBody));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}

/// A body whose first frame is an error.
struct AbortBody;

#[derive(Debug, thiserror::Error)]
#[error("connection aborted by an injected fault")]
struct Aborted;

impl HttpBody for AbortBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        Poll::Ready(Some(Err(Aborted)))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
