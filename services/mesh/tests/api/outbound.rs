//! The outbound client against a real destination on a loopback port:
//! context injection, the client span, per-edge metrics, error sorting,
//! and decoding of answers.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use axum::{Router, extract::Path, routing::get};
use http::{HeaderMap, StatusCode};
use mesh::{
    CallError, MeshClient, OutboundError, Readiness, error_response,
    outbound::{decode, encode_path_segment},
    server::Server,
};
use opentelemetry::{
    Context, KeyValue, Value,
    baggage::BaggageExt as _,
    trace::{SpanKind, Status},
};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::helpers::{Exposition, Telemetry, attr, identity, serve_config, str_attr};

const COUNT: &str = "http_client_request_duration_seconds_count";

/// The destination: a mesh service answering the ways a real one can.
struct Catalog {
    base_url: String,
    port: u16,
    mesh: mesh::Mesh,
}

async fn spawn_catalog() -> Catalog {
    let api = Router::new()
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let received: HashMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                axum::Json(received)
            }),
        )
        .route(
            "/items/{id}",
            get(|Path(id): Path<String>| async move { axum::Json(json!({"id": id})) }),
        )
        .route(
            "/missing",
            get(|| async { error_response(StatusCode::NOT_FOUND, "item_not_found", "no item 7") }),
        )
        .route(
            "/boom",
            get(|| async {
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something broke",
                )
            }),
        )
        .route(
            "/plain",
            get(|| async { (StatusCode::BAD_GATEWAY, "bad gateway from upstream") }),
        )
        .route(
            "/wrong-shape",
            get(|| async { axum::Json(json!({"unexpected": true})) }),
        )
        .route("/hang", get(std::future::pending::<&'static str>));
    let mesh = mesh::Mesh::new(identity("catalog"), &serve_config());
    let readiness = Readiness::new(None);
    readiness.mark_started();
    let router = mesh.router(api, readiness);
    let server = Server::bind([127, 0, 0, 1].into(), 0, router, Duration::from_secs(1))
        .await
        .expect("binds a free port");
    let port = server.port();
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    Catalog {
        base_url: format!("http://127.0.0.1:{port}"),
        port,
        mesh,
    }
}

/// The caller, with its deadline for outbound calls.
fn storefront(outbound_timeout: Duration) -> mesh::Mesh {
    let mut config = serve_config();
    config.outbound.outbound_timeout = outbound_timeout;
    mesh::Mesh::new(identity("storefront"), &config)
}

fn client(storefront: &mesh::Mesh, base_url: &str) -> MeshClient {
    storefront
        .client("catalog", base_url)
        .expect("valid base URL")
}

fn edge(metrics: &Exposition, route: &str, status: &str, outcome: &str) -> Option<f64> {
    metrics.value(
        COUNT,
        &[
            ("source", "storefront"),
            ("destination", "catalog"),
            ("method", "GET"),
            ("route", route),
            ("status", status),
            ("outcome", outcome),
        ],
    )
}

fn scrape(mesh: &mesh::Mesh) -> Exposition {
    Exposition::parse(&mesh.metrics().encode_openmetrics())
}

#[tokio::test]
async fn calls_carry_trace_context_and_baggage_to_the_destination() {
    let telemetry = Telemetry::install();
    let catalog = spawn_catalog().await;
    let storefront = storefront(Duration::from_secs(5));
    let client = client(&storefront, &catalog.base_url);
    // The caller is itself inside a request whose baggage it received.
    let caller = tracing::info_span!("caller");
    let _ = caller.set_parent(
        Context::new().with_baggage([KeyValue::new("learnsphere.scenario", "checkout")]),
    );

    let received: HashMap<String, String> = client
        .get("/echo", &[])
        .send_json()
        .instrument(caller.clone())
        .await
        .expect("echo answers");
    drop(caller);

    let span = telemetry.span_of_kind("GET /echo", SpanKind::Client);
    let caller = telemetry.span("caller");
    let server = telemetry.span_of_kind("GET /echo", SpanKind::Server);
    // traceparent names the client span: the server span becomes its child.
    assert_eq!(
        received.get("traceparent").map(String::as_str),
        Some(
            format!(
                "00-{}-{}-01",
                span.span_context.trace_id(),
                span.span_context.span_id()
            )
            .as_str()
        ),
        "{received:?}"
    );
    assert_eq!(
        received.get("baggage").map(String::as_str),
        Some("learnsphere.scenario=checkout")
    );
    assert_eq!(span.parent_span_id, caller.span_context.span_id());
    assert_eq!(span.span_context.trace_id(), caller.span_context.trace_id());
    assert_eq!(server.parent_span_id, span.span_context.span_id());
    assert_eq!(server.span_context.trace_id(), span.span_context.trace_id());
    // HTTP client semantic conventions.
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(str_attr(&span, "peer.service").as_deref(), Some("catalog"));
    assert_eq!(
        str_attr(&span, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr(&span, "server.port"),
        Some(&Value::I64(i64::from(catalog.port)))
    );
    assert_eq!(str_attr(&span, "url.template").as_deref(), Some("/echo"));
    assert_eq!(
        str_attr(&span, "url.full"),
        Some(format!("{}/echo", catalog.base_url))
    );
    assert_eq!(
        str_attr(&span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr(&span, "error.type"), None);
    // The edge's latency points at this call's trace.
    let metrics = scrape(&storefront);
    let exemplars: Vec<_> = metrics
        .matching(
            "http_client_request_duration_seconds_bucket",
            &[("route", "/echo")],
        )
        .into_iter()
        .filter_map(|s| s.exemplar.clone())
        .collect();
    assert_eq!(
        exemplars,
        [vec![(
            "trace_id".to_owned(),
            span.span_context.trace_id().to_string()
        )]]
    );
}

#[tokio::test]
async fn edge_metrics_count_4xx_as_answered_and_5xx_as_errors() {
    let telemetry = Telemetry::install();
    let catalog = spawn_catalog().await;
    let storefront = storefront(Duration::from_secs(5));
    let client = client(&storefront, &catalog.base_url);

    for (route, status) in [
        ("/echo", 200),
        ("/echo", 200),
        ("/missing", 404),
        ("/boom", 500),
    ] {
        let res = client.get(route, &[]).send().await.expect("an answer");
        assert_eq!(res.status(), status);
    }

    let metrics = scrape(&storefront);
    assert_eq!(
        edge(&metrics, "/echo", "200", "success"),
        Some(2.0),
        "{}",
        metrics.text
    );
    // The destination answered: the edge worked (Linkerd's classification).
    assert_eq!(edge(&metrics, "/missing", "404", "success"), Some(1.0));
    assert_eq!(edge(&metrics, "/boom", "500", "error"), Some(1.0));
    assert_eq!(metrics.matching(COUNT, &[]).len(), 3, "{}", metrics.text);
    // Client spans: any 4xx or 5xx is an error from the caller's side
    // (HTTP semantic conventions), unlike server spans.
    for (name, status) in [("GET /missing", "404"), ("GET /boom", "500")] {
        let span = telemetry.span_of_kind(name, SpanKind::Client);
        assert!(
            matches!(span.status, Status::Error { .. }),
            "{name}: {:?}",
            span.status
        );
        assert_eq!(str_attr(&span, "error.type").as_deref(), Some(status));
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_with_status_0() {
    let telemetry = Telemetry::install();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let storefront = storefront(Duration::from_secs(5));
    let client = client(&storefront, &format!("http://127.0.0.1:{closed}"));

    let error = client
        .get("/echo", &[])
        .send()
        .await
        .expect_err("nobody listens");

    assert!(matches!(error, OutboundError::Connect { .. }), "{error:?}");
    assert_eq!(error.destination(), "catalog");
    let metrics = scrape(&storefront);
    assert_eq!(
        edge(&metrics, "/echo", "0", "error"),
        Some(1.0),
        "{}",
        metrics.text
    );
    let span = telemetry.span_of_kind("GET /echo", SpanKind::Client);
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(str_attr(&span, "error.type").as_deref(), Some("connect"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    // Typed calls report it as "no answer", not as a status.
    let error = client
        .get("/echo", &[])
        .send_json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::Unavailable(OutboundError::Connect { .. })),
        "{error:?}"
    );
    assert_eq!(error.status(), None);
}

#[tokio::test]
async fn a_destination_slower_than_the_deadline_times_out() {
    let telemetry = Telemetry::install();
    let catalog = spawn_catalog().await;
    let deadline = Duration::from_millis(200);
    let storefront = storefront(deadline);
    let client = client(&storefront, &catalog.base_url);

    let started = Instant::now();
    let error = client
        .get("/hang", &[])
        .send()
        .await
        .expect_err("never answers");
    let waited = started.elapsed();

    match &error {
        OutboundError::Timeout {
            destination,
            timeout,
        } => {
            assert_eq!(&**destination, "catalog");
            assert_eq!(*timeout, Some(deadline));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        waited >= deadline && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let metrics = scrape(&storefront);
    assert_eq!(
        edge(&metrics, "/hang", "0", "timeout"),
        Some(1.0),
        "{}",
        metrics.text
    );
    let span = telemetry.span_of_kind("GET /hang", SpanKind::Client);
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(str_attr(&span, "error.type").as_deref(), Some("timeout"));
}

#[derive(Debug, Deserialize)]
struct Item {
    #[allow(dead_code)]
    id: String,
    #[allow(dead_code)]
    price_cents: i64,
}

#[tokio::test]
async fn typed_calls_turn_error_answers_into_call_errors() {
    let catalog = spawn_catalog().await;
    let storefront = storefront(Duration::from_secs(5));
    let client = client(&storefront, &catalog.base_url);

    // The destination's own error body: status, code and message kept.
    let error = client
        .get("/missing", &[])
        .send_json::<Item>()
        .await
        .unwrap_err();
    match &error {
        CallError::Status {
            destination,
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(&**destination, "catalog");
            assert_eq!(*status, StatusCode::NOT_FOUND);
            assert_eq!(code, "item_not_found");
            assert_eq!(message, "no item 7");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(error.code(), Some("item_not_found"));
    let error = client
        .get("/boom", &[])
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(StatusCode::INTERNAL_SERVER_ERROR), Some("internal"))
    );

    // Something in between answered in plain text: kept as the message.
    let error = client
        .get("/plain", &[])
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CallError::Status { status: StatusCode::BAD_GATEWAY, code, message, .. }
            if code == "unknown" && message == "bad gateway from upstream"),
        "{error:?}"
    );

    // A 2xx that is not what the contract says.
    let error = client
        .get("/wrong-shape", &[])
        .send_json::<Item>()
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Decode { .. }), "{error:?}");

    // `decode` on its own, as typed clients that send() first use it.
    let res = client.get("/echo", &[]).send().await.unwrap();
    let echoed: HashMap<String, String> = decode(&"catalog".into(), res).await.unwrap();
    assert!(echoed.contains_key("host"));
}

#[tokio::test]
async fn an_encoded_path_segment_cannot_change_the_route() {
    let catalog = spawn_catalog().await;
    let storefront = storefront(Duration::from_secs(5));
    let client = client(&storefront, &catalog.base_url);

    assert_eq!(encode_path_segment("a/b?c"), "a%2Fb%3Fc");
    assert_eq!(encode_path_segment("plain-id_1.2~x"), "plain-id_1.2~x");
    for id in [
        "a/b?c",
        "x#frag",
        "../../admin",
        "50%",
        "naïve id",
        "a/../b",
        "%2e%2e",
        ".",
        "..",
    ] {
        let path = format!("/items/{}", encode_path_segment(id));
        let res = client
            .get("/items/{id}", &[id])
            .send()
            .await
            .expect("an answer");

        assert_eq!(res.status(), StatusCode::OK, "id {id:?} sent as {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        let seen = body["id"].as_str().unwrap().to_owned();
        if id != "." && id != ".." {
            assert_eq!(seen, id, "sent as {path}");
        } else {
            // Dot segments cannot travel in a URL at all: the id arrives
            // changed, but at the route it was meant for.
            assert_eq!(seen, id.replace('.', "%2E"));
        }
    }
    let served = Exposition::parse(&catalog.mesh.metrics().encode_openmetrics());
    let routes: Vec<_> = served
        .matching("http_server_request_duration_seconds_count", &[])
        .into_iter()
        .map(|s| s.label("route").unwrap().to_owned())
        .collect();
    assert_eq!(routes, ["/items/{id}"], "{}", served.text);
}
