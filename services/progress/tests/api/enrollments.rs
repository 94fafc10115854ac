//! `POST /enrollments` and `GET /users/{user_id}/enrollments` against a real
//! courses service.

use progress::model::{EnrollRequest, EnrollmentStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    self, PAID_COURSE, RowCounts, assert_error, closed_port_url, expected_percent, spawn_app,
    spawn_app_with_courses_at, spawn_failing_courses,
};

#[tokio::test]
async fn enrolling_creates_an_enrollment_and_repeating_returns_it() {
    let app = spawn_app().await;

    let res = app.enroll("u-1", "c0063").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["user_id"], "u-1");
    assert_eq!(first["course_id"], "c0063");
    assert_eq!(first["payment_id"], Value::Null);
    assert_eq!(first["status"], "active");
    assert!(first["lesson_count"].as_i64().unwrap() >= 6);
    assert!(uuid::Uuid::parse_str(first["id"].as_str().unwrap()).is_ok());
    let enrolled_at = first["enrolled_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(enrolled_at).is_ok());

    let res = app.enroll("u-1", "c0063").await;
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
            "{}/courses/c0217",
            app.courses.as_ref().unwrap().url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let enrollment = app.enroll_ok("u-1", "c0217").await;
    assert_eq!(enrollment["lesson_count"], course["lesson_count"]);
    assert_eq!(
        enrollment["lesson_count"].as_u64().unwrap(),
        course["lessons"].as_array().unwrap().len() as u64
    );
}

/// A paid course: enrolled with the payment that bought it, `pending` (it
/// opens nothing until the payment's `payment.captured` is processed).
#[tokio::test]
async fn a_paid_course_is_enrolled_pending_with_its_payment() {
    let app = spawn_app().await;
    let res = app
        .post_enrollment(
            &json!({"user_id": "u-1", "course_id": PAID_COURSE, "payment_id": "pay-7"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["payment_id"], "pay-7");
    assert_eq!(body["status"], "pending");
}

/// Only a free course may be enrolled without a payment: a paid one was
/// an active enrollment for nothing, and its lessons then completed.
#[tokio::test]
async fn a_paid_course_without_a_payment_is_402_and_a_free_one_with_one_is_422() {
    let app = spawn_app().await;
    let before = app.row_counts().await;
    let res = app.enroll("u-1", PAID_COURSE).await;
    assert_error(res, StatusCode::PAYMENT_REQUIRED, "payment_required").await;
    let res = app
        .post_enrollment(&json!({"user_id": "u-1", "course_id": "c0093", "payment_id": "pay-8"}))
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "payment_not_needed").await;
    assert_eq!(app.row_counts().await, before, "nothing stored");
}

// Several workers, so the duplicate requests really overlap in the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_enrollments_make_one_row() {
    let app = spawn_app().await;
    let requests = (0..8).map(|_| app.enroll("u-race", "c0069"));
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
    let res = app.enroll("u-1", "c0063").await;
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
    let res = app.enroll("u-1", "c0063").await;
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
    let first = app.enroll_ok("u-1", "c0063").await;
    app.stop_courses().await;

    let res = app.enroll("u-1", "c0063").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], first["id"]);
    // A new enrollment does need courses.
    let res = app.enroll("u-1", "c0093").await;
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
    let a = app.enroll_ok("u-1", "c0063").await;
    let b = app.enroll_ok("u-1", "c0093").await;
    app.enroll_ok("u-2", "c0063").await;
    assert_eq!(
        app.complete("u-1", "c0063", "c0063-l01").await.status(),
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
    let who = helpers::caller("u/with slash");
    let bought = EnrollRequest {
        user_id: "u/with slash".into(),
        course_id: PAID_COURSE.into(),
        payment_id: Some("pay-1".into()),
    };
    let pending = app.client.enroll(&who, &bought).await.unwrap();
    assert_eq!(pending.user_id, "u/with slash");
    // Bought: pending until payments' `payment.captured` is processed,
    // and until then it opens nothing.
    assert_eq!(pending.status, EnrollmentStatus::Pending);
    assert_eq!(pending.payment_id.as_deref(), Some("pay-1"));
    // Idempotent through the client too.
    assert_eq!(app.client.enroll(&who, &bought).await.unwrap(), pending);
    let refused = app
        .client
        .complete_lesson(&who, "u/with slash", PAID_COURSE, "c0001-l01")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(refused.code(), Some("enrollment_not_active"));

    let free = EnrollRequest {
        user_id: "u/with slash".into(),
        course_id: "c0107".into(),
        payment_id: None,
    };
    let enrollment = app.client.enroll(&who, &free).await.unwrap();
    assert_eq!(enrollment.status, EnrollmentStatus::Active);
    let progress = app
        .client
        .complete_lesson(&who, "u/with slash", "c0107", "c0107-l02")
        .await
        .unwrap();
    assert_eq!(progress.enrollment_id, enrollment.id);
    assert_eq!(progress.completed_lesson_ids, ["c0107-l02"]);
    assert_eq!(
        app.client
            .progress(&who, "u/with slash", "c0107")
            .await
            .unwrap(),
        progress
    );

    let list = app.client.enrollments(&who, "u/with slash").await.unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].enrollment, pending);
    assert_eq!(list.items[1].enrollment, enrollment);
    assert_eq!(list.items[1].completed_lessons, 1);

    let err = app
        .client
        .progress(&who, "u/with slash", "c0111")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.code(), Some("not_enrolled"));
}
