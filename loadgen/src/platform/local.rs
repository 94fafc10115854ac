//! The `local` driver: the launcher's control API over HTTP
//! (`docs/launcher.md`), so it drives a system a run started in-process
//! and one started separately with `loadgen up` alike.
//!
//! | Operation | Request |
//! |---|---|
//! | scale | `POST /services/{s}/scale {"replicas": N}` |
//! | crash | `GET /services/{s}` to pick a ready replica, then `POST /services/{s}/replicas/{i}/kill` |
//! | restart | `POST /services/{s}/restart` (answers when the last replica is back) |
//! | replicas | `GET /services/{s}`: the `ready` replicas, named like the launcher's logs (`payments`, `payments-1`) |
//! | settings | `GET /services/{s}`: its `env` |
//! | configure | `PUT /services/{s}/env {"env": {...}}` (a rolling restart; answers when the last replica is back) |
//!
//! Every request carries the admin token (`Authorization: Bearer`), which
//! the control API asks for as the services' admin API does.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use serde_json::json;

use super::{Platform, PlatformError, PlatformFuture, Replica, pick};
use crate::human::error_chain;

/// A rolling restart waits on every replica in turn (drain period, stop,
/// start, ready): minutes for a large service on a slow machine.
const LONG_OPERATION: Duration = Duration::from_secs(30 * 60);

/// Drives the launcher at `control_url`.
#[derive(Debug, Clone)]
pub struct LocalPlatform {
    control_url: String,
    admin_token: Option<String>,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct ServiceView {
    desired: usize,
    #[serde(default)]
    env: BTreeMap<String, String>,
    replicas: Vec<ReplicaView>,
}

#[derive(Debug, Deserialize)]
struct ReplicaView {
    replica: usize,
    url: String,
    pid: Option<u32>,
    state: String,
}

#[derive(Debug, Deserialize)]
struct RestartedView {
    restarted: Vec<RestartedReplicaView>,
}

#[derive(Debug, Deserialize)]
struct RestartedReplicaView {
    pid: Option<u32>,
    new_pid: Option<u32>,
}

fn label(service: &str, replica: usize) -> String {
    if replica == 0 {
        service.to_owned()
    } else {
        format!("{service}-{replica}")
    }
}

fn pids(pids: impl Iterator<Item = Option<u32>>) -> String {
    pids.map(|p| p.map_or("?".into(), |p| p.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl LocalPlatform {
    /// `control_url`: `http://127.0.0.1:8070` (`loadgen up` prints it;
    /// [`launcher::System::control_addr`] in-process). `admin_token`:
    /// the token the launcher gave the services.
    pub fn new(control_url: impl Into<String>, admin_token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            control_url: control_url.into().trim_end_matches('/').to_owned(),
            admin_token,
            http,
        }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, PlatformError> {
        let unreachable = |message: String| PlatformError::Unreachable {
            operation: operation.to_owned(),
            message,
        };
        let req = match &self.admin_token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        let res = req.send().await.map_err(|e| {
            unreachable(format!(
                "the launcher's control API at {}: {}",
                self.control_url,
                error_chain(&e)
            ))
        })?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| unreachable(format!("unexpected answer: {e}")));
        }
        Err(match serde_json::from_slice::<mesh::ErrorBody>(&bytes) {
            Ok(body) if body.error.code == "unknown_service" => {
                PlatformError::UnknownService(operation_service(operation))
            }
            Ok(body) if status == reqwest::StatusCode::UNAUTHORIZED => PlatformError::Refused {
                operation: operation.to_owned(),
                status: status.as_u16(),
                code: body.error.code,
                message: format!(
                    "{}: the launcher's control API takes its admin token (--admin-token \"$(cat data/admin-token)\")",
                    if self.admin_token.is_some() {
                        "the admin token is not the launcher's"
                    } else {
                        "no admin token given"
                    }
                ),
            },
            Ok(body) => PlatformError::Refused {
                operation: operation.to_owned(),
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => unreachable(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
        })
    }

    async fn service(&self, service: &str) -> Result<ServiceView, PlatformError> {
        let req = self
            .http
            .get(format!("{}/services/{service}", self.control_url))
            .timeout(Duration::from_secs(10));
        self.send(&format!("look up {service}"), req).await
    }
}

/// `scale payments` → `payments`: the service an operation was about.
fn operation_service(operation: &str) -> String {
    operation.rsplit(' ').next().unwrap_or(operation).to_owned()
}

impl Platform for LocalPlatform {
    fn name(&self) -> &'static str {
        "local"
    }

    fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    fn scale<'a>(&'a self, service: &'a str, replicas: usize) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let before = self.service(service).await?.replicas.len();
            let req = self
                .http
                .post(format!("{}/services/{service}/scale", self.control_url))
                .json(&json!({ "replicas": replicas }))
                .timeout(LONG_OPERATION);
            let after: ServiceView = self.send(&format!("scale {service}"), req).await?;
            Ok(format!("{service}: {before} → {} replicas", after.desired))
        })
    }

    fn crash<'a>(&'a self, service: &'a str, replica: Option<usize>) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let view = self.service(service).await?;
            let running: Vec<&ReplicaView> = view
                .replicas
                .iter()
                .filter(|r| r.state == "ready" && r.pid.is_some())
                .collect();
            // `replica` is the launcher's replica number, not a position.
            let target = match replica {
                Some(i) => *running.iter().find(|r| r.replica == i).ok_or_else(|| {
                    PlatformError::Invalid(format!(
                        "{service} has no running replica {i} (running: {})",
                        running
                            .iter()
                            .map(|r| r.replica.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
                None => pick(service, &running, None)?.1,
            };
            let req = self
                .http
                .post(format!(
                    "{}/services/{service}/replicas/{}/kill",
                    self.control_url, target.replica
                ))
                .timeout(Duration::from_secs(30));
            let _: serde_json::Value = self.send(&format!("crash {service}"), req).await?;
            Ok(format!(
                "{} (pid {}) killed; the launcher restarts it",
                label(service, target.replica),
                pids(std::iter::once(target.pid))
            ))
        })
    }

    fn restart<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let req = self
                .http
                .post(format!("{}/services/{service}/restart", self.control_url))
                .timeout(LONG_OPERATION);
            let done: RestartedView = self.send(&format!("restart {service}"), req).await?;
            Ok(format!(
                "{service}: {} replicas restarted one by one (pids {} → {})",
                done.restarted.len(),
                pids(done.restarted.iter().map(|r| r.pid)),
                pids(done.restarted.iter().map(|r| r.new_pid)),
            ))
        })
    }

    fn settings<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, BTreeMap<String, String>> {
        Box::pin(async move { Ok(self.service(service).await?.env) })
    }

    fn configure<'a>(
        &'a self,
        service: &'a str,
        env: &'a BTreeMap<String, String>,
    ) -> PlatformFuture<'a, String> {
        Box::pin(async move {
            let req = self
                .http
                .put(format!("{}/services/{service}/env", self.control_url))
                .json(&json!({ "env": env }))
                .timeout(LONG_OPERATION);
            let done: RestartedView = self.send(&format!("configure {service}"), req).await?;
            let settings = if env.is_empty() {
                "its own settings".to_owned()
            } else {
                env.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Ok(format!(
                "{service}: {settings}, {} replicas restarted",
                done.restarted.len()
            ))
        })
    }

    fn replicas<'a>(&'a self, service: &'a str) -> PlatformFuture<'a, Vec<Replica>> {
        Box::pin(async move {
            Ok(self
                .service(service)
                .await?
                .replicas
                .into_iter()
                .filter(|r| r.state == "ready")
                .map(|r| Replica {
                    name: label(service, r.replica),
                    base_url: r.url,
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const TOKEN: &str = "local-platform-test-token";

    /// A launcher with nothing running, its control API on a free port;
    /// a platform for it with `token`.
    async fn idle_launcher_with(token: Option<&str>) -> LocalPlatform {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let access = launcher::control::Access {
            token: TOKEN.parse().unwrap(),
            addr,
        };
        let app = launcher::control::idle(access);
        tokio::spawn(async move { axum::serve(listener, app).await });
        LocalPlatform::new(format!("http://{addr}"), token.map(str::to_owned))
    }

    async fn idle_launcher() -> LocalPlatform {
        idle_launcher_with(Some(TOKEN)).await
    }

    #[tokio::test]
    async fn it_sends_the_admin_token_and_says_when_it_has_none_or_the_wrong_one() {
        // The right token: through to the launcher (nothing runs).
        assert!(
            idle_launcher()
                .await
                .replicas("payments")
                .await
                .unwrap()
                .is_empty()
        );
        for (token, why) in [
            (None, "no admin token given"),
            (
                Some("another-token"),
                "the admin token is not the launcher's",
            ),
        ] {
            let platform = idle_launcher_with(token).await;
            let err = platform.scale("payments", 2).await.unwrap_err().to_string();
            assert!(err.contains("401"), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(err.contains("--admin-token"), "{err}");
        }
    }

    #[tokio::test]
    async fn errors_name_the_operation_and_the_launchers_reason() {
        let platform = idle_launcher().await;
        let err = platform.scale("billing", 2).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no service named \"billing\" on this platform"
        );
        // Nothing runs in an idle launcher.
        let err = platform.crash("payments", None).await.unwrap_err();
        assert!(err.to_string().contains("no running replica"), "{err}");
        let err = platform.crash("payments", Some(3)).await.unwrap_err();
        assert!(err.to_string().contains("no running replica 3"), "{err}");
        assert!(platform.replicas("payments").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_launcher_is_said_to_be_so() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let platform = LocalPlatform::new(format!("http://127.0.0.1:{port}/"), None);
        let err = platform.replicas("payments").await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "look up payments: the launcher's control API at http://127.0.0.1:{port}:"
            )),
            "{err}"
        );
    }
}
