//! The launcher's control API: what scenarios (and people with curl) use
//! to look at, scale and crash the replicas of a running local system.
//!
//! | Route | Does |
//! |---|---|
//! | `GET /services` | Every service and its replicas. |
//! | `GET /services/{name}` | One service. |
//! | `POST /services/{name}/scale` `{"replicas": N}` | Scales to N (1..=16); answers once new replicas are ready or removed ones stopped. |
//! | `POST /services/{name}/restart` | Rolling restart, one replica at a time; answers when the last is back. |
//! | `PUT /services/{name}/env` `{"env": {"K": "V"}}` | Gives the service these settings on top of the launcher's (replacing those given before; `{}`: none), rolled out by a rolling restart; answers when the last replica is back. |
//! | `POST /services/{name}/replicas/{replica}/kill` | SIGKILL, as a crash; 202, the restart policy brings it back. |
//! | `GET /metrics` | The launcher's metrics (OpenMetrics). |
//!
//! Errors are the `{"error": {"code", "message"}}` body every LearnSphere
//! service answers with. Documented in `docs/launcher.md`.
//!
//! Everything under `/services` can stop the system, so [`guard`] lets
//! only an operator through, and never a web page the operator has open:
//! a `Host` naming this listener (421 otherwise: DNS rebinding), no
//! `Origin` but its own (403: a cross-site request), the admin token
//! (401), and a body only as JSON (415: an HTML form can send
//! `text/plain`, `application/x-www-form-urlencoded` and
//! `multipart/form-data` without asking, never `application/json`).
//! `/metrics` stays open, as on every replica: Prometheus scrapes it
//! without credentials, and it holds replica counts, no secret.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::http::{Method, StatusCode, header};
use axum::{
    Json, Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mesh::{
    config::AdminToken,
    error::error_response,
    extract::{Json as JsonBody, Path},
};
use serde::Deserialize;
use serde_json::json;
use tokio::{sync::oneshot, task::JoinHandle};

use super::{status::ControlError, supervisor::Supervisor};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The control API, serving in the background.
pub(crate) struct ControlServer {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

// === impl ControlServer ===

impl ControlServer {
    pub(crate) fn spawn(
        listener: tokio::net::TcpListener,
        supervisor: Arc<Supervisor>,
        token: AdminToken,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(supervisor, Access { token, addr });
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                eprintln!("launcher: the control API failed: {error}");
            }
        });
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Stops accepting, lets requests in flight finish (briefly).
    pub(crate) async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

/// The control API of a launcher with nothing running, for the tests of
/// its clients: every service is listed with no replica, and the guard
/// (token, `Host`, `Origin`, JSON bodies) is the real one.
#[cfg(feature = "testing")]
pub fn idle(access: Access) -> Router {
    router(Supervisor::idle(), access)
}

pub(crate) fn router(supervisor: Arc<Supervisor>, access: Access) -> Router {
    let operations = Router::new()
        .route("/services", get(list_services))
        .route("/services/{name}", get(get_service))
        .route("/services/{name}/scale", post(scale))
        .route("/services/{name}/restart", post(restart))
        .route("/services/{name}/env", axum::routing::put(configure))
        .route("/services/{name}/replicas/{replica}/kill", post(kill))
        // Only matched routes are guarded: an unknown path is the same
        // JSON 404 for everyone.
        .route_layer(middleware::from_fn_with_state(Arc::new(access), guard));
    Router::new()
        .merge(operations)
        .route("/metrics", get(metrics))
        .fallback(mesh::error::not_found)
        .method_not_allowed_fallback(mesh::error::method_not_allowed)
        .with_state(supervisor)
}

// === authentication ===

/// Who may operate the launcher: the holder of `token`, through a name
/// of `addr`.
#[derive(Clone, Debug)]
pub struct Access {
    pub token: AdminToken,
    /// Where the control API listens.
    pub addr: SocketAddr,
}

impl Access {
    /// Whether `host` (a `Host` header, or the request's authority) names
    /// this listener: `localhost`, `127.0.0.1` or `[::1]`, or the address
    /// it listens on, with its port. A name that merely resolves here, as
    /// a rebinding attacker's does, is not one of them; nor is a name
    /// without a port unless the port is 80. Listening on every address
    /// (`0.0.0.0`), any address literal is ours.
    fn is_own_host(&self, host: &str) -> bool {
        let (name, port) = match host.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((ip, port)) => (ip, port),
                None => return false,
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) => (name, port),
                None => (host, ""),
            },
        };
        let port = match port {
            "" => 80,
            port => match port.strip_prefix(':').unwrap_or(port).parse::<u16>() {
                Ok(port) => port,
                Err(_) => return false,
            },
        };
        if port != self.addr.port() {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match name.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                ip == std::net::IpAddr::from([127, 0, 0, 1])
                    || ip == std::net::Ipv6Addr::LOCALHOST
                    || ip == self.addr.ip()
                    || self.addr.ip().is_unspecified()
            }
            Err(_) => false,
        }
    }
}

/// The checks every operation passes, in this order: the `Host` names us
/// (421), an `Origin` is our own (403), the admin token (401), a body or
/// a `Content-Type` is JSON (415).
async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    if !access.is_own_host(host) {
        return error_response(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            format!(
                "the control API answers to localhost:{port}, 127.0.0.1:{port} or [::1]:{port}, not {host:?}",
                port = access.addr.port()
            ),
        );
    }
    // Browsers send `Origin` with every cross-origin request, and with
    // every POST; curl and the launcher's clients send none.
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let same = origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
        if !same {
            return error_response(
                StatusCode::FORBIDDEN,
                "foreign_origin",
                "requests from web pages are refused",
            );
        }
    }
    if let Err(refused) = mesh::admin::authorize(&access.token, req.headers()) {
        return refused.into_response();
    }
    if changes_state(req.method()) && !json_or_nothing(&req) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`, or no body and no Content-Type",
        );
    }
    next.run(req).await
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A JSON body, or none at all (`restart` and `kill` take none): no
/// `Content-Type` but `application/json`, and no body without one.
fn json_or_nothing(req: &Request) -> bool {
    use axum::body::HttpBody as _;
    match req.headers().get(header::CONTENT_TYPE) {
        Some(value) => value.to_str().is_ok_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        }),
        // Known to be empty: no `Content-Length` but 0, not chunked.
        None => req.body().size_hint().exact() == Some(0),
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::UnknownService(_) => (StatusCode::NOT_FOUND, "unknown_service"),
            Self::UnknownReplica { .. } => (StatusCode::NOT_FOUND, "unknown_replica"),
            Self::InvalidReplicas(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_replicas"),
            Self::NotRunning { .. } => (StatusCode::CONFLICT, "replica_not_running"),
            Self::Stopping => (StatusCode::CONFLICT, "stopping"),
            Self::StartFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "start_failed"),
            Self::RestartFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "restart_failed"),
            Self::InvalidEnv(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_env"),
        };
        error_response(status, code, self.to_string())
    }
}

async fn list_services(State(supervisor): State<Arc<Supervisor>>) -> Response {
    Json(json!({ "services": supervisor.statuses() })).into_response()
}

async fn get_service(
    State(supervisor): State<Arc<Supervisor>>,
    Path(name): Path<String>,
) -> Result<Response, ControlError> {
    if let Some(broker) = broker(&supervisor, &name) {
        return Ok(Json(broker.status()).into_response());
    }
    let status = supervisor
        .status(&name)
        .ok_or(ControlError::UnknownService(name))?;
    Ok(Json(status).into_response())
}

/// `nats`: the proxy in front of the broker, when this launcher has one.
fn broker<'a>(supervisor: &'a Supervisor, name: &str) -> Option<&'a super::broker::BrokerProxy> {
    (name == super::broker::NAME)
        .then_some(supervisor.broker.as_ref())
        .flatten()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleRequest {
    replicas: usize,
}

async fn scale(
    State(supervisor): State<Arc<Supervisor>>,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<ScaleRequest>,
) -> Result<Response, ControlError> {
    // `nats` to 0: the broker goes away (every connection through the
    // proxy closed, new ones refused); to 1: it is back.
    if let Some(proxy) = broker(&supervisor, &name) {
        if request.replicas > 1 {
            return Err(ControlError::InvalidReplicas(
                "nats runs as one server here: scale it to 0 (an outage) or 1".into(),
            ));
        }
        proxy.set_up(request.replicas == 1);
        tracing::info!(up = proxy.is_up(), "broker scaled");
        let scaled = serde_json::json!({
            "name": super::broker::NAME,
            "desired": request.replicas,
            "restarts": 0,
            "replicas": proxy.status().replicas,
            "stopped": [],
        });
        return Ok(Json(scaled).into_response());
    }
    // In its own task: a client that gives up waiting must not leave a
    // scale half done (replicas started but desired not restored, say).
    let scaled = tokio::spawn(async move { supervisor.scale(&name, request.replicas).await })
        .await
        .map_err(|e| ControlError::StartFailed(anyhow::anyhow!("the scale was aborted: {e}")))??;
    Ok(Json(scaled).into_response())
}

async fn restart(
    State(supervisor): State<Arc<Supervisor>>,
    Path(name): Path<String>,
) -> Result<Response, ControlError> {
    // Synchronous, like scale: the answer says how it went. In its own
    // task, so a client that gives up does not leave a replica half
    // restarted (out of the targets, never back).
    let restarted = tokio::spawn(async move { supervisor.restart(&name).await })
        .await
        .map_err(|e| ControlError::RestartFailed(format!("the restart was aborted: {e}")))??;
    Ok(Json(restarted).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvRequest {
    env: std::collections::BTreeMap<String, String>,
}

async fn configure(
    State(supervisor): State<Arc<Supervisor>>,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<EnvRequest>,
) -> Result<Response, ControlError> {
    // A rolling restart, in its own task for the same reason as restart.
    let restarted = tokio::spawn(async move { supervisor.configure(&name, request.env).await })
        .await
        .map_err(|e| ControlError::RestartFailed(format!("the change was aborted: {e}")))??;
    Ok(Json(restarted).into_response())
}

async fn kill(
    State(supervisor): State<Arc<Supervisor>>,
    Path((name, replica)): Path<(String, usize)>,
) -> Result<Response, ControlError> {
    supervisor.kill_replica(&name, replica).await?;
    // Accepted: dead and out of the targets; its restart is still to come.
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"service": name, "replica": replica, "state": "restarting"})),
    )
        .into_response())
}

async fn metrics(State(supervisor): State<Arc<Supervisor>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        supervisor.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
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
        router(supervisor, access)
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

    fn with_body(
        req: axum::http::request::Builder,
        body: Option<&str>,
    ) -> axum::http::Request<Body> {
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
        let text = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        assert!(
            text.contains("launcher_restarts_total{service=\"payments\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("launcher_desired_replicas{service=\"payments\"} 1"),
            "{text}"
        );
    }
}
