//! What an operator sees: request metrics by route template, health and
//! readiness.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// The value of `http_server_request_duration_seconds_count` for one route
/// template and status (0 when the series does not exist).
fn request_count(metrics: &str, route: &str, status: u16) -> u64 {
    let route = format!("route=\"{route}\"");
    let status = format!("status=\"{status}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter(|l| l.contains(&route) && l.contains(&status))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("a count: {l}"))
        })
        .sum()
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let app = spawn_app().await;
    for id in ["c0001", "c0002", "c0003"] {
        assert_eq!(
            app.get(&format!("/courses/{id}")).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get("/courses/c9999").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    let metrics = app.metrics().await;
    // Three ids, one series: the label is the template, never the path.
    assert_eq!(request_count(&metrics, "/courses/{course_id}", 200), 3);
    assert_eq!(request_count(&metrics, "/courses/{course_id}", 404), 1);
    assert!(!metrics.contains("route=\"/courses/c0001\""), "{metrics}");
    // The admin routes sit outside the inbound stack: scrapes and probes
    // are not traffic.
    assert!(!metrics.contains("route=\"/healthz\""), "{metrics}");
    assert!(!metrics.contains("route=\"/metrics\""), "{metrics}");
    // No exemplar check: tests initialise no tracer provider, so no span is
    // sampled and there is no trace id to attach (the end-to-end tests
    // cover exemplars).
}

#[tokio::test]
async fn a_started_service_is_healthy_and_ready() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}
