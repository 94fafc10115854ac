//! The admin API (`/admin/*`) and the faults it injects, through the real
//! router (and a real server where the connection itself matters): token
//! checks, faults scoped by route and method, expiry, what the span and
//! the metrics show, abort as a dropped connection, crash and drain.

use std::time::Duration;

use axum::{Router, body::Body, routing};
use http::{Request, Response, StatusCode, header};
use mesh::{Mesh, Readiness, testing::RunningServer};
use opentelemetry::Value;
use serde_json::{Value as Json, json};
use tokio::{sync::mpsc, time::Instant};

use crate::helpers::{
    Exposition, Telemetry, attr, body_json, call, get, identity, scrape, serve_config, str_attr,
};

const TOKEN: &str = "s3cret-admin-token";
const INJECTIONS: &str = "fault_injections_total";

struct App {
    router: Router,
    readiness: Readiness,
    crashes: mpsc::UnboundedReceiver<i32>,
}

fn api() -> Router {
    Router::new()
        .route(
            "/items",
            routing::get(|| async { "all items" }).post(|| async { "created" }),
        )
        .route("/items/{id}", routing::get(|| async { "one item" }))
        .route("/other", routing::get(|| async { "other" }))
}

fn mesh(token: Option<&str>) -> (Mesh, mpsc::UnboundedReceiver<i32>) {
    let mut config = serve_config();
    config.admin_token = token.map(|t| t.parse().expect("a valid token"));
    let (crashed, crashes) = mpsc::unbounded_channel();
    let mesh = Mesh::new(identity("items"), &config).with_crash_hook(move |code| {
        let _ = crashed.send(code);
    });
    (mesh, crashes)
}

fn app_with_token(token: Option<&str>) -> App {
    let (mesh, crashes) = mesh(token);
    let readiness = Readiness::new(None);
    readiness.mark_started();
    App {
        router: mesh.router(api(), readiness.clone()),
        readiness,
        crashes,
    }
}

fn app() -> App {
    app_with_token(Some(TOKEN))
}

fn admin(method: &str, uri: &str, body: Option<Json>) -> Request<Body> {
    admin_as(method, uri, body, Some(&format!("Bearer {TOKEN}")))
}

fn admin_as(
    method: &str,
    uri: &str,
    body: Option<Json>,
    authorization: Option<&str>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        req = req.header(header::AUTHORIZATION, value);
    }
    match body {
        Some(body) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    }
}

/// Adds a fault; its id.
async fn add_fault(app: &Router, fault: Json) -> String {
    let res = call(app, admin("POST", "/admin/faults", Some(fault.clone()))).await;
    assert_eq!(res.status(), StatusCode::CREATED, "adding {fault}");
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let body = body_json(res).await;
    let id = body["id"].as_str().expect("the fault has an id").to_owned();
    assert_eq!(location, format!("/admin/faults/{id}"));
    id
}

async fn faults(app: &Router) -> Vec<Json> {
    let res = call(app, admin("GET", "/admin/faults", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    body_json(res).await["faults"]
        .as_array()
        .expect("a list of faults")
        .clone()
}

fn injections(metrics: &Exposition, route: &str, kind: &str) -> Option<f64> {
    metrics.value(
        INJECTIONS,
        &[("service", "items"), ("route", route), ("kind", kind)],
    )
}

async fn assert_unauthorized(res: Response<Body>) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let body = body_json(res).await;
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

// === authentication ===

#[tokio::test]
async fn the_admin_api_needs_the_right_bearer_token() {
    let app = app();
    let fault = json!({"error": {"status": 503}});
    for authorization in [
        None,
        Some("Bearer wrong-token"),
        Some(&format!("Bearer {TOKEN}x")[..]),
        Some(&format!("Basic {TOKEN}")[..]),
        Some(TOKEN),
        Some("Bearer "),
    ] {
        for (method, uri) in [
            ("GET", "/admin/faults"),
            ("POST", "/admin/faults"),
            ("DELETE", "/admin/faults"),
            ("DELETE", "/admin/faults/abc"),
            ("POST", "/admin/crash"),
            ("POST", "/admin/drain"),
        ] {
            let res = call(
                &app.router,
                admin_as(method, uri, Some(fault.clone()), authorization),
            )
            .await;
            assert_unauthorized(res).await;
        }
    }
    // Nothing happened: no fault, no drain, no crash.
    assert!(faults(&app.router).await.is_empty());
    assert!(!app.readiness.is_draining());
    assert_eq!(call(&app.router, get("/items/1")).await.status(), 200);

    // A wrong method is the API's JSON 405, not a panic or a plain text.
    let res = call(&app.router, admin("PUT", "/admin/faults", None)).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body_json(res).await["error"]["code"], "method_not_allowed");

    // The scheme is case-insensitive (RFC 7235).
    let res = call(
        &app.router,
        admin_as(
            "GET",
            "/admin/faults",
            None,
            Some(&format!("bearer {TOKEN}")),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_a_token_there_is_no_admin_api() {
    let mut app = app_with_token(None);
    let unknown = body_json(call(&app.router, get("/no/such/path")).await).await;
    for (method, uri) in [
        ("GET", "/admin/faults"),
        ("POST", "/admin/faults"),
        ("POST", "/admin/crash"),
        ("POST", "/admin/drain"),
    ] {
        // Even with a token that would be right if one were configured.
        let res = call(
            &app.router,
            admin(method, uri, Some(json!({"abort": {"rate": 1.0}}))),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(body_json(res).await, unknown, "the same 404 as any path");
    }
    assert_eq!(call(&app.router, get("/items/1")).await.status(), 200);
    assert!(!app.readiness.is_draining());
    assert!(app.crashes.try_recv().is_err(), "no crash");
}

// === faults ===

#[tokio::test]
async fn a_fault_on_one_route_leaves_the_others_alone() {
    let app = app();
    add_fault(
        &app.router,
        json!({"route": "/items/{id}", "error": {"rate": 1.0, "status": 503}}),
    )
    .await;

    let res = call(&app.router, get("/items/7")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = body_json(res).await;
    assert_eq!(body["error"]["code"], "fault_injected", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("injected"),
        "{body}"
    );
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);
    assert_eq!(call(&app.router, get("/other")).await.status(), 200);

    let metrics = scrape(&app.router).await;
    assert_eq!(
        injections(&metrics, "/items/{id}", "error"),
        Some(1.0),
        "{}",
        metrics.text
    );
    assert_eq!(injections(&metrics, "/items/{id}", "latency"), Some(0.0));
    assert_eq!(injections(&metrics, "/items/{id}", "abort"), Some(0.0));
    assert_eq!(injections(&metrics, "/items", "error"), Some(0.0));
    // Injected errors are answers like any other in the RED metrics.
    assert_eq!(
        metrics.value(
            "http_server_request_duration_seconds_count",
            &[("route", "/items/{id}"), ("status", "503")]
        ),
        Some(1.0)
    );
    // The admin API itself is not traffic.
    assert!(!metrics.text.contains("route=\"/admin"), "{}", metrics.text);
}

#[tokio::test]
async fn faults_match_by_method_and_by_route_prefix() {
    let app = app();
    add_fault(
        &app.router,
        json!({"route": "/items*", "method": "post", "error": {"status": 418}}),
    )
    .await;
    let post = Request::post("/items").body(Body::empty()).unwrap();
    assert_eq!(call(&app.router, post).await.status(), 418);
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);

    add_fault(
        &app.router,
        json!({"route": "/items*", "error": {"status": 502}}),
    )
    .await;
    assert_eq!(call(&app.router, get("/items")).await.status(), 502);
    assert_eq!(call(&app.router, get("/items/3")).await.status(), 502);
    assert_eq!(call(&app.router, get("/other")).await.status(), 200);

    // No route: the whole service, unknown paths included.
    let all = add_fault(&app.router, json!({"error": {"status": 500}})).await;
    assert_eq!(call(&app.router, get("/other")).await.status(), 500);
    assert_eq!(call(&app.router, get("/nope")).await.status(), 500);
    let res = call(
        &app.router,
        admin("DELETE", &format!("/admin/faults/{all}"), None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(call(&app.router, get("/other")).await.status(), 200);
}

#[tokio::test]
async fn an_error_rate_of_zero_never_fires_and_one_always_does() {
    let app = app();
    add_fault(
        &app.router,
        json!({"route": "/items", "error": {"rate": 0.0}}),
    )
    .await;
    add_fault(
        &app.router,
        json!({"route": "/other", "error": {"rate": 1.0}}),
    )
    .await;
    for _ in 0..50 {
        assert_eq!(call(&app.router, get("/items")).await.status(), 200);
        assert_eq!(call(&app.router, get("/other")).await.status(), 503);
    }
    let metrics = scrape(&app.router).await;
    assert_eq!(injections(&metrics, "/items", "error"), Some(0.0));
    assert_eq!(injections(&metrics, "/other", "error"), Some(50.0));
}

#[tokio::test]
async fn a_fault_stops_applying_when_it_expires() {
    tokio::time::pause();
    let app = app();
    add_fault(
        &app.router,
        json!({"route": "/items", "error": {"status": 503}, "expires_in": "30s"}),
    )
    .await;
    let listed = faults(&app.router).await;
    assert_eq!(listed.len(), 1);
    let expires_at = listed[0]["expires_at"].as_str().expect("expires_at is set");
    let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at).expect("RFC 3339");
    let lifetime = expires_at.signed_duration_since(chrono::Utc::now());
    assert!(
        (25..=30).contains(&lifetime.num_seconds()),
        "expires in about 30 s: {lifetime}"
    );
    assert_eq!(call(&app.router, get("/items")).await.status(), 503);

    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(call(&app.router, get("/items")).await.status(), 503);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);
    assert!(faults(&app.router).await.is_empty(), "pruned");
}

#[tokio::test]
async fn a_latency_fault_delays_the_handler() {
    tokio::time::pause();
    let app = app();
    add_fault(
        &app.router,
        json!({"route": "/items/{id}", "latency": {"fixed_ms": 200}}),
    )
    .await;

    let start = Instant::now();
    assert_eq!(call(&app.router, get("/items/1")).await.status(), 200);
    // The paused clock moves exactly to the timer, which Tokio rounds up
    // to its next millisecond tick.
    let took = start.elapsed();
    assert!(
        (Duration::from_millis(200)..=Duration::from_millis(201)).contains(&took),
        "{took:?}"
    );

    let start = Instant::now();
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "other routes are not delayed"
    );

    add_fault(
        &app.router,
        json!({"route": "/other", "latency": {"uniform_ms": [50, 400]}}),
    )
    .await;
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(call(&app.router, get("/other")).await.status(), 200);
        let took = start.elapsed();
        assert!(
            (Duration::from_millis(50)..=Duration::from_millis(401)).contains(&took),
            "{took:?}"
        );
    }

    let metrics = scrape(&app.router).await;
    assert_eq!(injections(&metrics, "/items/{id}", "latency"), Some(1.0));
    assert_eq!(injections(&metrics, "/other", "latency"), Some(20.0));
    assert_eq!(injections(&metrics, "/items", "latency"), Some(0.0));
}

#[tokio::test]
async fn injected_faults_are_marked_on_the_server_span() {
    let telemetry = Telemetry::install();
    let app = app();
    add_fault(
        &app.router,
        json!({"route": "/items/{id}", "latency": {"fixed_ms": 1}, "error": {"status": 502}}),
    )
    .await;

    assert_eq!(call(&app.router, get("/items/1")).await.status(), 502);
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);

    let span = telemetry.span("GET /items/{id}");
    assert_eq!(attr(&span, "fault.injected"), Some(&Value::Bool(true)));
    assert_eq!(
        str_attr(&span, "fault.kind").as_deref(),
        Some("latency,error")
    );
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(&Value::I64(502))
    );
    let kinds: Vec<String> = span
        .events
        .iter()
        .filter(|e| e.name.starts_with("fault injected"))
        .filter_map(|e| {
            e.attributes
                .iter()
                .find(|kv| kv.key.as_str() == "fault.kind")
                .map(|kv| kv.value.as_str().into_owned())
        })
        .collect();
    assert_eq!(kinds, ["latency", "error"], "{:#?}", span.events);
    // The injected error is logged as an error, saying what it answered.
    let error = span
        .events
        .iter()
        .find(|e| e.name == "fault injected: answering 502 Bad Gateway")
        .unwrap_or_else(|| panic!("{:#?}", span.events));
    assert!(
        error
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "level" && kv.value.as_str() == "ERROR"),
        "{error:#?}"
    );

    // A request no fault touched carries no mark.
    let clean = telemetry.span("GET /items");
    assert_eq!(attr(&clean, "fault.injected"), None);
    assert_eq!(attr(&clean, "fault.kind"), None);
}

#[tokio::test]
async fn an_abort_fault_drops_the_connection_without_an_answer() {
    let (mesh, _crashes) = mesh(Some(TOKEN));
    let server = mesh.bind(api(), None, 0).await.expect("binds port 0");
    let server = RunningServer::start(server);
    let client = reqwest::Client::new();
    let url = server.url();

    let res = client
        .post(format!("{url}/admin/faults"))
        .bearer_auth(TOKEN)
        .json(&json!({"route": "/items/{id}", "abort": {"rate": 1.0}}))
        .send()
        .await
        .expect("the admin API answers");
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Json>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let aborted = client.get(format!("{url}/items/1")).send().await;
    let error = aborted.expect_err("no response, not even a status line");
    // hyper's "connection closed before message completed": the request
    // went out and the connection closed with nothing written back.
    assert!(error.is_request() && !error.is_timeout(), "{error:?}");
    assert!(
        format!("{error:?}").contains("IncompleteMessage"),
        "{error:?}"
    );
    // Other routes are answered.
    let res = client.get(format!("{url}/items")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let metrics = Exposition::parse(
        &client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(injections(&metrics, "/items/{id}", "abort"), Some(1.0));

    // Removed, the route answers again.
    let res = client
        .delete(format!("{url}/admin/faults/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = client.get(format!("{url}/items/1")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn bad_faults_are_rejected_with_a_clear_message() {
    let app = app();
    for (body, status, code, says) in [
        (
            json!({"latncy": {"fixed_ms": 5}}),
            422,
            "invalid_body",
            "unknown field `latncy`",
        ),
        (
            json!({"latency": {"fixed_ms": -5}}),
            422,
            "invalid_body",
            "fixed_ms",
        ),
        (
            json!({"error": {"status": 200}}),
            422,
            "invalid_input",
            "4xx or 5xx",
        ),
        (
            json!({"error": {"rate": 2}}),
            422,
            "invalid_input",
            "between 0 and 1",
        ),
        (
            json!({"route": "/items"}),
            422,
            "invalid_input",
            "at least one",
        ),
        (
            json!({"abort": {}, "expires_in": "later"}),
            422,
            "invalid_input",
            "expires_in",
        ),
    ] {
        let res = call(
            &app.router,
            admin("POST", "/admin/faults", Some(body.clone())),
        )
        .await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let answer = body_json(res).await;
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{body}: {message:?} should say {says:?}"
        );
    }
    // Not JSON at all.
    let req = Request::post("/admin/faults")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(call(&app.router, req).await.status(), 400);
    assert!(faults(&app.router).await.is_empty());
}

#[tokio::test]
async fn faults_are_listed_removed_and_cleared() {
    let app = app();
    let first = add_fault(
        &app.router,
        json!({"route": "/items", "latency": {"median_ms": 50, "p99_ms": 800}}),
    )
    .await;
    let second = add_fault(&app.router, json!({"abort": {"rate": 0.1}})).await;

    let listed = faults(&app.router).await;
    assert_eq!(
        listed,
        [
            json!({"id": first, "route": "/items", "latency": {"median_ms": 50, "p99_ms": 800}}),
            json!({"id": second, "abort": {"rate": 0.1}}),
        ]
    );

    let remove = |id: &str| admin("DELETE", &format!("/admin/faults/{id}"), None);
    assert_eq!(call(&app.router, remove(&first)).await.status(), 204);
    let again = call(&app.router, remove(&first)).await;
    assert_eq!(again.status(), 404);
    assert_eq!(body_json(again).await["error"]["code"], "fault_not_found");
    assert_eq!(faults(&app.router).await.len(), 1);

    add_fault(&app.router, json!({"abort": {}})).await;
    let res = call(&app.router, admin("DELETE", "/admin/faults", None)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(faults(&app.router).await.is_empty());
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);
}

// === crash and drain ===

#[tokio::test]
async fn crash_answers_202_then_calls_the_crash_hook() {
    tokio::time::pause();
    let mut app = app();
    let res = call(&app.router, admin("POST", "/admin/crash", None)).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert!(app.crashes.try_recv().is_err(), "not before the answer");

    let code = tokio::time::timeout(Duration::from_secs(5), app.crashes.recv())
        .await
        .expect("the hook is called shortly after")
        .expect("hook alive");
    assert_eq!(code, mesh::admin::CRASH_EXIT_CODE);
    assert_ne!(code, 0);
}

#[tokio::test]
async fn drain_makes_the_replica_unready_until_undone() {
    let app = app();
    let ready = || async { call(&app.router, get("/readyz")).await };
    assert_eq!(ready().await.status(), StatusCode::OK);

    let res = call(&app.router, admin("POST", "/admin/drain", None)).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let res = ready().await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_json(res).await["reason"], "draining");
    // Draining is about new traffic elsewhere: this replica still serves.
    assert_eq!(call(&app.router, get("/items")).await.status(), 200);
    assert_eq!(call(&app.router, get("/healthz")).await.status(), 200);

    let res = call(&app.router, admin("DELETE", "/admin/drain", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(ready().await.status(), StatusCode::OK);
}
