//! `POST /enrollments` and `GET /users/{user_id}/enrollments` against a real
//! courses service.

mod helpers;

use helpers::{
    RowCounts, assert_error, closed_port_url, expected_percent, spawn_app,
    spawn_app_with_courses_at, spawn_failing_courses,
};
use progress::model::{EnrollRequest, EnrollmentStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn enrolling_creates_an_enrollment_and_repeating_returns_it() {
    let app = spawn_app().await;

    let res = app.enroll("u-1", "c0001").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["user_id"], "u-1");
    assert_eq!(first["course_id"], "c0001");
    assert_eq!(first["payment_id"], Value::Null);
    assert_eq!(first["status"], "active");
    assert!(first["lesson_count"].as_i64().unwrap() >= 6);
    assert!(uuid::Uuid::parse_str(first["id"].as_str().unwrap()).is_ok());
    let enrolled_at = first["enrolled_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(enrolled_at).is_ok());

    let res = app.enroll("u-1", "c0001").await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(
        again, first,
        "a repeat returns the stored enrollment unchanged"
    );

    assert_eq!(
        app.row_counts().await,
        RowCounts {
            enrollments: 1,
            lesson_completions: 0
        }
    );
}

#[tokio::test]
async fn lesson_count_comes_from_courses() {
    let app = spawn_app().await;
    let course: Value = app
        .http
        .get(format!(
            "{}/courses/c0042",
            app.courses.as_ref().unwrap().url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let enrollment = app.enroll_ok("u-1", "c0042").await;
    assert_eq!(enrollment["lesson_count"], course["lesson_count"]);
    assert_eq!(
        enrollment["lesson_count"].as_u64().unwrap(),
        course["lessons"].as_array().unwrap().len() as u64
    );
}

#[tokio::test]
async fn payment_id_is_kept() {
    let app = spawn_app().await;
    let res = app
        .post_enrollment(&json!({"user_id": "u-1", "course_id": "c0002", "payment_id": "pay-7"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["payment_id"], "pay-7");
}

// Several workers, so the duplicate requests really overlap in the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_enrollments_make_one_row() {
    let app = spawn_app().await;
    let requests = (0..8).map(|_| app.enroll("u-race", "c0003"));
    let responses = futures::future::join_all(requests).await;

    let mut created = 0;
    let mut ids = Vec::new();
    for res in responses {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected status {other}"),
        }
        let body: Value = res.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1, "exactly one request creates the enrollment");
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every request answers with the same enrollment"
    );
    assert_eq!(app.row_counts().await.enrollments, 1);
}

#[tokio::test]
async fn unknown_course_is_404_and_stores_nothing() {
    let app = spawn_app().await;
    let res = app.enroll("u-1", "c9999").await;
    assert_error(res, StatusCode::NOT_FOUND, "course_not_found").await;
    assert_eq!(app.row_counts().await.enrollments, 0);
}

#[tokio::test]
async fn courses_unreachable_is_503_naming_courses_and_stores_nothing() {
    let app = spawn_app_with_courses_at(closed_port_url()).await;
    let res = app.enroll("u-1", "c0001").await;
    let message = assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert!(message.contains("courses"), "{message}");
    // The connection error stays in the log, not in the answer.
    assert!(!message.contains("127.0.0.1"), "{message}");
    assert_eq!(app.row_counts().await.enrollments, 0);
}

#[tokio::test]
async fn courses_answering_500_is_503_and_stores_nothing() {
    let failing = spawn_failing_courses().await;
    let app = spawn_app_with_courses_at(failing.url()).await;
    let res = app.enroll("u-1", "c0001").await;
    let message = assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert!(message.contains("courses"), "{message}");
    assert_eq!(app.row_counts().await.enrollments, 0);
}

#[tokio::test]
async fn a_repeat_enrollment_is_answered_while_courses_is_down() {
    let mut app = spawn_app().await;
    let first = app.enroll_ok("u-1", "c0001").await;
    app.stop_courses().await;

    let res = app.enroll("u-1", "c0001").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], first["id"]);
    // A new enrollment does need courses.
    let res = app.enroll("u-1", "c0002").await;
    assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert_eq!(app.row_counts().await.enrollments, 1);
}

#[tokio::test]
async fn listing_shows_each_enrollment_with_its_progress() {
    let app = spawn_app().await;
    let a = app.enroll_ok("u-1", "c0001").await;
    let b = app.enroll_ok("u-1", "c0002").await;
    app.enroll_ok("u-2", "c0001").await;
    assert_eq!(
        app.complete("u-1", "c0001", "c0001-l01").await.status(),
        StatusCode::OK
    );

    let res = app.enrollments("u-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Oldest first.
    assert_eq!(items[0]["id"], a["id"]);
    assert_eq!(items[1]["id"], b["id"]);
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["enrolled_at"], a["enrolled_at"]);
    assert_eq!(items[0]["completed_lessons"], 1);
    assert_eq!(
        items[0]["percent_complete"].as_f64().unwrap(),
        expected_percent(1, a["lesson_count"].as_i64().unwrap())
    );
    assert_eq!(items[1]["completed_lessons"], 0);
    assert_eq!(items[1]["percent_complete"].as_f64().unwrap(), 0.0);

    let res = app.enrollments("nobody").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"items": []}));
}

#[tokio::test]
async fn the_typed_client_speaks_the_contract() {
    let app = spawn_app().await;
    let request = EnrollRequest {
        user_id: "u/with slash".into(),
        course_id: "c0005".into(),
        payment_id: Some("pay-1".into()),
    };
    let enrollment = app
        .client
        .enroll(&helpers::caller(&request.user_id), &request)
        .await
        .unwrap();
    assert_eq!(enrollment.user_id, "u/with slash");
    // Bought: pending until payments' `payment.captured` is processed.
    assert_eq!(enrollment.status, EnrollmentStatus::Pending);
    assert_eq!(enrollment.payment_id.as_deref(), Some("pay-1"));
    // Idempotent through the client too.
    assert_eq!(
        app.client
            .enroll(&helpers::caller(&request.user_id), &request)
            .await
            .unwrap(),
        enrollment
    );

    let progress = app
        .client
        .complete_lesson(
            &helpers::caller("u/with slash"),
            "u/with slash",
            "c0005",
            "c0005-l02",
        )
        .await
        .unwrap();
    assert_eq!(progress.enrollment_id, enrollment.id);
    assert_eq!(progress.completed_lesson_ids, ["c0005-l02"]);
    assert_eq!(
        app.client
            .progress(&helpers::caller("u/with slash"), "u/with slash", "c0005")
            .await
            .unwrap(),
        progress
    );

    let list = app
        .client
        .enrollments(&helpers::caller("u/with slash"), "u/with slash")
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].enrollment, enrollment);
    assert_eq!(list.items[0].completed_lessons, 1);

    let err = app
        .client
        .progress(&helpers::caller("u/with slash"), "u/with slash", "c0006")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.code(), Some("not_enrolled"));
}
