//! What an enrollment opens, decided by its payments' events, over the
//! real NATS server (127.0.0.1:4222, or `NATS_URL`).
//!
//! Only an active enrollment opens a course's lessons and progress. A
//! bought one is pending until its `payment.captured` is processed, and
//! only a capture of the catalog's price activates it; a refund ends the
//! access; buying again after a refund works, whatever order the events
//! come in.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PAID_COURSE, TestApp, assert_error, payment_event, spawn_app_with_events};

/// Publishes a payment event as payments would; returns its id.
async fn publish(app: &TestApp, event_type: &str, data: Value) -> String {
    app.events
        .as_ref()
        .unwrap()
        .publish(event_type, "payments", data)
        .await
}

/// Waits until progress has processed (and committed) the event.
async fn processed(app: &TestApp, event_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM processed_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if n == 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {event_id} was never processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages in the test's dead-letter stream.
async fn dead_letters(app: &TestApp) -> u64 {
    let events = app.events.as_ref().unwrap();
    let js = events.jetstream().await;
    let name = mesh::events::stream_names(&events.prefix)[1].clone();
    match js.get_stream(&name).await {
        Ok(mut stream) => stream.info().await.unwrap().state.messages,
        Err(_) => 0,
    }
}

async fn status_of(app: &TestApp, user: &str) -> (String, Option<String>) {
    let body: Value = app.enrollments(user).await.json().await.unwrap();
    let e = &body["items"][0];
    (
        e["status"].as_str().unwrap().to_owned(),
        e["payment_id"].as_str().map(str::to_owned),
    )
}

async fn opens_the_course(app: &TestApp, user: &str) -> bool {
    let res = app.progress(user, PAID_COURSE).await;
    match res.status() {
        StatusCode::OK => true,
        _ => {
            assert_error(res, StatusCode::FORBIDDEN, "enrollment_not_active").await;
            let res = app.complete(user, PAID_COURSE, "c0001-l01").await;
            assert_error(res, StatusCode::FORBIDDEN, "enrollment_not_active").await;
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bought_course_opens_once_captured_and_closes_once_refunded() {
    let app = spawn_app_with_events().await;
    let user = "u-access-1";
    let res = app
        .post_enrollment(&json!({"user_id": user, "course_id": PAID_COURSE, "payment_id": "p-1"}))
        .await;
    assert_eq!(res.status(), 201);
    assert!(!opens_the_course(&app, user).await, "pending opens nothing");

    let id = publish(
        &app,
        "payment.captured",
        payment_event(&app, "p-1", user, PAID_COURSE, "captured_at").await,
    )
    .await;
    processed(&app, &id).await;
    assert_eq!(
        status_of(&app, user).await,
        ("active".into(), Some("p-1".into()))
    );
    assert!(opens_the_course(&app, user).await);
    let res = app.complete(user, PAID_COURSE, "c0001-l01").await;
    assert_eq!(res.status(), 200);

    let id = publish(
        &app,
        "payment.refunded",
        payment_event(&app, "p-1", user, PAID_COURSE, "refunded_at").await,
    )
    .await;
    processed(&app, &id).await;
    assert_eq!(
        status_of(&app, user).await,
        ("refunded".into(), Some("p-1".into()))
    );
    assert!(
        !opens_the_course(&app, user).await,
        "a refund ends the access"
    );
    app.events.as_ref().unwrap().delete().await;
}

/// An event naming a known payment with another learner touches neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_payment_named_with_another_learner_is_rejected() {
    let app = spawn_app_with_events().await;
    let id = publish(
        &app,
        "payment.captured",
        payment_event(&app, "p-owned", "u-owner", PAID_COURSE, "captured_at").await,
    )
    .await;
    processed(&app, &id).await;
    publish(
        &app,
        "payment.refunded",
        payment_event(&app, "p-owned", "u-stranger", PAID_COURSE, "refunded_at").await,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dead_letters(&app).await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(&app, "u-owner").await.0, "active");
    let body: Value = app.enrollments("u-stranger").await.json().await.unwrap();
    assert_eq!(body["items"], json!([]));
    app.events.as_ref().unwrap().delete().await;
}

/// A capture of anything but the catalog's price grants nothing: it is
/// dead-lettered with the reason, for someone to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_below_the_price_grants_nothing_and_is_dead_lettered() {
    let app = spawn_app_with_events().await;
    let user = "u-access-2";
    let mut cheap = payment_event(&app, "p-cheap", user, PAID_COURSE, "captured_at").await;
    cheap["amount_cents"] = json!(1);
    publish(&app, "payment.captured", cheap).await;
    let mut yen = payment_event(&app, "p-yen", user, PAID_COURSE, "captured_at").await;
    yen["currency"] = json!("JPY");
    publish(&app, "payment.captured", yen).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dead_letters(&app).await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the underpaid captures were not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body: Value = app.enrollments(user).await.json().await.unwrap();
    assert_eq!(body["items"], json!([]), "no enrollment was granted");
    app.events.as_ref().unwrap().delete().await;
}

/// Bought, refunded, bought again: active on the second payment, whether
/// the first purchase's refund is processed before or after the second's
/// capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buying_again_after_a_refund_opens_the_course_in_any_event_order() {
    let app = spawn_app_with_events().await;
    for (user, late_refund) in [("u-again-1", false), ("u-again-2", true)] {
        // Payment ids are the learner's own, as payments' uuids are.
        let (first, second) = (format!("{user}-first"), format!("{user}-second"));
        let capture = payment_event(&app, &first, user, PAID_COURSE, "captured_at").await;
        let id = publish(&app, "payment.captured", capture).await;
        processed(&app, &id).await;
        let refund = payment_event(&app, &first, user, PAID_COURSE, "refunded_at").await;
        if !late_refund {
            let id = publish(&app, "payment.refunded", refund.clone()).await;
            processed(&app, &id).await;
            assert_eq!(status_of(&app, user).await.0, "refunded");
            // The gateway enrolls the second purchase: pending on it.
            let res = app
                .post_enrollment(
                    &json!({"user_id": user, "course_id": PAID_COURSE, "payment_id": second}),
                )
                .await;
            assert_eq!(res.status(), 200);
            assert_eq!(
                status_of(&app, user).await,
                ("pending".into(), Some(second.clone()))
            );
        }
        let capture = payment_event(&app, &second, user, PAID_COURSE, "captured_at").await;
        let id = publish(&app, "payment.captured", capture).await;
        processed(&app, &id).await;
        if late_refund {
            let id = publish(&app, "payment.refunded", refund).await;
            processed(&app, &id).await;
        }
        assert_eq!(
            status_of(&app, user).await,
            ("active".into(), Some(second.clone())),
            "late refund: {late_refund}"
        );
        assert!(opens_the_course(&app, user).await);
    }
    app.events.as_ref().unwrap().delete().await;
}

/// Only payments publishes `payment.*`: an event claiming another source
/// is dead-lettered, not applied (the broker's permissions refuse the
/// publish itself; this is the consumer's own check behind them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_event_from_anyone_but_payments_is_not_applied() {
    let app = spawn_app_with_events().await;
    let user = "u-forged";
    let events = app.events.as_ref().unwrap();
    for source in ["users", "progress", "attacker"] {
        events
            .publish(
                "payment.captured",
                source,
                payment_event(
                    &app,
                    &format!("p-{source}"),
                    user,
                    PAID_COURSE,
                    "captured_at",
                )
                .await,
            )
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dead_letters(&app).await < 3 {
        assert!(tokio::time::Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body: Value = app.enrollments(user).await.json().await.unwrap();
    assert_eq!(body["items"], json!([]), "nothing was granted");
    events.delete().await;
}
