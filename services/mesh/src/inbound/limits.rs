//! Limits on what one request may ask of the API routes, answered with
//! the JSON error body before a handler runs: the bytes of its headers,
//! and the length of body it declares. (The number of header fields and
//! the `Host` header are checked where requests come off the connection,
//! `server/request.rs`.)

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use http::{HeaderValue, StatusCode, header};

use crate::error::error_response;

/// Most bytes of header names and values one request may carry. hyper
/// refuses far larger ones itself (about 400 KiB); this bound sits well
/// above any real request (a token, a full W3C `baggage` of 8 KiB,
/// `tracestate`) and keeps a caller from making every layer copy and
/// scan megabytes of headers.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 431 `headers_too_large` over [`MAX_HEADER_BYTES`] (RFC 6585 §5), and
/// 413 `body_too_large` at once for a `Content-Length` over
/// `max_body_bytes` (`MAX_BODY_BYTES`).
///
/// The declared length is refused before a byte of the body is read:
/// reading it would only hold the request (and its concurrency slot)
/// while a client sends, or pretends to send, a body that will be
/// refused anyway. A body without a declared length (chunked) is still
/// cut at the limit as it is read (`extract::Json`).
pub async fn limit_request(
    State(max_body_bytes): State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request's headers total {size} bytes, over the {MAX_HEADER_BYTES}-byte limit"
            ),
        );
    }
    if let Some(declared) = declared_length(&req)
        && declared > max_body_bytes as u64
    {
        let mut res = error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request declares a {declared}-byte body, over the {max_body_bytes}-byte limit"
            ),
        );
        // The body is left unread, so the connection cannot carry another
        // request: say so rather than have the client find out.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    next.run(req).await
}

/// The request's `Content-Length`, if it has a valid one (hyper has
/// already refused a request with an invalid or conflicting one).
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
