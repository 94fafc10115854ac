//! The per-client cap on requests in flight at the edge: at most
//! `CONCURRENCY_LIMIT_PER_CLIENT` requests of one client are served at
//! once; one more is answered 429 `concurrency_limited` with
//! `Retry-After: 1` at once, and never reaches a handler.
//!
//! The rate limit bounds how many requests a client *starts*; it says
//! nothing about how long each one lasts. A client that sends a
//! `Content-Length` and then a few bytes of body holds its request, and
//! one of the replica's `CONCURRENCY_LIMIT` slots, until the body read
//! times out: a few hundred of those, well under the rate limit, held
//! every slot and the gateway answered 503 to everyone. With this cap one
//! client holds at most its own share, and the others keep theirs.
//!
//! A client is keyed as the rate limit keys it ([`ClientKey`]): the user
//! of a valid bearer token, otherwise the address (an IPv6 client by its
//! /64; the last `X-Forwarded-For` entry only when
//! `RATE_LIMIT_TRUST_FORWARDED_FOR` says so). The layer sits inside the
//! rate limit, which leaves the client's [`ClientAddress`] and verified
//! [`Caller`] in the request: the key is the rate limit's own, and a token
//! is verified once.
//!
//! Memory is bounded by what is in flight: a client's entry is removed
//! when its last request has been answered, so the table never holds
//! more clients than the replica has requests in flight.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as HttpBody;
use mesh::{
    Metrics,
    auth::{self, Caller, ClientAddress, TokenKeys},
    error_response,
    inbound::HeldResponse,
    metrics::Route,
};
use prometheus_client::metrics::{counter::Counter, family::Family};
use tower::{BoxError, Layer, Service};

use crate::{
    config::ClientConcurrencyConfig,
    rate_limit::{ClientKey, RouteLabel},
};

#[derive(Clone)]
pub struct ClientConcurrencyLayer {
    shared: Arc<Shared>,
}

struct Shared {
    /// Requests in flight per client; 0 is no limit.
    limit: usize,
    /// Only clients with something in flight have an entry.
    in_flight: Mutex<HashMap<ClientKey, usize>>,
    tokens: Arc<TokenKeys>,
    refused: Family<RouteLabel, Counter>,
}

impl ClientConcurrencyLayer {
    /// The cap `config` describes, its counter registered in `metrics`
    /// (so one per process), verifying tokens with `tokens` when the rate
    /// limit has not.
    pub fn new(
        config: &ClientConcurrencyConfig,
        tokens: Arc<TokenKeys>,
        metrics: &Metrics,
    ) -> Self {
        let refused = Family::<RouteLabel, Counter>::default();
        metrics.register(
            "gateway_concurrency_limited_requests",
            "Requests refused with 429 because their client had CONCURRENCY_LIMIT_PER_CLIENT requests in flight already",
            refused.clone(),
        );
        Self {
            shared: Arc::new(Shared {
                limit: config.per_client,
                in_flight: Mutex::new(HashMap::new()),
                tokens,
                refused,
            }),
        }
    }
}

impl<S> Layer<S> for ClientConcurrencyLayer {
    type Service = ClientConcurrency<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientConcurrency {
            inner,
            shared: self.shared.clone(),
            series: Arc::new(OnceLock::new()),
        }
    }
}

#[derive(Clone)]
pub struct ClientConcurrency<S> {
    inner: S,
    shared: Arc<Shared>,
    /// Set once this route's series exists (see `call`).
    series: Arc<OnceLock<()>>,
}

// === impl Shared ===

impl Shared {
    fn table(&self) -> MutexGuard<'_, HashMap<ClientKey, usize>> {
        // Nothing panics while holding it; a poisoned table is still sound.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `key`, unless it has `limit` requests in flight already.
    fn admit(self: &Arc<Self>, key: ClientKey) -> Option<Slot> {
        let mut table = self.table();
        let count = table.entry(key.clone()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            shared: self.clone(),
            key,
        })
    }

    /// The client's key, as the rate limit computes it: the verified
    /// caller and the [`ClientAddress`] are the ones it left in the
    /// request. Without a caller there (the general rate limit off, or no
    /// valid token) the token is verified here, and the caller left for
    /// the handler's extractors.
    fn client<B>(&self, req: &mut Request<B>) -> ClientKey {
        if let Some(caller) = req.extensions().get::<Caller>() {
            return ClientKey::User(caller.user_id.as_str().into());
        }
        if let Some(caller) = auth::verified_caller(&self.tokens, req.headers()) {
            let key = ClientKey::User(caller.user_id.as_str().into());
            req.extensions_mut().insert(caller);
            return key;
        }
        req.extensions()
            .get::<ClientAddress>()
            .copied()
            .map_or(ClientKey::Unknown, ClientKey::from)
    }
}

/// One request of a client in flight; dropped, it frees the client's
/// place, and the client's entry with its last one.
pub struct Slot {
    shared: Arc<Shared>,
    key: ClientKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.shared.table();
        if let Some(count) = table.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                table.remove(&self.key);
            }
        }
    }
}

/// The answer to a client over its cap.
fn concurrency_limited(limit: usize) -> Response<Body> {
    let mut res = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "concurrency_limited",
        format!("this client has {limit} requests in flight already; retry when one is answered"),
    );
    // One second: its requests in flight are answered or timed out well
    // within a few, and a retry at once would only be refused again.
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

// === impl ClientConcurrency ===

impl<S, B, ResBody> Service<Request<B>> for ClientConcurrency<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The route's series exists, at zero, from its first request on.
        self.series.get_or_init(|| {
            let _ = self.shared.refused.get_or_create(&RouteLabel {
                route: Route::of(&req),
            });
        });
        if self.shared.limit == 0 {
            return ResponseFuture::admitted(self.inner.call(req), None);
        }
        let key = self.shared.client(&mut req);
        match self.shared.admit(key) {
            Some(slot) => ResponseFuture::admitted(self.inner.call(req), Some(slot)),
            None => {
                self.shared
                    .refused
                    .get_or_create(&RouteLabel {
                        route: Route::of(&req),
                    })
                    .inc();
                ResponseFuture::refused(concurrency_limited(self.shared.limit))
            }
        }
    }
}

/// The future of [`ClientConcurrency`]: the answer holding the client's
/// place until sent (as the mesh's shedding holds its slot: a response the
/// client is slow to take is still its request in flight), or the 429.
pub type ResponseFuture<F> = HeldResponse<F, Slot>;

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(limit: usize) -> Arc<Shared> {
        Arc::new(Shared {
            limit,
            in_flight: Mutex::new(HashMap::new()),
            tokens: Arc::new(TokenKeys::new(&[7u8; 32]).unwrap()),
            refused: Family::default(),
        })
    }

    #[test]
    fn a_client_gets_its_limit_and_its_entry_goes_with_its_last_request() {
        let shared = shared(2);
        let alice = ClientKey::User("alice".into());
        let bob = ClientKey::User("bob".into());
        let first = shared.admit(alice.clone()).unwrap();
        let second = shared.admit(alice.clone()).unwrap();
        assert!(shared.admit(alice.clone()).is_none());
        // Others keep theirs.
        let theirs = shared.admit(bob.clone()).unwrap();
        drop(first);
        let third = shared.admit(alice.clone()).unwrap();
        assert_eq!(shared.table().len(), 2);
        drop((second, third, theirs));
        assert!(shared.table().is_empty(), "{:?}", shared.table());
    }

    #[test]
    fn a_client_is_the_rate_limits_caller_else_its_address() {
        let shared = shared(1);
        let keys = TokenKeys::new(&[7u8; 32]).unwrap();
        let token = keys
            .issue("ada", "Ada", std::time::Duration::from_secs(60))
            .unwrap();
        let address = ClientAddress::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let request = |token: Option<&str>| {
            let mut req = Request::get("/api/me");
            if let Some(token) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let mut req = req.body(()).unwrap();
            req.extensions_mut().insert(address);
            req
        };
        let mut with_token = request(Some(&token));
        assert_eq!(
            shared.client(&mut with_token),
            ClientKey::User("ada".into())
        );
        // Verified once: the caller is left for the handler.
        assert!(with_token.extensions().get::<Caller>().is_some());
        assert_eq!(
            shared.client(&mut request(Some("garbage"))),
            ClientKey::from(address)
        );
        assert_eq!(shared.client(&mut request(None)), ClientKey::from(address));
        let mut unknown = Request::get("/api/me").body(()).unwrap();
        assert_eq!(shared.client(&mut unknown), ClientKey::Unknown);
    }
}
