//! `CoursesClient`, the typed client other services use, against the real
//! service.

use courses::CatalogQuery;
use mesh::CallError;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

/// Asserts a call failed with the service's answer `status` and `code`.
fn assert_status<T: std::fmt::Debug>(result: Result<T, CallError>, status: StatusCode, code: &str) {
    match result {
        Err(CallError::Status {
            status: got,
            code: got_code,
            ..
        }) => assert_eq!((got, got_code.as_str()), (status, code)),
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_client_lists_courses_and_filters_by_tag() {
    let app = spawn_app().await;
    let page = app
        .client
        .list(&CatalogQuery {
            page: 2,
            per_page: 5,
            ..Default::default()
        })
        .await
        .expect("a page");
    assert_eq!((page.page, page.per_page, page.items.len()), (2, 5, 5));
    assert_eq!(page.total, app.row_counts().await.courses);

    let tag = page.items[0].tags[0].clone();
    let tagged = app
        .client
        .list(&CatalogQuery {
            per_page: 100,
            tag: Some(&tag),
            ..Default::default()
        })
        .await
        .expect("a page");
    assert!(!tagged.items.is_empty());
    assert!(tagged.items.iter().all(|c| c.tags.contains(&tag)));
    assert_eq!(tagged.total, tagged.items.len() as i64);

    assert_status(
        app.client
            .list(&CatalogQuery {
                per_page: 0,
                ..Default::default()
            })
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
}

#[tokio::test]
async fn the_client_gets_a_course_and_its_lessons() {
    let app = spawn_app().await;
    let listed = app
        .client
        .list(&CatalogQuery {
            per_page: 1,
            ..Default::default()
        })
        .await
        .expect("a page")
        .items;
    let course = app.client.get(&listed[0].id).await.expect("the course");
    assert_eq!(course.summary, listed[0]);
    let last = course.lessons.last().expect("a course has lessons");
    let lesson = app
        .client
        .lesson(&course.summary.id, &last.id)
        .await
        .expect("the lesson");
    assert_eq!(&lesson, last);
}

#[tokio::test]
async fn the_client_maps_404s_to_not_found() {
    let app = spawn_app().await;
    assert_status(
        app.client.get("c9999").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_status(
        app.client.lesson("c0002", "c0001-l01").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Ids are escaped, so one cannot smuggle in extra path segments (this
    // would otherwise reach the lesson route) or a query.
    assert_status(
        app.client.get("c0001/lessons/c0001-l01").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_status(
        app.client.get("c0001?x=1").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
