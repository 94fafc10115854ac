//! `spawn_app()`: a real payments server on a free port with its own fresh
//! database, and typed helpers to drive it and inspect what it stored.
//!
//! The database and the server come from `mesh::testing`: by default a
//! SQLite file in a temporary directory per test; with `TEST_DATABASE_URL`
//! set to a PostgreSQL URL (any database the user may connect to, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) the whole suite runs
//! against PostgreSQL, each test in its own database `payments_test_<uuid>`,
//! dropped at the end.
//!
//! `TEST_LOG=1` prints the service's logs.

use std::time::Duration;

use axum::response::IntoResponse as _;
use clap::Parser as _;
use mesh::{
    Mesh, ServeConfig, ServiceIdentity,
    testing::{RunningServer, TestDatabase, init_test_log},
};
use payments::{Config, PaymentsClient};
use serde_json::{Value, json};

pub use mesh::testing::{caller, token_for};
use sqlx::{AnyPool, Row as _, any::AnyPoolOptions};

pub const PAYMENTS: &str = "/payments";

/// The price the stand-in catalog gives every course but [`CHEAP_COURSE`]
/// and the free ones.
pub const PRICE_CENTS: i64 = 4900;
/// A course at [`CHEAP_PRICE_CENTS`].
pub const CHEAP_COURSE: &str = "c0042";
pub const CHEAP_PRICE_CENTS: i64 = 1999;
/// A free course: `c9000` to `c9999` are free.
pub const FREE_COURSE: &str = "c9000";

/// A stand-in for the courses service, serving `GET /courses/{id}` as it
/// does, with prices the tests know: every `cNNNN` costs 49.00 USD, but
/// `c0042` (19.99 USD) and `c9000`–`c9999` (free); anything else is 404.
/// Payments prices every charge from it.
pub async fn spawn_catalog() -> RunningServer {
    use axum::{extract::Path, routing::get};
    let app = axum::Router::new().route(
        "/courses/{course_id}",
        get(|Path(id): Path<String>| async move {
            let number = id
                .strip_prefix('c')
                .filter(|n| n.len() == 4)
                .and_then(|n| n.parse::<u32>().ok());
            let Some(number) = number else {
                return mesh::error_response(
                    http::StatusCode::NOT_FOUND,
                    "not_found",
                    "course not found",
                );
            };
            let price = match number {
                42 => CHEAP_PRICE_CENTS,
                9000.. => 0,
                _ => PRICE_CENTS,
            };
            axum::Json(json!({
                "id": id, "slug": id, "title": "A course", "summary": "", "instructor": "",
                "level": "beginner", "tags": [], "price_cents": price, "currency": "USD",
                "lesson_count": 3, "popularity": 1.0, "lessons": [],
            }))
            .into_response()
        }),
    );
    let server = mesh::server::Server::bind([127, 0, 0, 1].into(), 0, app, Duration::from_secs(1))
        .await
        .expect("bind a free port");
    RunningServer::start(server)
}

/// A running payments server and a pool on its database.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub db: AnyPool,
    /// The stand-in catalog payments prices charges from; stop it to see
    /// payments without courses.
    pub catalog: Option<RunningServer>,
    /// Stops when the test's app is dropped.
    _server: RunningServer,
    // Last: the database outlives the pool and the server using it.
    _database: TestDatabase,
}

/// A server with the test defaults: a provider that answers in about a
/// millisecond and never declines or fails.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server with the test defaults changed by `configure` (provider
/// latency, decline and error rates, pool size, idempotency wait).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_log(payments::NAME);
    let database = TestDatabase::create(payments::NAME).await;
    let catalog = spawn_catalog().await;
    // Every setting explicit, so variables in the environment (PORT,
    // DATABASE_URL, PROVIDER_*) cannot leak into a test.
    let mut config = Config::try_parse_from([
        "payments",
        "--host=127.0.0.1",
        "--port=0",
        &format!("--database-url={}", database.url()),
        "--idempotency-wait=10s",
        "--provider-latency-median=1ms",
        "--provider-latency-p99=2ms",
        "--provider-decline-rate=0",
        "--provider-error-rate=0",
        "--provider-concurrency=16",
        &format!("--courses-url={}", catalog.url()),
        "--max-body-bytes=65536",
        // No broker: these tests are about the HTTP contract; the events
        // wait in the outbox, as with NATS down. The events themselves are
        // tested end to end (loadgen/tests/e2e/events.rs).
        "--nats-url=nats://127.0.0.1:9",
    ])
    .expect("test configuration parses");
    configure(&mut config);
    let server = payments::build(config, identity())
        .await
        .expect("payments starts");
    let server = RunningServer::start(server);
    // `build` installed the Any drivers and created the schema.
    let db = AnyPoolOptions::new()
        .max_connections(2)
        .connect(database.url())
        .await
        .expect("test pool connects");
    TestApp {
        address: server.url(),
        http: reqwest::Client::new(),
        db,
        catalog: Some(catalog),
        _server: server,
        _database: database,
    }
}

fn identity() -> ServiceIdentity {
    ServiceIdentity {
        name: payments::NAME.into(),
        version: "test",
        instance_id: uuid::Uuid::new_v4().to_string().into(),
    }
}

/// A valid charge body: `c0001` at its price.
pub fn charge_body(user_id: &str) -> Value {
    charge_for(user_id, "c0001")
}

/// A valid charge body for `course_id` (`cNNNN`, not free) at its price.
pub fn charge_for(user_id: &str, course_id: &str) -> Value {
    let price = if course_id == CHEAP_COURSE {
        CHEAP_PRICE_CENTS
    } else {
        PRICE_CENTS
    };
    json!({
        "user_id": user_id,
        "course_id": course_id,
        "amount_cents": price,
        "currency": "USD",
    })
}

/// The `n`th paid course of the stand-in catalog (`c0100` + n).
pub fn course(n: usize) -> String {
    format!("c{:04}", 100 + n)
}

/// The user a charge body names, or `u1` when it names none or no user
/// could have that id (bad input is about the body, not about who sends
/// it).
fn payer(body: &Value) -> String {
    match body["user_id"].as_str() {
        Some(id) if id.len() <= 64 => id.to_owned(),
        _ => "u1".to_owned(),
    }
}

/// A fresh key, as a client would make one per purchase.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Provider calls so far, from the `/metrics` counter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProviderCalls {
    pub approved: u64,
    pub declined: u64,
    pub error: u64,
}

impl ProviderCalls {
    pub fn total(&self) -> u64 {
        self.approved + self.declined + self.error
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST /payments` with a JSON body and, if given, an Idempotency-Key,
    /// as the user the body names.
    pub async fn charge(&self, key: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(PAYMENTS))
            .bearer_auth(token_for(&payer(body)))
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("request is sent")
    }

    /// `POST /payments` with a raw body and content type, for bad input.
    pub async fn charge_raw(
        &self,
        key: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let body: reqwest::Body = body.into();
        let user = body
            .as_bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .map_or_else(|| "u1".to_owned(), |v| payer(&v));
        let mut request = self
            .http
            .post(self.url(PAYMENTS))
            .bearer_auth(token_for(&user))
            .body(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request.send().await.expect("request is sent")
    }

    /// `GET path` as the owner of what it names: the user in
    /// `/users/{user_id}/...`, the payer of `/payments/{id}`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let owner = self.owner_of(path).await;
        self.http
            .get(self.url(path))
            .bearer_auth(token_for(&owner))
            .send()
            .await
            .expect("request is sent")
    }

    /// Whose data `path` names (`u1` when it names none that exists).
    pub async fn owner_of(&self, path: &str) -> String {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["users", user, ..] => (*user).to_owned(),
            ["payments", id, ..] => sqlx::query("SELECT user_id FROM payments WHERE id = $1")
                .bind(*id)
                .fetch_optional(&self.db)
                .await
                .expect("owner query runs")
                .map_or_else(
                    || "u1".to_owned(),
                    |row| row.try_get("user_id").expect("user_id"),
                ),
            _ => "u1".to_owned(),
        }
    }

    /// `POST /payments/{id}/refund` as the payment's owner.
    pub async fn refund(&self, id: &str) -> reqwest::Response {
        let path = format!("/payments/{id}/refund");
        let owner = self.owner_of(&path).await;
        self.http
            .post(self.url(&path))
            .bearer_auth(token_for(&owner))
            .send()
            .await
            .expect("request is sent")
    }

    /// Rows in `table` (`payments`, `idempotency_keys` or `outbox`).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = match table {
            "payments" => "SELECT COUNT(*) AS n FROM payments",
            "idempotency_keys" => "SELECT COUNT(*) AS n FROM idempotency_keys",
            "outbox" => "SELECT COUNT(*) AS n FROM outbox",
            other => panic!("no table {other}"),
        };
        sqlx::query(sql)
            .fetch_one(&self.db)
            .await
            .expect("count query runs")
            .try_get("n")
            .expect("count is an integer")
    }

    /// Rows in both tables, to assert a request changed nothing.
    pub async fn snapshot(&self) -> (i64, i64) {
        (
            self.count("payments").await,
            self.count("idempotency_keys").await,
        )
    }

    /// Status and decline reason of the stored payment `id`.
    pub async fn stored(&self, id: &str) -> (String, Option<String>) {
        let row = sqlx::query("SELECT status, decline_reason FROM payments WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db)
            .await
            .expect("the payment is stored");
        (
            row.try_get("status").expect("status"),
            row.try_get("decline_reason").expect("decline_reason"),
        )
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn provider_calls(&self) -> ProviderCalls {
        let text = self.metrics().await;
        let read = |outcome: &str| {
            let prefix = format!("payments_provider_requests_total{{outcome=\"{outcome}\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(&prefix))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {prefix} sample in /metrics:\n{text}"))
        };
        ProviderCalls {
            approved: read("approved"),
            declined: read("declined"),
            error: read("error"),
        }
    }

    /// The typed client other services use, pointed at this server.
    pub fn client(&self) -> PaymentsClient {
        let serve = ServeConfig {
            host: [127, 0, 0, 1].into(),
            shutdown_grace: Duration::from_secs(1),
            max_body_bytes: 64 * 1024,
            concurrency_limit: 0,
            admin_token: None,
            ..ServeConfig::default()
        };
        let mesh = Mesh::new(identity(), &serve);
        PaymentsClient::new(
            mesh.client(PaymentsClient::DESTINATION, &self.address)
                .expect("client for the test server"),
        )
    }
}

/// Asserts `response` is `status` with error `code`; returns the body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a message in {body}"
    );
    body
}
