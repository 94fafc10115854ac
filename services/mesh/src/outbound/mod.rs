//! The outbound client: one per destination service, a tower stack over
//! `reqwest`. Typed service clients (`client.rs` in each service) are
//! built on [`MeshClient`] and never build URLs by hand elsewhere.

mod metrics;
mod trace;

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use http::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use tower::{ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};

pub use self::{metrics::MetricsLayer, trace::TraceLayer};
use crate::{error::ErrorBody, metrics::Metrics};

/// One outbound call: the request and the route template it is counted
/// under (`/courses/{id}`, never the raw path).
#[derive(Debug)]
pub struct OutboundRequest {
    pub route: &'static str,
    pub request: reqwest::Request,
    /// The call's trace, set by the trace layer for the metrics layer.
    pub(crate) exemplar: Option<crate::metrics::TraceExemplar>,
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
    /// No connection could be made: the destination is down or unknown.
    #[error("cannot connect to {destination}: {source}")]
    Connect {
        destination: Arc<str>,
        #[source]
        source: reqwest::Error,
    },
    /// The connection broke or the request could not be sent.
    #[error("call to {destination} failed: {source}")]
    Transport {
        destination: Arc<str>,
        #[source]
        source: reqwest::Error,
    },
}

impl OutboundError {
    /// The destination that did not answer.
    pub fn destination(&self) -> &str {
        match self {
            Self::Timeout { destination, .. }
            | Self::Connect { destination, .. }
            | Self::Transport { destination, .. } => destination,
        }
    }

    /// The `error.type` span attribute for this failure.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Transport { .. } => "transport",
        }
    }
}

/// The innermost service: sends with `reqwest` and sorts its errors.
#[derive(Clone, Debug)]
struct Send {
    http: reqwest::Client,
    destination: Arc<str>,
    timeout: Duration,
}

impl tower::Service<OutboundRequest> for Send {
    type Response = reqwest::Response;
    type Error = OutboundError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: OutboundRequest) -> Self::Future {
        *req.request.timeout_mut() = Some(self.timeout);
        let fut = self.http.execute(req.request);
        let destination = self.destination.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            fut.await.map_err(|source| {
                if source.is_timeout() {
                    OutboundError::Timeout {
                        destination,
                        timeout: Some(timeout),
                    }
                } else if source.is_connect() {
                    OutboundError::Connect {
                        destination,
                        source,
                    }
                } else {
                    OutboundError::Transport {
                        destination,
                        source,
                    }
                }
            })
        })
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
    /// Composes the outbound stack for `destination` at `base`.
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        http: reqwest::Client,
        destination: &str,
        base: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(base)
            .map_err(|e| anyhow::anyhow!("destination {destination}: bad URL {base:?}: {e}"))?;
        let destination: Arc<str> = destination.into();
        let stack = ServiceBuilder::new()
            // Outermost: the client span covers the whole call, and context
            // is injected from it so the server span becomes its child.
            .layer(TraceLayer::new(destination.clone()))
            // Inside the span: each observation's exemplar is this call.
            .layer(MetricsLayer::new(metrics, destination.clone()))
            .service(Send {
                http: http.clone(),
                destination: destination.clone(),
                timeout,
            });
        Ok(Self {
            inner: Arc::new(ClientInner {
                destination,
                base,
                http,
                stack: BoxCloneSyncService::new(stack),
            }),
        })
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
                source,
            })?;
        self.client
            .stack
            .clone()
            .oneshot(OutboundRequest {
                route: self.route,
                request,
                exemplar: None,
            })
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
