//! Extractors that reject bad input with the JSON error body instead of
//! axum's plain-text rejections.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::*},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{StatusCode, request::Parts};
use std::{fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{DeserializeOwned, MapAccess, Visitor, value::MapAccessDeserializer},
};

use crate::error::BadRequest;

/// `axum::Json`, rejecting with `{"error": ...}`: 400 for malformed JSON,
/// 415 without a JSON content type, 413 over the body limit, 422 for
/// missing or wrongly-typed fields (with the field path in the message).
///
/// The body must be a JSON *object*: serde's derived `Deserialize` also
/// accepts a struct as a positional array (`["u1", "c1", 100]`), a second
/// spelling of every request that no client is meant to use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BadRequest;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(BadRequest::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request with `Content-Type: application/json`",
            ));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(BodyLimit::DEFAULT, |l| l.0);
        let bytes = read_body(req.into_body(), limit).await?;
        if let Some(depth) = too_deep(&bytes) {
            return Err(BadRequest::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!(
                    "the body nests arrays and objects over {MAX_JSON_DEPTH} levels deep (at least {depth})"
                ),
            ));
        }
        match axum::Json::<JsonObject<T>>::from_bytes(&bytes) {
            Ok(axum::Json(JsonObject(value))) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Deepest nesting of arrays and objects a body may have. No request of
/// ours nests past 4; serde_json's own limit (128) guards its stack, this
/// one answers a clear 400 long before, whatever the target type.
pub const MAX_JSON_DEPTH: usize = 32;

/// The depth reached, if `bytes` nests past [`MAX_JSON_DEPTH`]: one pass,
/// brackets inside strings (and escaped quotes) not counted. Malformed
/// JSON is left to the parser.
fn too_deep(bytes: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The largest body the mesh's extractors accept, set per service by
/// `Mesh::router` from `MAX_BODY_BYTES`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// What applies when no limit was set (axum's own default).
    pub const DEFAULT: usize = 2 * 1024 * 1024;
}

/// Reads the body up to `limit` bytes. Past the limit it keeps reading, and
/// discards, up to 1 MiB more before answering 413: a server that answers
/// while the client is still sending closes the connection under it, and
/// the client sees a reset instead of the 413 (and its clear message).
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, BadRequest> {
    use http_body_util::BodyExt as _;
    const DRAIN: usize = 1024 * 1024;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_error)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else if seen > limit + DRAIN {
            break;
        }
    }
    if seen > limit {
        return Err(BadRequest::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over the {limit}-byte limit"),
        ));
    }
    Ok(buf.freeze())
}

/// Why reading a body failed, as the client should hear it: 408
/// `body_timeout` when it did not arrive within `BODY_READ_TIMEOUT`
/// (RFC 9110 §15.5.9), otherwise 400 `invalid_body`.
fn body_error(error: axum::Error) -> BadRequest {
    let timeout = std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .find_map(|e| e.downcast_ref::<crate::server::BodyTimeout>());
    match timeout {
        Some(timeout) => BadRequest::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            timeout.to_string(),
        ),
        None => BadRequest::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("reading the body failed: {error}"),
        ),
    }
}

/// A value that must be written as a JSON object: deserializes `T` only
/// from a map, so an array is a 422 like any other wrong shape.
struct JsonObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(JsonObject)
    }
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn has_json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> BadRequest {
    let status = rejection.status();
    let code = match &rejection {
        JsonRejection::JsonDataError(_) => "invalid_body",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "body_too_large"
        }
        _ => "invalid_body",
    };
    BadRequest::new(status, code, rejection.body_text())
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON response body already encoded: one kept from an earlier answer,
/// or another service's passed on unchanged. Sent as it is, with the
/// content type [`Json`] gives.
#[derive(Debug, Clone)]
pub struct EncodedJson(pub Bytes);

impl IntoResponse for EncodedJson {
    fn into_response(self) -> Response {
        (
            [(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// `axum::extract::Path`, rejecting with a JSON 400 naming the parameter.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = BadRequest;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|r: PathRejection| {
                BadRequest::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
            })
    }
}

/// `axum::extract::Query`, rejecting with a JSON 400.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BadRequest;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|r: QueryRejection| {
                BadRequest::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_JSON_DEPTH, too_deep};

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(too_deep(nested(MAX_JSON_DEPTH).as_bytes()), None);
        assert_eq!(
            too_deep(nested(MAX_JSON_DEPTH + 1).as_bytes()),
            Some(MAX_JSON_DEPTH + 1)
        );
        assert!(too_deep(nested(100_000).as_bytes()).is_some());
        let in_string = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert_eq!(too_deep(in_string.as_bytes()), None);
        assert_eq!(too_deep(br#"{"a": [1, {"b": []}]}"#), None);
    }
}
