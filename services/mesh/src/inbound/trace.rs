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
use opentelemetry::{baggage::BaggageExt as _, trace::TraceContextExt as _};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{Instrument as _, Span, field::Empty, instrument::Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::{Method, TraceExemplar};

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
/// `traceparent`/`tracestate`/`baggage`, each checked first (see
/// [`super::context`]).
///
/// A malformed `traceparent` yields an empty context, so the span starts a
/// new trace: the W3C spec's rule, and never a 4xx or 5xx.
///
/// Integer attributes are recorded as `i64`: `tracing-opentelemetry` turns
/// unsigned values into strings.
fn server_span<B>(req: &Request<B>) -> Span {
    let parent = super::context::extract(req.headers());
    // Semconv: without a matched route the name is the method alone and
    // `http.route` is absent (a raw path would explode span cardinality).
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str());
    // Semconv: a method outside the known set is `_OTHER` (the original in
    // `http.request.method_original`), and the span name says `HTTP`: a
    // caller must not be able to mint span names.
    let (method, method_original) = match Method::from(req.method()) {
        Method::_OTHER => ("_OTHER", Some(bounded(req.method().as_str()))),
        _ => (req.method().as_str(), None),
    };
    let verb = method_original.map_or(method, |_| "HTTP");
    let name = match route {
        Some(route) => format!("{verb} {route}"),
        None => verb.to_owned(),
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let (server_address, server_port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok()),
        None => (host, None),
    };
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(bounded)
    };
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.request.method_original = method_original,
        http.route = route,
        // Only on matched routes: an unknown path is whatever a scanner or
        // a confused client sent (credentials included), and says nothing
        // a 404 count does not.
        url.path = route.map(|_| bounded(req.uri().path())),
        url.scheme = "http",
        server.address = bounded(server_address),
        server.port = server_port.map(i64::from),
        network.protocol.version = protocol_version(req.version()),
        user_agent.original = header(header::USER_AGENT.as_str()),
        client.address = client.map(|c| c.ip().to_string()),
        "http.request.header.x-request-id" = header("x-request-id"),
        http.response.status_code = Empty,
        error.type = Empty,
        // Set by the fault layer when the admin API's faults hit this
        // request, so injected failures can be told from real ones.
        fault.injected = Empty,
        fault.kind = Empty,
    );
    copy_baggage(&span, &parent);
    // Only fails if the span is already started, which it is not.
    let _ = span.set_parent(parent);
    span
}

/// Caller-controlled text on a span is cut at 256 bytes (on a character
/// boundary): attribute values are exported and stored per span.
fn bounded(value: &str) -> &str {
    const MAX: usize = 256;
    if value.len() <= MAX {
        return value;
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Copies the allow-listed baggage entries onto the span (what the
/// OpenTelemetry contrib `BaggageSpanProcessor` does), bounded in length:
/// baggage is caller-supplied. This is the only place the mesh reads
/// baggage, and it only describes the request: baggage is never trusted
/// for anything (who the caller is, what it may do).
fn copy_baggage(span: &Span, cx: &opentelemetry::Context) {
    let keys = crate::baggage::attribute_keys();
    if keys.is_empty() {
        return;
    }
    let baggage = cx.baggage();
    for (key, attribute) in keys {
        if let Some(value) = baggage.get(key.as_str()) {
            let value: String = value.as_str().chars().take(128).collect();
            span.set_attribute(attribute.clone(), value);
        }
    }
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

/// The `traceresponse` value (`00-{trace-id}-{span-id}-{flags}`) and the
/// metrics exemplar of the span, read from its context once: looking the
/// context up is the costliest step of the layer.
fn trace_ids(span: &Span) -> (Option<HeaderValue>, Option<TraceExemplar>) {
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    if !sc.is_valid() {
        return (None, None);
    }
    let trace_id = sc.trace_id().to_string();
    let header = HeaderValue::from_str(&format!(
        "00-{trace_id}-{}-{:02x}",
        sc.span_id(),
        sc.trace_flags().to_u8()
    ))
    .ok();
    (
        header,
        sc.is_sampled().then_some(TraceExemplar { trace_id }),
    )
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let span = server_span(&req);
        let (traceresponse, exemplar) = trace_ids(&span);
        // For the metrics layer below, which would otherwise look the
        // context up again.
        if let Some(exemplar) = exemplar {
            req.extensions_mut().insert(exemplar);
        }
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
                this.span
                    .record("http.response.status_code", i64::from(status.as_u16()));
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
