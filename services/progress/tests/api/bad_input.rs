//! Every kind of bad request gets a JSON 4xx and leaves the database as it
//! was.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{self, TestApp, assert_error, spawn_app};

/// An app holding one enrollment with one completed lesson, so "unchanged"
/// is checked against a database that is not empty.
async fn app_with_data() -> TestApp {
    let app = spawn_app().await;
    app.enroll_ok("u-1", "c0063").await;
    assert_eq!(
        app.complete("u-1", "c0063", "c0063-l01").await.status(),
        StatusCode::OK
    );
    app
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = app_with_data().await;
    let before = app.row_counts().await;
    let res = app
        .post_enrollment_raw(
            r#"{"user_id": "u-2", "course_id": "#,
            Some("application/json"),
        )
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn missing_wrongly_typed_or_unknown_fields_are_422_invalid_body() {
    let app = app_with_data().await;
    let before = app.row_counts().await;
    let cases = [
        (json!({"course_id": "c0093"}), "user_id"),
        (json!({"user_id": "u-2"}), "course_id"),
        (json!({"user_id": 42, "course_id": "c0093"}), "user_id"),
        (
            json!({"user_id": "u-2", "course_id": ["c0093"]}),
            "course_id",
        ),
        (
            json!({"user_id": "u-2", "course_id": "c0093", "payment_id": 7}),
            "payment_id",
        ),
        (
            json!({"user_id": "u-2", "course_id": "c0093", "status": "active"}),
            "status",
        ),
        (json!([]), ""),
        (json!(null), ""),
    ];
    for (body, field) in cases {
        let res = app.post_enrollment(&body).await;
        let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
        assert!(message.contains(field), "{body}: {message}");
    }
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = app_with_data().await;
    let before = app.row_counts().await;
    let body = r#"{"user_id": "u-2", "course_id": "c0093"}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let res = app.post_enrollment_raw(body, content_type).await;
        assert_error(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = app_with_data().await;
    let before = app.row_counts().await;
    // The default limit is 64 KiB.
    let body = json!({"user_id": "u-2", "course_id": "c0093", "payment_id": "x".repeat(70 * 1024)});
    let res = app.post_enrollment(&body).await;
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn bad_ids_in_the_body_are_422_invalid_input() {
    let app = app_with_data().await;
    let before = app.row_counts().await;
    let long = "x".repeat(65);
    let cases = [
        (json!({"user_id": "", "course_id": "c0093"}), "user_id"),
        (json!({"user_id": long, "course_id": "c0093"}), "user_id"),
        (
            json!({"user_id": "u\u{0}2", "course_id": "c0093"}),
            "user_id",
        ),
        (json!({"user_id": "u-2", "course_id": ""}), "course_id"),
        (json!({"user_id": "u-2", "course_id": long}), "course_id"),
        (
            json!({"user_id": "u-2", "course_id": "c0093", "payment_id": ""}),
            "payment_id",
        ),
        (
            json!({"user_id": "u-2", "course_id": "c0093", "payment_id": long}),
            "payment_id",
        ),
    ];
    for (body, field) in cases {
        let res = app.post_enrollment(&body).await;
        let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
        assert!(message.starts_with(field), "{body}: {message}");
    }
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn bad_ids_in_the_path_are_422_invalid_input() {
    let app = app_with_data().await;
    let before = app.row_counts().await;
    let long = "x".repeat(65);

    let res = app.enrollments(&long).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let res = app.progress("u-1", &long).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let res = app.complete(&long, "c0063", "c0063-l02").await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let res = app.complete("u-1", "c0063", &long).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let res = app.complete("u-1", "c0063", "c0063\nl02").await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    // The router matches an empty segment; the id check refuses it.
    let res = app
        .http
        .get(app.url("/users//enrollments"))
        .bearer_auth(helpers::token_for("u1"))
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(message, "user_id must not be empty");

    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = app_with_data().await;
    let before = app.row_counts().await;

    let res = app.http.get(app.url("/enrollments")).send().await.unwrap();
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app
        .http
        .get(app.url("/users/u-1/courses/c0063/lessons/c0063-l02/complete"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app
        .http
        .post(app.url("/users/u-1/courses/c0063/lessons/c0063-l02"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "route_not_found").await;

    assert_eq!(app.row_counts().await, before);
}
