//! The outbound client: one per destination service, a tower stack over
//! `reqwest`. Typed service clients (`client.rs` in each service) are
//! built on [`MeshClient`] and never build URLs by hand elsewhere.
//!
//! The stack, outermost first (composed in [`MeshClient::new`]): client
//! span → per-edge metrics → circuit breaker → deadline → retries →
//! balancer (discovery, P2C over peak-EWMA) → replica. Each layer is one
//! file here.

mod balance;
mod breaker;
pub mod discovery;
mod endpoint;
pub mod fallback;
mod metrics;
mod retry;
mod timeout;
mod trace;

use std::{collections::HashMap, sync::Arc, time::Duration};

use http::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use tower::{BoxError, ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

use self::{balance::Balancer, endpoint::Shared};
pub use self::{
    breaker::{Breaker, BreakerLayer, BreakerSettings},
    discovery::DestinationSpec,
    endpoint::Ejection,
    metrics::{BreakerState, MetricsLayer, OutboundMetrics},
    retry::{RetryPolicy, RetrySettings},
    timeout::{Deadlines, TimeoutLayer},
    trace::TraceLayer,
};
use crate::{config::OutboundConfig, error::ErrorBody};

/// One outbound call: the request and the route template it is counted
/// under (`/courses/{id}`, never the raw path).
#[derive(Debug)]
pub struct OutboundRequest {
    pub route: &'static str,
    pub request: reqwest::Request,
    /// The call's trace, set by the trace layer for the metrics layer.
    pub(crate) exemplar: Option<crate::metrics::TraceExemplar>,
    /// The call's deadline, set by the timeout layer for error reports.
    pub(crate) timeout: Option<Duration>,
}

impl OutboundRequest {
    pub fn new(route: &'static str, request: reqwest::Request) -> Self {
        Self {
            route,
            request,
            exemplar: None,
            timeout: None,
        }
    }
}

/// Why an outbound call got no response.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The destination did not answer before the deadline.
    #[error("{destination} did not answer in time")]
    Timeout {
        destination: Arc<str>,
        /// The deadline, when known (not for a body that stalled after
        /// the headers came).
        timeout: Option<Duration>,
    },
    /// No connection could be made: the replica is down or unknown.
    #[error("cannot connect to {destination}: {source}")]
    Connect {
        destination: Arc<str>,
        #[source]
        source: BoxError,
    },
    /// The connection broke or the request could not be sent.
    #[error("call to {destination} failed: {source}")]
    Transport {
        destination: Arc<str>,
        #[source]
        source: BoxError,
    },
    /// Discovery knows no replica of the destination.
    #[error("{destination} has no known replicas")]
    NoEndpoints { destination: Arc<str> },
    /// The destination's circuit breaker is open: the call was not made.
    #[error("{destination} is failing; calls are paused (circuit breaker open)")]
    CircuitOpen {
        destination: Arc<str>,
        /// Until the breaker lets a probe through.
        retry_after: Duration,
    },
}

impl OutboundError {
    /// The destination that did not answer.
    pub fn destination(&self) -> &str {
        match self {
            Self::Timeout { destination, .. }
            | Self::Connect { destination, .. }
            | Self::Transport { destination, .. }
            | Self::NoEndpoints { destination }
            | Self::CircuitOpen { destination, .. } => destination,
        }
    }

    /// The `error.type` span attribute for this failure.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Transport { .. } => "transport",
            Self::NoEndpoints { .. } => "no_endpoints",
            Self::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// How long a caller should wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The resilience settings of one destination, from [`OutboundConfig`].
#[derive(Clone, Debug)]
pub struct Policy {
    pub deadlines: Deadlines,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub ejection: Ejection,
    pub discovery_refresh: Duration,
}

impl Policy {
    /// The settings `config` gives `destination`.
    pub fn for_destination(config: &OutboundConfig, destination: &str) -> Self {
        let mut default = config.outbound_timeout;
        let mut routes = HashMap::new();
        for o in config
            .outbound_timeouts
            .iter()
            .filter(|o| o.destination == destination)
        {
            match &o.route {
                Some(route) => {
                    routes.insert(route.clone(), o.timeout);
                }
                None => default = o.timeout,
            }
        }
        Self {
            deadlines: Deadlines { default, routes },
            retry: RetrySettings {
                budget_ratio: config.retry_budget_ratio,
                min_per_second: config.retry_min_per_second,
                max_attempts: config.retry_max_attempts,
                min_backoff: config.retry_backoff,
                max_backoff: config.retry_backoff.saturating_mul(16),
            },
            breaker: BreakerSettings {
                consecutive_failures: config.breaker_consecutive_failures,
                failure_rate: config.breaker_failure_rate,
                min_requests: config.breaker_min_requests,
                window: config.breaker_window,
                open_for: config.breaker_open_for,
                max_open_for: config.breaker_open_for.saturating_mul(8),
                half_open_probes: config.breaker_half_open_probes,
            },
            ejection: Ejection {
                base: config.ejection_time,
                max: config.ejection_time.saturating_mul(16),
            },
            discovery_refresh: config.discovery_refresh,
        }
    }
}

type Stack = BoxCloneSyncService<OutboundRequest, reqwest::Response, OutboundError>;

/// A client for one destination service; cheap to clone.
#[derive(Clone)]
pub struct MeshClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    destination: Arc<str>,
    base: reqwest::Url,
    http: reqwest::Client,
    stack: Stack,
    breaker: Arc<Breaker>,
}

impl std::fmt::Debug for MeshClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshClient")
            .field("destination", &self.inner.destination)
            .field("base", &self.inner.base.as_str())
            .finish()
    }
}

impl MeshClient {
    /// Composes the outbound stack for `destination`, whose replicas
    /// `spec` names (see [`discovery`]); `edge_metrics: false` leaves the
    /// per-edge metrics layer out. Starts its discovery task, so it
    /// must be called inside a Tokio runtime.
    pub(crate) fn new(
        metrics: Arc<OutboundMetrics>,
        http: reqwest::Client,
        destination: &str,
        spec: &str,
        policy: Policy,
        edge_metrics: bool,
    ) -> anyhow::Result<Self> {
        let spec = DestinationSpec::parse(destination, spec)?;
        let destination: Arc<str> = destination.into();
        let shared = Arc::new(Shared {
            destination: destination.clone(),
            http: http.clone(),
            ejection: policy.ejection,
            metrics: metrics::BalanceMetrics::new(metrics.clone(), destination.clone()),
            known: Default::default(),
            ejected: Default::default(),
        });
        let balancer = Balancer::spawn(spec.source, policy.discovery_refresh, shared);
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
            .option_layer(
                edge_metrics.then(|| MetricsLayer::new(metrics.clone(), destination.clone())),
            )
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
        Ok(Self {
            inner: Arc::new(ClientInner {
                destination,
                base: spec.base,
                http,
                stack: BoxCloneSyncService::new(stack),
                breaker,
            }),
        })
    }

    /// The state of this destination's circuit breaker.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    pub fn destination(&self) -> &str {
        &self.inner.destination
    }

    /// Starts a request to the destination's `route`, a template such as
    /// `/courses/{course_id}/lessons/{lesson_id}`: each `{...}` is filled,
    /// in order, with the next of `params`, percent-encoded. The route is
    /// also the label the call is counted and traced under, so the path
    /// and the label cannot drift apart.
    pub fn request(&self, method: Method, route: &'static str, params: &[&str]) -> RequestBuilder {
        let mut url = self.inner.base.clone();
        let path = format!(
            "{}{}",
            url.path().trim_end_matches('/'),
            fill_route(route, params)
        );
        url.set_path(&path);
        RequestBuilder {
            client: self.inner.clone(),
            route,
            builder: self.inner.http.request(method, url),
        }
    }

    pub fn get(&self, route: &'static str, params: &[&str]) -> RequestBuilder {
        self.request(Method::GET, route, params)
    }

    pub fn post(&self, route: &'static str, params: &[&str]) -> RequestBuilder {
        self.request(Method::POST, route, params)
    }
}

/// `route` with each `{...}` replaced by the next parameter, encoded.
fn fill_route(route: &str, params: &[&str]) -> String {
    debug_assert_eq!(
        route.matches('{').count(),
        params.len(),
        "route {route} takes as many parameters as it has placeholders"
    );
    let mut path = String::with_capacity(route.len() + 32);
    let mut params = params.iter();
    let mut rest = route;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        path.push_str(&encode_path_segment(
            params.next().copied().unwrap_or_default(),
        ));
        rest = &rest[close..];
    }
    path.push_str(rest);
    path
}

/// A request being built; [`RequestBuilder::send`] runs it through the stack.
pub struct RequestBuilder {
    client: Arc<ClientInner>,
    route: &'static str,
    builder: reqwest::RequestBuilder,
}

impl RequestBuilder {
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.builder = self.builder.query(query);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn bearer_auth(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    /// Sends the request; an `Err` means no response arrived.
    pub async fn send(self) -> Result<reqwest::Response, OutboundError> {
        let destination = self.client.destination.clone();
        let request = self
            .builder
            .build()
            .map_err(|source| OutboundError::Transport {
                destination,
                source: source.into(),
            })?;
        self.client
            .stack
            .clone()
            .oneshot(OutboundRequest::new(self.route, request))
            .await
    }

    /// Sends and decodes a 2xx JSON body; other statuses become
    /// [`CallError::Status`] with the destination's error code and message.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, CallError> {
        let destination = self.client.destination.clone();
        let res = self.send().await?;
        decode(&destination, res).await
    }
}

/// Why a typed client call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No response (down, timed out, connection broken).
    #[error(transparent)]
    Unavailable(#[from] OutboundError),
    /// The destination answered with an error status.
    #[error("{destination} answered {status}: {message}")]
    Status {
        destination: Arc<str>,
        status: StatusCode,
        code: String,
        message: String,
        /// The whole error body when it was JSON, with any fields beyond
        /// `code` and `message` (a decline's `reason`), for callers that
        /// pass the answer on.
        /// (Boxed: a `Result<_, CallError>` should stay small.)
        body: Option<Box<serde_json::Value>>,
        /// `Retry-After`, when the destination sent one.
        retry_after: Option<String>,
    },
    /// The destination's response body was not what its contract says.
    #[error("{destination} sent an unreadable response: {message}")]
    Decode {
        destination: Arc<str>,
        message: String,
    },
}

impl CallError {
    /// The status the destination answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The destination's error code (`not_found`, ...), if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Decodes a response: 2xx as `T`, anything else as [`CallError::Status`].
pub async fn decode<T: DeserializeOwned>(
    destination: &Arc<str>,
    res: reqwest::Response,
) -> Result<T, CallError> {
    let status = res.status();
    let retry_after = res
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = res.bytes().await.map_err(|e| {
        // The deadline can pass while the body is still arriving: that is
        // the destination not answering in time, not a malformed answer.
        if e.is_timeout() {
            CallError::Unavailable(OutboundError::Timeout {
                destination: destination.clone(),
                timeout: None,
            })
        } else {
            CallError::Decode {
                destination: destination.clone(),
                message: e.to_string(),
            }
        }
    })?;
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(|e| CallError::Decode {
            destination: destination.clone(),
            message: e.to_string(),
        })
    } else {
        let body = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        let (code, message, body) = match body.clone().map(serde_json::from_value::<ErrorBody>) {
            Some(Ok(error)) => (error.error.code, error.error.message, body.map(Box::new)),
            _ => (
                "unknown".to_owned(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                None,
            ),
        };
        Err(CallError::Status {
            destination: destination.clone(),
            status,
            code,
            message,
            body,
            retry_after,
        })
    }
}

/// Everything but RFC 3986 unreserved characters is escaped in a segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment, so a caller's id can never add
/// segments or a query to the route, nor remove any.
///
/// `.` and `..` are the exception percent-encoding cannot cover: URL
/// parsing removes them with the segment before (RFC 3986 section 5.2.4),
/// and the WHATWG URL standard the `url` crate follows treats `%2e` as a
/// dot too, so `/courses/..` would be sent as `/`. No URL can carry them
/// as a value; their dots are sent double-encoded instead, so the call
/// still reaches the route it names (with an id, `%2E`, that matches
/// nothing).
pub fn encode_path_segment(segment: &str) -> String {
    if segment == "." || segment == ".." {
        return segment.replace('.', "%252E");
    }
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::fill_route;

    #[test]
    fn routes_are_filled_in_order_and_encoded() {
        assert_eq!(fill_route("/payments", &[]), "/payments");
        assert_eq!(
            fill_route("/courses/{course_id}", &["c0001"]),
            "/courses/c0001"
        );
        assert_eq!(
            fill_route(
                "/users/{user_id}/courses/{course_id}/progress",
                &["u/1", "c?2"]
            ),
            "/users/u%2F1/courses/c%3F2/progress"
        );
    }
}
