//! `METRICS_ENABLED=false`: the per-request metric layers are left out of
//! both stacks (the telemetry-off baseline of the per-hop benchmark), and
//! `/metrics` still answers.

use std::time::Duration;

use axum::{Router, extract::Path, routing::get as route_get};
use mesh::{Mesh, Readiness, server::Server};

use crate::helpers::{Exposition, call, get, identity, scrape, serve_config};

const SERVER_DURATION: &str = "http_server_request_duration_seconds_count";
const ACTIVE: &str = "http_server_active_requests";
const CLIENT_DURATION: &str = "http_client_request_duration_seconds_count";

fn mesh(name: &str, metrics_enabled: bool) -> Mesh {
    let mut config = serve_config();
    config.metrics_enabled = metrics_enabled;
    Mesh::new(identity(name), &config)
}

fn api() -> Router {
    Router::new().route(
        "/items/{id}",
        route_get(|Path(id): Path<String>| async move { axum::Json(id) }),
    )
}

fn ready() -> Readiness {
    let readiness = Readiness::new(None);
    readiness.mark_started();
    readiness
}

#[tokio::test]
async fn with_metrics_off_a_request_leaves_no_server_series() {
    let app = mesh("items", false).router(api(), ready());
    assert_eq!(call(&app, get("/items/1")).await.status(), 200);

    let metrics = scrape(&app).await;

    assert!(
        metrics.matching(SERVER_DURATION, &[]).is_empty(),
        "{}",
        metrics.text
    );
    assert!(metrics.matching(ACTIVE, &[]).is_empty(), "{}", metrics.text);
    // The rest of the exposition is still there.
    assert!(metrics.text.contains("build_info{"), "{}", metrics.text);
}

#[tokio::test]
async fn with_metrics_on_the_same_request_is_counted() {
    // The control for the test above: the same request, the default switch.
    let app = mesh("items", true).router(api(), ready());
    assert_eq!(call(&app, get("/items/1")).await.status(), 200);

    let metrics = scrape(&app).await;

    assert_eq!(
        metrics.value(
            SERVER_DURATION,
            &[("route", "/items/{id}"), ("status", "200")]
        ),
        Some(1.0),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn with_metrics_off_an_outbound_call_leaves_no_edge_series() {
    let server = Server::bind(
        [127, 0, 0, 1].into(),
        0,
        mesh("catalog", true).router(api(), ready()),
        Duration::from_secs(1),
    )
    .await
    .expect("binds a free port");
    let base_url = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped(std::future::pending()));

    for (enabled, expected) in [(false, None), (true, Some(1.0))] {
        let caller = mesh("storefront", enabled);
        let client = caller.client("catalog", &base_url).expect("valid base URL");
        let id: String = client
            .get("/items/{id}", &["7"])
            .send_json()
            .await
            .expect("the call succeeds");
        assert_eq!(id, "7");

        let metrics = Exposition::parse(&caller.metrics().encode_openmetrics());
        assert_eq!(
            metrics.value(CLIENT_DURATION, &[("route", "/items/{id}")]),
            expected,
            "metrics enabled: {enabled}\n{}",
            metrics.text
        );
    }
}
