//! Spawns the progress service for a test, beside a real courses service,
//! each on port 0 with a fresh database, and drives it over HTTP.
//!
//! Progress's database and both servers come from `mesh::testing`: a fresh
//! SQLite file per test, or, when `TEST_DATABASE_URL` is set (an admin
//! `postgres://` URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`),
//! a fresh PostgreSQL database per test, created through that URL and
//! dropped when the test's [`TestApp`] is dropped. So the whole suite runs
//! against PostgreSQL with
//!
//! ```sh
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p progress
//! ```
//!
//! Courses always runs on SQLite: it is the dependency, not what is tested.
//!
//! `TEST_LOG=1` prints the services' logs.

pub use mesh::testing::{caller, token_for};
use mesh::{
    ErrorBody, Mesh, ServiceIdentity,
    testing::{RunningServer, TestDatabase, init_test_log},
};
use progress::ProgressClient;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::{AnyPool, Row as _};
use tempfile::TempDir;

/// A paid course of the seeded catalog (49.99 USD... whatever it costs:
/// tests that need its price ask courses).
pub const PAID_COURSE: &str = "c0001";

/// Starts a real courses service with its seeded catalog on port 0.
pub async fn spawn_courses(dir: &TempDir) -> RunningServer {
    let database_url = format!("sqlite://{}/courses.db", dir.path().display());
    let config = <courses::Config as clap::Parser>::parse_from([
        "courses",
        "--port",
        "0",
        "--database-url",
        &database_url,
        // A quick stop for the tests that take courses down mid-test.
        "--shutdown-grace",
        "1s",
    ]);
    let identity = ServiceIdentity::resolve(courses::NAME, "test", &config.telemetry);
    let server = courses::build(config, identity)
        .await
        .expect("courses service builds");
    RunningServer::start(server)
}

/// A stand-in for courses that answers every request with a 500.
pub async fn spawn_failing_courses() -> RunningServer {
    let app = axum::Router::new().fallback(|| async {
        mesh::error_response(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    });
    let server = mesh::server::Server::bind(
        [127, 0, 0, 1].into(),
        0,
        app,
        std::time::Duration::from_secs(1),
    )
    .await
    .expect("bind a free port");
    RunningServer::start(server)
}

/// The URL of a port nothing listens on: bound for a moment, then closed.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    format!("http://{addr}")
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>` of progress.
    pub address: String,
    pub http: reqwest::Client,
    /// Progress's own database, for asserting on rows.
    pub db: AnyPool,
    /// The typed client, through a mesh of its own (as the gateway would).
    pub client: ProgressClient,
    /// The courses service progress talks to, when the test started one.
    pub courses: Option<RunningServer>,
    /// The NATS server and events prefix, when progress was started with
    /// a real broker ([`spawn_app_with_events`]).
    pub events: Option<Events>,
    _progress: RunningServer,
    // Dropped last: the services above must stop before their files and
    // databases go.
    database: TestDatabase,
    /// Courses' SQLite file.
    _dir: TempDir,
}

/// Progress beside a real courses service.
pub async fn spawn_app() -> TestApp {
    let dir = TempDir::new().expect("create a temporary directory");
    let courses = spawn_courses(&dir).await;
    let courses_url = courses.url();
    spawn_with(dir, Some(courses), courses_url, None).await
}

/// Progress pointed at `courses_url` (a closed port, a failing stub...).
pub async fn spawn_app_with_courses_at(courses_url: String) -> TestApp {
    let dir = TempDir::new().expect("create a temporary directory");
    spawn_with(dir, None, courses_url, None).await
}

/// The broker a test's progress consumes from: the real NATS server
/// (`NATS_URL`, default 127.0.0.1:4222, JetStream on) under a prefix of
/// the test's own, so tests side by side never see each other's events.
#[derive(Debug, Clone)]
pub struct Events {
    pub nats_url: String,
    pub prefix: String,
}

impl Events {
    fn fresh() -> Self {
        Self {
            nats_url: std::env::var("NATS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
            prefix: format!(
                "progress-test-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
        }
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(&self.nats_url)
            .await
            .expect("NATS is reachable (CI starts nats-server with JetStream)");
        async_nats::jetstream::new(client)
    }

    /// Publishes `data` as payments would: in the event envelope, with its
    /// id as `Nats-Msg-Id`, once progress's consumer has made the stream.
    /// Returns the event id.
    pub async fn publish(&self, event_type: &str, source: &str, data: Value) -> String {
        let js = self.jetstream().await;
        let stream = mesh::events::stream_names(&self.prefix)[0].clone();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while js.get_stream(&stream).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "progress's consumers never created {stream}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let id = uuid::Uuid::now_v7().to_string();
        let envelope = serde_json::json!({
            "id": id,
            "type": event_type,
            "source": source,
            "occurred_at": chrono::Utc::now(),
            "schema_version": 1,
            "data": data,
        });
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        js.publish_with_headers(
            format!("{}.events.{event_type}", self.prefix),
            headers,
            envelope.to_string().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("JetStream stores the event");
        id
    }

    /// Deletes the test's streams.
    pub async fn delete(&self) {
        mesh::events::delete_streams(&self.nats_url, &self.prefix)
            .await
            .expect("delete the test's streams");
    }
}

/// The data of a `payment.captured` (`at` = "captured_at") or
/// `payment.refunded` ("refunded_at") event, at the course's catalog price.
pub async fn payment_event(
    app: &TestApp,
    payment_id: &str,
    user_id: &str,
    course_id: &str,
    at: &str,
) -> Value {
    let courses = app.courses.as_ref().expect("the test started courses");
    let course: Value = reqwest::get(format!("{}/courses/{course_id}", courses.url()))
        .await
        .expect("courses answers")
        .json()
        .await
        .expect("a course");
    serde_json::json!({
        "payment_id": payment_id,
        "user_id": user_id,
        "course_id": course_id,
        "amount_cents": course["price_cents"],
        "currency": course["currency"],
        at: chrono::Utc::now(),
    })
}

/// Progress beside a real courses service, consuming from the real NATS
/// server under a prefix of its own.
pub async fn spawn_app_with_events() -> TestApp {
    let dir = TempDir::new().expect("create a temporary directory");
    let courses = spawn_courses(&dir).await;
    let courses_url = courses.url();
    spawn_with(dir, Some(courses), courses_url, Some(Events::fresh())).await
}

async fn spawn_with(
    dir: TempDir,
    courses: Option<RunningServer>,
    courses_url: String,
    events: Option<Events>,
) -> TestApp {
    init_test_log(progress::NAME);
    let database = TestDatabase::create(progress::NAME).await;
    // Without `events`, no broker: the consumers wait, as with NATS down;
    // events are tested end to end in loadgen/tests/e2e/events.rs.
    let (nats_url, prefix) = match &events {
        Some(events) => (events.nats_url.as_str(), events.prefix.as_str()),
        None => ("nats://127.0.0.1:9", "learnsphere"),
    };
    let config = <progress::Config as clap::Parser>::parse_from([
        "progress",
        "--port",
        "0",
        "--database-url",
        database.url(),
        "--courses-url",
        &courses_url,
        "--shutdown-grace",
        "1s",
        "--nats-url",
        nats_url,
        "--events-prefix",
        prefix,
    ]);
    let identity = ServiceIdentity::resolve(progress::NAME, "test", &config.telemetry);
    let serve = config.serve.clone();
    let server = progress::build(config, identity)
        .await
        .expect("progress service builds");
    let progress = RunningServer::start(server);
    let address = progress.url();

    let db = AnyPool::connect(database.url())
        .await
        .expect("connect to progress's database");
    let caller = ServiceIdentity {
        name: "progress-tests".into(),
        version: "test",
        instance_id: uuid::Uuid::new_v4().to_string().into(),
    };
    let mesh = Mesh::new(caller, &serve);
    let client = ProgressClient::new(
        mesh.client(ProgressClient::DESTINATION, &address)
            .expect("progress URL is valid"),
    );
    TestApp {
        address,
        http: reqwest::Client::new(),
        db,
        client,
        courses,
        events,
        _progress: progress,
        database,
        _dir: dir,
    }
}

/// Rows in progress's tables, to show a rejected request changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub enrollments: i64,
    pub lesson_completions: i64,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Progress's database URL (a test may open its own connections).
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// Whether progress's database is PostgreSQL (the suite's second pass).
    pub fn on_postgres(&self) -> bool {
        self.database.url().starts_with("postgres")
    }

    pub async fn row_counts(&self) -> RowCounts {
        RowCounts {
            enrollments: self.count("SELECT COUNT(*) AS n FROM enrollments").await,
            lesson_completions: self
                .count("SELECT COUNT(*) AS n FROM lesson_completions")
                .await,
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query(sql)
            .fetch_one(&self.db)
            .await
            .expect("count rows")
            .try_get("n")
            .expect("count is a BIGINT")
    }

    /// Stops the courses service this app talks to.
    pub async fn stop_courses(&mut self) {
        self.courses
            .take()
            .expect("the test started courses")
            .stop()
            .await;
    }

    /// `POST /enrollments` with a JSON body, as the user it names.
    pub async fn post_enrollment(&self, body: &Value) -> Response {
        let user = body["user_id"].as_str().unwrap_or("u1");
        self.http
            .post(self.url("/enrollments"))
            .bearer_auth(token_as(user))
            .json(body)
            .send()
            .await
            .expect("request reaches progress")
    }

    /// `POST /enrollments` with a raw body and an optional content type.
    pub async fn post_enrollment_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Response {
        let body: reqwest::Body = body.into();
        let user = body
            .as_bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .and_then(|v| v["user_id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "u1".to_owned());
        let mut request = self
            .http
            .post(self.url("/enrollments"))
            .bearer_auth(token_as(&user))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        request.send().await.expect("request reaches progress")
    }

    pub async fn enroll(&self, user_id: &str, course_id: &str) -> Response {
        self.post_enrollment(&serde_json::json!({"user_id": user_id, "course_id": course_id}))
            .await
    }

    /// Enrolls and returns the enrollment, failing the test unless it is new.
    pub async fn enroll_ok(&self, user_id: &str, course_id: &str) -> Value {
        let res = self.enroll(user_id, course_id).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.expect("enrollment JSON")
    }

    pub async fn enrollments(&self, user_id: &str) -> Response {
        self.http
            .get(self.url(&format!("/users/{}/enrollments", seg(user_id))))
            .bearer_auth(token_as(user_id))
            .send()
            .await
            .expect("request reaches progress")
    }

    pub async fn complete(&self, user_id: &str, course_id: &str, lesson_id: &str) -> Response {
        self.http
            .post(self.url(&format!(
                "/users/{}/courses/{}/lessons/{}/complete",
                seg(user_id),
                seg(course_id),
                seg(lesson_id)
            )))
            .bearer_auth(token_as(user_id))
            .send()
            .await
            .expect("request reaches progress")
    }

    pub async fn progress(&self, user_id: &str, course_id: &str) -> Response {
        self.http
            .get(self.url(&format!(
                "/users/{}/courses/{}/progress",
                seg(user_id),
                seg(course_id)
            )))
            .bearer_auth(token_as(user_id))
            .send()
            .await
            .expect("request reaches progress")
    }
}

/// A token for `user_id`, or for `u1` when no user could have that id
/// (bad input is about the request, not about who sends it; a token for a
/// huge id would only trip the header limit).
fn token_as(user_id: &str) -> String {
    if user_id.len() <= 64 {
        token_for(user_id)
    } else {
        token_for("u1")
    }
}

fn seg(segment: &str) -> String {
    mesh::outbound::encode_path_segment(segment)
}

/// Asserts the status and the JSON error code; returns the message.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(res.status(), status, "status of the error response");
    let body: ErrorBody = res.json().await.expect("a JSON error body");
    assert_eq!(body.error.code, code, "error code ({})", body.error.message);
    body.error.message
}

/// `percent_complete` as the service computes it: one decimal.
pub fn expected_percent(completed: i64, lesson_count: i64) -> f64 {
    (completed as f64 * 1000.0 / lesson_count as f64).round() / 10.0
}
