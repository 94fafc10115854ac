//! The control API's router: its routes, errors and guard, driven with
//! `oneshot` against a launcher with nothing running.

use axum::body::Body;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use super::*;
use crate::supervisor::Supervisor;

const TOKEN: &str = "control-test-token";
const HOST: &str = "127.0.0.1:8070";

/// The control API of a launcher with nothing running, listening on
/// [`HOST`] with [`TOKEN`].
fn app(supervisor: Arc<Supervisor>) -> Router {
    let access = Access {
        token: TOKEN.parse().unwrap(),
        addr: HOST.parse().unwrap(),
    };
    router(supervisor, access, ControlExtension::default())
}

/// A request as an operator's curl sends it: our `Host`, the token.
fn operator(method: &str, uri: &str) -> axum::http::request::Builder {
    axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST)
        .header("authorization", format!("Bearer {TOKEN}"))
}

async fn send(req: axum::http::Request<Body>) -> (StatusCode, Value) {
    let res = app(Supervisor::idle()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn call(method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
    let mut req = operator(method, uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    send(
        req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap(),
    )
    .await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn lists_every_service_in_start_order() {
    let (status, body) = call("GET", "/services", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["courses", "users", "payments", "progress", "gateway"]
    );
    assert_eq!(body["services"][0]["replicas"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let cases = [
        ("GET", "/services/billing", None, 404, "unknown_service"),
        (
            "POST",
            "/services/billing/scale",
            Some(r#"{"replicas":2}"#),
            404,
            "unknown_service",
        ),
        (
            "POST",
            "/services/payments/scale",
            Some(r#"{"replicas":0}"#),
            422,
            "invalid_replicas",
        ),
        (
            "POST",
            "/services/payments/scale",
            Some(r#"{"replicas":17}"#),
            422,
            "invalid_replicas",
        ),
        (
            "POST",
            "/services/payments/scale",
            Some(r#"{"replicas":-1}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/services/payments/scale",
            Some(r#"{"replica":2}"#),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/services/payments/scale",
            Some("{"),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/services/payments/replicas/0/kill",
            None,
            404,
            "unknown_replica",
        ),
        (
            "POST",
            "/services/billing/replicas/0/kill",
            None,
            404,
            "unknown_service",
        ),
        (
            "POST",
            "/services/payments/replicas/one/kill",
            None,
            400,
            "invalid_path",
        ),
        (
            "GET",
            "/services/payments/scale",
            None,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/services/billing/restart",
            None,
            404,
            "unknown_service",
        ),
        (
            "GET",
            "/services/payments/restart",
            None,
            405,
            "method_not_allowed",
        ),
        ("GET", "/nothing", None, 404, "route_not_found"),
    ];
    for (method, uri, body, status, expected) in cases {
        let (got, answer) = call(method, uri, body).await;
        assert_eq!(
            (got.as_u16(), code(&answer)),
            (status, expected),
            "{method} {uri} {body:?}: {answer}"
        );
        assert!(answer["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn restarting_a_service_with_no_replicas_restarts_none() {
    let (status, body) = call("POST", "/services/payments/restart", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "payments");
    assert_eq!(body["restarted"], serde_json::json!([]));
}

#[tokio::test]
async fn settings_the_launcher_owns_or_that_are_not_settings_are_refused() {
    for (body, why) in [
        (
            r#"{"env":{"DATABASE_URL":"postgres://elsewhere"}}"#,
            "the launcher's",
        ),
        (r#"{"env":{"JWT_SECRET":"x"}}"#, "the launcher's"),
        (r#"{"env":{"breaker_open_for":"1s"}}"#, "not a setting name"),
        (r#"{"env":{"1ST":"x"}}"#, "not a setting name"),
        (r#"{"env":{"A":"x\u0000y"}}"#, "NUL"),
    ] {
        let (status, answer) = call("PUT", "/services/payments/env", Some(body)).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_env", "{body}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(why),
            "{body}: {answer}"
        );
    }
    let (status, answer) = call(
        "PUT",
        "/services/nobody/env",
        Some(r#"{"env":{"BREAKER_OPEN_FOR":"1s"}}"#),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let (status, _) = call("PUT", "/services/payments/env", Some(r#"{"env":{},"x":1}"#)).await;
    assert_eq!(status, 422, "unknown fields are refused");
}

#[tokio::test]
async fn settings_given_are_shown_and_replaced_whole() {
    let supervisor = Supervisor::idle();
    let put = |body: &'static str| {
        let supervisor = supervisor.clone();
        async move {
            let req = operator("PUT", "/services/payments/env")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let res = app(supervisor).oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, body) =
        put(r#"{"env":{"BREAKER_OPEN_FOR":"1s","PROVIDER_CONCURRENCY":"2"}}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["env"],
        serde_json::json!({"BREAKER_OPEN_FOR": "1s", "PROVIDER_CONCURRENCY": "2"})
    );
    let (status, body) = put(r#"{"env":{}}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["env"], serde_json::json!({}));
    assert_eq!(supervisor.status("payments").unwrap().env.len(), 0);
}

#[tokio::test]
async fn scale_needs_a_json_body() {
    let req = operator("POST", "/services/payments/scale")
        .body(Body::from(r#"{"replicas":2}"#))
        .unwrap();
    let (status, body) = send(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

/// Every operation, each as an operator would send it.
fn operations() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    vec![
        ("GET", "/services", None),
        ("GET", "/services/payments", None),
        (
            "POST",
            "/services/payments/scale",
            Some(r#"{"replicas":1}"#),
        ),
        ("POST", "/services/payments/restart", None),
        ("PUT", "/services/payments/env", Some(r#"{"env":{}}"#)),
        ("POST", "/services/payments/replicas/0/kill", None),
    ]
}

fn with_body(req: axum::http::request::Builder, body: Option<&str>) -> axum::http::Request<Body> {
    match body {
        Some(body) => req
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

#[tokio::test]
async fn every_operation_needs_the_admin_token() {
    for (method, uri, body) in operations() {
        for authorization in [
            None,
            Some("Bearer wrong-token"),
            Some("Bearer control-test-token-and-more"),
            Some("Basic Y29udHJvbC10ZXN0LXRva2Vu"),
            Some("Bearer"),
        ] {
            let mut req = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("host", HOST);
            if let Some(authorization) = authorization {
                req = req.header("authorization", authorization);
            }
            let res = app(Supervisor::idle())
                .oneshot(with_body(req, body))
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{method} {uri} with {authorization:?}");
            assert!(
                res.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"),
                "{method} {uri}"
            );
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(code(&answer), "unauthorized", "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn only_names_of_this_listener_are_served() {
    for host in [
        "127.0.0.1:8070",
        "localhost:8070",
        "LocalHost:8070",
        "[::1]:8070",
    ] {
        let req = operator("GET", "/services")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(req).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    // DNS rebinding: a name of the attacker's that resolves to
    // 127.0.0.1 arrives with that name as its Host.
    for host in [
        "evil.example:8070",
        "localhost.evil.example:8070",
        "127.0.0.1.nip.io:8070",
        "127.0.0.1:8071",
        "localhost",
        "[::1]",
        "[::1:8070",
        "10.1.2.3:8070",
        "",
    ] {
        for (method, uri, body) in operations() {
            let mut req = operator(method, uri);
            req.headers_mut()
                .unwrap()
                .insert("host", host.parse().unwrap());
            let (status, answer) = send(with_body(req, body)).await;
            assert_eq!(status, 421, "{method} {uri} Host {host:?}: {answer}");
            assert_eq!(code(&answer), "misdirected_request");
        }
    }
    let mut req = operator("GET", "/services").body(Body::empty()).unwrap();
    req.headers_mut().remove("host");
    assert_eq!(send(req).await.0, 421, "no Host at all");
}

/// Routes another crate adds (loadgen's console) pass the same checks:
/// its operations every one, its pages the `Host`'s alone.
#[tokio::test]
async fn an_extension_is_guarded_like_the_control_api() {
    let access = Access {
        token: TOKEN.parse().unwrap(),
        addr: HOST.parse().unwrap(),
    };
    let extension = ControlExtension {
        operations: Router::new().route("/console/api/do", post(|| async { "done" })),
        pages: Router::new().route("/console", get(|| async { "page" })),
    };
    let app = router(Supervisor::idle(), access, extension);
    let status = |req: axum::http::Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(req).await.unwrap().status() }
    };
    let page = |host: &str| {
        axum::http::Request::get("/console")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(status(page(HOST)).await, 200, "a page needs no token");
    assert_eq!(status(page("rebound.example:8070")).await, 421);
    let operation = || operator("POST", "/console/api/do");
    assert_eq!(status(operation().body(Body::empty()).unwrap()).await, 200);
    let mut no_token = operation().body(Body::empty()).unwrap();
    no_token.headers_mut().remove("authorization");
    assert_eq!(status(no_token).await, 401);
    let foreign = operation()
        .header("origin", "http://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(foreign).await, 403);
    let form = operation()
        .header("content-type", "text/plain")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(status(form).await, 415);
    let own_page = operation()
        .header("origin", format!("http://{HOST}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(own_page).await, 200, "the console's own origin");
}

#[tokio::test]
async fn a_web_page_elsewhere_is_refused() {
    for origin in [
        "http://evil.example",
        "null",
        "http://localhost:8070",
        "https://127.0.0.1:8070",
        "http://127.0.0.1:8071",
    ] {
        for (method, uri, body) in operations() {
            let req = operator(method, uri).header("origin", origin);
            let (status, answer) = send(with_body(req, body)).await;
            assert_eq!(status, 403, "{method} {uri} from {origin}: {answer}");
            assert_eq!(code(&answer), "foreign_origin");
        }
    }
    let req = operator("GET", "/services")
        .header("origin", "http://127.0.0.1:8070")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(req).await.0, 200, "its own origin");
}

/// What an HTML form (or `fetch` without a CORS preflight) can send:
/// refused, with a body or without one, even with the token.
#[tokio::test]
async fn only_json_or_no_body_is_taken() {
    for content_type in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        for body in ["", "replicas=0", r#"{"replicas":1}"#] {
            for (method, uri, _) in operations().into_iter().filter(|o| o.0 != "GET") {
                let req = operator(method, uri)
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap();
                let (status, answer) = send(req).await;
                assert_eq!(
                    status, 415,
                    "{method} {uri} as {content_type} {body:?}: {answer}"
                );
                assert_eq!(code(&answer), "unsupported_media_type");
            }
        }
    }
    // A body must say it is JSON.
    let req = operator("POST", "/services/payments/restart")
        .header("content-length", "2")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(req).await.0, 415);
}

#[tokio::test]
async fn json_and_bodiless_operations_with_the_token_go_through() {
    // Idle launcher: nothing to restart, no replica 0 to kill; the
    // answers come from the operations themselves.
    let cases = [
        ("POST", "/services/payments/restart", None, None, 200),
        (
            "POST",
            "/services/payments/restart",
            Some("application/json"),
            None,
            200,
        ),
        (
            "PUT",
            "/services/payments/env",
            Some("application/json; charset=utf-8"),
            Some(r#"{"env":{}}"#),
            200,
        ),
        (
            "POST",
            "/services/payments/replicas/0/kill",
            None,
            None,
            404,
        ),
        ("GET", "/services/nats", None, None, 404),
    ];
    for (method, uri, content_type, body, want) in cases {
        let mut req = operator(method, uri);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let (status, answer) = send(req).await;
        assert_eq!(status.as_u16(), want, "{method} {uri}: {answer}");
    }
}

/// Prometheus scrapes `/metrics` from the targets file, without
/// credentials, as it scrapes every replica's.
#[tokio::test]
async fn metrics_and_unknown_routes_need_no_token() {
    let req = axum::http::Request::get("/metrics")
        .header("host", "127.0.0.1:8070")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(req).await.0, 200);
    let req = axum::http::Request::get("/nothing")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(req).await;
    assert_eq!((status.as_u16(), code(&body)), (404, "route_not_found"));
}

#[tokio::test]
async fn metrics_are_openmetrics() {
    let req = axum::http::Request::get("/metrics")
        .body(Body::empty())
        .unwrap();
    let res = app(Supervisor::idle()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        text.contains("launcher_restarts_total{service=\"payments\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("launcher_desired_replicas{service=\"payments\"} 1"),
        "{text}"
    );
}
