//! The inbound stack every service puts in front of its API routes.

mod metrics;
mod trace;

use std::sync::Arc;

use tower::{ServiceBuilder, layer::util::Stack};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use self::{
    metrics::{MetricsLayer, RecordMetrics},
    trace::{TRACERESPONSE, Trace, TraceLayer},
};
use crate::metrics::Metrics;

/// The inbound layers, outermost first.
pub type InboundLayer = Stack<
    MetricsLayer,
    Stack<
        TraceLayer,
        Stack<
            PropagateRequestIdLayer,
            Stack<SetRequestIdLayer<MakeRequestUuid>, tower::layer::util::Identity>,
        >,
    >,
>;

/// Composes the inbound stack. The order matters:
pub fn layer(metrics: Arc<Metrics>) -> InboundLayer {
    ServiceBuilder::new()
        // Outermost: a request id exists (taken from `x-request-id` or
        // made) before anything logs, and is echoed on every response.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        // The server span next, so everything below (metrics exemplars,
        // handler logs, database and outbound spans) is inside the trace.
        .layer(TraceLayer::new())
        // Metrics inside the span: the exemplar is this request's trace.
        .layer(MetricsLayer::new(metrics))
        .into_inner()
}
