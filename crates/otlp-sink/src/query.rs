//! A read-only HTTP API over what a [`Receiver`] holds, for scripts and
//! scrapers rather than tests (tests hold the [`Receiver`] itself): a
//! receiver standing in for an OpenTelemetry Collector can be asked here
//! whether a trace arrived whole, and scraped by Prometheus where the
//! Collector's exporter would be.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /api/traces/{trace_id}` | `{"trace_id", "spans": [...], "logs": [...]}`, the held spans ([`CapturedSpan`] as JSON) and log records ([`CapturedLog`]) of that trace, each oldest first; 404 with empty lists when nothing of it is held |
//! | `GET /api/stats` | [`ReceiverStats`] as JSON |
//! | `GET /metrics` | the same counters in the Prometheus text format |

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::log::CapturedLog;
use crate::receiver::{Receiver, ReceiverStats};
use crate::span::CapturedSpan;

/// The body of `GET /api/traces/{trace_id}`.
#[derive(Debug, Serialize)]
struct TraceBody {
    trace_id: String,
    spans: Vec<CapturedSpan>,
    logs: Vec<CapturedLog>,
}

impl Receiver {
    /// The read-only query API (module docs), over this receiver's store.
    pub fn query_router(&self) -> Router {
        Router::new()
            .route("/api/traces/{trace_id}", get(trace))
            .route("/api/stats", get(stats))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

async fn trace(State(receiver): State<Receiver>, Path(trace_id): Path<String>) -> Response {
    let trace_id = trace_id.to_ascii_lowercase();
    let spans = receiver.trace(&trace_id);
    let logs = receiver.trace_logs(&trace_id);
    let status = if spans.is_empty() && logs.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    let body = TraceBody {
        trace_id,
        spans,
        logs,
    };
    (status, Json(body)).into_response()
}

async fn stats(State(receiver): State<Receiver>) -> Json<ReceiverStats> {
    Json(receiver.stats())
}

async fn metrics(State(receiver): State<Receiver>) -> Response {
    let ReceiverStats {
        received_spans,
        stored_spans,
        dropped_spans,
        received_logs,
        stored_logs,
        dropped_logs,
    } = receiver.stats();
    let body = format!(
        "# HELP otlp_receiver_spans_received_total Spans received over OTLP, dropped ones included.\n\
         # TYPE otlp_receiver_spans_received_total counter\n\
         otlp_receiver_spans_received_total {received_spans}\n\
         # HELP otlp_receiver_spans_stored Spans held in memory.\n\
         # TYPE otlp_receiver_spans_stored gauge\n\
         otlp_receiver_spans_stored {stored_spans}\n\
         # HELP otlp_receiver_spans_dropped_total Spans evicted to stay within the limit.\n\
         # TYPE otlp_receiver_spans_dropped_total counter\n\
         otlp_receiver_spans_dropped_total {dropped_spans}\n\
         # HELP otlp_receiver_logs_received_total Log records received over OTLP, dropped ones included.\n\
         # TYPE otlp_receiver_logs_received_total counter\n\
         otlp_receiver_logs_received_total {received_logs}\n\
         # HELP otlp_receiver_logs_stored Log records held in memory.\n\
         # TYPE otlp_receiver_logs_stored gauge\n\
         otlp_receiver_logs_stored {stored_logs}\n\
         # HELP otlp_receiver_logs_dropped_total Log records evicted to stay within the limit.\n\
         # TYPE otlp_receiver_logs_dropped_total counter\n\
         otlp_receiver_logs_dropped_total {dropped_logs}\n"
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use crate::span::Transport;

    const TRACE_HEX: &str = "5b8efff798038103d269b633813fc60c";

    /// Two spans of one trace from `gateway`.
    fn two_spans() -> ExportTraceServiceRequest {
        let span = |id: u8| Span {
            trace_id: u128::from_str_radix(TRACE_HEX, 16)
                .unwrap()
                .to_be_bytes()
                .to_vec(),
            span_id: vec![id; 8],
            name: format!("span {id}"),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("gateway".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(1), span(2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    async fn get_text(router: Router, uri: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_received_trace_is_answered_by_id_in_either_case() {
        let receiver = Receiver::new();
        receiver.ingest(two_spans(), Transport::Grpc);

        let uri = format!("/api/traces/{}", TRACE_HEX.to_ascii_uppercase());
        let (status, body) = get_text(receiver.query_router(), &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["trace_id"], TRACE_HEX);
        let spans = json["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0]["service_name"], "gateway");

        let (status, body) = get_text(
            receiver.query_router(),
            "/api/traces/00000000000000000000000000000001",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("\"spans\":[]"), "{body}");
        assert!(body.contains("\"logs\":[]"), "{body}");
    }

    #[tokio::test]
    async fn a_traces_log_records_come_with_it() {
        let receiver = Receiver::new();
        receiver.ingest_logs(crate::samples::sample_logs_request(), Transport::Grpc);
        let uri = format!("/api/traces/{}", crate::samples::TRACE_HEX);
        let (status, body) = get_text(receiver.query_router(), &uri).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a trace of log records alone is found"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let logs = json["logs"].as_array().unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0]["severity"], "ERROR");
        assert_eq!(logs[0]["body"], "payment provider failed");
        assert_eq!(logs[0]["attributes"]["error"], "connection refused");
    }

    #[tokio::test]
    async fn metrics_count_what_arrived() {
        let receiver = Receiver::with_max_spans(1);
        receiver.ingest(two_spans(), Transport::Grpc);
        receiver.ingest_logs(crate::samples::sample_logs_request(), Transport::Grpc);
        let (status, body) = get_text(receiver.query_router(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("\notlp_receiver_spans_received_total 2\n"),
            "{body}"
        );
        assert!(body.contains("\notlp_receiver_spans_stored 1\n"), "{body}");
        assert!(
            body.contains("\notlp_receiver_spans_dropped_total 1\n"),
            "{body}"
        );
        assert!(
            body.contains("\notlp_receiver_logs_received_total 2\n"),
            "{body}"
        );
        assert!(body.contains("\notlp_receiver_logs_stored 1\n"), "{body}");
        assert!(
            body.contains("\notlp_receiver_logs_dropped_total 1\n"),
            "{body}"
        );
        let (_, body) = get_text(receiver.query_router(), "/api/stats").await;
        assert_eq!(
            body,
            r#"{"received_spans":2,"stored_spans":1,"dropped_spans":1,"received_logs":2,"stored_logs":1,"dropped_logs":1}"#
        );
    }
}
