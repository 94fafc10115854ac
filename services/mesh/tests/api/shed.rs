//! Load shedding through the real router: over the concurrency limit a
//! request is refused at once with 503 and `Retry-After`, counted, traced
//! and observed like any other answer, while the admitted ones finish.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body, routing};
use bytes::Bytes;
use http::{StatusCode, header};
use mesh::{Mesh, Readiness};
use opentelemetry::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::helpers::{
    Exposition, Telemetry, attr, body_json, body_text, call, get, identity, scrape, serve_config,
    spawn_call,
};

const SHED: &str = "http_server_shed_requests_total";
const LIMIT: &str = "http_server_concurrency_limit";
const DURATION_COUNT: &str = "http_server_request_duration_seconds_count";

/// Handlers that report when they have started and then wait until the
/// test lets them go (one permit each).
#[derive(Clone)]
struct Gate {
    entered: mpsc::UnboundedSender<()>,
    release: Arc<Semaphore>,
}

struct GateControl {
    entered: mpsc::UnboundedReceiver<()>,
    release: Arc<Semaphore>,
}

impl GateControl {
    async fn wait_entered(&mut self, n: usize) {
        for _ in 0..n {
            tokio::time::timeout(Duration::from_secs(5), self.entered.recv())
                .await
                .expect("the handler was entered")
                .expect("gate open");
        }
    }

    fn release(&self, n: usize) {
        self.release.add_permits(n);
    }
}

fn gate() -> (Gate, GateControl) {
    let (tx, rx) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    (
        Gate {
            entered: tx,
            release: release.clone(),
        },
        GateControl {
            entered: rx,
            release,
        },
    )
}

fn app(limit: usize, gate: Gate) -> Router {
    let slow_gate = gate.clone();
    let api = Router::new()
        .route("/items", routing::get(|| async { "all items" }))
        .route(
            "/slow",
            routing::get(move || async move {
                let _ = slow_gate.entered.send(());
                let permit = slow_gate.release.acquire().await.expect("gate open");
                permit.forget();
                "finally"
            }),
        )
        // Answers at once with a body that streams until the gate opens:
        // the request is still being served while the body is sent.
        .route(
            "/stream",
            routing::get(move || async move {
                let gate = gate.clone();
                let body = futures::stream::once(async move {
                    let permit = gate.release.acquire().await.expect("gate open");
                    permit.forget();
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(b"streamed"))
                });
                Body::from_stream(body)
            }),
        );
    let readiness = Readiness::new(None);
    readiness.mark_started();
    let mut config = serve_config();
    config.concurrency_limit = limit;
    Mesh::new(identity("items"), &config).router(api, readiness)
}

/// A call that must not wait: shedding answers at once.
async fn call_now(app: &Router, uri: &str) -> http::Response<Body> {
    tokio::time::timeout(Duration::from_secs(5), call(app, get(uri)))
        .await
        .expect("a request over the limit is answered at once, not queued")
}

fn shed(metrics: &Exposition, route: &str) -> Option<f64> {
    metrics.value(SHED, &[("service", "items"), ("route", route)])
}

fn answered(metrics: &Exposition, route: &str, status: &str) -> Option<f64> {
    metrics.value(
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
async fn over_the_limit_requests_get_503_at_once_and_the_admitted_ones_finish() {
    let (gate, mut control) = gate();
    let app = app(2, gate);
    let first = spawn_call(&app, get("/slow"));
    let second = spawn_call(&app, get("/slow"));
    control.wait_entered(2).await;

    // Both slots are taken: the next requests, on any route, are refused.
    let refused = call_now(&app, "/slow").await;
    let refused_elsewhere = call_now(&app, "/items").await;

    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
    let body = body_json(refused).await;
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert_eq!(refused_elsewhere.status(), StatusCode::SERVICE_UNAVAILABLE);

    control.release(2);
    for admitted in [first, second] {
        let res = admitted.await.expect("the admitted request finished");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body_text(res).await, "finally");
    }
    // The slots are free again.
    assert_eq!(call_now(&app, "/items").await.status(), StatusCode::OK);

    let metrics = scrape(&app).await;
    assert_eq!(shed(&metrics, "/slow"), Some(1.0), "{}", metrics.text);
    assert_eq!(shed(&metrics, "/items"), Some(1.0));
    assert_eq!(
        metrics.value(LIMIT, &[("service", "items")]),
        Some(2.0),
        "{}",
        metrics.text
    );
    // Shed requests are answers like any other in the RED metrics.
    assert_eq!(answered(&metrics, "/slow", "503"), Some(1.0));
    assert_eq!(answered(&metrics, "/slow", "200"), Some(2.0));
    assert_eq!(answered(&metrics, "/items", "503"), Some(1.0));
    assert_eq!(answered(&metrics, "/items", "200"), Some(1.0));
}

#[tokio::test]
async fn a_shed_request_has_a_server_span_with_status_503() {
    let telemetry = Telemetry::install();
    let (gate, mut control) = gate();
    let app = app(1, gate);
    let held = spawn_call(&app, get("/slow"));
    control.wait_entered(1).await;

    assert_eq!(
        call_now(&app, "/items").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    control.release(1);
    assert_eq!(held.await.unwrap().status(), StatusCode::OK);

    let span = telemetry.span("GET /items");
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(&Value::I64(503))
    );
    assert_eq!(attr(&span, "http.route"), Some(&Value::from("/items")));
    assert!(matches!(
        span.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}

#[tokio::test]
async fn the_slot_is_held_until_the_body_has_been_sent() {
    let (gate, control) = gate();
    let app = app(1, gate);
    // The handler has answered, but its body is still streaming.
    let streaming = call_now(&app, "/stream").await;
    assert_eq!(streaming.status(), StatusCode::OK);

    assert_eq!(
        call_now(&app, "/items").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the streaming response still holds the only slot"
    );

    control.release(1);
    assert_eq!(body_text(streaming).await, "streamed");
    assert_eq!(call_now(&app, "/items").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_dropped_unsent_gives_its_slot_back() {
    let (gate, _control) = gate();
    let app = app(1, gate);
    let streaming = call_now(&app, "/stream").await;
    assert_eq!(
        call_now(&app, "/items").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The client went away before the body was sent.
    drop(streaming);

    assert_eq!(call_now(&app, "/items").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_limit_of_zero_sheds_nothing() {
    let (gate, mut control) = gate();
    let app = app(0, gate);
    let held: Vec<_> = (0..20).map(|_| spawn_call(&app, get("/slow"))).collect();
    control.wait_entered(20).await;

    assert_eq!(call_now(&app, "/items").await.status(), StatusCode::OK);
    control.release(20);
    for res in held {
        assert_eq!(res.await.unwrap().status(), StatusCode::OK);
    }

    let metrics = scrape(&app).await;
    assert_eq!(metrics.value(LIMIT, &[("service", "items")]), Some(0.0));
    // The series exist, at zero: a dashboard shows 0, not "no data".
    assert_eq!(shed(&metrics, "/items"), Some(0.0), "{}", metrics.text);
    assert_eq!(shed(&metrics, "/slow"), Some(0.0));
}
