//! The metric families every service exports, in one registry.
//!
//! We use the official `prometheus-client` crate rather than the tikv
//! `prometheus` crate because only the former encodes OpenMetrics with
//! exemplars (see `docs/decisions.md`): every latency histogram carries a
//! `trace_id` exemplar, which is how a Grafana latency panel links to the
//! Jaeger trace behind a slow bucket. Names and labels are catalogued in
//! `docs/metrics.md`; keep the two in step.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TraceContextExt;
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{exemplar::HistogramWithExemplars, family::Family, gauge::Gauge, info::Info},
    registry::{Registry, Unit},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{identity::ServiceIdentity, process::ProcessCollector};

/// Request latency buckets in seconds: 1 ms to 10 s, dense where the
/// loopback services actually answer (1–250 ms) so p99 is not smeared over
/// one wide bucket.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The exemplar attached to latency observations: the trace that produced it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

impl TraceExemplar {
    /// The exemplar for the current span's trace, if that trace is sampled.
    ///
    /// Unsampled traces never reach Jaeger, so an exemplar pointing at one
    /// would be a dead link.
    pub fn current() -> Option<Self> {
        Self::of(&tracing::Span::current().context())
    }

    /// The exemplar for the span of `cx`, if its trace is sampled.
    pub fn of(cx: &opentelemetry::Context) -> Option<Self> {
        let span = cx.span();
        let sc = span.span_context();
        (sc.is_valid() && sc.is_sampled()).then(|| Self {
            trace_id: sc.trace_id().to_string(),
        })
    }
}

/// A latency histogram family whose observations carry trace exemplars.
pub type LatencyFamily<L> = Family<L, HistogramWithExemplars<TraceExemplar>>;

pub(crate) fn latency_family<L>() -> LatencyFamily<L>
where
    L: Clone + std::hash::Hash + Eq,
{
    Family::new_with_constructor(|| HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter()))
}

/// A route template as a label value, never a raw path: `/courses/{id}`,
/// or `unmatched` for requests no route matched, so a scan of random paths
/// adds one series, not thousands.
#[derive(Clone, Debug)]
pub enum Route {
    /// An inbound route, as axum matched it (cloning is an `Arc` bump).
    Matched(axum::extract::MatchedPath),
    /// An outbound route template named by a typed client.
    Static(&'static str),
}

impl Route {
    pub const UNMATCHED: Route = Route::Static("unmatched");

    pub fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Static(s) => s,
        }
    }

    /// The route of an inbound request (set by axum's router).
    pub fn of<B>(req: &http::Request<B>) -> Self {
        req.extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or(Self::UNMATCHED, |p| Route::Matched(p.clone()))
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Route {}
impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}
impl EncodeLabelValue for Route {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Labels of the inbound (server) RED metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    pub service: Arc<str>,
    pub method: Method,
    pub route: Route,
    pub status: u16,
}

/// Labels of the in-flight gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub service: Arc<str>,
}

/// Labels of the database client metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbLabels {
    pub service: Arc<str>,
    pub system: &'static str,
    pub operation: &'static str,
    pub collection: &'static str,
    pub outcome: DbOutcome,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DbOutcome {
    success,
    error,
}

/// HTTP methods as a bounded label: anything unusual collapses to
/// `_OTHER`, as the OTel HTTP semantic conventions ask for
/// `http.request.method`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
    _OTHER,
}

impl From<&http::Method> for Method {
    fn from(m: &http::Method) -> Self {
        match *m {
            http::Method::GET => Self::GET,
            http::Method::HEAD => Self::HEAD,
            http::Method::POST => Self::POST,
            http::Method::PUT => Self::PUT,
            http::Method::PATCH => Self::PATCH,
            http::Method::DELETE => Self::DELETE,
            http::Method::OPTIONS => Self::OPTIONS,
            _ => Self::_OTHER,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: String,
    version: String,
    /// Not `instance`: Prometheus sets that label from the scrape target
    /// and would rename ours to `exported_instance`.
    service_instance_id: String,
}

/// The registry every family of a service is registered in, with the
/// families of the inbound stack and of the database. The outbound stack
/// registers its own ([`crate::outbound::OutboundMetrics`]), as do the
/// faults, the load shedding and the event bus.
#[derive(Debug)]
pub struct Metrics {
    pub(crate) service: Arc<str>,
    registry: Mutex<Registry>,
    pub(crate) server_duration: LatencyFamily<ServerLabels>,
    pub(crate) server_in_flight: Family<ServiceLabel, Gauge>,
    pub(crate) db_duration: LatencyFamily<DbLabels>,
}

impl Metrics {
    pub fn new(identity: &ServiceIdentity) -> Self {
        let mut registry = Registry::default();
        let server_duration = latency_family();
        registry.register_with_unit(
            "http_server_request_duration",
            "Inbound HTTP requests by route template and status: rate, errors and duration (RED)",
            Unit::Seconds,
            server_duration.clone(),
        );
        let server_in_flight = Family::default();
        registry.register(
            "http_server_active_requests",
            "Inbound HTTP requests currently being served",
            server_in_flight.clone(),
        );
        let db_duration = latency_family();
        registry.register_with_unit(
            "db_client_operation_duration",
            "Database operations by operation and table",
            Unit::Seconds,
            db_duration.clone(),
        );
        registry.register(
            "build",
            "Build of the running service; always 1",
            Info::new(BuildLabels {
                service: identity.name.to_string(),
                version: identity.version.to_string(),
                service_instance_id: identity.instance_id.to_string(),
            }),
        );
        registry.register_collector(Box::new(ProcessCollector::new()));
        crate::logs::register(&mut registry);
        Self {
            service: identity.name.clone(),
            registry: Mutex::new(registry),
            server_duration,
            server_in_flight,
            db_duration,
        }
    }

    /// Registers a service's own metric (payments' provider pool, say).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .expect("metrics registry lock poisoned")
            .register(name, help, metric);
    }

    /// Like [`Metrics::register`], with a unit suffix (`_seconds`, `_bytes`).
    pub fn register_with_unit(
        &self,
        name: &str,
        help: &str,
        unit: Unit,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .expect("metrics registry lock poisoned")
            .register_with_unit(name, help, unit, metric);
    }

    /// OpenMetrics text, exemplars included.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        let registry = self
            .registry
            .lock()
            .expect("metrics registry lock poisoned");
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// Prometheus text format 0.0.4 for scrapers that do not ask for
    /// OpenMetrics; it has no exemplars.
    pub fn encode_prometheus_text(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        let registry = self
            .registry
            .lock()
            .expect("metrics registry lock poisoned");
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }

    /// The service name metrics are labelled with.
    pub fn service(&self) -> &Arc<str> {
        &self.service
    }

    pub(crate) fn observe_db(
        &self,
        labels: DbLabels,
        seconds: f64,
        exemplar: Option<TraceExemplar>,
    ) {
        self.db_duration
            .get_or_create(&labels)
            .observe(seconds, exemplar, None);
    }
}
