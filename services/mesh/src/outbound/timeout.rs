//! The deadline of an outbound call, per destination and per route.
//!
//! It sits outside the retries: the caller's deadline covers every attempt
//! and the wait for a replica, so a retry can never make a call slower
//! than its caller allowed. It is also handed to `reqwest` per attempt,
//! so a response body that stalls after the headers is cut off too.

use std::{
    collections::HashMap,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::{error::OutboundError, request::OutboundRequest};

/// The deadlines for one destination: a default and per-route overrides.
#[derive(Clone, Debug)]
pub struct Deadlines {
    pub default: Duration,
    /// Keyed by route template (`/courses/{course_id}`).
    pub routes: HashMap<String, Duration>,
}

impl Deadlines {
    pub fn for_route(&self, route: &str) -> Duration {
        self.routes.get(route).copied().unwrap_or(self.default)
    }
}

#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    destination: Arc<str>,
    deadlines: Arc<Deadlines>,
}

impl TimeoutLayer {
    pub fn new(destination: Arc<str>, deadlines: Deadlines) -> Self {
        Self {
            destination,
            deadlines: Arc::new(deadlines),
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            destination: self.destination.clone(),
            deadlines: self.deadlines.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    destination: Arc<str>,
    deadlines: Arc<Deadlines>,
}

// === impl Timeout ===

impl<S> Service<OutboundRequest> for Timeout<S>
where
    S: Service<OutboundRequest, Response = reqwest::Response, Error = OutboundError>,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OutboundError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: OutboundRequest) -> Self::Future {
        let deadline = self.deadlines.for_route(req.route);
        req.timeout = Some(deadline);
        *req.request.timeout_mut() = Some(deadline);
        let fut = self.inner.call(req);
        let destination = self.destination.clone();
        Box::pin(async move {
            match tokio::time::timeout(deadline, fut).await {
                Ok(result) => result,
                Err(_) => Err(OutboundError::Timeout {
                    destination,
                    timeout: Some(deadline),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_route_gets_its_own_deadline() {
        let deadlines = Deadlines {
            default: Duration::from_secs(10),
            routes: HashMap::from([("/slow".to_owned(), Duration::from_millis(50))]),
        };
        let never = tower::service_fn(|_req: OutboundRequest| async {
            std::future::pending::<Result<reqwest::Response, OutboundError>>().await
        });
        let mut svc = TimeoutLayer::new("courses".into(), deadlines).layer(never);
        let start = tokio::time::Instant::now();
        let req = OutboundRequest::new(
            "/slow",
            reqwest::Request::new(http::Method::GET, "http://courses/slow".parse().unwrap()),
        );
        let err = svc.call(req).await.unwrap_err();
        assert!(
            matches!(err, OutboundError::Timeout { timeout: Some(t), .. } if t == Duration::from_millis(50)),
            "{err:?}"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }
}
