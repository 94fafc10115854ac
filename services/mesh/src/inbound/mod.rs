//! The inbound stack every service puts in front of its API routes.

#[doc(hidden)]
pub mod context;
mod fault;
mod held;
pub mod limits;
mod metrics;
mod shed;
mod trace;

use std::sync::Arc;

use tower::{
    ServiceBuilder,
    layer::util::{Identity, Stack},
    util::Either,
};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use self::{
    fault::{FaultLayer, InjectFaults},
    held::HeldResponse,
    metrics::{MetricsLayer, RecordMetrics},
    shed::{Shed, ShedLabels, ShedLayer},
    trace::{TRACERESPONSE, Trace, TraceLayer},
};
use crate::{fault::Faults, metrics::Metrics};

/// The inbound layers, outermost first.
pub type InboundLayer = Stack<
    FaultLayer,
    Stack<
        ShedLayer,
        Stack<
            Either<MetricsLayer, Identity>,
            Stack<
                TraceLayer,
                Stack<PropagateRequestIdLayer, Stack<SetRequestIdLayer<MakeRequestUuid>, Identity>>,
            >,
        >,
    >,
>;

/// Composes the inbound stack. `shed` and `faults` are made once per
/// service (they own the concurrency slots and the fault list every route
/// shares). `metrics: None` leaves the RED layer out (`METRICS_ENABLED=false`,
/// for measuring what it costs). The order matters:
pub fn layer(metrics: Option<Arc<Metrics>>, shed: ShedLayer, faults: Faults) -> InboundLayer {
    ServiceBuilder::new()
        // Outermost: a request id exists (taken from `x-request-id` or
        // made) before anything logs, and is echoed on every response.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        // The server span next, so everything below (metrics exemplars,
        // handler logs, database and outbound spans) is inside the trace.
        .layer(TraceLayer::new())
        // Metrics inside the span: the exemplar is this request's trace.
        // Outside shedding and faults, so their 503s and injected errors
        // are counted like any other answer.
        .option_layer(metrics.map(MetricsLayer::new))
        // Shedding inside the span and the metrics (a shed request is a
        // traced 503 with its latency observed) but before anything that
        // does work or waits: refusing must stay cheaper than serving.
        .layer(shed)
        // Faults inside shedding: an injected delay holds a concurrency
        // slot like a slow handler would (so latency faults can drive a
        // replica into shedding), and a shed request is never delayed.
        .layer(FaultLayer::new(faults))
        .into_inner()
}
