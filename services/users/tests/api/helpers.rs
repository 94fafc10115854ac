//! `spawn_app()`: the real server on port 0 over a fresh database, and
//! request helpers for the tests.
//!
//! The database and the server come from `mesh::testing`: SQLite per test
//! by default, PostgreSQL per test with `TEST_DATABASE_URL` set (an admin
//! URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! `TEST_LOG=1` prints the service's logs.

use clap::Parser as _;
use http::StatusCode;
use mesh::{
    ErrorBody, Mesh, ServiceIdentity,
    testing::{RunningServer, TestDatabase, init_test_log},
};
use serde_json::Value;
use sqlx::{AnyPool, Row as _};
use users::{Config, TokenKeys, UsersClient, model::RegisterRequest};

pub use mesh::auth::Caller;

/// The secret the test server signs with; tests verify with the same.
pub const TEST_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";
/// The token lifetime the test server uses.
pub const TEST_TOKEN_TTL_SECS: u64 = 900;

pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    /// For requests the typed client cannot make (malformed bodies...).
    pub http: reqwest::Client,
    /// The service's own typed client, pointed at this server.
    pub client: UsersClient,
    /// A separate pool on the test database, for counting rows.
    pub pool: AnyPool,
    /// Keys with the server's secret.
    pub tokens: TokenKeys,
    /// Stops when the test's app is dropped.
    _server: RunningServer,
    // Last: dropped after the pool and the server.
    database: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// [`spawn_app`] with more command-line arguments (`--login-failures-burst`...).
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    init_test_log(users::NAME);
    let database = TestDatabase::create(users::NAME).await;
    let ttl = format!("{TEST_TOKEN_TTL_SECS}s");
    let args = [
        "users",
        "--port",
        "0",
        "--database-url",
        database.url(),
        "--jwt-secret",
        TEST_SECRET,
        "--token-ttl",
        &ttl,
        // No broker: registrations' events wait in the outbox, as with NATS
        // down; events are tested end to end (loadgen/tests/e2e/events.rs).
        "--nats-url",
        "nats://127.0.0.1:9",
    ];
    let config = Config::try_parse_from(args.iter().chain(extra)).expect("test config parses");
    let identity = ServiceIdentity::resolve(users::NAME, "test", &config.telemetry);
    let caller = Mesh::new(identity.clone(), &config.serve);
    let server = users::build(config, identity).await.expect("server builds");
    let server = RunningServer::start(server);
    let address = server.url();
    let client = UsersClient::new(
        caller
            .client(UsersClient::DESTINATION, &address)
            .expect("client for the test server"),
    );
    let pool = AnyPool::connect(database.url())
        .await
        .expect("test pool connects");
    TestApp {
        address,
        http: reqwest::Client::new(),
        client,
        pool,
        tokens: TokenKeys::new(TEST_SECRET.as_bytes()).expect("test secret is long enough"),
        _server: server,
        database,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST {path}` with `body` as JSON.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST {path}` with a raw body and content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A caller holding a valid token for `user_id`, as the gateway
    /// forwards it.
    pub fn caller(&self, user_id: &str) -> Caller {
        let token = self
            .tokens
            .issue(user_id, "Test User", std::time::Duration::from_secs(60))
            .expect("token issued");
        Caller::verify(&self.tokens, &token).expect("a fresh token verifies")
    }

    /// `GET {path}` with `Authorization: Bearer {token}`.
    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, body: &Value) -> reqwest::Response {
        self.post_json("/users", body).await
    }

    pub async fn login(&self, body: &Value) -> reqwest::Response {
        self.post_json("/sessions", body).await
    }

    /// The test database's URL, for connections of a test's own.
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// Whether the test database is PostgreSQL (the suite's second pass).
    pub fn on_postgres(&self) -> bool {
        self.database.url().starts_with("postgres")
    }

    /// Rows in `users`, read straight from the database.
    pub async fn user_count(&self) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await
            .expect("count users")
            .try_get("n")
            .expect("count is an integer")
    }
}

/// A valid sign-up, unique per call.
pub fn new_registration() -> RegisterRequest {
    RegisterRequest {
        email: format!("learner-{}@example.com", uuid::Uuid::new_v4().simple()),
        display_name: "Ada Learner".to_owned(),
        password: "correct horse battery".to_owned(),
    }
}

pub fn to_json(request: &RegisterRequest) -> Value {
    serde_json::to_value(request).expect("serialisable")
}

/// Asserts the status and the JSON error body's code; returns the message.
pub async fn assert_error(res: reqwest::Response, status: StatusCode, code: &str) -> String {
    assert_eq!(res.status(), status, "status");
    let body: ErrorBody = res.json().await.expect("JSON error body");
    assert_eq!(
        body.error.code, code,
        "code (message: {})",
        body.error.message
    );
    body.error.message
}
