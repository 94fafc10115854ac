//! `spawn_app()`: the real courses service on port 0 over a fresh, seeded
//! database, with request helpers for the tests.
//!
//! The database and the server come from `mesh::testing`: a SQLite file per
//! test by default; with `TEST_DATABASE_URL` set to an admin PostgreSQL URL
//! (`postgres://postgres@127.0.0.1:5432/postgres`) a PostgreSQL database
//! per test, dropped when the test ends, failed tests included.
//!
//! `TEST_LOG=1` prints the service's logs.

use clap::Parser as _;
use courses::{Config, CoursesClient};
pub use mesh::testing::TestDatabase;
use mesh::{
    ErrorBody, Mesh, ServiceIdentity,
    testing::{RunningServer, init_test_log},
};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{AnyConnection, Connection as _, Row as _};

pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    /// For requests the typed client cannot make (bad query strings, ...).
    pub http: reqwest::Client,
    /// The service's own typed client, through a mesh of the test's own.
    pub client: CoursesClient,
    /// Stops when the test's app is dropped.
    _server: RunningServer,
    // Last: the server stops before its database goes.
    pub database: TestDatabase,
}

/// Courses on a fresh database, seeded and ready.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// [`spawn_app`] with more command-line arguments.
pub async fn spawn_app_with(args: &[&str]) -> TestApp {
    let database = TestDatabase::create(courses::NAME).await;
    let server = start_courses_with(database.url(), args)
        .await
        .expect("courses builds");
    let address = server.url();
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
        _server: server,
        database,
    }
}

/// Builds (migrates, seeds, binds) a courses instance on `database_url` and
/// serves it until the returned server is stopped or dropped. Tests that
/// start several instances on one database call this directly.
pub async fn start_courses(database_url: &str) -> anyhow::Result<RunningServer> {
    start_courses_with(database_url, &[]).await
}

async fn start_courses_with(database_url: &str, args: &[&str]) -> anyhow::Result<RunningServer> {
    init_test_log(courses::NAME);
    let config = Config::try_parse_from(
        ["courses", "--port", "0", "--database-url", database_url]
            .into_iter()
            .chain(args.iter().copied()),
    )?;
    let identity = ServiceIdentity::resolve(courses::NAME, "test", &config.telemetry);
    let server = courses::build(config, identity).await?;
    Ok(RunningServer::start(server))
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
        row_counts(self.database.url()).await
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

/// Rows in the catalog's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub courses: i64,
    pub course_tags: i64,
    pub lessons: i64,
}

/// Rows in the catalog's tables of the database at `database_url`.
pub async fn row_counts(database_url: &str) -> RowCounts {
    let mut conn = AnyConnection::connect(database_url)
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
