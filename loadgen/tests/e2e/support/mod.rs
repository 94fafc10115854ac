//! Starting the whole system for a test: an OTLP receiver, then every
//! service as a real process through the launcher, on free ports, with
//! fresh databases (SQLite files in a temp dir, or PostgreSQL databases
//! when `TEST_DATABASE_URL` names a server).

pub mod events;
pub mod reconcile;
pub mod up;

use std::{collections::BTreeMap, net::Ipv4Addr, path::PathBuf, time::Duration};

use launcher::{Databases, LaunchOptions, Logs, System};
use loadgen::scrape::Scrape;
use mesh::testing::TestDatabaseGroup;
/// A valid token for a user, signed with the development secret the test
/// systems run with (given to them explicitly: the launcher's own default
/// is a random one): for calling a service directly, as the gateway would
/// on the user's behalf.
pub use mesh::testing::token_for;
use otlp_sink::{Receiver, RunningReceiver};
use serde_json::{Value, json};

pub struct TestSystem {
    /// Dropping it (a failed test never reaches `stop()`) kills the
    /// services: the launcher starts them with kill-on-drop.
    pub system: System,
    pub receiver: RunningReceiver,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The services' PostgreSQL databases, when the run uses PostgreSQL.
    /// Last: fields drop in order, so the services are gone (or going;
    /// the drop forces their connections closed) when it drops these.
    _postgres: Option<TestDatabaseGroup>,
}

/// Which OTLP transport the services export with.
#[derive(Debug, Clone, Copy)]
pub enum Otlp {
    Grpc,
    HttpProtobuf,
}

impl TestSystem {
    pub async fn start(otlp: Otlp, extra_args: &[(&'static str, &[&str])]) -> Self {
        Self::start_with_env(otlp, extra_args, &[]).await
    }

    /// Like [`TestSystem::start`], with extra environment for every service.
    pub async fn start_with_env(
        otlp: Otlp,
        extra_args: &[(&'static str, &[&str])],
        extra_env: &[(&str, &str)],
    ) -> Self {
        Self::start_with_options(otlp, extra_args, extra_env, |_| {}).await
    }

    /// Like [`TestSystem::start_with_env`], with the launch options
    /// changed by `configure` last (replicas, discovery, restart policy).
    pub async fn start_with_options(
        otlp: Otlp,
        extra_args: &[(&'static str, &[&str])],
        extra_env: &[(&str, &str)],
        configure: impl FnOnce(&mut LaunchOptions),
    ) -> Self {
        let receiver = Receiver::new()
            .start(
                (Ipv4Addr::LOCALHOST, 0).into(),
                (Ipv4Addr::LOCALHOST, 0).into(),
            )
            .await
            .expect("OTLP receiver starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = LaunchOptions::local(dir.path().join("data"));
        options.auto_ports = true;
        // The control API on a free port too, so tests run side by side.
        options.control_addr = Some((Ipv4Addr::LOCALHOST, 0).into());
        options.exe = Some(PathBuf::from(env!("CARGO_BIN_EXE_loadgen")));
        // Tests mint tokens offline with `token_for`, which signs with the
        // development secret; a test about the launcher's own secret sets
        // this back to `None`.
        options.jwt_secret = Some(mesh::auth::DEV_JWT_SECRET.into());
        // A fresh temp dir: its own events prefix, deleted at the end.
        options.delete_streams_on_stop = true;
        options.logs = if std::env::var_os("TEST_LOG").is_some() {
            Logs::Prefixed
        } else {
            Logs::Files(dir.path().join("logs"))
        };
        let (endpoint, protocol) = match otlp {
            Otlp::Grpc => (receiver.grpc_endpoint(), "grpc"),
            Otlp::HttpProtobuf => (receiver.http_endpoint(), "http/protobuf"),
        };
        options.env = BTreeMap::from([
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), protocol.into()),
            // Export within 100 ms instead of 5 s so tests need not wait.
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            // The same for log records.
            ("OTEL_BLRP_SCHEDULE_DELAY".into(), "100".into()),
            ("OTEL_TRACES_SAMPLER".into(), "parentbased_always_on".into()),
            ("RUST_LOG".into(), "info".into()),
            // Tests sign up and log in many users from one address (and
            // loadgen's setup does too, against a system it did not start):
            // the per-address limit on sign-ins would refuse them. The
            // gateway's own tests cover that limit.
            ("CREDENTIALS_RATE_LIMIT_PER_MINUTE".into(), "0".into()),
        ]);
        for (key, value) in extra_env {
            options.env.insert(key.to_string(), value.to_string());
        }
        for (service, args) in extra_args {
            options
                .args
                .insert(service, args.iter().map(|a| a.to_string()).collect());
        }
        let postgres = TestDatabaseGroup::from_env("e2e");
        if let Some(group) = &postgres {
            options.databases = Databases::Postgres {
                admin_url: group.admin_url().to_owned(),
                prefix: group.prefix().to_owned(),
            };
        }
        configure(&mut options);
        let system = match System::start(options).await {
            Ok(s) => s,
            Err(e) => {
                dump_logs(dir.path());
                panic!("system did not start: {e:#}");
            }
        };
        Self {
            system,
            receiver,
            http: reqwest::Client::new(),
            dir,
            _postgres: postgres,
        }
    }

    pub fn gateway(&self) -> String {
        self.system.url("gateway").expect("gateway is running")
    }

    pub fn url(&self, service: &str) -> String {
        self.system.url(service).expect("service is running")
    }

    /// The launcher's control API.
    pub fn control(&self) -> String {
        format!(
            "http://{}",
            self.system.control_addr().expect("the control API runs")
        )
    }

    /// A request to the launcher's control API as an operator sends it:
    /// `path` (`/services`) with the control API's token.
    pub fn control_request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.control()))
            .bearer_auth(self.system.control_token().expect("the control API runs"))
    }

    /// A paid course of the seeded catalog (ids are deterministic).
    pub async fn paid_course(&self) -> Value {
        let page: Value = self
            .http
            .get(format!("{}/api/courses?per_page=50", self.gateway()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["price_cents"].as_i64().unwrap() > 0)
            .expect("the catalog has paid courses")
            .clone()
    }

    /// Registers and logs in a fresh user; returns (user id, token).
    pub async fn signed_up_user(&self) -> (String, String) {
        let email = format!("learner-{}@example.com", uuid::Uuid::new_v4().simple());
        let res = self
            .http
            .post(format!("{}/api/users", self.gateway()))
            .json(&json!({"email": email, "display_name": "Ada Learner", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "register: {}", res.text().await.unwrap());
        let user: Value = res.json().await.unwrap();
        let res = self
            .http
            .post(format!("{}/api/sessions", self.gateway()))
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login: {}", res.text().await.unwrap());
        let session: Value = res.json().await.unwrap();
        (
            user["id"].as_str().unwrap().to_owned(),
            session["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /api/checkout` of `course_id` as the holder of `token`, with
    /// `key` as its `Idempotency-Key`, ready to send.
    pub fn checkout(&self, token: &str, course_id: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/checkout", self.gateway()))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({"course_id": course_id}))
    }

    /// Scrapes a service's `/metrics` as Prometheus would (asking for OpenMetrics).
    pub async fn scrape(&self, service: &str) -> Scrape {
        self.scrape_url(&self.url(service)).await
    }

    /// Scrapes `<base_url>/metrics` (a replica, the control API).
    pub async fn scrape_url(&self, base_url: &str) -> Scrape {
        let res = self
            .http
            .get(format!("{base_url}/metrics"))
            .header("accept", "application/openmetrics-text; version=1.0.0")
            .send()
            .await
            .unwrap();
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text"),
            "metrics are served as OpenMetrics"
        );
        Scrape::parse(&res.text().await.unwrap()).expect("metrics parse")
    }

    /// Stops every service, each given 10 s to drain; their databases
    /// are dropped with `self`.
    pub async fn stop(mut self) {
        self.system.stop(Duration::from_secs(10)).await;
    }
}

/// The trace id a response names in its `traceresponse` header.
pub fn trace_id_of(res: &reqwest::Response) -> String {
    res.headers()["traceresponse"]
        .to_str()
        .expect("traceresponse is text")
        .split('-')
        .nth(1)
        .expect("traceresponse is version-traceid-spanid-flags")
        .to_owned()
}

/// Prints every service log (for a failed start).
pub fn dump_logs(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("logs")) else {
        return;
    };
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        eprintln!("===== {} =====\n{text}", entry.path().display());
    }
}

/// The user's enrollments as progress answers them.
pub async fn enrollments(sys: &TestSystem, user_id: &str) -> Vec<Value> {
    let body: Value = sys
        .http
        .get(format!(
            "{}/users/{user_id}/enrollments",
            sys.url("progress")
        ))
        .bearer_auth(token_for(user_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

/// Polls until the user's enrollment in `course_id` is active.
pub async fn wait_active(sys: &TestSystem, user_id: &str, course_id: &str) -> Vec<Value> {
    wait_status(sys, user_id, course_id, "active").await
}

/// Polls until the user's enrollment in `course_id` has `status`; returns
/// all their enrollments then.
pub async fn wait_status(
    sys: &TestSystem,
    user_id: &str,
    course_id: &str,
    status: &str,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let items = enrollments(sys, user_id).await;
        let reached = items
            .iter()
            .any(|e| e["course_id"] == course_id && e["status"] == status);
        if reached {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the enrollment never became {status}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
