//! The client span of an outbound call, and W3C context injection.
//!
//! We inject `traceparent`/`tracestate`/`baggage` ourselves with
//! `opentelemetry-http`'s `HeaderInjector`: `reqwest-tracing`'s
//! OpenTelemetry support trails the SDK version we use and silently
//! injected nothing when tried. What the SDK's propagator drops (the W3C
//! Level 2 random flag, a `tracestate` its key check refuses) is put back
//! by `inbound::context::complete_injection`.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use opentelemetry::global;
use opentelemetry_http::HeaderInjector;
use tower::{Layer, Service};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{error::OutboundError, request::OutboundRequest};
use crate::metrics::TraceExemplar;

#[derive(Clone, Debug)]
pub struct TraceLayer {
    destination: Arc<str>,
}

impl TraceLayer {
    pub fn new(destination: Arc<str>) -> Self {
        Self { destination }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            destination: self.destination.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Trace<S> {
    inner: S,
    destination: Arc<str>,
}

// === impl Trace ===

impl<S> Service<OutboundRequest> for Trace<S>
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
        let url = req.request.url();
        // HTTP client semantic conventions: name `{method} {url.template}`,
        // kind client; `peer.service` names the logical destination so
        // Jaeger's dependency graph shows services, not ports.
        let span = tracing::info_span!(
            "HTTP call",
            otel.name = format!("{} {}", req.request.method(), req.route),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = req.request.method().as_str(),
            url.full = url.as_str(),
            url.template = req.route,
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default().map(i64::from),
            peer.service = &*self.destination,
            network.peer.address = Empty,
            network.peer.port = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let cx = span.context();
        let headers = req.request.headers_mut();
        global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
        // Then what the SDK's span context cannot carry: the caller's
        // random-trace-id flag and a `tracestate` the SDK refused (W3C
        // Trace Context Level 2, see `inbound::context`).
        crate::inbound::context::complete_injection(&cx, headers);
        // For the metrics layer below, which would otherwise look the
        // context up again.
        req.exemplar = TraceExemplar::of(&cx);
        // Inside the span: the layers below call their inner services
        // here (the first attempt, the balancer's buffer) and record on it.
        let fut = span.in_scope(|| self.inner.call(req));
        let record_on = span.clone();
        Box::pin(
            async move {
                let result = fut.await;
                match &result {
                    Ok(res) => {
                        let status = res.status();
                        record_on.record("http.response.status_code", i64::from(status.as_u16()));
                        // Client spans mark 4xx too: from the caller's side
                        // the call did not do what it asked (HTTP semconv).
                        if status.is_client_error() || status.is_server_error() {
                            record_on.record("otel.status_code", "ERROR");
                            record_on.record("error.type", status.as_str());
                        }
                    }
                    Err(error) => {
                        record_on.record("otel.status_code", "ERROR");
                        record_on.record("error.type", error.kind_str());
                        // The breaker logs when it opens; a line per refused
                        // call would flood the log exactly when it matters.
                        if matches!(error, OutboundError::CircuitOpen { .. }) {
                            tracing::debug!(error = %error, "outbound call refused");
                        } else {
                            tracing::warn!(error = %error, "outbound call failed");
                        }
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}
