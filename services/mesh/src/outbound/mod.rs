//! The outbound client: one per destination service, a tower stack over
//! `reqwest`. Typed service clients (`client.rs` in each service) are
//! built on [`MeshClient`] and never build URLs by hand elsewhere.
//!
//! The stack, outermost first (composed in [`stack`], below): client span
//! → per-edge metrics → circuit breaker → deadline → retries → balancer
//! (discovery, P2C over peak-EWMA) → replica. Each layer is one file here;
//! beside them, the client and its requests (`client.rs`), what every
//! layer passes on (`request.rs`, `error.rs`), each destination's settings
//! (`policy.rs`), paths from route templates (`path.rs`) and the stack's
//! metrics (`metrics.rs`).

mod balance;
mod breaker;
mod client;
pub mod discovery;
mod endpoint;
mod error;
pub mod fallback;
mod metrics;
mod path;
mod policy;
mod request;
mod retry;
mod timeout;
mod trace;

use std::sync::Arc;

use tower::{ServiceBuilder, util::BoxCloneSyncService};

use self::{balance::Balancer, discovery::Source, endpoint::Shared, metrics::BalanceMetrics};
pub use self::{
    breaker::{Breaker, BreakerLayer, BreakerSettings},
    client::{MeshClient, RequestBuilder, decode},
    discovery::DestinationSpec,
    endpoint::Ejection,
    error::{CallError, OutboundError},
    metrics::{BreakerState, MetricsLayer, OutboundMetrics},
    path::encode_path_segment,
    policy::Policy,
    request::OutboundRequest,
    retry::{RetryPolicy, RetrySettings},
    timeout::{Deadlines, TimeoutLayer},
    trace::TraceLayer,
};

/// One destination's stack, as a client holds it (cloned per call).
pub(crate) type Stack = BoxCloneSyncService<OutboundRequest, reqwest::Response, OutboundError>;

/// Composes the stack for `destination`, whose replicas `source` finds,
/// with `policy`'s settings; `edge_metrics: false` leaves the per-edge
/// metrics layer out. Returns the breaker beside it, whose state the
/// client reports. Starts the discovery task: inside a Tokio runtime only.
pub(crate) fn stack(
    metrics: Arc<OutboundMetrics>,
    http: reqwest::Client,
    destination: &Arc<str>,
    source: Source,
    policy: Policy,
    edge_metrics: bool,
) -> (Stack, Arc<Breaker>) {
    let shared = Arc::new(Shared {
        destination: destination.clone(),
        http,
        ejection: policy.ejection,
        metrics: BalanceMetrics::new(metrics.clone(), destination.clone()),
        known: Default::default(),
        ejected: Default::default(),
    });
    let balancer = Balancer::spawn(source, policy.discovery_refresh, shared);
    let breaker = Arc::new(Breaker::new(
        policy.breaker,
        metrics.clone(),
        destination.clone(),
    ));
    let stack = ServiceBuilder::new()
        // Outermost: the client span covers the whole call (retries and
        // the wait for a replica included), and context is injected
        // from it so the server span becomes its child.
        .layer(TraceLayer::new(destination.clone()))
        // Inside the span, so each observation's exemplar is this call;
        // one observation per call as the caller saw it, breaker
        // refusals and timeouts included (retries are counted apart).
        // Left out with `METRICS_ENABLED=false`.
        .option_layer(edge_metrics.then(|| MetricsLayer::new(metrics.clone(), destination.clone())))
        // Outside the deadline and retries: it judges whole calls, and
        // an open breaker neither waits nor spends retry budget.
        .layer(BreakerLayer::new(breaker.clone()))
        // The caller's deadline bounds every attempt together.
        .layer(TimeoutLayer::new(destination.clone(), policy.deadlines))
        // Each attempt goes back through the balancer, so a retry lands
        // on another replica when the first one failed.
        .layer(tower::retry::RetryLayer::new(RetryPolicy::new(
            policy.retry,
            metrics,
            destination.clone(),
        )))
        .service(balancer);
    (BoxCloneSyncService::new(stack), breaker)
}
