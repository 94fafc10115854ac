//! The inbound RED metrics and in-flight gauge, and the admin surface
//! (`/metrics`, `/healthz`, `/readyz`), as a scraper and an orchestrator
//! see them.

use std::sync::Arc;

use axum::{Router, body::Body, routing};
use http::{Request, StatusCode, header};
use mesh::{Mesh, Readiness};
use serde_json::json;
use tokio::sync::Notify;

use crate::helpers::{
    Exposition, Telemetry, body_json, body_text, call, get, identity, scrape, serve_config,
    spawn_call,
};

const DURATION_COUNT: &str = "http_server_request_duration_seconds_count";
const DURATION_BUCKET: &str = "http_server_request_duration_seconds_bucket";
const ACTIVE: &str = "http_server_active_requests";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A handler that reports when it has started and then waits to be let go.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

fn app_with(readiness: Readiness, gate: Gate) -> Router {
    let api = Router::new()
        .route("/items", routing::get(|| async { "all items" }))
        .route("/items/{id}", routing::get(|| async { "one item" }))
        .route(
            "/broken",
            routing::get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "the handler failed") }),
        )
        .route(
            "/slow",
            routing::get(move || async move {
                gate.entered.notify_one();
                gate.release.notified().await;
                "finally"
            }),
        );
    Mesh::new(identity("items"), &serve_config()).router(api, readiness)
}

fn app() -> Router {
    let readiness = Readiness::new(None);
    readiness.mark_started();
    app_with(readiness, Gate::default())
}

fn requests(exposition: &Exposition, route: &str, status: &str) -> Option<f64> {
    exposition.value(
        DURATION_COUNT,
        &[
            ("service", "items"),
            ("method", "GET"),
            ("route", route),
            ("status", status),
        ],
    )
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let app = app();
    for id in 1..=3 {
        assert_eq!(call(&app, get(&format!("/items/{id}"))).await.status(), 200);
    }
    assert_eq!(call(&app, get("/items")).await.status(), 200);
    assert_eq!(call(&app, get("/broken")).await.status(), 500);

    let metrics = scrape(&app).await;

    assert_eq!(
        requests(&metrics, "/items/{id}", "200"),
        Some(3.0),
        "{}",
        metrics.text
    );
    assert_eq!(requests(&metrics, "/items", "200"), Some(1.0));
    assert_eq!(requests(&metrics, "/broken", "500"), Some(1.0));
    assert_eq!(requests(&metrics, "/broken", "200"), None);
    // The +Inf bucket holds every observation, as the count does.
    let inf = metrics.value(DURATION_BUCKET, &[("route", "/items/{id}"), ("le", "+Inf")]);
    assert_eq!(inf, Some(3.0));
    // Raw paths never become label values.
    assert!(!metrics.text.contains("/items/1"), "{}", metrics.text);
}

#[tokio::test]
async fn unknown_paths_share_one_unmatched_series() {
    let app = app();
    let paths: Vec<String> = (0..100)
        .map(|_| format!("/scan/{}", uuid::Uuid::new_v4()))
        .collect();
    for path in &paths {
        assert_eq!(call(&app, get(path)).await.status(), StatusCode::NOT_FOUND);
    }

    let metrics = scrape(&app).await;

    let series = metrics.matching(DURATION_COUNT, &[]);
    assert_eq!(series.len(), 1, "bounded cardinality: {series:#?}");
    assert_eq!(series[0].label("route"), Some("unmatched"));
    assert_eq!(series[0].label("status"), Some("404"));
    assert_eq!(series[0].value, 100.0);
    assert!(paths.iter().all(|p| !metrics.text.contains(p.as_str())));
}

#[tokio::test]
async fn latency_observations_carry_the_request_trace_as_exemplar() {
    let _telemetry = Telemetry::install();
    let app = app();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = Request::get("/items/9")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.status(), 200);

    let metrics = scrape(&app).await;

    let buckets = metrics.matching(DURATION_BUCKET, &[("route", "/items/{id}")]);
    let exemplars: Vec<_> = buckets.iter().filter_map(|s| s.exemplar.as_ref()).collect();
    assert_eq!(
        exemplars,
        [&vec![("trace_id".to_owned(), trace_id.to_owned())]],
        "one exemplar, on the bucket the request fell in: {}",
        metrics.text
    );
}

#[tokio::test]
async fn unsampled_and_untraced_requests_leave_no_exemplar() {
    // No tracer at all: no trace to point at.
    let app = app();
    assert_eq!(call(&app, get("/items/1")).await.status(), 200);
    let metrics = scrape(&app).await;
    assert!(
        metrics.samples.iter().all(|s| s.exemplar.is_none()),
        "{}",
        metrics.text
    );

    // A caller that did not sample: the trace never reaches Jaeger, so an
    // exemplar would be a dead link.
    let _telemetry = Telemetry::install();
    let app = self::app();
    let req = Request::get("/items/1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.status(), 200);
    let metrics = scrape(&app).await;
    assert_eq!(requests(&metrics, "/items/{id}", "200"), Some(1.0));
    assert!(
        metrics.samples.iter().all(|s| s.exemplar.is_none()),
        "{}",
        metrics.text
    );
}

fn active(metrics: &Exposition) -> Option<f64> {
    metrics.value(ACTIVE, &[("service", "items")])
}

#[tokio::test]
async fn the_in_flight_gauge_counts_requests_being_served() {
    let readiness = Readiness::new(None);
    readiness.mark_started();
    let gate = Gate::default();
    let app = app_with(readiness, gate.clone());
    assert_eq!(active(&scrape(&app).await), Some(0.0));

    let slow = spawn_call(&app, get("/slow"));
    gate.entered.notified().await;
    let during = scrape(&app).await;
    gate.release.notify_one();
    let res = slow.await.unwrap();

    assert_eq!(active(&during), Some(1.0), "{}", during.text);
    // Not counted until it has an answer.
    assert_eq!(requests(&during, "/slow", "200"), None);
    assert_eq!(res.status(), 200);
    let after = scrape(&app).await;
    assert_eq!(active(&after), Some(0.0));
    assert_eq!(requests(&after, "/slow", "200"), Some(1.0));
}

#[tokio::test]
async fn a_request_abandoned_by_its_client_leaves_the_in_flight_gauge() {
    let readiness = Readiness::new(None);
    readiness.mark_started();
    let gate = Gate::default();
    let app = app_with(readiness, gate.clone());

    let slow = spawn_call(&app, get("/slow"));
    gate.entered.notified().await;
    assert_eq!(active(&scrape(&app).await), Some(1.0));
    // The client hangs up: hyper drops the request future unfinished.
    slow.abort();
    assert!(slow.await.unwrap_err().is_cancelled());

    assert_eq!(active(&scrape(&app).await), Some(0.0));
}

#[tokio::test]
async fn metrics_are_openmetrics_with_eof_by_default() {
    let _telemetry = Telemetry::install();
    let app = app();
    assert_eq!(call(&app, get("/items/1")).await.status(), 200);

    // Prometheus' own scrape Accept header prefers OpenMetrics.
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for accept in [None, Some(prometheus_accept)] {
        let mut req = Request::get("/metrics");
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT, accept);
        }
        let res = call(&app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            OPENMETRICS,
            "Accept {accept:?}"
        );
        let text = body_text(res).await;
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains(" # {trace_id=\""), "exemplars: {text}");
        assert!(text.contains("build_info{"), "{text}");
    }
}

#[tokio::test]
async fn text_plain_scrapers_get_prometheus_text_without_exemplars() {
    let _telemetry = Telemetry::install();
    let app = app();
    assert_eq!(call(&app, get("/items/1")).await.status(), 200);

    let req = Request::get("/metrics")
        .header(header::ACCEPT, "text/plain")
        .body(Body::empty())
        .unwrap();
    let res = call(&app, req).await;

    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = body_text(res).await;
    assert!(!text.contains(" # {"), "no exemplars in 0.0.4 text: {text}");
    assert!(!text.contains("# EOF"), "{text}");
    let metrics = Exposition::parse(&text);
    assert_eq!(
        requests(&metrics, "/items/{id}", "200"),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn healthz_always_and_readyz_only_once_started() {
    let readiness = Readiness::new(None);
    let app = app_with(readiness.clone(), Gate::default());

    let res = call(&app, get("/healthz")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body_json(res).await, json!({"status": "ok"}));
    let res = call(&app, get("/readyz")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body_json(res).await,
        json!({"status": "not_ready", "reason": "starting"})
    );

    readiness.mark_started();

    let res = call(&app, get("/readyz")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body_json(res).await, json!({"status": "ready"}));
    assert_eq!(call(&app, get("/healthz")).await.status(), 200);
}

#[tokio::test]
async fn admin_routes_are_not_counted_as_traffic() {
    let app = app();
    for _ in 0..3 {
        for path in ["/metrics", "/healthz", "/readyz"] {
            assert_eq!(call(&app, get(path)).await.status(), 200, "{path}");
        }
    }

    let metrics = scrape(&app).await;

    assert!(
        metrics.matching(DURATION_COUNT, &[]).is_empty(),
        "{}",
        metrics.text
    );
    assert_eq!(active(&metrics), Some(0.0));
}
