//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs` with a protobuf
//! (`application/x-protobuf`) or OTLP/JSON (`application/json`: hex trace
//! and span ids, 64-bit integers as strings) body, optionally with
//! `Content-Encoding: gzip`. Answers are in the request's encoding, errors
//! as a `google.rpc.Status` in it, as the OTLP specification asks (an
//! unknown content type gets plain text: there is no agreed encoding to
//! answer in).
//!
//! Browsers may export here from any origin (CORS: `POST` with
//! `Content-Type` and `Content-Encoding`, preflights cached for an hour):
//! a web page's OpenTelemetry SDK is a client like any other, and a
//! receiver that stands in for a Collector on a developer's machine has
//! no page origin to be configured with. It takes telemetry and answers
//! nothing a page could read beyond the export's status.

use std::io::{self, Read as _};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode as HttpStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde::de::DeserializeOwned;
use tower_http::cors::{self, CorsLayer};

use crate::receiver::{MAX_REQUEST_BYTES, Receiver};
use crate::span::Transport;

/// The OTLP/HTTP path for traces; `http_endpoint()` + this is the full URL.
pub const HTTP_TRACES_PATH: &str = "/v1/traces";

/// The OTLP/HTTP path for logs; `http_endpoint()` + this is the full URL.
pub const HTTP_LOGS_PATH: &str = "/v1/logs";

const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
const CONTENT_TYPE_JSON: &str = "application/json";

/// The router [`crate::server`] serves: [`HTTP_TRACES_PATH`] and
/// [`HTTP_LOGS_PATH`], with request bodies bounded by [`MAX_REQUEST_BYTES`].
pub(crate) fn router(receiver: Receiver) -> Router {
    Router::new()
        .route(
            HTTP_TRACES_PATH,
            post(export_http::<ExportTraceServiceRequest>),
        )
        .route(
            HTTP_LOGS_PATH,
            post(export_http::<ExportLogsServiceRequest>),
        )
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(
            CorsLayer::new()
                .allow_origin(cors::Any)
                .allow_methods([Method::POST])
                .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
                .max_age(std::time::Duration::from_secs(3600)),
        )
        .with_state(receiver)
}

/// What differs between the signals' endpoints: the request, its name in
/// error messages, the success answer, and which store it feeds.
trait Signal: prost::Message + Default + DeserializeOwned + Send + 'static {
    /// The request's protobuf message name.
    const REQUEST: &'static str;

    /// An empty export response (full success), protobuf-encoded.
    fn success() -> Vec<u8>;

    fn ingest(self, receiver: &Receiver, transport: Transport);
}

impl Signal for ExportTraceServiceRequest {
    const REQUEST: &'static str = "ExportTraceServiceRequest";

    fn success() -> Vec<u8> {
        ExportTraceServiceResponse {
            partial_success: None,
        }
        .encode_to_vec()
    }

    fn ingest(self, receiver: &Receiver, transport: Transport) {
        receiver.ingest(self, transport);
    }
}

impl Signal for ExportLogsServiceRequest {
    const REQUEST: &'static str = "ExportLogsServiceRequest";

    fn success() -> Vec<u8> {
        ExportLogsServiceResponse {
            partial_success: None,
        }
        .encode_to_vec()
    }

    fn ingest(self, receiver: &Receiver, transport: Transport) {
        receiver.ingest_logs(self, transport);
    }
}

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Result<Self, HttpError> {
        let raw = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let media_type = raw
            .as_deref()
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        match media_type.as_deref() {
            // application/protobuf is the IANA-registered name some
            // exporters have started to send.
            Some(CONTENT_TYPE_PROTOBUF | "application/protobuf") => Ok(Self::Protobuf),
            Some(CONTENT_TYPE_JSON) => Ok(Self::Json),
            _ => Err(HttpError::UnsupportedContentType(raw.unwrap_or_default())),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => CONTENT_TYPE_PROTOBUF,
            Self::Json => CONTENT_TYPE_JSON,
        }
    }

    fn transport(self) -> Transport {
        match self {
            Self::Protobuf => Transport::HttpProtobuf,
            Self::Json => Transport::HttpJson,
        }
    }

    fn decode<S: Signal>(self, body: &[u8]) -> Result<S, HttpError> {
        match self {
            Self::Protobuf => S::decode(body).map_err(|e| HttpError::Protobuf(S::REQUEST, e)),
            Self::Json => serde_json::from_slice(body).map_err(|e| HttpError::Json(S::REQUEST, e)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(
        "unsupported Content-Type {0:?}: OTLP/HTTP requests must be application/x-protobuf or application/json"
    )]
    UnsupportedContentType(String),
    #[error("unsupported Content-Encoding {0:?}: only gzip and identity are accepted")]
    UnsupportedContentEncoding(String),
    #[error("body is not valid gzip: {0}")]
    Gzip(#[source] io::Error),
    #[error("decompressed body exceeds {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("body is not a protobuf {0}: {1}")]
    Protobuf(&'static str, #[source] prost::DecodeError),
    #[error("body is not an OTLP/JSON {0}: {1}")]
    Json(&'static str, #[source] serde_json::Error),
}

impl HttpError {
    fn status(&self) -> HttpStatus {
        match self {
            Self::UnsupportedContentType(_) | Self::UnsupportedContentEncoding(_) => {
                HttpStatus::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooLarge => HttpStatus::PAYLOAD_TOO_LARGE,
            Self::Gzip(_) | Self::Protobuf(..) | Self::Json(..) => HttpStatus::BAD_REQUEST,
        }
    }
}

/// `google.rpc.Status`, which OTLP/HTTP requires as the body of error
/// responses (exporters log its message). `details` is left out: it is
/// optional and we have nothing to put there.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC's INVALID_ARGUMENT: every error here is the client's request.
const RPC_INVALID_ARGUMENT: i32 = 3;

async fn export_http<S: Signal>(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = match Encoding::from_headers(&headers) {
        Ok(encoding) => encoding,
        // Without a known content type there is no agreed error encoding.
        Err(error) => return (error.status(), error.to_string()).into_response(),
    };
    let request = decompress(&headers, body).and_then(|body| encoding.decode::<S>(&body));
    match request {
        Ok(request) => {
            request.ingest(&receiver, encoding.transport());
            let body = match encoding {
                Encoding::Protobuf => S::success(),
                Encoding::Json => b"{}".to_vec(),
            };
            with_content_type(HttpStatus::OK, encoding, body)
        }
        Err(error) => error_response(encoding, &error),
    }
}

fn error_response(encoding: Encoding, error: &HttpError) -> Response {
    let status = RpcStatus {
        code: RPC_INVALID_ARGUMENT,
        message: error.to_string(),
    };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": status.code, "message": status.message })
            .to_string()
            .into_bytes(),
    };
    with_content_type(error.status(), encoding, body)
}

fn with_content_type(status: HttpStatus, encoding: Encoding, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(encoding.content_type()),
        )],
        body,
    )
        .into_response()
}

fn decompress(headers: &HeaderMap, body: Bytes) -> Result<Bytes, HttpError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let coding = String::from_utf8_lossy(value.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            // One byte past the limit tells "exactly at" from "over".
            let limit = u64::try_from(MAX_REQUEST_BYTES).map_or(u64::MAX, |l| l.saturating_add(1));
            flate2::read::GzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out)
                .map_err(HttpError::Gzip)?;
            if out.len() > MAX_REQUEST_BYTES {
                return Err(HttpError::TooLarge);
            }
            Ok(Bytes::from(out))
        }
        _ => Err(HttpError::UnsupportedContentEncoding(coding)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::Duration;

    use super::*;
    use crate::log::Severity;
    use crate::samples::{
        CHILD_HEX, ROOT_HEX, TRACE_HEX, assert_sample_captured, assert_sample_logs_captured,
        sample_logs_request, sample_request, start,
    };
    use crate::server::RunningReceiver;
    use crate::span::{AttrValue, SpanKind, StatusCode};

    fn http_client() -> reqwest::Client {
        // A proxy from the environment must not intercept loopback traffic.
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client builds")
    }

    async fn post(
        running: &RunningReceiver,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (reqwest::StatusCode, Option<String>, Vec<u8>) {
        post_to(running, HTTP_TRACES_PATH, headers, body).await
    }

    async fn post_to(
        running: &RunningReceiver,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (reqwest::StatusCode, Option<String>, Vec<u8>) {
        let mut request = http_client().post(format!("{}{path}", running.http_endpoint()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .expect("request is answered");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.expect("body is read").to_vec();
        (status, content_type, body)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    }

    #[tokio::test]
    async fn http_protobuf_export_is_captured() {
        let running = start(Receiver::new()).await;
        assert_ne!(running.http_addr.port(), 0, "the real port is read back");

        let (status, content_type, body) = post(
            &running,
            &[("content-type", CONTENT_TYPE_PROTOBUF)],
            sample_request().encode_to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let response = ExportTraceServiceResponse::decode(&body[..]).expect("protobuf response");
        assert_eq!(response.partial_success, None);

        assert_sample_captured(&running.spans(), Transport::HttpProtobuf);
        running.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn http_gzip_protobuf_export_is_captured() {
        let running = start(Receiver::new()).await;
        let (status, _, _) = post(
            &running,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "gzip"),
            ],
            gzip(&sample_request().encode_to_vec()),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_sample_captured(&running.spans(), Transport::HttpProtobuf);
    }

    /// A web page on another origin exports as a browser does: a
    /// preflight first, then the `POST`, whose answer it may read.
    #[tokio::test]
    async fn a_browser_on_another_origin_may_export() {
        let running = start(Receiver::new()).await;
        let url = format!("{}{HTTP_TRACES_PATH}", running.http_endpoint());
        let origin = "http://127.0.0.1:8080";
        let preflight = http_client()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .expect("preflight answered");
        assert!(preflight.status().is_success(), "{}", preflight.status());
        let allowed = |name: &str| {
            preflight
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        assert_eq!(allowed("access-control-allow-origin"), "*");
        assert!(allowed("access-control-allow-methods").contains("post"));
        assert!(allowed("access-control-allow-headers").contains("content-type"));

        let (status, _, _) = post(
            &running,
            &[("content-type", CONTENT_TYPE_PROTOBUF), ("origin", origin)],
            sample_request().encode_to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_sample_captured(&running.spans(), Transport::HttpProtobuf);
    }

    /// The OTLP/JSON encoding: hex ids (upper case is allowed), enums as
    /// integers, 64-bit integers as strings.
    #[tokio::test]
    async fn http_json_export_is_captured() {
        let json = r#"{
          "resourceSpans": [{
            "resource": {"attributes": [
              {"key": "service.name", "value": {"stringValue": "courses"}}
            ]},
            "scopeSpans": [{
              "scope": {"name": "courses"},
              "spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "0011223344556677",
                "parentSpanId": "eee19b7ec3c1b173",
                "name": "SELECT courses",
                "kind": 3,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "attributes": [
                  {"key": "db.rows", "value": {"intValue": "42"}},
                  {"key": "db.system", "value": {"stringValue": "sqlite"}}
                ],
                "status": {"code": 1},
                "links": [{"traceId": "abababababababababababababababab", "spanId": "cdcdcdcdcdcdcdcd"}]
              }]
            }]
          }]
        }"#;
        let running = start(Receiver::new()).await;
        let (status, content_type, body) = post(
            &running,
            &[("content-type", "application/json; charset=utf-8")],
            json.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        assert_eq!(body, b"{}");

        let spans = running.spans();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(span.service_name, "courses");
        assert_eq!(span.scope_name, "courses");
        assert_eq!(span.trace_id, TRACE_HEX, "ids are normalised to lower case");
        assert_eq!(span.span_id, CHILD_HEX);
        assert_eq!(span.parent_span_id.as_deref(), Some(ROOT_HEX));
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.start_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.duration(), Duration::from_secs(1));
        assert_eq!(span.attr_i64("db.rows"), Some(42));
        assert_eq!(span.attr_str("db.system"), Some("sqlite"));
        assert_eq!(span.status.code, StatusCode::Ok);
        assert_eq!(span.links, vec![("ab".repeat(16), "cd".repeat(8))]);
        assert_eq!(span.transport, Transport::HttpJson);
    }

    #[tokio::test]
    async fn http_rejects_other_content_types_and_encodings_with_415() {
        let running = start(Receiver::new()).await;
        let body = sample_request().encode_to_vec();

        let (status, _, message) =
            post(&running, &[("content-type", "text/plain")], body.clone()).await;
        assert_eq!(status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let message = String::from_utf8_lossy(&message);
        assert!(message.contains("text/plain"), "{message}");
        assert!(message.contains("application/x-protobuf"), "{message}");

        let (status, _, _) = post(&running, &[], body.clone()).await;
        assert_eq!(
            status,
            reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no content type"
        );

        let (status, content_type, reply) = post(
            &running,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "br"),
            ],
            body,
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let reply = RpcStatus::decode(&reply[..]).expect("google.rpc.Status body");
        assert!(reply.message.contains("\"br\""), "{}", reply.message);

        assert!(running.spans().is_empty());
    }

    #[tokio::test]
    async fn http_rejects_undecodable_bodies_with_400() {
        let running = start(Receiver::new()).await;

        // Field 1, length 16, but only one byte follows.
        let truncated = vec![0x0a, 0x10, 0x01];
        let (status, content_type, reply) = post(
            &running,
            &[("content-type", CONTENT_TYPE_PROTOBUF)],
            truncated,
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let reply = RpcStatus::decode(&reply[..]).expect("google.rpc.Status body");
        assert_eq!(reply.code, RPC_INVALID_ARGUMENT);
        assert!(
            reply
                .message
                .starts_with("body is not a protobuf ExportTraceServiceRequest"),
            "{}",
            reply.message
        );

        let (status, content_type, reply) = post(
            &running,
            &[("content-type", CONTENT_TYPE_JSON)],
            br#"{"resourceSpans": 5}"#.to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        let reply: serde_json::Value = serde_json::from_slice(&reply).expect("JSON Status body");
        assert_eq!(reply["code"], RPC_INVALID_ARGUMENT);
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("body is not an OTLP/JSON ExportTraceServiceRequest"),
            "{message}"
        );

        let (status, _, reply) = post(
            &running,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "gzip"),
            ],
            b"not gzip".to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        let reply = RpcStatus::decode(&reply[..]).expect("google.rpc.Status body");
        assert!(
            reply.message.starts_with("body is not valid gzip"),
            "{}",
            reply.message
        );

        assert!(running.spans().is_empty());
    }

    #[tokio::test]
    async fn http_protobuf_logs_are_captured() {
        let running = start(Receiver::new()).await;
        let (status, content_type, body) = post_to(
            &running,
            HTTP_LOGS_PATH,
            &[
                ("content-type", CONTENT_TYPE_PROTOBUF),
                ("content-encoding", "gzip"),
            ],
            gzip(&sample_logs_request().encode_to_vec()),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_PROTOBUF));
        let response = ExportLogsServiceResponse::decode(&body[..]).expect("protobuf response");
        assert_eq!(response.partial_success, None);

        assert_sample_logs_captured(&running.logs(), Transport::HttpProtobuf);
        assert!(running.spans().is_empty(), "logs are not spans");
    }

    /// OTLP/JSON logs: hex ids, severity as an integer, 64-bit times as
    /// strings, the body an `AnyValue`.
    #[tokio::test]
    async fn http_json_logs_are_captured() {
        let json = r#"{
          "resourceLogs": [{
            "resource": {"attributes": [
              {"key": "service.name", "value": {"stringValue": "payments"}},
              {"key": "service.instance.id", "value": {"stringValue": "p-1"}}
            ]},
            "scopeLogs": [{
              "scope": {"name": "payments"},
              "logRecords": [{
                "timeUnixNano": "1544712660300000000",
                "observedTimeUnixNano": "1544712660300000001",
                "severityNumber": 13,
                "severityText": "WARN",
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "0011223344556677",
                "flags": 1,
                "body": {"stringValue": "retrying <provider>"},
                "attributes": [
                  {"key": "attempt", "value": {"intValue": "2"}},
                  {"key": "destination", "value": {"stringValue": "provider"}}
                ]
              }, {
                "severityNumber": 9,
                "body": {"stringValue": "no trace here"}
              }]
            }]
          }]
        }"#;
        let running = start(Receiver::new()).await;
        let (status, content_type, body) = post_to(
            &running,
            HTTP_LOGS_PATH,
            &[("content-type", CONTENT_TYPE_JSON)],
            json.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        assert_eq!(body, b"{}");

        let logs = running.logs();
        assert_eq!(logs.len(), 2, "{logs:#?}");
        let warn = &logs[0];
        assert_eq!(warn.service_name, "payments");
        assert_eq!(warn.trace_id.as_deref(), Some(TRACE_HEX), "lower-cased");
        assert_eq!(warn.span_id.as_deref(), Some(CHILD_HEX));
        assert_eq!(warn.flags, 1);
        assert_eq!(warn.severity, Severity::Warn);
        assert_eq!(warn.severity_text, "WARN");
        assert_eq!(warn.body, AttrValue::String("retrying <provider>".into()));
        assert_eq!(warn.attr_i64("attempt"), Some(2));
        assert_eq!(warn.attr_str("destination"), Some("provider"));
        assert_eq!(warn.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(warn.transport, Transport::HttpJson);
        let plain = &logs[1];
        assert_eq!(
            (plain.trace_id.as_deref(), plain.span_id.as_deref()),
            (None, None)
        );
        assert_eq!(plain.severity, Severity::Info, "from the number alone");
        assert_eq!(running.trace_logs(TRACE_HEX).len(), 1);
    }

    #[tokio::test]
    async fn http_logs_errors_name_the_logs_request() {
        let running = start(Receiver::new()).await;
        let (status, _, reply) = post_to(
            &running,
            HTTP_LOGS_PATH,
            &[("content-type", CONTENT_TYPE_JSON)],
            br#"{"resourceLogs": 5}"#.to_vec(),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
        let reply: serde_json::Value = serde_json::from_slice(&reply).expect("JSON Status body");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("body is not an OTLP/JSON ExportLogsServiceRequest"),
            "{message}"
        );
        assert!(running.logs().is_empty());
    }
}
