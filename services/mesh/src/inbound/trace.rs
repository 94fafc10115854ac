//! The server span: continues the caller's trace and names the span after
//! the route template.
//!
//! Follows the OpenTelemetry HTTP server semantic conventions (span name
//! `{method} {http.route}`, kind server, `http.*`/`url.*`/`server.*`
//! attributes) and answers with a W3C Trace Context Level 2
//! `traceresponse` header, so whoever made the request can paste the trace
//! id into Jaeger.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use axum::extract::ConnectInfo;
use http::{HeaderValue, Request, Response, header};
use opentelemetry::{global, trace::TraceContextExt as _};
use opentelemetry_http::HeaderExtractor;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{Instrument as _, Span, field::Empty, instrument::Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::Route;

/// The response header carrying the server span's context (W3C Trace
/// Context Level 2, section "traceresponse").
pub const TRACERESPONSE: &str = "traceresponse";

#[derive(Clone, Debug, Default)]
pub struct TraceLayer;

impl TraceLayer {
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
}

// === impl Trace ===

/// Opens the server span for `req`, its parent taken from the request's
/// `traceparent`/`tracestate`/`baggage`.
///
/// A malformed `traceparent` yields an empty context, so the span starts a
/// new trace: the W3C spec's rule, and never a 4xx or 5xx.
fn server_span<B>(req: &Request<B>) -> Span {
    let parent = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(req.headers())));
    let route = Route::of(req);
    let method = req.method().as_str();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let (server_address, server_port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok()),
        None => (host, None),
    };
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = format!("{method} {}", route.as_str()),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route.as_str(),
        url.path = req.uri().path(),
        url.scheme = "http",
        server.address = server_address,
        server.port = server_port,
        network.protocol.version = protocol_version(req.version()),
        user_agent.original = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()),
        client.address = client.map(|c| c.ip().to_string()),
        http.request.header.x_request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
        http.response.status_code = Empty,
        error.type = Empty,
    );
    // Only fails if the span is already started, which it is not.
    let _ = span.set_parent(parent);
    span
}

fn protocol_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "",
    }
}

/// `00-{trace-id}-{span-id}-{flags}` for the span, if it has a valid context.
pub(crate) fn traceresponse(span: &Span) -> Option<HeaderValue> {
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    if !sc.is_valid() {
        return None;
    }
    HeaderValue::from_str(&format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    ))
    .ok()
}

impl<S, B, ResBody> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let span = server_span(&req);
        let traceresponse = traceresponse(&span);
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ResponseFuture {
            inner: inner.instrument(span.clone()),
            span,
            traceresponse,
        }
    }
}

pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        span: Span,
        traceresponse: Option<HeaderValue>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        match &mut result {
            Ok(res) => {
                let status = res.status();
                this.span.record("http.response.status_code", status.as_u16());
                // Server spans are errors only for 5xx: a 4xx is the
                // client's mistake, answered correctly (HTTP semconv).
                if status.is_server_error() {
                    this.span.record("otel.status_code", "ERROR");
                    this.span.record("error.type", status.as_str());
                }
                if let Some(value) = this.traceresponse.take() {
                    res.headers_mut().insert(TRACERESPONSE, value);
                }
            }
            Err(_) => {
                this.span.record("otel.status_code", "ERROR");
                this.span.record("error.type", "_OTHER");
            }
        }
        Poll::Ready(result)
    }
}
