//! The per-client rate limit at the edge: a token bucket per client
//! (GCRA, from the `governor` crate), `RATE_LIMIT_PER_SECOND` on average
//! with bursts of `RATE_LIMIT_BURST`. Over it a request gets 429 with
//! `Retry-After` and never reaches a service.
//!
//! A client is the user of a valid bearer token, so users behind one
//! address (a campus, a NAT) do not share one bucket; otherwise the peer
//! address, and for IPv6 its /64, which one host usually holds whole and
//! could otherwise walk through for a fresh bucket per request. An
//! invalid token counts as none: garbage tokens must not buy new buckets.
//! `X-Forwarded-For` is believed only when configured, behind a proxy
//! that sets it.
//!
//! Every request also takes from a bucket per client *address*, whatever
//! token it carries: `RATE_LIMIT_ADDRESS_MULTIPLE` (10) times the
//! per-client rate and burst. Keyed by user alone, one address holding N
//! tokens (N accounts signed up from one script) got N times the limit;
//! the address ceiling caps it, while one user still gets its own rate
//! in full, and a household, office or campus NAT gets ten busy users'
//! worth before anyone there is held back. It is checked after the
//! client's own bucket, so a user over their own limit does not use up
//! their neighbours' share.
//!
//! Sign-ups and logins also take from a third, slower bucket per client
//! address (`CREDENTIALS_RATE_LIMIT_PER_MINUTE`): a token does not buy
//! its holder more password guesses, and one address trying many accounts
//! (credential stuffing) is held back even though users' own limit counts
//! failures per account and address.
//!
//! The client's address (a [`ClientAddress`]) is left in the request's
//! extensions for the handlers: login signs it for users, whose
//! failed-login limit counts per address.
//!
//! The layer sits on the API routes, inside the mesh's inbound stack, so
//! a 429 is traced and counted in the RED metrics like any answer, and
//! the route template is known for `gateway_rate_limited_requests_total`.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, OnceLock, Weak},
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::ConnectInfo};
use futures::future::Either;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use mesh::auth::{self, ClientAddress, TokenKeys};
use mesh::{Metrics, error_response, metrics::Route};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use tower::{Layer, Service};

use crate::config::RateLimitConfig;

/// How often buckets that have filled up again (clients gone quiet) are
/// dropped: the limiter's memory is bounded by the clients of the last
/// few seconds, not of the process's life.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Whose bucket a request takes from.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum ClientKey {
    /// The `sub` of a verified token.
    User(Arc<str>),
    /// An IPv4 address, or an IPv6 address with its last 64 bits zeroed.
    Address(IpAddr),
    /// No token and no address known (not over a socket, as in router
    /// tests): one shared bucket.
    Unknown,
}

impl From<ClientAddress> for ClientKey {
    fn from(address: ClientAddress) -> Self {
        Self::Address(address.ip())
    }
}

/// Labels of `gateway_rate_limited_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: Route,
}

#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None`: the limit is disabled (rate or burst 0).
    limiter: Option<DefaultKeyedRateLimiter<ClientKey>>,
    /// All requests per address; `None` when disabled.
    per_address: Option<DefaultKeyedRateLimiter<ClientKey>>,
    /// Sign-ups and logins per address; `None` when disabled.
    credentials: Option<DefaultKeyedRateLimiter<ClientKey>>,
    tokens: Arc<TokenKeys>,
    trust_forwarded_for: bool,
    limited: Family<RouteLabel, Counter>,
}

impl RateLimitLayer {
    /// The limit `config` describes, its counter registered in `metrics`
    /// (so one per process), verifying tokens with `tokens`.
    pub fn new(
        config: &RateLimitConfig,
        tokens: Arc<TokenKeys>,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let limiter = if config.enabled() {
            Some(RateLimiter::keyed(quota(config)?))
        } else {
            None
        };
        let per_address = if config.address_enabled() {
            Some(RateLimiter::keyed(address_quota(config)?))
        } else {
            None
        };
        let credentials = if config.credentials_enabled() {
            Some(RateLimiter::keyed(credentials_quota(config)?))
        } else {
            None
        };
        let limited = Family::<RouteLabel, Counter>::default();
        metrics.register(
            "gateway_rate_limited_requests",
            "Requests refused with 429 because their client was over its rate limit",
            limited.clone(),
        );
        Ok(Self {
            shared: Arc::new(Shared {
                limiter,
                per_address,
                credentials,
                tokens,
                trust_forwarded_for: config.trust_forwarded_for,
                limited,
            }),
        })
    }

    /// Drops full buckets every `every` for as long as the layer lives
    /// (spawn it; it ends when the last copy of the layer is dropped).
    pub fn sweeper(&self, every: Duration) -> impl Future<Output = ()> + Send + 'static {
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                for limiter in [&shared.limiter, &shared.per_address, &shared.credentials]
                    .into_iter()
                    .flatten()
                {
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            }
        }
    }
}

/// `per_second` on average, `burst` at once: one cell every 1/rate s.
fn quota(config: &RateLimitConfig) -> anyhow::Result<Quota> {
    let burst = NonZeroU32::new(config.burst)
        .ok_or_else(|| anyhow::anyhow!("RATE_LIMIT_BURST must be above 0 when limiting"))?;
    let period = Duration::try_from_secs_f64(1.0 / config.per_second)
        .ok()
        .and_then(Quota::with_period)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "RATE_LIMIT_PER_SECOND={} is out of range",
                config.per_second
            )
        })?;
    Ok(period.allow_burst(burst))
}

/// `address_multiple` times the per-client quota: as many times the rate,
/// as many times the burst.
fn address_quota(config: &RateLimitConfig) -> anyhow::Result<Quota> {
    let multiple = config.address_multiple;
    let burst = config
        .burst
        .checked_mul(multiple)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "RATE_LIMIT_ADDRESS_MULTIPLE={multiple} times RATE_LIMIT_BURST is out of range"
            )
        })?;
    let period = Duration::try_from_secs_f64(1.0 / (config.per_second * f64::from(multiple)))
        .ok()
        .and_then(Quota::with_period)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "RATE_LIMIT_ADDRESS_MULTIPLE={multiple} times RATE_LIMIT_PER_SECOND is out of range"
            )
        })?;
    Ok(period.allow_burst(burst))
}

/// `credentials_per_minute` on average, `credentials_burst` at once.
fn credentials_quota(config: &RateLimitConfig) -> anyhow::Result<Quota> {
    let burst = NonZeroU32::new(config.credentials_burst).ok_or_else(|| {
        anyhow::anyhow!("CREDENTIALS_RATE_LIMIT_BURST must be above 0 when limiting")
    })?;
    let period = Duration::try_from_secs_f64(60.0 / config.credentials_per_minute)
        .ok()
        .and_then(Quota::with_period)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "CREDENTIALS_RATE_LIMIT_PER_MINUTE={} is out of range",
                config.credentials_per_minute
            )
        })?;
    Ok(period.allow_burst(burst))
}

/// Whether `req` presents or creates credentials: a sign-up or a login.
fn is_credentials_request<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::POST && matches!(req.uri().path(), "/api/sessions" | "/api/users")
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
            series: Arc::new(OnceLock::new()),
        }
    }
}

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
    /// Set once this route's series exists (see `call`).
    series: Arc<OnceLock<()>>,
}

// === impl RateLimit ===

impl Shared {
    /// The client's key. A verified caller is left in the request for the
    /// handler's extractors: the signature is checked once per request.
    fn client<B>(&self, req: &mut Request<B>) -> ClientKey {
        if let Some(caller) = auth::verified_caller(&self.tokens, req.headers()) {
            let key = ClientKey::User(caller.user_id.as_str().into());
            req.extensions_mut().insert(caller);
            return key;
        }
        self.address(req)
    }

    /// The client's address (see the module's comment), ignoring any token.
    fn address<B>(&self, req: &Request<B>) -> ClientKey {
        self.client_address(req)
            .map_or(ClientKey::Unknown, ClientKey::from)
    }

    /// The client's address: the last `X-Forwarded-For` entry when
    /// trusted, else the connection's peer; `None` when neither is known.
    fn client_address<B>(&self, req: &Request<B>) -> Option<ClientAddress> {
        let forwarded = self
            .trust_forwarded_for
            .then(|| forwarded_for(req.headers()))
            .flatten();
        let peer = || {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        };
        forwarded.or_else(peer).map(ClientAddress::of)
    }
}

/// The last `X-Forwarded-For` entry: the one the proxy in front of us
/// added. Earlier entries are whatever the client claimed.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Whole seconds, rounded up and at least 1: `Retry-After: 0` would
/// invite an immediate retry that fails again.
fn retry_after(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// 429 `rate_limited`; `whose` says which limit (`this client`, `this
/// address`, `sign-ins from this address`).
fn rate_limited(whose: &str, wait: Duration) -> Response<Body> {
    let secs = retry_after(wait);
    let mut res = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from {whose}; retry in {secs} s"),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The route's series exists, at zero, from its first request on,
        // so a dashboard shows 0 rather than no data.
        self.series.get_or_init(|| {
            let _ = self.shared.limited.get_or_create(&RouteLabel {
                route: Route::of(&req),
            });
        });
        let address = self.shared.client_address(&req);
        if let Some(address) = address {
            req.extensions_mut().insert(address);
        }
        let address_key = || address.map_or(ClientKey::Unknown, ClientKey::from);
        let credentials = match &self.shared.credentials {
            Some(limiter) if is_credentials_request(&req) => {
                Some((limiter, address_key(), "this address (sign-ins)"))
            }
            _ => None,
        };
        let per_address = self
            .shared
            .per_address
            .as_ref()
            .map(|limiter| (limiter, address_key(), "this address"));
        let general = self
            .shared
            .limiter
            .as_ref()
            .map(|limiter| (limiter, self.shared.client(&mut req), "this client"));
        // The client's own bucket first, then the address's, then the
        // scarcer sign-in attempts: a request one refuses does not use up
        // the next (a user over their own limit does not spend the
        // address's share, nor a refused request a sign-in attempt).
        let verdict = general
            .into_iter()
            .chain(per_address)
            .chain(credentials)
            .try_for_each(|(limiter, key, whose)| {
                limiter
                    .check_key(&key)
                    .map_err(|not_until| (whose, not_until.wait_time_from(limiter.clock().now())))
            });
        match verdict {
            Ok(()) => Either::Left(self.inner.call(req)),
            Err((whose, wait)) => {
                self.shared
                    .limited
                    .get_or_create(&RouteLabel {
                        route: Route::of(&req),
                    })
                    .inc();
                Either::Right(ready(Ok(rate_limited(whose, wait))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        assert_eq!(retry_after(Duration::ZERO), 1);
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after(Duration::from_secs(30)), 30);
    }

    #[test]
    fn an_address_may_make_a_multiple_of_a_clients_requests() {
        let config = RateLimitConfig {
            per_second: 50.0,
            burst: 100,
            trust_forwarded_for: false,
            address_multiple: 10,
            credentials_per_minute: 60.0,
            credentials_burst: 30,
        };
        let q = address_quota(&config).unwrap();
        assert_eq!(q.burst_size().get(), 1000);
        assert_eq!(q.replenish_interval(), Duration::from_millis(2));
        assert!(config.address_enabled());
        for off in [
            RateLimitConfig {
                address_multiple: 0,
                ..config.clone()
            },
            RateLimitConfig {
                per_second: 0.0,
                ..config.clone()
            },
        ] {
            assert!(!off.address_enabled());
        }
        assert!(
            address_quota(&RateLimitConfig {
                burst: u32::MAX,
                ..config
            })
            .is_err()
        );
    }

    #[test]
    fn only_the_last_forwarded_for_entry_counts() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 198.51.100.4"),
        );
        assert_eq!(
            forwarded_for(&headers),
            Some("198.51.100.4".parse().unwrap())
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("not an ip"));
        assert_eq!(forwarded_for(&headers), None);
    }

    #[test]
    fn quotas_follow_the_configuration() {
        let config = |per_second, burst| RateLimitConfig {
            per_second,
            burst,
            trust_forwarded_for: false,
            address_multiple: 10,
            credentials_per_minute: 60.0,
            credentials_burst: 30,
        };
        let q = quota(&config(50.0, 100)).unwrap();
        assert_eq!(q.burst_size().get(), 100);
        assert_eq!(q.replenish_interval(), Duration::from_millis(20));
        let q = quota(&config(0.5, 1)).unwrap();
        assert_eq!(q.replenish_interval(), Duration::from_secs(2));
        assert!(quota(&config(1e-300, 1)).is_err());
        assert!(!config(0.0, 10).enabled());
        assert!(!config(10.0, 0).enabled());
        let q = credentials_quota(&config(1.0, 1)).unwrap();
        assert_eq!(q.burst_size().get(), 30);
        assert_eq!(q.replenish_interval(), Duration::from_secs(1));
    }
}
