//! Allow-listed baggage copied onto server spans. The allow-list is set
//! once per process by `telemetry::init`, which is why the suite needs
//! nextest's process per test.

use axum::{Router, body::Body, routing::get};
use clap::Parser;
use http::{Request, StatusCode};
use mesh::{Mesh, Readiness, TelemetryConfig, telemetry};

use crate::helpers::{Telemetry, call, identity, serve_config, str_attr, traceresponse};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    telemetry: TelemetryConfig,
}

#[tokio::test]
async fn allow_listed_baggage_becomes_span_attributes_bounded_in_length() {
    let cli = Cli::parse_from([
        "test",
        "--traces-exporter=none",
        "--baggage-span-attributes=learnsphere.scenario,learnsphere.journey",
    ]);
    let guard = telemetry::init(&cli.telemetry, &identity("items")).expect("telemetry starts");
    assert_eq!(
        mesh::baggage::span_attributes().collect::<Vec<_>>(),
        ["learnsphere.scenario", "learnsphere.journey"]
    );
    // A tracer we can read, for this thread; `init`'s global one stays unused.
    let spans = Telemetry::install();
    let readiness = Readiness::new(None);
    readiness.mark_started();
    let api = Router::new().route("/items/{id}", get(|| async { "one item" }));
    let app = Mesh::new(identity("items"), &serve_config()).router(api, readiness);
    let journey = "j".repeat(300);

    let req = Request::get("/items/1")
        .header(
            "baggage",
            format!(
                "learnsphere.scenario=checkout,user.secret=hunter2,learnsphere.journey={journey}"
            ),
        )
        // Baggage is its own header: a broken traceparent does not void it.
        .header("traceparent", "00-not-a-trace-01")
        .body(Body::empty())
        .unwrap();
    let res = call(&app, req).await;

    assert_eq!(res.status(), StatusCode::OK);
    let span = spans.span("GET /items/{id}");
    assert_eq!(span.span_context.trace_id(), traceresponse(&res).trace_id);
    assert_eq!(
        str_attr(&span, "baggage.learnsphere.scenario").as_deref(),
        Some("checkout")
    );
    assert_eq!(
        str_attr(&span, "baggage.learnsphere.journey"),
        Some("j".repeat(128))
    );
    let copied: Vec<&str> = span
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .filter(|k| k.starts_with("baggage."))
        .collect();
    assert_eq!(copied.len(), 2, "only allow-listed keys: {copied:?}");

    // Without baggage, no attributes.
    spans.reset();
    let res = call(&app, Request::get("/items/2").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let span = spans.span("GET /items/{id}");
    assert!(
        span.attributes
            .iter()
            .all(|kv| !kv.key.as_str().starts_with("baggage."))
    );

    drop(spans);
    guard.shutdown(std::time::Duration::from_secs(1)).await;
}
