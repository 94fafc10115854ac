//! The admin surface every service serves beside its API: `/metrics`,
//! `/healthz` and `/readyz`, and, when an admin token is configured, the
//! admin API: the token-protected `/admin/*` routes (faults, crash,
//! drain; see [`api`]). These routes sit outside the inbound stack: a scrape
//! every few seconds is not traffic, and tracing it would bury the real
//! requests in Jaeger.

mod api;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::{db::Db, metrics::Metrics};

pub use self::api::{AdminApi, CRASH_EXIT_CODE, CrashHook, Unauthorized, authorize};

/// What `/readyz` checks.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    db: Option<Db>,
    /// Set once start-up (migrations, seeding) has finished.
    started: Arc<AtomicBool>,
    /// Set by `POST /admin/drain`: the replica asks to be taken out of
    /// rotation while it keeps serving what still reaches it.
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// Ready when `db` answers (or always, without a database) and
    /// [`Readiness::mark_started`] has been called.
    pub fn new(db: Option<Db>) -> Self {
        Self {
            db,
            started: Arc::new(AtomicBool::new(false)),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Not ready from now on (reason `draining`), whatever else says.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Undoes [`Readiness::drain`].
    pub fn undrain(&self) {
        self.draining.store(false, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    async fn check(&self) -> Result<(), &'static str> {
        // First: an operator's decision outranks the process's state.
        if self.is_draining() {
            return Err("draining");
        }
        if !self.started.load(Ordering::Acquire) {
            return Err("starting");
        }
        if let Some(db) = &self.db
            && !db.ping().await
        {
            return Err("database unreachable");
        }
        Ok(())
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// The admin routes; `/admin/*` only with `api` (an admin token is
/// configured). Without it they do not exist, and `/admin/...` is the
/// same 404 as any unknown path.
pub(crate) fn router(metrics: Arc<Metrics>, readiness: Readiness, api: Option<AdminApi>) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AdminState { metrics, readiness });
    match api {
        Some(api) => router.merge(api.router()),
        None => router,
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics (with exemplars) unless the scraper asks for the classic
/// text format only.
async fn metrics_handler(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wants_plain_text =
        accept.contains("text/plain") && !accept.contains("application/openmetrics-text");
    if wants_plain_text {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            state.metrics.encode_prometheus_text(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, OPENMETRICS)],
            state.metrics.encode_openmetrics(),
        )
            .into_response()
    }
}

/// Liveness: the process answers. Nothing else, so a slow database never
/// gets a healthy process restarted.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AdminState>) -> Response {
    match state.readiness.check().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        )
            .into_response(),
    }
}
