//! `spawn_app()`: the real server on port 0 over a fresh database, and
//! request helpers for the tests.
//!
//! Every test gets its own database. SQLite by default: a file in a
//! temporary directory, deleted with it. Set `TEST_DATABASE_URL` to a
//! PostgreSQL URL (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and
//! the whole suite runs against PostgreSQL instead: each test creates a
//! uniquely named database through that URL and drops it at the end.
//!
//! `TEST_LOG=1` prints the service's logs.
// Each test file includes this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Once;

use clap::Parser as _;
use http::StatusCode;
use mesh::{ErrorBody, Mesh, ServiceIdentity};
use serde_json::Value;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection as _, Row as _};
use users::{Config, TokenKeys, UsersClient, model::RegisterRequest};

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
    // Last: dropped after the pool.
    database: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    init_test_log();
    sqlx::any::install_default_drivers();
    let database = TestDatabase::create().await;
    let ttl = format!("{TEST_TOKEN_TTL_SECS}s");
    let config = Config::try_parse_from([
        "users",
        "--port",
        "0",
        "--database-url",
        &database.url,
        "--jwt-secret",
        TEST_SECRET,
        "--token-ttl",
        &ttl,
    ])
    .expect("test config parses");
    let identity = ServiceIdentity::resolve(users::NAME, "test", &config.telemetry);
    let caller = Mesh::new(identity.clone(), &config.serve);
    let server = users::build(config, identity).await.expect("server builds");
    let address = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    let client = UsersClient::new(
        caller
            .client(UsersClient::DESTINATION, &address)
            .expect("client for the test server"),
    );
    let pool = AnyPool::connect(&database.url)
        .await
        .expect("test pool connects");
    TestApp {
        address,
        http: reqwest::Client::new(),
        client,
        pool,
        tokens: TokenKeys::new(TEST_SECRET.as_bytes()).expect("test secret is long enough"),
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

fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info,users=debug,mesh=debug")
                .with_test_writer()
                .init();
        }
    });
}

/// The test's own database, removed when the test ends.
struct TestDatabase {
    url: String,
    kind: DatabaseKind,
}

enum DatabaseKind {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    async fn create() -> Self {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => Self::postgres(admin_url).await,
            _ => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}/users.db", dir.path().display());
                Self {
                    url,
                    kind: DatabaseKind::Sqlite(dir),
                }
            }
        }
    }

    async fn postgres(admin_url: String) -> Self {
        // Names come from a UUID, never from input, so splicing is safe.
        let name = format!("users_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .expect("TEST_DATABASE_URL connects");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let (base, query) = match admin_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (admin_url.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        Self {
            url: format!("{server}/{name}{query}"),
            kind: DatabaseKind::Postgres { admin_url, name },
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let DatabaseKind::Postgres { admin_url, name } = &self.kind else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot block on async
        // work: a thread with its own runtime does. `WITH (FORCE)` (PG 13+)
        // ends the server's connections, which outlive the test body.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = AnyConnection::connect(&admin_url).await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database; drop users_test_* by hand");
        }
    }
}
