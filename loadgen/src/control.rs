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

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::http::{StatusCode, header};
use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use mesh::{
    error::error_response,
    extract::{Json as JsonBody, Path},
};
use serde::Deserialize;
use serde_json::json;
use tokio::{sync::oneshot, task::JoinHandle};

use crate::launcher::{ControlError, Supervisor};

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
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(supervisor);
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

pub(crate) fn router(supervisor: Arc<Supervisor>) -> Router {
    Router::new()
        .route("/services", get(list_services))
        .route("/services/{name}", get(get_service))
        .route("/services/{name}/scale", post(scale))
        .route("/services/{name}/restart", post(restart))
        .route("/services/{name}/env", axum::routing::put(configure))
        .route("/services/{name}/replicas/{replica}/kill", post(kill))
        .route("/metrics", get(metrics))
        .fallback(mesh::error::not_found)
        .method_not_allowed_fallback(mesh::error::method_not_allowed)
        .with_state(supervisor)
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
fn broker<'a>(
    supervisor: &'a Supervisor,
    name: &str,
) -> Option<&'a crate::launcher::broker::BrokerProxy> {
    (name == crate::launcher::broker::NAME)
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
            "name": crate::launcher::broker::NAME,
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
    use crate::launcher::Supervisor;

    async fn call(method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let res = router(Supervisor::idle()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
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
                let req = axum::http::Request::put("/services/payments/env")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap();
                let res = router(supervisor).oneshot(req).await.unwrap();
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
        let req = axum::http::Request::post("/services/payments/scale")
            .body(Body::from(r#"{"replicas":2}"#))
            .unwrap();
        let res = router(Supervisor::idle()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn metrics_are_openmetrics() {
        let req = axum::http::Request::get("/metrics")
            .body(Body::empty())
            .unwrap();
        let res = router(Supervisor::idle()).oneshot(req).await.unwrap();
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
