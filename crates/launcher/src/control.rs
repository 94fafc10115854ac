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

use super::{options::ControlExtension, status::ControlError, supervisor::Supervisor};

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
        extension: ControlExtension,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(supervisor, Access { token, addr }, extension);
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
    router(Supervisor::idle(), access, ControlExtension::default())
}

pub(crate) fn router(
    supervisor: Arc<Supervisor>,
    access: Access,
    extension: ControlExtension,
) -> Router {
    let operations = Router::new()
        .route("/services", get(list_services))
        .route("/services/{name}", get(get_service))
        .route("/services/{name}/scale", post(scale))
        .route("/services/{name}/restart", post(restart))
        .route("/services/{name}/env", axum::routing::put(configure))
        .route("/services/{name}/replicas/{replica}/kill", post(kill))
        .with_state(supervisor.clone())
        .merge(extension.operations);
    let extension = ControlExtension {
        operations,
        pages: extension.pages,
    };
    guarded(extension, access).merge(
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(supervisor),
    )
}

/// `extension` behind the control API's checks, with its JSON 404 and
/// 405: what serves the operator console where no launcher runs (Compose,
/// Kubernetes), with the same guard as beside one.
pub fn guarded(extension: ControlExtension, access: Access) -> Router {
    let access = Arc::new(access);
    // Only matched routes are guarded: an unknown path is the same JSON
    // 404 for everyone. axum refuses a route layer on a router without
    // routes.
    let operations = if extension.operations.has_routes() {
        extension
            .operations
            .route_layer(middleware::from_fn_with_state(access.clone(), guard))
    } else {
        Router::new()
    };
    let pages = if extension.pages.has_routes() {
        extension
            .pages
            .route_layer(middleware::from_fn_with_state(access, host_guard))
    } else {
        Router::new()
    };
    Router::new()
        .merge(operations)
        .merge(pages)
        .fallback(mesh::error::not_found)
        .method_not_allowed_fallback(mesh::error::method_not_allowed)
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

/// The `Host` a request names (its header, or an absolute URI's authority).
fn host_of(req: &Request) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
}

/// 421 unless the `Host` names this listener.
fn misdirected(access: &Access, host: &str) -> Option<Response> {
    (!access.is_own_host(host)).then(|| {
        error_response(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            format!(
                "the control API answers to localhost:{port}, 127.0.0.1:{port} or [::1]:{port}, not {host:?}",
                port = access.addr.port()
            ),
        )
    })
}

/// The check pages pass: the `Host` names us (421), so a page that
/// rebinds its name to this machine cannot load ours as its own.
async fn host_guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    if let Some(refused) = misdirected(&access, host_of(&req)) {
        return refused;
    }
    next.run(req).await
}

/// The checks every operation passes, in this order: the `Host` names us
/// (421), an `Origin` is our own (403), the admin token (401), a body or
/// a `Content-Type` is JSON (415).
async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let host = host_of(&req);
    if let Some(refused) = misdirected(&access, host) {
        return refused;
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
                "requests from web pages of other origins are refused",
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
mod tests;
