//! One replica of a destination: sends a request to its address with
//! `reqwest`, sorts the errors, and ejects itself for a while when it
//! refuses connections or vanishes under a call.
//!
//! Ejection is expressed as readiness: an ejected endpoint's `poll_ready`
//! is pending until the ejection ends, so the balancer's ready cache stops
//! choosing it and wakes it up again on time (Envoy's outlier detection,
//! in tower terms). An error from `poll_ready` would make the balancer
//! drop the endpoint for good, so it never errs.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::{error::OutboundError, metrics::BalanceMetrics, request::OutboundRequest};

/// How long a replica that refused a connection is left out: doubled on
/// each consecutive ejection, up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct Ejection {
    pub base: Duration,
    pub max: Duration,
}

/// What all endpoints of one destination share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub destination: Arc<str>,
    pub http: reqwest::Client,
    pub ejection: Ejection,
    pub metrics: BalanceMetrics,
    /// Endpoints known and endpoints ejected, to keep at least one in play.
    pub known: AtomicUsize,
    pub ejected: AtomicUsize,
}

#[derive(Debug)]
struct Health {
    ejected_until: Option<Instant>,
    consecutive_ejections: u32,
}

pub(crate) struct Endpoint {
    addr: SocketAddr,
    /// `addr`'s IP as the span attribute records it, formatted once.
    peer_address: Arc<str>,
    shared: Arc<Shared>,
    health: Arc<Mutex<Health>>,
    requests: Counter,
    wake: Option<Pin<Box<Sleep>>>,
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, shared: Arc<Shared>) -> Self {
        let requests = shared.metrics.endpoint_requests(&addr);
        Self {
            addr,
            peer_address: addr.ip().to_string().into(),
            shared,
            health: Arc::new(Mutex::new(Health {
                ejected_until: None,
                consecutive_ejections: 0,
            })),
            requests,
            wake: None,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // A removed endpoint that was ejected no longer counts as ejected.
        let health = self.health.lock().expect("endpoint health lock");
        if health.ejected_until.is_some() {
            self.shared.ejected.fetch_sub(1, Ordering::Relaxed);
            self.shared
                .metrics
                .ejected
                .set(self.shared.ejected.load(Ordering::Relaxed) as i64);
        }
    }
}

/// Marks the endpoint ejected, unless it is the last one in play: with
/// every replica ejected there would be nothing to send to, and a failing
/// call tells the caller more than a queue that waits for an ejection to
/// end (Envoy's `max_ejection_percent`, at 100% minus one).
fn eject(shared: &Shared, health: &Mutex<Health>, addr: SocketAddr, why: &'static str) {
    let mut health = health.lock().expect("endpoint health lock");
    if health.ejected_until.is_some() {
        return;
    }
    let known = shared.known.load(Ordering::Relaxed);
    let ejected = shared.ejected.load(Ordering::Relaxed);
    if ejected + 1 >= known {
        return;
    }
    let factor = 2u32.saturating_pow(health.consecutive_ejections.min(16));
    let duration = shared
        .ejection
        .base
        .saturating_mul(factor)
        .min(shared.ejection.max);
    health.ejected_until = Some(Instant::now() + duration);
    health.consecutive_ejections += 1;
    let now_ejected = shared.ejected.fetch_add(1, Ordering::Relaxed) + 1;
    shared.metrics.ejected.set(now_ejected as i64);
    shared.metrics.ejections.inc();
    tracing::warn!(
        destination = %shared.destination,
        endpoint = %addr,
        ejected_for = ?duration,
        why,
        "endpoint ejected"
    );
}

/// Whether the socket itself timed out (`ETIMEDOUT`): keep-alive probes
/// or sent data went unacknowledged, so the peer is gone without having
/// closed the connection (a killed container, a host off the network).
/// The call's own deadline is reqwest's timer, not an I/O error.
fn peer_lost(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(err) = source {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = err.source();
    }
    false
}

impl Service<OutboundRequest> for Endpoint {
    type Response = reqwest::Response;
    type Error = OutboundError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let until = self
            .health
            .lock()
            .expect("endpoint health lock")
            .ejected_until;
        let Some(until) = until else {
            return Poll::Ready(Ok(()));
        };
        if Instant::now() < until {
            let wake = self
                .wake
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
            wake.as_mut().reset(until);
            if wake.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        // Back in play: the next request is the probe. A success resets the
        // ejection backoff; another refusal ejects it for longer.
        self.wake = None;
        self.health
            .lock()
            .expect("endpoint health lock")
            .ejected_until = None;
        let now_ejected = self.shared.ejected.fetch_sub(1, Ordering::Relaxed) - 1;
        self.shared.metrics.ejected.set(now_ejected as i64);
        tracing::info!(destination = %self.shared.destination, endpoint = %self.addr, "endpoint back in play");
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: OutboundRequest) -> Self::Future {
        self.requests.inc();
        let url = req.request.url_mut();
        // Cannot fail for an http(s) URL with a host, which every
        // destination base is.
        let _ = url.set_ip_host(self.addr.ip());
        let _ = url.set_port(Some(self.addr.port()));
        let span = tracing::Span::current();
        span.record("network.peer.address", &*self.peer_address);
        span.record("network.peer.port", i64::from(self.addr.port()));
        let fut = self.shared.http.execute(req.request);
        let shared = self.shared.clone();
        let health = self.health.clone();
        let addr = self.addr;
        let timeout = req.timeout;
        Box::pin(async move {
            match fut.await {
                Ok(res) => {
                    health
                        .lock()
                        .expect("endpoint health lock")
                        .consecutive_ejections = 0;
                    Ok(res)
                }
                Err(source) => {
                    let destination = shared.destination.clone();
                    let lost = peer_lost(&source);
                    Err(if lost && !source.is_connect() {
                        // Not the call's deadline: the socket gave up on
                        // a peer that stopped answering (see
                        // `crate::Mesh::new`), so the request may or may
                        // not have been handled. A transport error, which
                        // the retry layer repeats only when that is safe.
                        eject(&shared, &health, addr, "the peer stopped answering");
                        OutboundError::Transport {
                            destination,
                            source: source.into(),
                        }
                    } else if source.is_timeout() && !lost {
                        OutboundError::Timeout {
                            destination,
                            timeout,
                        }
                    } else if source.is_connect() {
                        eject(&shared, &health, addr, "the connection failed");
                        OutboundError::Connect {
                            destination,
                            source: source.into(),
                        }
                    } else {
                        OutboundError::Transport {
                            destination,
                            source: source.into(),
                        }
                    })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{error::Error, fmt, io};

    use super::peer_lost;

    /// An error wrapping another, as reqwest wraps hyper wraps io.
    #[derive(Debug)]
    struct Wrapped(Box<dyn Error + 'static>);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn a_socket_timeout_anywhere_in_the_chain_is_a_lost_peer() {
        let socket = io::Error::from(io::ErrorKind::TimedOut);
        let error = Wrapped(Box::new(Wrapped(Box::new(socket))));
        assert!(peer_lost(&error));
    }

    #[test]
    fn a_reset_or_a_timer_is_not_a_lost_peer() {
        let reset = Wrapped(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert!(!peer_lost(&reset));
        // The call's deadline: a timer's error, not the socket's.
        let deadline = Wrapped(Box::new(Wrapped(Box::new(fmt::Error))));
        assert!(!peer_lost(&deadline));
    }
}
