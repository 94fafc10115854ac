//! The console's faults: the services' admin API (`/admin/faults`) on
//! every replica at once, as a scenario's `fault` event does.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use mesh::extract::{Json as JsonBody, Path};
use serde::Serialize;
use serde_json::json;

use super::state::{Answer, Console, Refusal};
use crate::platform::{
    PlatformError, Replica,
    faults::{AdminError, FaultSpec, FaultView, describe},
};

/// The services that take faults, in start order.
fn services() -> impl Iterator<Item = &'static str> {
    launcher::services::SERVICES.iter().map(|s| s.name)
}

fn known(service: &str) -> Result<(), Refusal> {
    if services().any(|s| s == service) {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown_service",
            format!(
                "no service named {service:?}: one of {}",
                services().collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

fn platform_failed(e: PlatformError) -> Refusal {
    Refusal::new(StatusCode::BAD_GATEWAY, "platform_failed", e.to_string())
}

#[derive(Debug, Serialize)]
struct ServiceFaults {
    service: &'static str,
    replicas: Vec<ReplicaFaults>,
    /// Why its replicas could not be listed.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ReplicaFaults {
    replica: String,
    url: String,
    faults: Vec<FaultView>,
    /// Why this replica could not be asked.
    error: Option<String>,
}

/// `GET /console/api/faults`.
pub(super) async fn list(State(console): State<Console>) -> Answer {
    let (_, platform) = console.target()?;
    let admin = &console.inner.admin;
    let per_service = services().map(|service| async move {
        match platform.replicas(service).await {
            Ok(replicas) => {
                let asked = replicas.iter().map(|r| admin.list_faults(r));
                let answers = futures::future::join_all(asked).await;
                ServiceFaults {
                    service,
                    replicas: replicas
                        .into_iter()
                        .zip(answers)
                        .map(|(r, answer)| {
                            let (faults, error) = match answer {
                                Ok(faults) => (faults, None),
                                Err(e) => (Vec::new(), Some(e.to_string())),
                            };
                            ReplicaFaults {
                                replica: r.name,
                                url: r.base_url,
                                faults,
                                error,
                            }
                        })
                        .collect(),
                    error: None,
                }
            }
            Err(e) => ServiceFaults {
                service,
                replicas: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    });
    let services = futures::future::join_all(per_service).await;
    Ok(Json(json!({ "services": services })).into_response())
}

/// `POST /console/api/faults/{service}`: on every replica. A replica's
/// refusal of the fault itself (422: a rate above 1) is the answer, as the
/// replica wrote it, so the form shows the admin API's own message.
pub(super) async fn inject(
    State(console): State<Console>,
    Path(service): Path<String>,
    JsonBody(fault): JsonBody<FaultSpec>,
) -> Answer {
    known(&service)?;
    let (_, platform) = console.target()?;
    let replicas = platform.replicas(&service).await.map_err(platform_failed)?;
    if replicas.is_empty() {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "no_replicas",
            format!("{service} has no running replica to inject into"),
        ));
    }
    let injected = console.inner.admin.inject(&service, replicas, &fault).await;
    // Every replica refused it as invalid: the fault is wrong, not a replica.
    let refusal = injected.replicas.iter().find_map(|(_, r)| match r {
        Err(AdminError::Refused {
            status,
            code,
            message,
        }) if (400..500).contains(status) => Some((*status, code.clone(), message.clone())),
        _ => None,
    });
    if !injected.replicas.iter().any(|(_, r)| r.is_ok()) {
        if let Some((status, code, message)) = refusal {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(Refusal::new(status, code, message));
        }
        return Err(Refusal::new(
            StatusCode::BAD_GATEWAY,
            "injection_failed",
            injected
                .failures()
                .unwrap_or_else(|| "no replica took the fault".into()),
        ));
    }
    tracing::info!(target: "loadgen::console", service = %service, fault = %describe(&fault), "fault injected from the console");
    let mut message = injected.describe(&fault);
    if let Some(failures) = injected.failures() {
        message.push_str(&format!("; failed on {failures}"));
    }
    let (took, failed): (Vec<_>, Vec<_>) =
        injected.replicas.into_iter().partition(|(_, r)| r.is_ok());
    let body = json!({
        "service": service,
        "message": message,
        "injected": took.into_iter().filter_map(|(replica, r)| r.ok().map(|fault| json!({"replica": replica.name, "fault": fault}))).collect::<Vec<_>>(),
        "failed": failed.into_iter().filter_map(|(replica, r)| r.err().map(|e| json!({"replica": replica.name, "error": e.to_string()}))).collect::<Vec<_>>(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /console/api/faults/{service}`: every fault, every replica.
pub(super) async fn clear(State(console): State<Console>, Path(service): Path<String>) -> Answer {
    known(&service)?;
    let (_, platform) = console.target()?;
    let replicas = platform.replicas(&service).await.map_err(platform_failed)?;
    let cleared = console.inner.admin.clear(&service, replicas).await;
    let mut message = cleared.describe();
    if let Some(failures) = cleared.failures() {
        message.push_str(&format!("; failed on {failures}"));
    }
    Ok(Json(json!({ "service": service, "message": message })).into_response())
}

/// `DELETE /console/api/faults/{service}/replicas/{replica}/{id}`.
pub(super) async fn remove(
    State(console): State<Console>,
    Path((service, replica, id)): Path<(String, String, String)>,
) -> Answer {
    known(&service)?;
    let (_, platform) = console.target()?;
    let replicas: Vec<Replica> = platform.replicas(&service).await.map_err(platform_failed)?;
    let Some(target) = replicas.iter().find(|r| r.name == replica) else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown_replica",
            format!("{service} has no running replica named {replica:?}"),
        ));
    };
    match console.inner.admin.remove_fault(target, &id).await {
        Ok(()) => {
            let message = format!("fault {id} removed from {replica}");
            Ok(Json(json!({ "message": message })).into_response())
        }
        Err(AdminError::Refused {
            status,
            code,
            message,
        }) => Err(Refusal::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            code,
            message,
        )),
        Err(e) => Err(Refusal::new(
            StatusCode::BAD_GATEWAY,
            "replica_unreachable",
            e.to_string(),
        )),
    }
}
