//! The service database on a fresh SQLite file: connecting and migrating,
//! every operation timed and traced, readiness, and what the launcher
//! prints about the URL.

use std::sync::Arc;

use axum::Router;
use mesh::{Db, Mesh, Metrics, Op, Readiness, db::describe_url};
use opentelemetry::trace::{SpanKind, Status};
use serde_json::json;
use sqlx::{Row as _, migrate::Migrator};

use crate::helpers::{
    Exposition, Telemetry, body_json, call, get, identity, serve_config, str_attr,
};

const COUNT: &str = "db_client_operation_duration_seconds_count";

const INSERT: Op = Op::new("INSERT", "items", "INSERT INTO items (name) VALUES ($1)");
const SELECT: Op = Op::new("SELECT", "items", "SELECT id FROM items WHERE name = $1");

struct TestDb {
    db: Db,
    metrics: Arc<Metrics>,
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn connect() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("1_items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    )
    .unwrap();
    let migrator = Migrator::new(migrations.as_path()).await.unwrap();
    // A directory that does not exist yet: the first start creates it.
    let file = dir.path().join("data").join("items.db");
    let metrics = Arc::new(Metrics::new(&identity("items")));
    let url = format!("sqlite://{}", file.display());
    let db = Db::connect(&url, &migrator, metrics.clone())
        .await
        .expect("connects and migrates");
    TestDb {
        db,
        metrics,
        file,
        _dir: dir,
    }
}

async fn insert(db: &Db, name: &str) -> Result<(), sqlx::Error> {
    db.run(
        INSERT,
        sqlx::query(INSERT.sql)
            .bind(name.to_owned())
            .execute(db.pool()),
    )
    .await
    .map(drop)
}

fn operations(metrics: &Metrics, operation: &str, outcome: &str) -> Option<f64> {
    Exposition::parse(&metrics.encode_openmetrics()).value(
        COUNT,
        &[
            ("service", "items"),
            ("system", "sqlite"),
            ("operation", operation),
            ("collection", "items"),
            ("outcome", outcome),
        ],
    )
}

#[tokio::test]
async fn connect_creates_the_file_and_applies_the_migrations() {
    let t = connect().await;

    assert!(t.file.is_file(), "{} created", t.file.display());
    assert_eq!(t.db.system(), "sqlite");
    assert!(t.db.ping().await);
    let tables: Vec<String> =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'items'")
            .fetch_all(t.db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
    assert_eq!(tables, ["items"]);
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The file holds what the service keeps (password hashes, payments):
/// its owner's only, and so are the WAL and shared-memory files SQLite
/// makes beside it (it gives them the database file's mode).
#[tokio::test]
async fn the_sqlite_file_and_its_wal_are_readable_by_their_owner_only() {
    let t = connect().await;
    insert(&t.db, "mug").await.unwrap();
    let wal = t.file.with_extension("db-wal");
    let shm = t.file.with_extension("db-shm");
    for path in [&t.file, &wal, &shm] {
        assert_eq!(mode(path), 0o600, "{}: {:o}", path.display(), mode(path));
    }
}

/// A file made before (or copied in) readable by others is made private
/// on the next start.
#[tokio::test]
async fn an_existing_sqlite_file_readable_by_others_is_made_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let first = connect().await;
    let file = first.file.clone();
    let dir = first._dir;
    first.db.pool().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let migrator = Migrator::new(dir.path().join("migrations").as_path())
        .await
        .unwrap();
    let db = Db::connect(
        &format!("sqlite://{}", file.display()),
        &migrator,
        Arc::new(Metrics::new(&identity("items"))),
    )
    .await
    .unwrap();
    insert(&db, "plate").await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        assert_eq!(mode(&path), 0o600, "{}: {:o}", path.display(), mode(&path));
    }
}

#[tokio::test]
async fn every_operation_is_counted_by_operation_table_and_outcome() {
    let telemetry = Telemetry::install();
    let t = connect().await;

    insert(&t.db, "mug").await.expect("first insert");
    insert(&t.db, "plate").await.expect("second insert");
    let duplicate = insert(&t.db, "mug").await.expect_err("names are unique");
    // "No such row" is an answer, not a failure of the database.
    let missing =
        t.db.run(
            SELECT,
            sqlx::query(SELECT.sql).bind("bowl").fetch_one(t.db.pool()),
        )
        .await;

    assert!(
        matches!(&duplicate, sqlx::Error::Database(e) if e.is_unique_violation()),
        "{duplicate:?}"
    );
    assert!(
        matches!(missing, Err(sqlx::Error::RowNotFound)),
        "{:?}",
        missing.err()
    );
    assert_eq!(operations(&t.metrics, "INSERT", "success"), Some(2.0));
    assert_eq!(operations(&t.metrics, "INSERT", "error"), Some(1.0));
    assert_eq!(operations(&t.metrics, "SELECT", "success"), Some(1.0));
    assert_eq!(operations(&t.metrics, "SELECT", "error"), None);

    // Each operation is a client span with the database conventions.
    let spans = telemetry.spans_named("INSERT items", 3);
    assert_eq!(spans.len(), 3);
    for span in &spans {
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(str_attr(span, "db.system.name").as_deref(), Some("sqlite"));
        assert_eq!(str_attr(span, "db.namespace").as_deref(), Some("items.db"));
        assert_eq!(
            str_attr(span, "db.collection.name").as_deref(),
            Some("items")
        );
        // The statement with placeholders: the bound values stay out.
        assert_eq!(str_attr(span, "db.query.text").as_deref(), Some(INSERT.sql));
        assert!(!format!("{:?}", span.attributes).contains("mug"));
    }
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| matches!(s.status, Status::Error { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        str_attr(failed[0], "error.type").as_deref(),
        Some("unique_violation")
    );
    let select = telemetry.spans_named("SELECT items", 1);
    assert_eq!(select.len(), 1);
    let select = &select[0];
    assert_eq!(select.status, Status::Unset);
}

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let t = connect().await;
    let readiness = Readiness::new(Some(t.db.clone()));
    readiness.mark_started();
    let app = Mesh::new(identity("items"), &serve_config()).router(Router::new(), readiness);

    assert_eq!(call(&app, get("/readyz")).await.status(), 200);
    t.db.pool().close().await;
    let res = call(&app, get("/readyz")).await;

    assert_eq!(res.status(), 503);
    assert_eq!(
        body_json(res).await,
        json!({"status": "not_ready", "reason": "database unreachable"})
    );
    // Liveness does not depend on the database.
    assert_eq!(call(&app, get("/healthz")).await.status(), 200);
}

#[test]
fn describe_url_never_prints_a_password() {
    let cases = [
        (
            "postgres://app:s3cret@db.internal:5432/learnsphere",
            "PostgreSQL db.internal:5432/learnsphere",
        ),
        (
            "postgresql://app:s3cret@db.internal/learnsphere?sslmode=require",
            "PostgreSQL db.internal/learnsphere",
        ),
        // An unencoded `@` in the password: the host is after the last one.
        (
            "postgres://app:s3c@ret@db.internal/learnsphere",
            "PostgreSQL db.internal/learnsphere",
        ),
        // sqlx also reads the password from the query.
        (
            "postgres://db.internal/learnsphere?user=app&password=s3cret",
            "PostgreSQL db.internal/learnsphere",
        ),
        (
            "postgres://app:s3cret@db.internal:5432",
            "PostgreSQL db.internal:5432",
        ),
    ];
    for (url, expected) in cases {
        let shown = describe_url(url);
        assert_eq!(shown, expected, "{url}");
    }
    for url in [
        "postgres://app:s3/cret@db.internal/x",
        "postgres://app:s3cret@[db/x",
    ] {
        let shown = describe_url(url);
        assert!(
            !shown.contains("s3") && !shown.contains("cret"),
            "{url} shown as {shown}"
        );
    }
    assert_eq!(
        describe_url("sqlite://data/users.db?mode=rwc"),
        "SQLite file data/users.db"
    );
}
