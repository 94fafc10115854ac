//! Load balancing over a destination's replicas: tower's power-of-two-
//! choices balancer over peak-EWMA latency, fed by the discovery stream.
//!
//! P2C picks two replicas at random and sends to the one with the lower
//! cost (its decaying peak round-trip time × its requests in flight), so a
//! slow replica gets little traffic without anyone configuring weights,
//! and a new one is tried at once (Finagle and Linkerd balance this way).
//! The balancer is not `Clone`, so it runs behind a `Buffer` task that all
//! clones of the client share.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use tower::{
    BoxError, Service, balance::p2c::Balance, buffer::Buffer, load::PeakEwmaDiscover,
    load::completion::CompleteOnResponse,
};

use super::{
    discovery::{self, Changes, EndpointCount, Source},
    endpoint::{Endpoint, Shared},
    error::OutboundError,
    request::OutboundRequest,
};

/// Requests that may wait for the balancer at once; beyond it callers
/// wait for a slot (the inbound concurrency limit bounds them anyway).
const BUFFER: usize = 1024;

/// Round-trip time assumed for a replica before it has answered: low, so a
/// new replica gets traffic at once rather than after the others slow down.
const DEFAULT_RTT: Duration = Duration::from_millis(5);

/// How fast a replica's latency estimate forgets a peak.
const DECAY: Duration = Duration::from_secs(10);

type Balanced = Balance<PeakEwmaDiscover<Changes<Endpoint>>, OutboundRequest>;

/// The balanced destination: fails fast when discovery found no replica.
#[derive(Clone)]
pub(crate) struct Balancer {
    destination: Arc<str>,
    buffer: Buffer<OutboundRequest, <Balanced as Service<OutboundRequest>>::Future>,
    endpoints: EndpointCount,
}

impl Balancer {
    /// Starts discovery and the balancer task for one destination.
    pub(crate) fn spawn(source: Source, refresh: Duration, shared: Arc<Shared>) -> Self {
        let destination = shared.destination.clone();
        let make = {
            let shared = shared.clone();
            move |addr| Endpoint::new(addr, shared.clone())
        };
        let on_update = {
            let shared = shared.clone();
            move |n: usize| {
                shared.known.store(n, std::sync::atomic::Ordering::Relaxed);
                shared.metrics.known.set(n as i64);
            }
        };
        let (changes, endpoints) =
            discovery::spawn(destination.clone(), source, refresh, make, on_update);
        let discover = PeakEwmaDiscover::new::<OutboundRequest>(
            changes,
            DEFAULT_RTT,
            DECAY,
            CompleteOnResponse::default(),
        );
        let balance: Balanced = Balance::new(discover);
        Self {
            destination,
            buffer: Buffer::new(balance, BUFFER),
            endpoints,
        }
    }
}

impl Service<OutboundRequest> for Balancer {
    type Response = reqwest::Response;
    type Error = OutboundError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OutboundError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.buffer
            .poll_ready(cx)
            .map_err(|e| to_outbound(&self.destination, e))
    }

    fn call(&mut self, req: OutboundRequest) -> Self::Future {
        let destination = self.destination.clone();
        // The buffer slot is reserved by `poll_ready`: the request goes in
        // now; only the wait for discovery's first answer is deferred.
        let known = *self.endpoints.borrow();
        if known == Some(0) {
            return Box::pin(async move { Err(OutboundError::NoEndpoints { destination }) });
        }
        let fut = self.buffer.call(req);
        // Only until discovery's first answer is the watch needed.
        let mut endpoints = known.is_none().then(|| self.endpoints.clone());
        Box::pin(async move {
            if let Some(endpoints) = &mut endpoints {
                // Just started: wait for discovery's first answer (the
                // deadline outside bounds the wait), then fail fast if it
                // found nobody.
                let found = endpoints.wait_for(Option::is_some).await.map(|n| *n);
                if matches!(found, Ok(Some(0))) {
                    return Err(OutboundError::NoEndpoints { destination });
                }
            }
            fut.await.map_err(|e| to_outbound(&destination, e))
        })
    }
}

/// The balancer and buffer box errors; ours come back out unchanged.
fn to_outbound(destination: &Arc<str>, error: BoxError) -> OutboundError {
    match error.downcast::<OutboundError>() {
        Ok(e) => *e,
        Err(other) => OutboundError::Transport {
            destination: destination.clone(),
            source: other,
        },
    }
}
