//! [`MeshClient`]: one destination's client, the requests it builds
//! ([`RequestBuilder`]) and how their answers are read ([`decode`]).

use std::sync::Arc;

use http::Method;
use serde::{Serialize, de::DeserializeOwned};
use tower::ServiceExt as _;

use super::{
    Stack,
    breaker::Breaker,
    discovery::DestinationSpec,
    error::{CallError, OutboundError},
    metrics::{BreakerState, OutboundMetrics},
    path::fill_route,
    policy::Policy,
    request::OutboundRequest,
    stack,
};
use crate::error::ErrorBody;

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
    /// A client for `destination`, whose replicas `spec` names (see
    /// [`super::discovery`]), over the stack [`super::stack`] composes;
    /// `edge_metrics: false` leaves the per-edge metrics layer out.
    /// Starts its discovery task, so it must be called inside a Tokio
    /// runtime.
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
        let (stack, breaker) = stack(
            metrics,
            http.clone(),
            &destination,
            spec.source,
            policy,
            edge_metrics,
        );
        Ok(Self {
            inner: Arc::new(ClientInner {
                destination,
                base: spec.base,
                http,
                stack,
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

    /// Sends and returns a 2xx body as it came, unread: for a caller that
    /// passes the destination's JSON on unchanged, and so need not decode
    /// and re-encode it. Other statuses are [`CallError::Status`], as with
    /// [`Self::send_json`].
    pub async fn send_bytes(self) -> Result<bytes::Bytes, CallError> {
        let destination = self.client.destination.clone();
        let res = self.send().await?;
        body(&destination, res).await
    }
}

/// Decodes a response: 2xx as `T`, anything else as [`CallError::Status`].
pub async fn decode<T: DeserializeOwned>(
    destination: &Arc<str>,
    res: reqwest::Response,
) -> Result<T, CallError> {
    let bytes = body(destination, res).await?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Decode {
        destination: destination.clone(),
        message: e.to_string(),
    })
}

/// A 2xx response's body; anything else as [`CallError::Status`].
async fn body(destination: &Arc<str>, res: reqwest::Response) -> Result<bytes::Bytes, CallError> {
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
        Ok(bytes)
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
