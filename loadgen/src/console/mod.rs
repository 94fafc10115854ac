//! The operator console: a web page (`web/src/console`, built into
//! `web/dist/console` and embedded here) and the JSON API behind it
//! (docs/web.md). `loadgen up` serves it on the launcher's control API
//! listener ([`Console::extension`]), next to the routes the page uses
//! for scaling and killing replicas; `loadgen console` serves it alone
//! for Compose or Kubernetes ([`Console::standalone`]), with a `GET
//! /services` of its own and, optionally, a background scenario in a
//! loop that makes way for the operator's runs.
//!
//! | Route | Does |
//! |---|---|
//! | `GET /console` | The page (and `/console/assets/console.{js,css}`). |
//! | `GET /console/api/info` | Where things are: the platform, the gateway, Grafana's dashboards, Jaeger. |
//! | `GET /console/api/faults` | Every service's replicas and their active faults. |
//! | `POST /console/api/faults/{service}` | A fault (the admin API's body) on every replica of the service. |
//! | `DELETE /console/api/faults/{service}` | Every fault on every replica of the service. |
//! | `DELETE /console/api/faults/{service}/replicas/{replica}/{id}` | One fault on one replica. |
//! | `GET /console/api/scenarios` | The shipped scenarios. |
//! | `POST /console/api/runs` | Starts one (`loadgen run` as a child process), one at a time. |
//! | `GET /console/api/runs`, `GET /console/api/runs/{id}` | Their live progress, then verdict. |
//! | `DELETE /console/api/runs/{id}` | Stops one early (it is still judged). |
//! | `GET /console/runs/{id}/report.html` | A finished run's report. |
//!
//! The API sits behind the control API's own checks (`Host`, `Origin`,
//! the admin token, JSON bodies: `launcher::control`); the page, its
//! files and the reports behind the `Host` check alone, since a browser
//! loads them before it has a token to send. Run ids are random, and a
//! report holds what `loadgen run --out` writes: statistics and trace
//! ids, no secret.

mod faults;
mod run_view;
mod runs;
mod state;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use launcher::ControlExtension;
use serde::Serialize;
use serde_json::json;

use self::state::Answer;
pub use self::state::{Console, Settings, Target};
use crate::platform::Platform;

/// Grafana's dashboards (`dashboards/*.json`: uid, title); a test keeps
/// the two in step.
pub const DASHBOARDS: &[(&str, &str)] = &[
    ("learnsphere-mesh", "Mesh overview"),
    ("learnsphere-service", "Service detail"),
    ("learnsphere-failures", "Failures and resilience"),
    ("learnsphere-slo", "SLOs"),
    ("learnsphere-loadgen", "Load generator"),
];

impl Console {
    /// The system is up, on `platform`: from now on the API acts on it,
    /// and the background scenario, if any, starts.
    pub fn attach(&self, target: Target, platform: Arc<dyn Platform>) {
        if self.set_target(target, platform)
            && let Some((scenario, scale)) = self.inner.settings.background.clone()
        {
            tokio::spawn(runs::background(self.clone(), scenario, scale));
        }
    }

    /// The console alone, where no launcher runs (Compose, Kubernetes):
    /// its routes and a `GET /services` of its own, behind the control
    /// API's guard for the listener at `addr`.
    pub fn standalone(&self, token: mesh::config::AdminToken, addr: SocketAddr) -> Router {
        let mut extension = self.extension();
        extension.operations = extension
            .operations
            .route("/services", get(services).with_state(self.clone()));
        launcher::control::guarded(extension, launcher::control::Access { token, addr })
    }

    /// The routes, for the launcher to serve beside its own.
    pub fn extension(&self) -> ControlExtension {
        let operations = Router::new()
            .route("/console/api/info", get(info))
            .route("/console/api/faults", get(faults::list))
            .route(
                "/console/api/faults/{service}",
                delete(faults::clear).post(faults::inject),
            )
            .route(
                "/console/api/faults/{service}/replicas/{replica}/{id}",
                delete(faults::remove),
            )
            .route("/console/api/scenarios", get(runs::scenarios))
            .route("/console/api/runs", get(runs::list).post(runs::start))
            .route("/console/api/runs/{id}", get(runs::get).delete(runs::stop))
            .with_state(self.clone());
        let pages = Router::new()
            .route("/console", get(index))
            .route("/console/", get(index))
            .route("/console/assets/console.js", get(script))
            .route("/console/assets/console.css", get(style))
            .route("/console/runs/{id}/report.html", get(runs::report))
            .with_state(self.clone());
        ControlExtension { operations, pages }
    }
}

async fn index(State(console): State<Console>, headers: HeaderMap) -> Response {
    let c = &console.inner;
    c.index.respond(&headers, &c.page)
}

async fn script(State(console): State<Console>, headers: HeaderMap) -> Response {
    let c = &console.inner;
    c.script.respond(&headers, &c.page)
}

async fn style(State(console): State<Console>, headers: HeaderMap) -> Response {
    let c = &console.inner;
    c.style.respond(&headers, &c.page)
}

#[derive(Debug, Serialize)]
struct Info {
    platform: &'static str,
    gateway_url: String,
    grafana_url: String,
    jaeger_url: String,
    dashboards: Vec<Dashboard>,
    can_scale: bool,
    can_kill: bool,
}

#[derive(Debug, Serialize)]
struct Dashboard {
    title: &'static str,
    url: String,
}

async fn info(State(console): State<Console>) -> Answer {
    let (target, platform) = console.target()?;
    let settings = &console.inner.settings;
    let grafana = settings.grafana_url.trim_end_matches('/');
    Ok(Json(Info {
        platform: platform.name(),
        gateway_url: target.gateway_url.clone(),
        grafana_url: grafana.to_owned(),
        jaeger_url: settings.jaeger_url.trim_end_matches('/').to_owned(),
        dashboards: DASHBOARDS
            .iter()
            .map(|(uid, title)| Dashboard {
                title,
                url: format!("{grafana}/d/{uid}"),
            })
            .collect(),
        // Scale and kill are the launcher's control API's, on this
        // listener when the console sits beside it.
        can_scale: target.launcher,
        can_kill: target.launcher,
    })
    .into_response())
}

/// `GET /services` where no launcher answers it: each service's replicas
/// as the platform finds them (DNS), each asked `/readyz`, in the
/// launcher's shape so the page shows them alike.
async fn services(State(console): State<Console>) -> Answer {
    let (_, platform) = console.target()?;
    let http = &console.inner.probe;
    let per_service = launcher::services::SERVICES.iter().map(|spec| {
        async move {
            let replicas = platform.replicas(spec.name).await.unwrap_or_default();
            let states = futures::future::join_all(replicas.iter().map(|r| {
                async move {
                    match http.get(format!("{}/readyz", r.base_url)).send().await {
                        Ok(res) if res.status().is_success() => "ready",
                        Ok(_) => "not ready",
                        Err(_) => "unreachable",
                    }
                }
            }))
            .await;
            json!({
                "name": spec.name,
                "desired": replicas.len(),
                "restarts": 0,
                "replicas": replicas.iter().zip(states).enumerate().map(|(i, (r, state))| json!({
                    "replica": i, "name": r.name, "url": r.base_url, "pid": null, "restarts": 0, "state": state,
                })).collect::<Vec<_>>(),
            })
        }
    });
    let services = futures::future::join_all(per_service).await;
    Ok(Json(json!({ "services": services })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console links every dashboard Grafana is given, by its uid.
    #[test]
    fn every_dashboard_is_linked() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards");
        let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let d: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                (
                    d["uid"].as_str().unwrap().to_owned(),
                    d["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        found.sort();
        let mut linked: Vec<(String, String)> = DASHBOARDS
            .iter()
            .map(|(uid, title)| (uid.to_string(), format!("LearnSphere / {title}")))
            .collect();
        linked.sort();
        assert_eq!(linked, found);
    }
}
