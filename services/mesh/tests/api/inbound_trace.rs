//! The inbound server span, through the real router: W3C Trace Context
//! continued or restarted, `traceresponse`, OpenTelemetry HTTP server
//! semantic conventions (name, kind, attributes, status).

use axum::{Router, body::Body, routing::get};
use http::{HeaderValue, Request, StatusCode};
use mesh::{Mesh, Readiness};
use opentelemetry::{
    Value,
    trace::{SpanId, SpanKind, Status, TraceId},
};

use crate::helpers::{Telemetry, attr, call, identity, serve_config, str_attr, traceresponse};

fn app() -> Router {
    let api = Router::new()
        .route("/items", get(|| async { "all items" }))
        .route("/items/{id}", get(|| async { "one item" }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed") }),
        )
        .route(
            "/gone",
            get(|| async { (StatusCode::NOT_FOUND, "no such item") }),
        );
    let readiness = Readiness::new(None);
    readiness.mark_started();
    Mesh::new(identity("items"), &serve_config()).router(api, readiness)
}

fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::get(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Body::empty()).unwrap()
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_valid_traceparent_is_continued_and_answered_in_traceresponse() {
    let telemetry = Telemetry::install();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");

    let res = call(
        &app(),
        get_with("/items/7", &[("traceparent", &traceparent)]),
    )
    .await;

    assert_eq!(res.status(), StatusCode::OK);
    let answered = traceresponse(&res);
    let span = telemetry.span("GET /items/{id}");
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex(TRACE_ID).unwrap()
    );
    assert_eq!(span.parent_span_id, SpanId::from_hex(PARENT_ID).unwrap());
    assert!(span.parent_span_is_remote);
    // traceresponse = 00-<same trace>-<the server span, not the caller's>-01.
    assert_eq!(answered.trace_id, span.span_context.trace_id());
    assert_eq!(answered.span_id, span.span_context.span_id());
    assert_ne!(answered.span_id, SpanId::from_hex(PARENT_ID).unwrap());
    assert_eq!(answered.flags, 0x01);
    assert_eq!(
        res.headers()["traceresponse"],
        format!("00-{TRACE_ID}-{}-01", span.span_context.span_id()).as_str()
    );
}

#[tokio::test]
async fn without_traceparent_a_new_trace_starts() {
    let telemetry = Telemetry::install();

    let res = call(&app(), get_with("/items", &[])).await;

    assert_eq!(res.status(), StatusCode::OK);
    let answered = traceresponse(&res);
    let span = telemetry.span("GET /items");
    assert_eq!(span.span_context.trace_id(), answered.trace_id);
    assert_eq!(span.parent_span_id, SpanId::INVALID, "a root span");
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_and_never_fails_the_request() {
    let telemetry = Telemetry::install();
    let app = app();
    let malformed: &[&[u8]] = &[
        // Flags one digit short.
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        // Trace id one digit short.
        b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        // Version ff is forbidden.
        b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // All-zero trace id, and all-zero parent id, are invalid.
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // Not hex.
        b"00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
        // Version 00 has nothing after the flags.
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        // Upper-case hex is not the spec's HEXDIGLC.
        b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        b"not a traceparent",
        b"",
        // Not even ASCII (a header value may carry such bytes).
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\xff\xfe",
    ];
    for value in malformed {
        telemetry.reset();
        let mut req = get_with("/items/1", &[]);
        req.headers_mut()
            .insert("traceparent", HeaderValue::from_bytes(value).unwrap());

        let res = call(&app, req).await;

        let shown = String::from_utf8_lossy(value);
        assert_eq!(res.status(), StatusCode::OK, "traceparent {shown:?}");
        let answered = traceresponse(&res);
        assert_ne!(
            answered.trace_id,
            TraceId::from_hex(TRACE_ID).unwrap(),
            "traceparent {shown:?} must not be continued"
        );
        let span = telemetry.span("GET /items/{id}");
        assert_eq!(span.span_context.trace_id(), answered.trace_id, "{shown:?}");
        assert_eq!(
            span.parent_span_id,
            SpanId::INVALID,
            "{shown:?}: a root span"
        );
    }
}

#[tokio::test]
async fn the_span_is_named_after_the_route_template_with_http_server_attributes() {
    let telemetry = Telemetry::install();

    let res = call(
        &app(),
        get_with("/items/42", &[("user-agent", "mesh-test/1")]),
    )
    .await;

    assert_eq!(res.status(), StatusCode::OK);
    // The template, not the raw path: one span name per route.
    let span = telemetry.span("GET /items/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        str_attr(&span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        str_attr(&span, "http.route").as_deref(),
        Some("/items/{id}")
    );
    assert_eq!(str_attr(&span, "url.path").as_deref(), Some("/items/42"));
    assert_eq!(
        str_attr(&span, "user_agent.original").as_deref(),
        Some("mesh-test/1")
    );
    // An integer, as the semantic conventions type it (not "200").
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(attr(&span, "error.type"), None);
    assert_eq!(span.status, Status::Unset);
    // The request id the stack made is on the span and echoed back.
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        str_attr(&span, "http.request.header.x-request-id").as_deref(),
        Some(request_id.as_str())
    );
}

#[tokio::test]
async fn a_5xx_answer_marks_the_server_span_as_an_error() {
    let telemetry = Telemetry::install();

    let res = call(&app(), get_with("/broken", &[])).await;

    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let span = telemetry.span("GET /broken");
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_eq!(str_attr(&span, "error.type").as_deref(), Some("500"));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(&Value::I64(500))
    );
    // Still answered with the trace, so the failing request can be found.
    assert_eq!(traceresponse(&res).trace_id, span.span_context.trace_id());
}

#[tokio::test]
async fn a_4xx_answer_is_not_a_server_error() {
    let telemetry = Telemetry::install();
    let app = app();

    // From a handler, and from the mesh's own 404 and 405 answers.
    let res = call(&app, get_with("/gone", &[])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = call(&app, get_with("/no/such/route", &[])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = call(
        &app,
        Request::delete("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    let spans = telemetry.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for span in spans {
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(span.status, Status::Unset, "{}", span.name);
        assert_eq!(attr(&span, "error.type"), None, "{}", span.name);
        assert!(
            matches!(
                attr(&span, "http.response.status_code"),
                Some(Value::I64(404 | 405))
            ),
            "{span:#?}"
        );
    }
}

#[tokio::test]
async fn baggage_is_not_copied_onto_spans_unless_allow_listed() {
    // `telemetry::init` never runs in this test's process (nextest gives
    // each test its own), so the allow-list is empty; the copying itself
    // is tested in `baggage.rs`.
    assert_eq!(mesh::baggage::span_attributes().count(), 0);
    let telemetry = Telemetry::install();

    let res = call(
        &app(),
        get_with(
            "/items/1",
            &[(
                "baggage",
                "learnsphere.scenario=checkout,user.secret=hunter2",
            )],
        ),
    )
    .await;

    assert_eq!(res.status(), StatusCode::OK);
    let span = telemetry.span("GET /items/{id}");
    let copied: Vec<_> = span
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str().starts_with("baggage."))
        .collect();
    assert!(copied.is_empty(), "{copied:?}");
}

#[tokio::test]
async fn admin_routes_are_not_traced() {
    let telemetry = Telemetry::install();
    let app = app();

    for path in ["/metrics", "/healthz", "/readyz"] {
        let res = call(&app, get_with(path, &[])).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res.headers().get("traceresponse").is_none(), "{path}");
    }

    assert!(telemetry.spans().is_empty(), "{:#?}", telemetry.spans());
}

#[tokio::test]
async fn an_unknown_path_is_not_recorded() {
    let telemetry = Telemetry::install();
    let res = call(&app(), get_with("/no/such/route/hunter2", &[])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Without a route the span is named after the method alone, and the
    // path a client made up is not kept.
    let span = telemetry.span("GET");
    assert_eq!(str_attr(&span, "url.path"), None);
    assert_eq!(str_attr(&span, "http.route"), None);
}
