//! Lesson completions and course progress against a real courses service.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{RowCounts, assert_error, expected_percent, spawn_app};

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_fresh_enrollment_has_no_progress() {
    let app = spawn_app().await;
    let enrollment = app.enroll_ok("u-1", "c0063").await;

    let res = app.progress("u-1", "c0063").await;
    assert_eq!(res.status(), StatusCode::OK);
    let progress: Value = res.json().await.unwrap();
    assert_eq!(
        progress,
        json!({
            "user_id": "u-1",
            "course_id": "c0063",
            "enrollment_id": enrollment["id"],
            "completed_lessons": 0,
            "lesson_count": enrollment["lesson_count"],
            "percent_complete": 0.0,
            "completed_lesson_ids": [],
            "last_activity_at": enrollment["enrolled_at"],
        })
    );
}

#[tokio::test]
async fn completing_lessons_adds_up_and_repeats_do_not_double_count() {
    let app = spawn_app().await;
    let enrollment = app.enroll_ok("u-1", "c0063").await;
    let lessons = enrollment["lesson_count"].as_i64().unwrap();

    let res = app.complete("u-1", "c0063", "c0063-l02").await;
    assert_eq!(res.status(), StatusCode::OK);
    let after_one: Value = res.json().await.unwrap();
    assert_eq!(after_one["completed_lessons"], 1);
    assert_eq!(after_one["lesson_count"], lessons);
    assert_eq!(
        after_one["percent_complete"].as_f64().unwrap(),
        expected_percent(1, lessons)
    );
    assert_eq!(after_one["completed_lesson_ids"], json!(["c0063-l02"]));
    assert!(time(&after_one["last_activity_at"]) >= time(&enrollment["enrolled_at"]));

    let res = app.complete("u-1", "c0063", "c0063-l01").await;
    assert_eq!(res.status(), StatusCode::OK);
    let after_two: Value = res.json().await.unwrap();
    assert_eq!(after_two["completed_lessons"], 2);
    // By lesson id, which is course order.
    assert_eq!(
        after_two["completed_lesson_ids"],
        json!(["c0063-l01", "c0063-l02"])
    );

    // Again: same answer, no new row.
    let res = app.complete("u-1", "c0063", "c0063-l02").await;
    assert_eq!(res.status(), StatusCode::OK);
    let repeated: Value = res.json().await.unwrap();
    assert_eq!(repeated["completed_lessons"], 2);
    assert_eq!(
        repeated["completed_lesson_ids"],
        after_two["completed_lesson_ids"]
    );
    assert_eq!(
        repeated["percent_complete"].as_f64().unwrap(),
        expected_percent(2, lessons)
    );
    assert_eq!(
        app.row_counts().await,
        RowCounts {
            enrollments: 1,
            lesson_completions: 2
        }
    );

    let res = app.progress("u-1", "c0063").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), repeated);
}

#[tokio::test]
async fn completing_every_lesson_is_100_percent() {
    let app = spawn_app().await;
    let enrollment = app.enroll_ok("u-1", "c0126").await;
    let lessons = enrollment["lesson_count"].as_i64().unwrap();
    let mut last = Value::Null;
    for position in 1..=lessons {
        let res = app
            .complete("u-1", "c0126", &format!("c0126-l{position:02}"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        last = res.json().await.unwrap();
    }
    assert_eq!(last["completed_lessons"], lessons);
    assert_eq!(last["percent_complete"].as_f64().unwrap(), 100.0);
}

#[tokio::test]
async fn a_lesson_of_another_course_is_422_and_not_recorded() {
    let app = spawn_app().await;
    app.enroll_ok("u-1", "c0063").await;
    let before = app.row_counts().await;

    for lesson in ["c0093-l01", "c0063-l99", "no-such-lesson"] {
        let res = app.complete("u-1", "c0063", lesson).await;
        assert_error(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "lesson_not_in_course",
        )
        .await;
    }
    assert_eq!(app.row_counts().await, before);
    let progress: Value = app.progress("u-1", "c0063").await.json().await.unwrap();
    assert_eq!(progress["completed_lessons"], 0);
}

#[tokio::test]
async fn not_enrolled_is_404_and_records_nothing() {
    let app = spawn_app().await;
    // Enrolled in another course, and another user in this one.
    app.enroll_ok("u-1", "c0093").await;
    app.enroll_ok("u-2", "c0063").await;
    let before = app.row_counts().await;

    let res = app.complete("u-1", "c0063", "c0063-l01").await;
    assert_error(res, StatusCode::NOT_FOUND, "not_enrolled").await;
    let res = app.progress("u-1", "c0063").await;
    assert_error(res, StatusCode::NOT_FOUND, "not_enrolled").await;
    let res = app.progress("u-1", "c9999").await;
    assert_error(res, StatusCode::NOT_FOUND, "not_enrolled").await;

    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn courses_down_makes_completion_503_but_progress_still_reads() {
    let mut app = spawn_app().await;
    app.enroll_ok("u-1", "c0063").await;
    assert_eq!(
        app.complete("u-1", "c0063", "c0063-l01").await.status(),
        StatusCode::OK
    );
    app.stop_courses().await;
    let before = app.row_counts().await;

    let res = app.complete("u-1", "c0063", "c0063-l02").await;
    let message = assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert!(message.contains("courses"), "{message}");
    assert_eq!(app.row_counts().await, before);

    // Reading progress needs only progress's own database.
    let res = app.progress("u-1", "c0063").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["completed_lessons"], 1);
}
