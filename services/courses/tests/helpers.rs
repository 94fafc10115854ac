//! `spawn_app()`: the real courses service on port 0 over a fresh, seeded
//! database, with request helpers for the tests.
//!
//! Every test gets its own database: by default a SQLite file in a temporary
//! directory. With `TEST_DATABASE_URL` set to an admin PostgreSQL URL
//! (`postgres://postgres@127.0.0.1:5432/postgres`) the whole suite runs
//! against PostgreSQL instead: each test creates a uniquely named database
//! through that URL and drops it when the test ends, failed tests included.
//!
//! `TEST_LOG=1` prints the service's logs.

// Each test file compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Once;

use clap::Parser as _;
use courses::{Config, CoursesClient};
use mesh::{ErrorBody, Mesh, ServiceIdentity};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{AnyConnection, AssertSqlSafe, Connection as _, Executor as _, Row as _};

pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    /// For requests the typed client cannot make (bad query strings, ...).
    pub http: reqwest::Client,
    /// The service's own typed client, through a mesh of the test's own.
    pub client: CoursesClient,
    pub database: TestDatabase,
}

/// Courses on a fresh database, seeded and ready.
pub async fn spawn_app() -> TestApp {
    let database = TestDatabase::create().await;
    let address = start_courses(&database.url).await.expect("courses builds");
    let serve = Config::try_parse_from(["courses"])
        .expect("default config parses")
        .serve;
    let caller = ServiceIdentity {
        name: "courses-tests".into(),
        version: "test",
        instance_id: uuid::Uuid::new_v4().to_string().into(),
    };
    let client = CoursesClient::new(
        Mesh::new(caller, &serve)
            .client(CoursesClient::DESTINATION, &address)
            .expect("the test server's URL is valid"),
    );
    TestApp {
        address,
        http: reqwest::Client::new(),
        client,
        database,
    }
}

/// Builds (migrates, seeds, binds) a courses instance on `database_url` and
/// serves it until the test's runtime ends; returns its base URL. Tests that
/// start several instances on one database call this directly.
pub async fn start_courses(database_url: &str) -> anyhow::Result<String> {
    init_test_log();
    let config =
        Config::try_parse_from(["courses", "--port", "0", "--database-url", database_url])?;
    let identity = ServiceIdentity::resolve(courses::NAME, "test", &config.telemetry);
    let server = courses::build(config, identity).await?;
    let address = format!("http://{}", server.local_addr());
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    Ok(address)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches courses")
    }

    /// `GET {path}`, asserting 200 and decoding the JSON body.
    pub async fn get_ok<T: DeserializeOwned>(&self, path: &str) -> T {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("a JSON body of the expected shape")
    }

    pub async fn row_counts(&self) -> RowCounts {
        self.database.row_counts().await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let res = self.get("/metrics").await;
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.expect("metrics text")
    }
}

/// Asserts the status and that the body is exactly
/// `{"error": {"code": <code>, "message": <string>}}`; returns the message.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(res.status(), status, "status of {}", res.url());
    let body: Value = res.json().await.expect("a JSON error body");
    let detail = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"))
        .and_then(Value::as_object)
        .filter(|o| o.len() == 2 && o["message"].is_string())
        .unwrap_or_else(|| panic!("not an error body: {body}"));
    assert_eq!(detail["code"], code, "error code in {body}");
    let body: ErrorBody = serde_json::from_value(body).expect("an ErrorBody");
    body.error.message
}

/// Where a [`TestDatabase`] lives.
pub enum Location {
    Directory(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Location {
    pub async fn exists(&self) -> bool {
        let (admin_url, name) = match self {
            Self::Directory(dir) => return dir.exists(),
            Self::Postgres { admin_url, name } => (admin_url, name),
        };
        let mut admin = AnyConnection::connect(admin_url)
            .await
            .expect("TEST_DATABASE_URL connects");
        // `datname` is of type `name`, which the Any driver cannot decode.
        let found: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM pg_database WHERE datname::text = $1")
                .bind(name)
                .fetch_one(&mut admin)
                .await
                .expect("query pg_database")
                .try_get("n")
                .expect("a count");
        found > 0
    }
}

/// Rows in the catalog's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub courses: i64,
    pub course_tags: i64,
    pub lessons: i64,
}

/// The test's own database, removed when it is dropped.
pub struct TestDatabase {
    /// What the service connects to.
    pub url: String,
    kind: DatabaseKind,
}

enum DatabaseKind {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh, empty database: PostgreSQL when `TEST_DATABASE_URL` is set.
    pub async fn create() -> Self {
        sqlx::any::install_default_drivers();
        let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            let dir = tempfile::tempdir().expect("a temporary directory");
            return Self {
                url: format!("sqlite://{}/courses.db", dir.path().display()),
                kind: DatabaseKind::Sqlite(dir),
            };
        };
        // The name is ours (hex from a UUID), never input: safe to splice.
        let name = format!("courses_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .expect("TEST_DATABASE_URL connects");
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create a test database");
        let mut url = reqwest::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            url: url.to_string(),
            kind: DatabaseKind::Postgres { admin_url, name },
        }
    }

    /// Where the database lives, to check after it is dropped.
    pub fn location(&self) -> Location {
        match &self.kind {
            DatabaseKind::Sqlite(dir) => Location::Directory(dir.path().to_owned()),
            DatabaseKind::Postgres { admin_url, name } => Location::Postgres {
                admin_url: admin_url.clone(),
                name: name.clone(),
            },
        }
    }

    pub async fn row_counts(&self) -> RowCounts {
        let mut conn = AnyConnection::connect(&self.url)
            .await
            .expect("connect to the test database");
        let mut count = async |sql: &'static str| -> i64 {
            sqlx::query(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count rows")
                .try_get("n")
                .expect("a BIGINT count")
        };
        RowCounts {
            courses: count("SELECT COUNT(*) AS n FROM courses").await,
            course_tags: count("SELECT COUNT(*) AS n FROM course_tags").await,
            lessons: count("SELECT COUNT(*) AS n FROM lessons").await,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let DatabaseKind::Postgres { admin_url, name } = &self.kind else {
            return; // The TempDir deletes the SQLite file.
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop cannot await, and it may run while the test's runtime unwinds
        // a panic: a thread with a runtime of its own does the work. FORCE
        // (PostgreSQL 13+) ends the connections the still-running service
        // holds.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let mut admin = AnyConnection::connect(&admin_url).await?;
                    admin
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await?;
                    anyhow::Ok(())
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database ({dropped:?}); drop courses_test_* by hand");
        }
    }
}

fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info,courses=debug,mesh=debug")
                .with_test_writer()
                .init();
        }
    });
}
