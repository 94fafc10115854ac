//! Fixtures for the services' integration tests (feature `testing`, a
//! dev-dependency only): a database of the test's own, a server running on
//! a task, and `TEST_LOG`.
//!
//! Every service's `tests/api/helpers.rs` builds its `spawn_app()` on these
//! (zero2prod's `spawn_app`, port 0 and a fresh database), so the parts
//! that are easy to get subtly wrong, dropping a PostgreSQL database from
//! `Drop` while the server still holds connections, or stopping a server
//! so its port is really closed, are written and fixed once.
//!
//! Two variables steer them, read here rather than through `config.rs`
//! because they configure the test run, not a service:
//!
//! - `TEST_DATABASE_URL`: an admin PostgreSQL URL (e.g.
//!   `postgres://postgres@127.0.0.1:5432/postgres`). Unset or empty, every
//!   test uses a SQLite file in a temporary directory; set, every test
//!   creates a uniquely named database through it and drops it when done,
//!   so the whole suite runs against PostgreSQL.
//! - `TEST_LOG`: set, the tests print the services' logs.

use std::{net::SocketAddr, path::PathBuf, sync::Once, thread};

use sqlx::{AnyConnection, AssertSqlSafe, Connection as _, Executor as _, Row as _};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::server::Server;

/// The admin PostgreSQL URL the tests create their databases through, if
/// the run asks for PostgreSQL. Empty counts as unset, so
/// `TEST_DATABASE_URL= cargo test` is a SQLite run.
fn admin_url_from_env() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

// === impl TestDatabase ===

/// A fresh, empty database for one test, removed when this is dropped,
/// also when the test panics: the SQLite file with its temporary directory,
/// the PostgreSQL database with `DROP DATABASE`.
///
/// Keep it in the test's app struct after everything that connects to it,
/// so the pools and the server let go of it first (on PostgreSQL the drop
/// ends connections still open anyway, so a panicking test is covered).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    home: Home,
}

#[derive(Debug)]
enum Home {
    /// The directory holding the SQLite file; deleting it deletes the file.
    Sqlite(tempfile::TempDir),
    /// A database created through `admin_url`.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh database for `service`: the SQLite file `<service>.db` in a
    /// new temporary directory, or, when `TEST_DATABASE_URL` is set, a new
    /// PostgreSQL database `<service>_test_<uuid>` on that server. The
    /// prefix says whose it is if one is ever left behind.
    ///
    /// Panics when the database cannot be made: the test cannot run.
    pub async fn create(service: &str) -> Self {
        // The name is spliced into SQL (identifiers cannot be bound): only
        // lowercase letters, digits and `_` from the caller, hex from us.
        assert!(
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "a service name fit for a database name, not {service:?}"
        );
        sqlx::any::install_default_drivers();
        let Some(admin_url) = admin_url_from_env() else {
            let dir = tempfile::tempdir().expect("a temporary directory");
            return Self {
                url: format!(
                    "sqlite://{}",
                    dir.path().join(format!("{service}.db")).display()
                ),
                home: Home::Sqlite(dir),
            };
        };
        let name = format!("{service}_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .expect("TEST_DATABASE_URL connects");
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        Self {
            url: database_url(&admin_url, &name),
            home: Home::Postgres { admin_url, name },
        }
    }

    /// What the service (and the test's own pool) connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the database lives, to check after dropping it that it is gone.
    pub fn location(&self) -> Location {
        match &self.home {
            Home::Sqlite(dir) => Location::Directory(dir.path().to_owned()),
            Home::Postgres { admin_url, name } => Location::Postgres {
                admin_url: admin_url.clone(),
                name: name.clone(),
            },
        }
    }
}

impl Drop for TestDatabase {
    /// `WITH (FORCE)` (PostgreSQL 13+) ends the connections still open on
    /// the database: the server under test may not have stopped yet, and
    /// without it the drop would fail and leave the database behind.
    fn drop(&mut self) {
        let Home::Postgres { admin_url, name } = &self.home else {
            return; // The TempDir deletes the SQLite file.
        };
        if let Err(error) = drop_databases(admin_url, Doomed::Named(name.clone())) {
            eprintln!("could not drop test database {name} ({error:#}); drop it by hand");
        }
    }
}

/// Where a [`TestDatabase`] lives, kept beyond its life so a test can show
/// that dropping it, even while unwinding a panic, removed it.
#[derive(Debug, Clone)]
pub enum Location {
    /// The temporary directory of a SQLite file.
    Directory(PathBuf),
    /// A PostgreSQL database on the server `admin_url` points at.
    Postgres { admin_url: String, name: String },
}

impl Location {
    pub async fn exists(&self) -> bool {
        let (admin_url, name) = match self {
            Self::Directory(dir) => return dir.exists(),
            Self::Postgres { admin_url, name } => (admin_url, name),
        };
        sqlx::any::install_default_drivers();
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
        let _ = admin.close().await;
        found > 0
    }
}

// === impl TestDatabaseGroup ===

/// PostgreSQL databases a test has something else create, all named
/// `<prefix>_…` (the launcher makes `<prefix>_<service>` for each service
/// it starts), dropped together when this is dropped.
///
/// Keep it after whatever uses the databases (the launched system) in the
/// test's struct: fields drop in order, so the services are gone first.
#[derive(Debug)]
pub struct TestDatabaseGroup {
    admin_url: String,
    prefix: String,
}

impl TestDatabaseGroup {
    /// A fresh prefix `<label>_<uuid>` on the server `TEST_DATABASE_URL`
    /// names; `None` when it is unset (the test runs on SQLite).
    pub fn from_env(label: &str) -> Option<Self> {
        let admin_url = admin_url_from_env()?;
        Some(Self {
            admin_url,
            prefix: format!("{label}_{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// The admin URL the databases are created through.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// What the databases' names start with (then `_`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for TestDatabaseGroup {
    fn drop(&mut self) {
        let prefix = format!("{}_", self.prefix);
        if let Err(error) = drop_databases(&self.admin_url, Doomed::Prefixed(prefix.clone())) {
            eprintln!("could not drop test databases {prefix}* ({error:#}); drop them by hand");
        }
    }
}

/// Which databases [`drop_databases`] drops.
enum Doomed {
    Named(String),
    /// Every database whose name starts with this.
    Prefixed(String),
}

/// Drops databases through `admin_url`, blocking until done.
///
/// It runs from `Drop`, which cannot await and may run while the test's
/// runtime unwinds a panic: the work gets a thread with a runtime of its
/// own, and this waits for it (blocking the test's thread, which has
/// nothing else to do). `WITH (FORCE)` ends the connections of services
/// that are still running or not yet reaped.
fn drop_databases(admin_url: &str, doomed: Doomed) -> anyhow::Result<()> {
    let admin_url = admin_url.to_owned();
    let worker = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            sqlx::any::install_default_drivers();
            let mut admin = AnyConnection::connect(&admin_url).await?;
            let names = match doomed {
                Doomed::Named(name) => vec![name],
                // Filtered here rather than with LIKE, where `_` is a
                // wildcard and would match more than the prefix.
                Doomed::Prefixed(prefix) => {
                    sqlx::query("SELECT datname::text AS datname FROM pg_database")
                        .fetch_all(&mut admin)
                        .await?
                        .iter()
                        .map(|row| row.try_get::<String, _>("datname"))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .filter(|name| name.starts_with(&prefix))
                        .collect()
                }
            };
            for name in names {
                // Names are ours (checked service names, labels, hex), and
                // identifiers cannot be bound.
                admin
                    .execute(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await?;
            }
            let _ = admin.close().await;
            anyhow::Ok(())
        })
    });
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the thread dropping them panicked"))?
}

/// `postgres://u@h:5432/admin?x` → `postgres://u@h:5432/<name>?x`: the
/// same server, user and options, another database.
fn database_url(admin_url: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

// === impl RunningServer ===

/// A server serving on a task of the test's runtime until stopped.
///
/// Dropping it starts the server's graceful shutdown without waiting for
/// it, so a failing test leaves no server running; [`RunningServer::stop`]
/// also waits until the port is closed, for tests that take a dependency
/// down on purpose.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    /// Sending or dropping it stops the server.
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Starts serving `server` (bound already, usually to port 0) on a new
    /// task. Must be called within a Tokio runtime.
    pub fn start(server: Server) -> Self {
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until_stopped(async move {
            // `Err` means the sender was dropped: stop then too.
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until it has: its port is closed, and
    /// requests in flight finished or the shutdown grace ran out.
    pub async fn stop(self) {
        let Self { stop, task, .. } = self;
        drop(stop);
        task.await
            .expect("server task did not panic")
            .expect("server stopped cleanly");
    }
}

// === TEST_LOG ===

/// When `TEST_LOG` is set, prints logs at `info`, and `debug` for
/// `service` and the mesh, through the test harness's capture (so only
/// failing tests show theirs). Otherwise tests stay quiet. Once per test
/// binary; later calls do nothing.
pub fn init_test_log(service: &str) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            // `try_init`: a test binary that installed its own global
            // subscriber keeps it.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(format!("info,{service}=debug,mesh=debug"))
                .with_test_writer()
                .try_init();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_database_url_keeps_server_user_and_options() {
        assert_eq!(
            database_url(
                "postgres://app:s%40cret@db.internal:5433/postgres?sslmode=disable",
                "users_test_0f"
            ),
            "postgres://app:s%40cret@db.internal:5433/users_test_0f?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1", "courses_test_0f"),
            "postgres://postgres@127.0.0.1/courses_test_0f"
        );
    }

    #[tokio::test]
    async fn a_stopped_server_has_closed_its_port() {
        let server = Server::bind(
            [127, 0, 0, 1].into(),
            0,
            axum::Router::new(),
            Duration::from_secs(1),
        )
        .await
        .expect("bind a free port");
        let running = RunningServer::start(server);
        let addr = running.addr();
        assert_eq!(running.url(), format!("http://{addr}"));
        tokio::net::TcpStream::connect(addr)
            .await
            .expect("the server accepts while running");

        running.stop().await;

        tokio::net::TcpStream::connect(addr)
            .await
            .expect_err("nothing listens after stop()");
    }
}

/// One API route as a service's OpenAPI document must describe it.
#[derive(Debug, Clone, Copy)]
pub struct DocumentedRoute {
    pub path: &'static str,
    /// Lower case, as OpenAPI spells it (`get`, `post`).
    pub method: &'static str,
    /// Whether it needs a bearer token.
    pub secured: bool,
}

/// Asserts a service's `/openapi.json` (`doc`) is OpenAPI 3.1 titled
/// `title`, lists exactly `routes` (each tagged `tag`, with an operation
/// id and the bearer requirement when secured, 401 then documented), and
/// that every response has a JSON body schema; every 4xx/5xx one with the
/// `{"error": {"code", "message", ...}}` shape, and 500 and 503 everywhere.
pub fn assert_openapi_document(
    doc: &serde_json::Value,
    title: &str,
    tag: &str,
    routes: &[DocumentedRoute],
) {
    use serde_json::json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], title);
    let paths = doc["paths"].as_object().expect("paths");
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().map_or(0, |ops| ops.len()))
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    let component = |reference: &serde_json::Value, kind: &str| {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix(&format!("#/components/{kind}/")))
            .map(str::to_owned);
        name.map(|n| doc["components"][kind][n].clone())
    };
    for DocumentedRoute {
        path,
        method,
        secured,
    } in routes
    {
        let what = format!("{method} {path}");
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{what} is missing");
        assert_eq!(operation["tags"], json!([tag]), "{what}");
        assert!(operation["operationId"].is_string(), "{what}");
        if *secured {
            assert_eq!(operation["security"], json!([{"bearer": []}]), "{what}");
            assert!(operation["responses"]["401"].is_object(), "{what}: no 401");
        } else {
            assert!(operation.get("security").is_none(), "{what}");
        }
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let response = component(&response["$ref"], "responses").unwrap_or(response.clone());
            let schema = &response["content"]["application/json"]["schema"];
            assert!(
                schema.is_object(),
                "{what} {status} has no JSON body schema"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let body = component(&schema["$ref"], "schemas")
                    .unwrap_or_else(|| panic!("{what} {status}: error schema is not a component"));
                let error = component(&body["properties"]["error"]["$ref"], "schemas")
                    .unwrap_or_else(|| body["properties"]["error"].clone());
                for field in ["code", "message"] {
                    assert!(
                        error["properties"][field].is_object(),
                        "{what} {status}: the error body has no `{field}`"
                    );
                }
            }
        }
        for status in ["500", "503"] {
            assert!(responses.contains_key(status), "{what}: no {status}");
        }
    }
}

/// The token keys of the development secret, which test servers run with
/// unless a test sets its own.
pub fn dev_token_keys() -> crate::auth::TokenKeys {
    crate::auth::TokenKeys::new(crate::auth::DEV_JWT_SECRET.as_bytes())
        .expect("the development secret is long enough")
}

/// A valid access token for `user_id` (ten minutes, development secret),
/// for calling a service as that user.
pub fn token_for(user_id: &str) -> String {
    dev_token_keys()
        .issue(user_id, "Test User", std::time::Duration::from_secs(600))
        .expect("HS256 signs")
}

/// `user_id` as the verified caller a typed client forwards.
pub fn caller(user_id: &str) -> crate::auth::Caller {
    crate::auth::Caller::verify(&dev_token_keys(), &token_for(user_id))
        .expect("a fresh token verifies")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with the development secret whose claims are `claims`
/// as given (any JSON, so claims can be missing or mistyped):
/// for tokens [`crate::auth::Claims`] cannot express.
pub fn token_with_claims(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::auth::DEV_JWT_SECRET.as_bytes()),
    )
    .expect("HS256 signs")
}

/// A token for `user`, correctly signed, issued now and expiring in the
/// year 2200: a valid signature on an unbounded lifetime.
pub fn far_future_token(user: &str) -> String {
    let mut claims =
        crate::auth::Claims::new(user, "U", unix_now(), std::time::Duration::from_secs(600));
    claims.exp = 7_258_118_400; // 2200-01-01T00:00:00Z
    dev_token_keys().sign(&claims).expect("HS256 signs")
}

/// A token for `user`, correctly signed, valid for ten minutes, but
/// without `iat`: its lifetime cannot be checked.
pub fn token_without_iat(user: &str) -> String {
    let now = unix_now();
    token_with_claims(&serde_json::json!({
        "sub": user,
        "iss": crate::auth::token::ISSUER,
        "aud": crate::auth::token::AUDIENCE,
        "exp": now + 600,
        "name": "U",
    }))
}

/// Tokens for `user` that must not verify, each with what is wrong with
/// it: expired beyond the leeway, another audience or issuer, another
/// secret, tampered, `alg: none`, not a JWT, and correctly signed tokens
/// whose lifetime is unbounded (`exp` in 2200, no `iat`, `iat` in the
/// future).
pub fn invalid_tokens(user: &str) -> Vec<(&'static str, String)> {
    let keys = dev_token_keys();
    let valid = token_for(user);
    let mut expired = crate::auth::Claims::new(
        user,
        "U",
        unix_now() - 7200,
        std::time::Duration::from_secs(60),
    );
    expired.exp = unix_now() - 120; // beyond the 30 s leeway
    let mut audience =
        crate::auth::Claims::new(user, "U", unix_now(), std::time::Duration::from_secs(600));
    audience.aud = "someone-else".into();
    let mut issuer =
        crate::auth::Claims::new(user, "U", unix_now(), std::time::Duration::from_secs(600));
    issuer.iss = "evil".into();
    let other_secret = crate::auth::TokenKeys::new(&[7u8; 32])
        .unwrap()
        .sign(&crate::auth::Claims::new(
            user,
            "U",
            unix_now(),
            std::time::Duration::from_secs(600),
        ))
        .unwrap();
    let mut tampered = valid.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    // `alg: none` with the same claims and no signature.
    let parts: Vec<&str> = valid.split('.').collect();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    // A character of the claims changed, and these claims under another
    // user's genuine signature.
    let mut payload = parts[1].to_owned();
    let middle = payload.len() / 2;
    let flipped = if &payload[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    payload.replace_range(middle..=middle, flipped);
    // Issued an hour from now, for a normal lifetime.
    let future = crate::auth::Claims::new(
        user,
        "U",
        unix_now() + 3600,
        std::time::Duration::from_secs(600),
    );
    let someone_else = token_for("mallory");
    let their_signature = someone_else.split('.').nth(2).unwrap();
    vec![
        (
            "payload changed",
            format!("{}.{payload}.{}", parts[0], parts[2]),
        ),
        (
            "another user's signature",
            format!("{}.{}.{their_signature}", parts[0], parts[1]),
        ),
        ("expired", keys.sign(&expired).unwrap()),
        ("wrong audience", keys.sign(&audience).unwrap()),
        ("wrong issuer", keys.sign(&issuer).unwrap()),
        ("another secret", other_secret),
        ("tampered", tampered),
        ("alg none", none),
        ("not a JWT", "garbage".into()),
        ("expires in 2200", far_future_token(user)),
        ("no iat", token_without_iat(user)),
        ("issued in the future", keys.sign(&future).unwrap()),
    ]
}
