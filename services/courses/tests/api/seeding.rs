//! The first start seeds the deterministic catalog, exactly once, however
//! many instances start and in whatever order.

use courses::{
    catalog::{self, Catalog, DEFAULT_SEED},
    model::{Course, CourseSummary, Page},
};
use sqlx::{AnyConnection, Connection as _};

use crate::helpers::{RowCounts, TestDatabase, row_counts, spawn_app, start_courses};

/// The rows the generated catalog should occupy.
fn rows_of(catalog: &Catalog) -> RowCounts {
    RowCounts {
        courses: catalog.courses.len() as i64,
        course_tags: catalog.courses.iter().map(|c| c.tags.len() as i64).sum(),
        lessons: catalog.lesson_count() as i64,
    }
}

#[tokio::test]
async fn a_fresh_database_holds_the_generated_catalog() {
    let app = spawn_app().await;
    let catalog = catalog::generate(DEFAULT_SEED);

    let counts = app.row_counts().await;
    assert!(counts.courses >= 240, "{counts:?}");
    assert!(counts.lessons >= 2_400, "{counts:?}");
    assert_eq!(counts, rows_of(&catalog));

    // What the API serves is the generated catalog, field for field: the
    // load generator and other services rely on computing it locally.
    let mut served = Vec::new();
    for page in 1..=3 {
        let page: Page<CourseSummary> = app
            .get_ok(&format!("/courses?page={page}&per_page=100"))
            .await;
        served.extend(page.items);
    }
    served.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(served.len(), catalog.courses.len());
    for (got, want) in served.iter().zip(&catalog.courses) {
        assert_eq!(got.id, want.id);
        assert_eq!(got.slug, want.slug);
        assert_eq!(got.title, want.title);
        assert_eq!(got.instructor, want.instructor);
        assert_eq!(got.level, want.level.as_str());
        assert_eq!(got.tags, want.tags);
        assert_eq!(got.price_cents, want.price_cents);
        assert_eq!(got.currency, want.currency);
        // One ulp of slack: serde_json's default float parser (without its
        // `float_roundtrip` feature) may round the last digit differently.
        assert!(
            (got.popularity - want.popularity).abs() <= f64::EPSILON * want.popularity,
            "{}: {} != {}",
            got.id,
            got.popularity,
            want.popularity
        );
        assert_eq!(got.lesson_count, want.lessons.len() as i64);
    }

    let seeded = &catalog.courses[0];
    let course: Course = app.get_ok(&format!("/courses/{}", seeded.id)).await;
    let lessons: Vec<_> = course
        .lessons
        .iter()
        .map(|l| (l.id.as_str(), l.position, l.title.as_str()))
        .collect();
    let expected: Vec<_> = seeded
        .lessons
        .iter()
        .map(|l| (l.id.as_str(), i64::from(l.position), l.title.as_str()))
        .collect();
    assert_eq!(lessons, expected);
}

#[tokio::test]
async fn a_second_start_does_not_seed_again() {
    let app = spawn_app().await;
    // Seeding again would be invisible on an intact catalog (every insert
    // is `ON CONFLICT DO NOTHING`), so remove a row a second seeding would
    // put back.
    let mut conn = AnyConnection::connect(app.database.url())
        .await
        .expect("connect to the test database");
    sqlx::query("DELETE FROM course_tags WHERE course_id = $1")
        .bind("c0001")
        .execute(&mut conn)
        .await
        .expect("delete c0001's tags");
    let before = app.row_counts().await;

    start_courses(app.database.url())
        .await
        .expect("a second instance starts on the seeded database");

    assert_eq!(app.row_counts().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_seed_one_catalog() {
    let database = TestDatabase::create(courses::NAME).await;
    // Real parallelism (one task each on a multi-threaded runtime), as
    // replicas started by one deploy would race. Four rather than two: on
    // SQLite two collide in the migrations only about one run in ten.
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url().to_owned();
            tokio::spawn(async move { start_courses(&url).await })
        })
        .collect();
    for start in starts {
        let server = start
            .await
            .expect("start did not panic")
            .unwrap_or_else(|e| panic!("every instance starts: {e:#}"));
        let res = reqwest::get(format!("{}/readyz", server.url()))
            .await
            .expect("instance answers");
        assert_eq!(res.status(), reqwest::StatusCode::OK);
    }
    // Primary keys rule out duplicate rows; equal counts rule out a partial
    // catalog or one interleaved from two seedings.
    assert_eq!(
        row_counts(database.url()).await,
        rows_of(&catalog::generate(DEFAULT_SEED))
    );
}

#[tokio::test]
async fn the_test_database_is_removed_even_when_the_test_panics() {
    let (location_tx, location_rx) = tokio::sync::oneshot::channel();
    let failed_test = tokio::spawn(async move {
        let database = TestDatabase::create(courses::NAME).await;
        let location = database.location();
        assert!(location.exists().await);
        let _ = location_tx.send(location);
        panic!("a failing test (expected)");
    })
    .await;
    assert!(failed_test.expect_err("the test panicked").is_panic());
    let location = location_rx
        .await
        .expect("the test got as far as creating it");
    assert!(!location.exists().await, "the database outlived its test");
}
