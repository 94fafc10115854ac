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
}

/// Why an outbound call got no response.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The destination did not answer before the deadline.
    #[error("{destination} did not answer within {timeout:?}")]
    Timeout {
        destination: Arc<str>,
        timeout: Duration,
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
                        timeout,
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

/// A client for one destination service.
#[derive(Clone)]
pub struct MeshClient {
    destination: Arc<str>,
    base: reqwest::Url,
    http: reqwest::Client,
    stack: Stack,
}

impl std::fmt::Debug for MeshClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshClient")
            .field("destination", &self.destination)
            .field("base", &self.base.as_str())
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
            destination,
            base,
            http,
            stack: BoxCloneSyncService::new(stack),
        })
    }

    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Starts a request to `path` (relative to the base URL), counted
    /// under `route`.
    pub fn request(&self, method: Method, route: &'static str, path: &str) -> RequestBuilder {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        RequestBuilder {
            client: self.clone(),
            route,
            builder: self.http.request(method, url),
        }
    }

    pub fn get(&self, route: &'static str, path: &str) -> RequestBuilder {
        self.request(Method::GET, route, path)
    }

    pub fn post(&self, route: &'static str, path: &str) -> RequestBuilder {
        self.request(Method::POST, route, path)
    }
}

/// A request being built; [`RequestBuilder::send`] runs it through the stack.
pub struct RequestBuilder {
    client: MeshClient,
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
            .oneshot(OutboundRequest {
                route: self.route,
                request,
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
    let bytes = res.bytes().await.map_err(|e| CallError::Decode {
        destination: destination.clone(),
        message: e.to_string(),
    })?;
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(|e| CallError::Decode {
            destination: destination.clone(),
            message: e.to_string(),
        })
    } else {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (
                "unknown".to_owned(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(CallError::Status {
            destination: destination.clone(),
            status,
            code,
            message,
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
