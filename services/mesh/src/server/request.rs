//! What every request gets on its way from hyper to the router: the
//! checks of its head that belong to HTTP itself, the peer's address, its
//! place on the connection's clock, and a deadline on its body.
//!
//! The checks answer here, before the inbound stack, as hyper's own
//! refusals of a malformed head do (so these answers carry no
//! `x-request-id` and are not in the RED metrics), but with the JSON
//! error body every other refusal has.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo, response::Response, routing::future::RouteFuture};
use futures::future::Either;
use http::{HeaderValue, Request, StatusCode, Version, header};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tower::Service as _;

use super::{
    body::DeadlineBody,
    connection::{Clock, InFlight},
};
use crate::error::error_response;

/// Most header fields one request may carry (each repetition of a name
/// counts). The usual limit (hyper's and Apache's default): no real
/// client comes near it, and it keeps a request from making every layer
/// walk thousands of tiny headers that the byte limit
/// ([`crate::MAX_HEADER_BYTES`]) alone would let through.
pub const MAX_HEADER_FIELDS: usize = 100;

/// The per-connection service hyper calls for each request.
#[derive(Clone, Debug)]
pub(super) struct PerRequest {
    router: Router,
    remote: SocketAddr,
    clock: Clock,
    body_read: Duration,
}

impl PerRequest {
    pub(super) fn new(
        router: Router,
        remote: SocketAddr,
        clock: Clock,
        body_read: Duration,
    ) -> Self {
        Self {
            router,
            remote,
            clock,
            body_read,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for PerRequest {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Serving>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        // First, so that even a refused request ends the head's clock.
        let in_flight = self.clock.request_started();
        if let Some(refusal) = refuse(&req) {
            return Either::Left(ready(Ok(refusal)));
        }
        // What `into_make_service_with_connect_info` gave: the rate limit
        // keys anonymous clients by it.
        req.extensions_mut().insert(ConnectInfo(self.remote));
        let req = req.map(|body| DeadlineBody::new(body, self.body_read));
        Either::Right(Serving {
            inner: self.router.clone().call(req),
            _in_flight: in_flight,
        })
    }
}

pin_project! {
    /// The router's answer, keeping the request in flight until it is ready.
    pub(super) struct Serving {
        #[pin]
        inner: RouteFuture<Infallible>,
        _in_flight: InFlight,
    }
}

impl std::future::Future for Serving {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

/// The answer to a request whose head HTTP itself rules out, if it is one.
fn refuse<B>(req: &Request<B>) -> Option<Response> {
    let fields = req.headers().len();
    if fields > MAX_HEADER_FIELDS {
        // RFC 6585 §5.
        return Some(closing(error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {fields} header fields, over the limit of {MAX_HEADER_FIELDS}"
            ),
        )));
    }
    host_problem(req).map(|problem| {
        closing(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_host",
            problem,
        ))
    })
}

/// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
/// code to any HTTP/1.1 request message that lacks a Host header field
/// and to any request message that contains more than one Host header
/// field line or a Host header field with an invalid field value."
/// HTTP/2 carries the authority in `:authority` instead, and HTTP/1.0
/// may omit the header.
fn host_problem<B>(req: &Request<B>) -> Option<&'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Some("the request has more than one Host header"),
        (None, _) if req.version() == Version::HTTP_11 => {
            Some("an HTTP/1.1 request must have a Host header")
        }
        (Some(host), None) if !valid_host(host) => {
            Some("the Host header is not a valid host[:port]")
        }
        _ => None,
    }
}

/// `host[:port]` (RFC 9110 §7.2): an authority without user info. Empty
/// is allowed, for a target without an authority (RFC 9112 §3.2).
fn valid_host(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return true;
    }
    let Ok(host) = std::str::from_utf8(bytes) else {
        return false;
    };
    // `Authority` takes user info, and any port text; a Host has neither.
    let port_ok = match host.rsplit_once(':') {
        Some((_, port)) if !port.contains(']') => port.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    };
    !host.contains('@') && port_ok && host.parse::<http::uri::Authority>().is_ok()
}

/// `res` with `Connection: close`: a client that sent such a head is not
/// one whose connection is worth keeping.
fn closing(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, hosts: &[&str]) -> Request<()> {
        let mut req = Request::get("/x").version(version);
        for host in hosts {
            req = req.header(header::HOST, *host);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn http_1_1_needs_exactly_one_valid_host() {
        for ok in [
            &["example.com"][..],
            &["example.com:8080"],
            &["127.0.0.1:1"],
            &["[::1]:8080"],
            &[""],
        ] {
            assert_eq!(host_problem(&request(Version::HTTP_11, ok)), None, "{ok:?}");
        }
        assert!(host_problem(&request(Version::HTTP_11, &[])).is_some());
        assert!(host_problem(&request(Version::HTTP_11, &["a", "b"])).is_some());
        assert!(host_problem(&request(Version::HTTP_10, &["a", "a"])).is_some());
        for bad in [
            "user@example.com",
            "exa mple.com",
            "example.com:port",
            "/path",
        ] {
            assert!(
                host_problem(&request(Version::HTTP_11, &[bad])).is_some(),
                "{bad:?} accepted"
            );
        }
        // HTTP/1.0 may omit it; HTTP/2 has `:authority`.
        assert_eq!(host_problem(&request(Version::HTTP_10, &[])), None);
        assert_eq!(host_problem(&request(Version::HTTP_2, &[])), None);
    }
}
