//! The catalog's read cache: a course or page read once is served from
//! memory after, byte for byte as the database gave it, and counted; one
//! never read still goes to the database; with the cache off, every read
//! does. "Served from memory" is shown by taking the tables away under the
//! running service.

use reqwest::StatusCode;
use sqlx::{AnyConnection, Connection as _};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};

/// Renames a table, so any query that needs it fails from now on.
async fn take_away(app: &TestApp, table: &str) {
    let mut conn = AnyConnection::connect(app.database.url())
        .await
        .expect("connect to the test database");
    // The name is the test's own constant, never input.
    let rename = format!("ALTER TABLE {table} RENAME TO {table}_gone");
    sqlx::query(sqlx::AssertSqlSafe(rename))
        .execute(&mut conn)
        .await
        .expect("rename the table");
}

/// `courses_catalog_cache_requests_total{cache, result}`.
async fn cache_count(app: &TestApp, cache: &str, result: &str) -> u64 {
    let metrics = app.metrics().await;
    let series =
        format!("courses_catalog_cache_requests_total{{cache=\"{cache}\",result=\"{result}\"}} ");
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&series))
        .unwrap_or_else(|| panic!("no {series}in\n{metrics}"));
    line[series.len()..].trim().parse().expect("a count")
}

async fn body(app: &TestApp, path: &str) -> (StatusCode, String, Vec<u8>) {
    let res = app.get(path).await;
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        res.bytes().await.expect("a body").to_vec(),
    )
}

#[tokio::test]
async fn a_course_read_once_is_served_from_memory_after() {
    let app = spawn_app().await;
    let (status, content_type, first) = body(&app, "/courses/c0001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    assert_eq!(
        (
            cache_count(&app, "course", "miss").await,
            cache_count(&app, "course", "hit").await
        ),
        (1, 0)
    );

    take_away(&app, "lessons").await;
    let (status, content_type, again) = body(&app, "/courses/c0001").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the course read before is in memory"
    );
    assert_eq!(content_type, "application/json");
    assert_eq!(again, first, "the same bytes as the database's answer");
    // A course never read is asked of the database, which now fails.
    assert_error(
        app.get("/courses/c0003").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
    )
    .await;
    assert_eq!(cache_count(&app, "course", "hit").await, 1);
    assert_eq!(cache_count(&app, "course", "miss").await, 2);
}

#[tokio::test]
async fn a_missing_course_is_not_kept() {
    let app = spawn_app().await;
    for _ in 0..2 {
        assert_error(
            app.get("/courses/c9999").await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert_eq!(cache_count(&app, "course", "miss").await, 2);
    assert_eq!(cache_count(&app, "course", "hit").await, 0);
}

#[tokio::test]
async fn a_page_is_kept_per_query() {
    let app = spawn_app().await;
    let (status, _, first) = body(&app, "/courses?page=1&per_page=5").await;
    assert_eq!(status, StatusCode::OK);

    take_away(&app, "courses").await;
    let (status, _, again) = body(&app, "/courses?page=1&per_page=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    // Another page, size or tag is another query.
    for path in [
        "/courses?page=2&per_page=5",
        "/courses?page=1&per_page=6",
        "/courses?page=1&per_page=5&tag=rust",
    ] {
        assert_error(
            app.get(path).await,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
        )
        .await;
    }
    assert_eq!(cache_count(&app, "page", "hit").await, 1);
    assert_eq!(cache_count(&app, "page", "miss").await, 4);
}

#[tokio::test]
async fn turned_off_every_read_goes_to_the_database() {
    let app = spawn_app_with(&["--catalog-cache-entries", "0"]).await;
    let (status, _, _) = body(&app, "/courses/c0001").await;
    assert_eq!(status, StatusCode::OK);
    take_away(&app, "lessons").await;
    assert_error(
        app.get("/courses/c0001").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
    )
    .await;
    assert_eq!(cache_count(&app, "course", "hit").await, 0);
    assert_eq!(cache_count(&app, "course", "miss").await, 0);
}
