//! The admin API, `/admin/*`: what an operator, or a scenario of the load
//! generator, does to a running replica. Faults (`/admin/faults`), a
//! crash on demand (`/admin/crash`) and draining (`/admin/drain`).
//!
//! It exists only when an admin token is configured (`ADMIN_TOKEN`), and
//! every request must carry it as `Authorization: Bearer <token>`
//! (RFC 6750), compared in constant time so response timing does not
//! leak it byte by byte.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, post},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use subtle::ConstantTimeEq as _;

use crate::{
    admin::Readiness,
    config::AdminToken,
    error::{self, error_response},
    extract::{Json, Path},
    fault::{FaultSpec, Faults},
};

/// The exit code of a crash on demand: `EX_SOFTWARE` (sysexits.h), an
/// "internal software error", so an orchestrator restarts the process and
/// the launcher reports it as a failure.
pub const CRASH_EXIT_CODE: i32 = 70;

/// How long after answering `POST /admin/crash` the process exits: time
/// for the 202 to reach the caller.
const CRASH_DELAY: Duration = Duration::from_millis(100);

/// What `POST /admin/crash` calls with [`CRASH_EXIT_CODE`]: by default
/// `std::process::exit`. Tests put something harmless here.
#[derive(Clone)]
pub struct CrashHook(Arc<dyn Fn(i32) + Send + Sync>);

impl CrashHook {
    pub fn new(hook: impl Fn(i32) + Send + Sync + 'static) -> Self {
        Self(Arc::new(hook))
    }

    /// Ends the process at once, as a crash would: no graceful shutdown,
    /// no span flush.
    pub fn exit_process() -> Self {
        Self::new(|code| std::process::exit(code))
    }
}

impl Default for CrashHook {
    fn default() -> Self {
        Self::exit_process()
    }
}

impl std::fmt::Debug for CrashHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrashHook")
    }
}

/// Everything the admin API acts on.
#[derive(Clone, Debug)]
pub struct AdminApi {
    token: AdminToken,
    faults: Faults,
    readiness: Readiness,
    crash: CrashHook,
}

impl AdminApi {
    pub fn new(token: AdminToken, faults: Faults, readiness: Readiness, crash: CrashHook) -> Self {
        Self {
            token,
            faults,
            readiness,
            crash,
        }
    }

    pub(crate) fn router(self) -> Router {
        let state = Arc::new(self);
        Router::new()
            .route(
                "/admin/faults",
                post(add_fault).get(list_faults).delete(clear_faults),
            )
            .route("/admin/faults/{id}", delete(remove_fault))
            .route("/admin/crash", post(crash))
            .route("/admin/drain", post(drain).delete(undrain))
            // Only matched routes ask for the token; an unknown
            // `/admin/...` is the API's ordinary JSON 404.
            .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
            .method_not_allowed_fallback(error::method_not_allowed)
            .with_state(state)
    }
}

type Api = State<Arc<AdminApi>>;

// === authentication ===

async fn require_token(State(api): Api, req: Request, next: Next) -> Response {
    match authorize(&api.token, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

/// A request without the admin token: 401 `unauthorized`, with the
/// challenge RFC 6750 asks for.
#[derive(Debug, Clone, Copy)]
pub struct Unauthorized {
    /// RFC 6750 §3.1 `error`: only when a token was presented.
    error: &'static str,
    message: &'static str,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        unauthorized(self.error, self.message)
    }
}

/// Whether `headers` carry `token` as `Authorization: Bearer <token>`,
/// compared in constant time. The check of `/admin/*`, for other APIs an
/// operator reaches with the same token (the launcher's control API).
pub fn authorize(token: &AdminToken, headers: &HeaderMap) -> Result<(), Unauthorized> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(presented) if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) => {
            Ok(())
        }
        Some(_) => Err(Unauthorized {
            error: "invalid_token",
            message: "the admin token is wrong",
        }),
        None => Err(Unauthorized {
            error: "",
            message: "this needs `Authorization: Bearer <admin token>`",
        }),
    }
}

/// 401 with the challenge RFC 6750 asks for; `error` only when a token
/// was presented (section 3.1: a request without credentials gets no
/// error code).
fn unauthorized(error: &str, message: &str) -> Response {
    tracing::warn!(reason = message, "admin API request refused");
    let mut res = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let challenge = if error.is_empty() {
        HeaderValue::from_static("Bearer realm=\"admin\"")
    } else {
        HeaderValue::from_static("Bearer realm=\"admin\", error=\"invalid_token\"")
    };
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    res
}

// === faults ===

async fn list_faults(State(api): Api) -> Response {
    axum::Json(json!({ "faults": api.faults.list() })).into_response()
}

async fn add_fault(State(api): Api, Json(spec): Json<FaultSpec>) -> Response {
    match api.faults.add(spec) {
        Ok(fault) => {
            tracing::warn!(
                fault.id = fault.id.as_str(),
                fault = %json!(fault),
                "fault added through the admin API"
            );
            let location = HeaderValue::from_str(&format!("/admin/faults/{}", fault.id)).ok();
            let mut res = (StatusCode::CREATED, axum::Json(fault)).into_response();
            if let Some(location) = location {
                res.headers_mut().insert(header::LOCATION, location);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn remove_fault(State(api): Api, Path(id): Path<String>) -> Response {
    if api.faults.remove(&id) {
        tracing::info!(
            fault.id = id.as_str(),
            "fault removed through the admin API"
        );
        StatusCode::NO_CONTENT.into_response()
    } else {
        error_response(
            StatusCode::NOT_FOUND,
            "fault_not_found",
            "no active fault has that id (it may have expired)",
        )
    }
}

async fn clear_faults(State(api): Api) -> StatusCode {
    api.faults.clear();
    tracing::info!("all faults removed through the admin API");
    StatusCode::NO_CONTENT
}

// === crash and drain ===

async fn crash(State(api): Api) -> Response {
    tracing::error!(
        exit_code = CRASH_EXIT_CODE,
        "crash requested through the admin API: exiting"
    );
    let hook = api.crash.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CRASH_DELAY).await;
        (hook.0)(CRASH_EXIT_CODE);
    });
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "crashing", "exit_code": CRASH_EXIT_CODE})),
    )
        .into_response()
}

async fn drain(State(api): Api) -> Response {
    api.readiness.drain();
    tracing::warn!("draining (admin API): /readyz answers 503 from now on");
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "draining"})),
    )
        .into_response()
}

async fn undrain(State(api): Api) -> Response {
    api.readiness.undrain();
    tracing::info!("no longer draining (admin API)");
    axum::Json(json!({"status": "not_draining"})).into_response()
}
