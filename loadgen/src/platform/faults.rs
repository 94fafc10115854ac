//! A client for the services' admin API (`/admin/*`, see docs/api.md
//! "Admin API"): faults injected on every replica of a service, cleared
//! again, and the drain a rolling restart starts with.
//!
//! A fault goes to each replica the platform lists at that moment; a
//! replica started later does not have it (the admin API is per process).
//! When one replica cannot be reached, the others still get the fault and
//! the outcome says which failed: a partial fault is reported, not hidden.

use std::time::Duration;

/// A fault, as the admin API takes it (`POST /admin/faults`): the mesh's
/// own wire type.
pub use mesh::fault::{FaultSpec, FaultView};

use super::Replica;
use crate::human::error_chain;

/// What a fault does, for people: `POST /payments: error 100% 503 for 30s`.
pub fn describe(fault: &FaultSpec) -> String {
    let mut parts = Vec::new();
    if let Some(l) = &fault.latency {
        parts.push(match (l.fixed_ms, l.uniform_ms, l.median_ms, l.p99_ms) {
            (Some(ms), ..) => format!("latency {ms} ms"),
            (_, Some([a, b]), ..) => format!("latency {a}–{b} ms"),
            (_, _, Some(m), Some(p)) => format!("latency median {m} ms, p99 {p} ms"),
            _ => "latency".into(),
        });
    }
    if let Some(e) = &fault.error {
        parts.push(format!("error {} {}", percent(e.rate), e.status));
    }
    if let Some(a) = &fault.abort {
        parts.push(format!("abort {}", percent(a.rate)));
    }
    let scope = match (&fault.method, &fault.route) {
        (Some(m), Some(r)) => format!("{} {r}", m.to_uppercase()),
        (Some(m), None) => format!("{} *", m.to_uppercase()),
        (None, Some(r)) => r.clone(),
        (None, None) => "every route".into(),
    };
    let mut text = format!("{scope}: {}", parts.join(", "));
    if let Some(d) = fault.lifetime() {
        text.push_str(&format!(" for {}", humantime::format_duration(d)));
    }
    text
}

fn percent(rate: f64) -> String {
    format!("{}%", (rate * 1000.0).round() / 10.0)
}

/// Why one admin call to one replica failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    #[error("no admin token: start the services with ADMIN_TOKEN (loadgen up --admin-token)")]
    NoToken,
    #[error("{0}")]
    Unreachable(String),
    /// The replica answered with an error (`401 unauthorized: ...`).
    #[error("{status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// What an operation on every replica of a service did on each.
#[derive(Debug, Clone)]
pub struct FanOut<T> {
    pub service: String,
    /// Per replica, in the platform's order.
    pub replicas: Vec<(Replica, Result<T, AdminError>)>,
}

impl<T> FanOut<T> {
    /// Every replica did it (and there was at least one).
    pub fn all_ok(&self) -> bool {
        !self.replicas.is_empty() && self.replicas.iter().all(|(_, r)| r.is_ok())
    }

    /// `payments-1: connection refused; payments-2: 401 ...`: the
    /// replicas that failed, for the report.
    pub fn failures(&self) -> Option<String> {
        let failed: Vec<String> = self
            .replicas
            .iter()
            .filter_map(|(replica, r)| r.as_ref().err().map(|e| format!("{}: {e}", replica.name)))
            .collect();
        if self.replicas.is_empty() {
            Some(format!("{} has no running replica", self.service))
        } else if failed.is_empty() {
            None
        } else {
            Some(failed.join("; "))
        }
    }

    fn succeeded(&self) -> usize {
        self.replicas.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

/// A fault injected on a service: as each replica took it (its id there).
pub type Injected = FanOut<FaultView>;

impl Injected {
    /// `fault on 2 of 3 payments replicas (ids 5f0c.., 9a1b..)`.
    pub fn describe(&self, fault: &FaultSpec) -> String {
        let ids: Vec<&str> = self
            .replicas
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|f| f.id.as_str()))
            .collect();
        format!(
            "{} on {} of {} {} replicas (fault ids {})",
            describe(fault),
            self.succeeded(),
            self.replicas.len(),
            self.service,
            if ids.is_empty() {
                "none".into()
            } else {
                ids.join(", ")
            }
        )
    }
}

/// Faults cleared on a service.
pub type Cleared = FanOut<()>;

impl Cleared {
    pub fn describe(&self) -> String {
        format!(
            "faults cleared on {} of {} {} replicas",
            self.succeeded(),
            self.replicas.len(),
            self.service
        )
    }
}

/// Calls the admin API of replicas with one token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    token: Option<String>,
}

impl AdminClient {
    /// `token`: the services' `ADMIN_TOKEN` (`None`: every call fails
    /// with [`AdminError::NoToken`], saying how to set one).
    pub fn new(token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            // An admin call does almost nothing; a replica that takes
            // longer is hung, and the report should say so rather than
            // hold the timeline up.
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self { http, token }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<&FaultSpec>,
    ) -> Result<reqwest::Response, AdminError> {
        let token = self.token.as_deref().ok_or(AdminError::NoToken)?;
        let mut req = self.http.request(method, &url).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req
            .send()
            .await
            .map_err(|e| AdminError::Unreachable(format!("{url}: {}", error_chain(&e))))?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<mesh::ErrorBody>(&text) {
            Ok(body) => AdminError::Refused {
                status,
                code: body.error.code,
                message: body.error.message,
            },
            // Not a LearnSphere service (or no admin API: its 404 is the
            // JSON one, handled above).
            Err(_) => AdminError::Refused {
                status,
                code: "unexpected_answer".into(),
                message: text.chars().take(200).collect(),
            },
        })
    }

    /// `POST /admin/faults` on one replica; the fault as it took it.
    pub async fn add_fault(
        &self,
        replica: &Replica,
        fault: &FaultSpec,
    ) -> Result<FaultView, AdminError> {
        let url = format!("{}/admin/faults", replica.base_url);
        let res = self.call(reqwest::Method::POST, url, Some(fault)).await?;
        res.json::<FaultView>()
            .await
            .map_err(|e| AdminError::Unreachable(format!("the answer to a new fault: {e}")))
    }

    /// `GET /admin/faults` on one replica: its active faults, oldest first.
    pub async fn list_faults(&self, replica: &Replica) -> Result<Vec<FaultView>, AdminError> {
        #[derive(serde::Deserialize)]
        struct Listed {
            faults: Vec<FaultView>,
        }
        let url = format!("{}/admin/faults", replica.base_url);
        let res = self.call(reqwest::Method::GET, url, None).await?;
        res.json::<Listed>()
            .await
            .map(|listed| listed.faults)
            .map_err(|e| AdminError::Unreachable(format!("the list of faults: {e}")))
    }

    /// `DELETE /admin/faults/{id}` on one replica.
    pub async fn remove_fault(&self, replica: &Replica, id: &str) -> Result<(), AdminError> {
        let url = format!("{}/admin/faults/{id}", replica.base_url);
        self.call(reqwest::Method::DELETE, url, None)
            .await
            .map(drop)
    }

    /// `DELETE /admin/faults` on one replica: every fault, ours or not.
    pub async fn clear_faults(&self, replica: &Replica) -> Result<(), AdminError> {
        let url = format!("{}/admin/faults", replica.base_url);
        self.call(reqwest::Method::DELETE, url, None)
            .await
            .map(drop)
    }

    /// `POST /admin/drain` on a replica at `base_url`: `/readyz` fails
    /// from now on, so balancers and orchestrators stop choosing it.
    pub async fn drain(&self, base_url: &str) -> Result<(), AdminError> {
        let url = format!("{base_url}/admin/drain");
        self.call(reqwest::Method::POST, url, None).await.map(drop)
    }

    /// Injects `fault` on each of `replicas` (all at once).
    pub async fn inject(
        &self,
        service: &str,
        replicas: Vec<Replica>,
        fault: &FaultSpec,
    ) -> Injected {
        let results =
            futures::future::join_all(replicas.iter().map(|r| self.add_fault(r, fault))).await;
        FanOut {
            service: service.to_owned(),
            replicas: replicas.into_iter().zip(results).collect(),
        }
    }

    /// Clears every fault on each of `replicas`.
    pub async fn clear(&self, service: &str, replicas: Vec<Replica>) -> Cleared {
        let results =
            futures::future::join_all(replicas.iter().map(|r| self.clear_faults(r))).await;
        FanOut {
            service: service.to_owned(),
            replicas: replicas.into_iter().zip(results).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::{Json, Router, http::StatusCode, routing::post};
    use serde_json::{Value, json};

    use mesh::fault::ErrorSpec;

    use super::*;

    fn replica(name: &str, base_url: String) -> Replica {
        Replica {
            name: name.into(),
            base_url,
        }
    }

    /// An admin API stand-in that records the faults it is given.
    async fn fake_admin() -> (String, Arc<Mutex<Vec<Value>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let app = Router::new().route(
            "/admin/faults",
            post(
                move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                    let recorded = recorded.clone();
                    async move {
                        if headers["authorization"] != "Bearer t0ken" {
                            return (
                                StatusCode::UNAUTHORIZED,
                                Json(
                                    json!({"error": {"code": "unauthorized", "message": "wrong"}}),
                                ),
                            );
                        }
                        recorded.lock().unwrap().push(body);
                        (StatusCode::CREATED, Json(json!({"id": "f-1"})))
                    }
                },
            )
            .delete(|| async { StatusCode::NO_CONTENT }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn outage() -> FaultSpec {
        FaultSpec {
            route: Some("/payments".into()),
            method: Some("post".into()),
            error: Some(ErrorSpec {
                rate: 1.0,
                status: 503,
            }),
            expires_in: Some(mesh::fault::expires_in(Duration::from_secs(30))),
            ..FaultSpec::default()
        }
    }

    #[tokio::test]
    async fn a_fault_reaches_every_replica_and_a_dead_one_is_reported() {
        let (url, seen) = fake_admin().await;
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let client = AdminClient::new(Some("t0ken".into()));
        let injected = client
            .inject(
                "payments",
                vec![
                    replica("payments", url.clone()),
                    replica("payments-1", dead),
                ],
                &outage(),
            )
            .await;
        assert!(!injected.all_ok());
        let failures = injected.failures().unwrap();
        assert!(failures.starts_with("payments-1: "), "{failures}");
        assert!(!failures.contains("payments: "), "{failures}");
        let detail = injected.describe(&outage());
        assert_eq!(
            detail,
            "POST /payments: error 100% 503 for 30s on 1 of 2 payments replicas (fault ids f-1)"
        );
        // The admin API's own field names, the expiry in milliseconds.
        assert_eq!(
            seen.lock().unwrap()[0],
            json!({"route": "/payments", "method": "post",
                   "error": {"rate": 1.0, "status": 503}, "expires_in": "30000ms"})
        );
        let cleared = client
            .clear("payments", vec![replica("payments", url)])
            .await;
        assert!(cleared.all_ok());
        assert_eq!(
            cleared.describe(),
            "faults cleared on 1 of 1 payments replicas"
        );
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_is_said_plainly() {
        let (url, _) = fake_admin().await;
        let target = replica("payments", url);
        let err = AdminClient::new(Some("nope".into()))
            .add_fault(&target, &outage())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "401 unauthorized: wrong");
        let err = AdminClient::new(None)
            .add_fault(&target, &outage())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ADMIN_TOKEN"), "{err}");
        let none = AdminClient::new(Some("t0ken".into()))
            .inject("payments", vec![], &outage())
            .await;
        assert!(!none.all_ok());
        assert_eq!(none.failures().unwrap(), "payments has no running replica");
    }
}
