//! One purchase per learner and course, at the catalog's price.
//!
//! A learner double-clicking "buy" sends two checkouts with two
//! Idempotency-Keys: keys guard retries of one checkout, not two. The
//! (learner, course) claim taken before the provider is called is what
//! charges once. And the amount is the catalog's, whatever a caller sends.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{
    CHEAP_COURSE, FREE_COURSE, TestApp, assert_error, charge_body, charge_for, new_key, spawn_app,
    spawn_app_with,
};

async fn purchases(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM purchases")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn captured(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE status = 'captured'")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_key_for_a_bought_course_charges_nothing_and_names_the_payment() {
    let app = spawn_app().await;
    let first: Value = app
        .charge(Some(&new_key()), &charge_body("u1"))
        .await
        .json()
        .await
        .unwrap();
    let second = app.charge(Some(&new_key()), &charge_body("u1")).await;
    let body = assert_error(second, 409, "already_purchased").await;
    assert_eq!(body["error"]["payment_id"], first["id"]);
    assert_eq!(captured(&app).await, 1);
    assert_eq!(app.provider_calls().await.total(), 1);
    // The refused key is free again: it charged nothing.
    assert_eq!(app.count("idempotency_keys").await, 1);
    // Another learner, and another course, are not affected.
    let other = app.charge(Some(&new_key()), &charge_body("u2")).await;
    assert_eq!(other.status(), 201);
    let cheap = app
        .charge(Some(&new_key()), &charge_for("u1", CHEAP_COURSE))
        .await;
    assert_eq!(cheap.status(), 201);
}

/// The double-click, fifty times over: fifty checkouts of one course by
/// one learner, each with its own key, all at once, on a provider slow
/// enough that they all overlap. One charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_keys_at_once_for_one_course_charge_once() {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(50);
            c.provider.latency_p99 = Duration::from_millis(60);
        })
        .await,
    );
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let res = app.charge(Some(&new_key()), &charge_body("u1")).await;
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                (status, body["error"]["code"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, code)| *s == 201
            || (*s == 409
                && matches!(
                    code.as_deref(),
                    Some("purchase_in_progress" | "already_purchased")
                ))),
        "every other one is told the course is bought or being bought: {answers:?}"
    );
    assert_eq!(captured(&app).await, 1);
    assert_eq!(app.provider_calls().await.total(), 1);
}

/// The interleaving, forced: a second checkout arrives while the first is
/// at the provider (the pair claimed, nothing recorded yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_charge_in_flight_holds_the_course_for_its_learner_only() {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(400);
            c.provider.latency_p99 = Duration::from_millis(400);
        })
        .await,
    );
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.charge(Some(&new_key()), &charge_body("u1")).await })
    };
    // Wait (bounded) until the first has claimed the purchase.
    for _ in 0..200 {
        if purchases(&app).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        purchases(&app).await,
        1,
        "the first charge claimed the pair"
    );

    let second = app.charge(Some(&new_key()), &charge_body("u1")).await;
    assert_eq!(
        second.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_error(second, 409, "purchase_in_progress").await;

    let first = first.await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let third = app.charge(Some(&new_key()), &charge_body("u1")).await;
    let body = assert_error(third, 409, "already_purchased").await;
    assert_eq!(body["error"]["payment_id"], first["id"]);
    assert_eq!(captured(&app).await, 1);
    assert_eq!(app.provider_calls().await.total(), 1);
}

#[tokio::test]
async fn a_refund_lets_the_learner_buy_the_course_again() {
    let app = spawn_app().await;
    let first: Value = app
        .charge(Some(&new_key()), &charge_body("u1"))
        .await
        .json()
        .await
        .unwrap();
    let refunded = app.refund(first["id"].as_str().unwrap()).await;
    assert_eq!(refunded.status(), 200);
    let again = app.charge(Some(&new_key()), &charge_body("u1")).await;
    assert_eq!(again.status(), 201, "bought again after the refund");
    let again: Value = again.json().await.unwrap();
    assert_ne!(again["id"], first["id"]);
    let once_more = app.charge(Some(&new_key()), &charge_body("u1")).await;
    let body = assert_error(once_more, 409, "already_purchased").await;
    assert_eq!(body["error"]["payment_id"], again["id"]);
}

#[tokio::test]
async fn a_declined_card_leaves_the_course_to_buy() {
    let app = spawn_app_with(|c| c.provider.decline_rate = 1.0).await;
    let declined = app.charge(Some(&new_key()), &charge_body("u1")).await;
    assert_eq!(declined.status(), 402);
    assert_eq!(purchases(&app).await, 0, "a decline gives the course back");
    let again = app.charge(Some(&new_key()), &charge_body("u1")).await;
    assert_eq!(
        again.status(),
        402,
        "tried again, declined again, not refused"
    );
}

/// Called directly on its port, payments used to capture any amount in
/// any three-letter currency. The catalog prices every charge now.
#[tokio::test]
async fn only_the_catalog_price_in_an_allowed_currency_is_charged() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let priced = |cents: i64, currency: &str| {
        let mut body = charge_body("u1");
        body["amount_cents"] = json!(cents);
        body["currency"] = json!(currency);
        body
    };
    let one_cent = app.charge(Some(&new_key()), &priced(1, "USD")).await;
    let message = assert_error(one_cent, 409, "price_mismatch").await;
    assert!(
        message["error"]["message"]
            .as_str()
            .unwrap()
            .contains("costs 4900 USD"),
        "{message}"
    );
    // The right number in another allowed currency is another price.
    let pounds = app.charge(Some(&new_key()), &priced(4900, "GBP")).await;
    assert_error(pounds, 409, "price_mismatch").await;
    for currency in ["XXX", "JPY"] {
        let res = app.charge(Some(&new_key()), &priced(4900, currency)).await;
        assert_error(res, 422, "unsupported_currency").await;
    }
    let free = app
        .charge(Some(&new_key()), &charge_for("u1", FREE_COURSE))
        .await;
    assert_error(free, 422, "course_is_free").await;
    let mut unknown = charge_body("u1");
    unknown["course_id"] = json!("no-such-course");
    let unknown = app.charge(Some(&new_key()), &unknown).await;
    assert_error(unknown, 422, "unknown_course").await;

    assert_eq!(
        app.snapshot().await,
        before,
        "nothing stored, every key free"
    );
    assert_eq!(app.provider_calls().await.total(), 0, "no provider call");
}

#[tokio::test]
async fn without_the_catalog_nothing_is_charged() {
    let mut app = spawn_app().await;
    app.catalog.take().unwrap().stop().await;
    let key = new_key();
    let res = app.charge(Some(&key), &charge_body("u1")).await;
    assert_error(res, 503, "dependency_unavailable").await;
    assert_eq!(app.snapshot().await, (0, 0), "nothing stored, the key free");
    assert_eq!(app.provider_calls().await.total(), 0);
}
