//! Charging, replaying and reading payments through the real server.

use serde_json::{Value, json};

use crate::helpers::{assert_error, charge_body, charge_for, course, new_key, spawn_app};

#[tokio::test]
async fn a_charge_is_created_then_replayed_with_the_same_key() {
    let app = spawn_app().await;
    let key = new_key();

    let first = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(first.status().as_u16(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers().get("location").cloned();
    let created: Value = first.json().await.expect("JSON payment");
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        location.as_ref().and_then(|l| l.to_str().ok()),
        Some(format!("/payments/{id}").as_str())
    );
    assert_eq!(created["user_id"], "u1");
    assert_eq!(created["course_id"], "c0001");
    assert_eq!(created["amount_cents"], 4900);
    assert_eq!(created["currency"], "USD");
    assert_eq!(created["status"], "captured");
    assert!(
        created["provider_reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("ch_"))
    );
    assert!(created["created_at"].as_str().is_some());
    assert!(created.get("decline_reason").is_none());

    let replay = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replayed: Value = replay.json().await.expect("JSON payment");
    assert_eq!(replayed, created, "a replay is the original answer");

    assert_eq!(app.snapshot().await, (1, 1));
    assert_eq!(app.provider_calls().await.total(), 1, "charged once");
}

#[tokio::test]
async fn the_same_body_in_another_key_order_and_spacing_is_a_replay() {
    let app = spawn_app().await;
    let key = new_key();
    let first = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(first.status().as_u16(), 201);

    let reordered = r#"{ "currency" : "USD", "amount_cents": 4900,
        "course_id": "c0001", "user_id": "u1" }"#;
    let replay = app
        .charge_raw(Some(&key), Some("application/json"), reordered)
        .await;
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(app.snapshot().await, (1, 1));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_rejected_and_stores_nothing() {
    let app = spawn_app().await;
    let key = new_key();
    let first = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(first.status().as_u16(), 201);
    let before = app.snapshot().await;

    let mut other = charge_body("u1");
    other["amount_cents"] = json!(5000);
    let reused = app.charge(Some(&key), &other).await;
    assert_error(reused, 422, "idempotency_key_reused").await;

    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.provider_calls().await.total(), 1);
}

#[tokio::test]
async fn different_keys_for_different_courses_are_different_payments() {
    let app = spawn_app().await;
    let a: Value = app
        .charge(Some(&new_key()), &charge_for("u1", &course(1)))
        .await
        .json()
        .await
        .expect("JSON");
    let b: Value = app
        .charge(Some(&new_key()), &charge_for("u1", &course(2)))
        .await
        .json()
        .await
        .expect("JSON");
    assert_ne!(a["id"], b["id"]);
    assert_eq!(app.snapshot().await, (2, 2));
}

#[tokio::test]
async fn a_payment_is_read_back_by_id() {
    let app = spawn_app().await;
    let created: Value = app
        .charge(Some(&new_key()), &charge_body("u1"))
        .await
        .json()
        .await
        .expect("JSON");
    let id = created["id"].as_str().expect("id");

    let read = app.get(&format!("/payments/{id}")).await;
    assert_eq!(read.status().as_u16(), 200);
    assert_eq!(read.json::<Value>().await.expect("JSON"), created);
}

#[tokio::test]
async fn an_unknown_payment_is_404() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    assert_error(app.get("/payments/nope").await, 404, "not_found").await;
    assert_error(app.get("/payments/%2E%2E%2Fusers").await, 404, "not_found").await;
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_users_payments_are_listed_newest_first() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let created: Value = app
            .charge(Some(&new_key()), &charge_for("u1", &course(n)))
            .await
            .json()
            .await
            .expect("JSON");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let other = app
        .charge(Some(&new_key()), &charge_body("someone-else"))
        .await;
    // Otherwise "not listed" below would hold for the wrong reason.
    assert_eq!(
        other.status().as_u16(),
        201,
        "another user's payment exists"
    );

    let list = app.get("/users/u1/payments").await;
    assert_eq!(list.status().as_u16(), 200);
    let list: Value = list.json().await.expect("JSON");
    let listed: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);

    let empty: Value = app
        .get("/users/nobody/payments")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(empty, json!({"items": []}));
}

#[tokio::test]
async fn the_listing_is_bounded_to_100() {
    let app = spawn_app().await;
    for n in 0..101 {
        let res = app
            .charge(Some(&new_key()), &charge_for("u1", &course(n)))
            .await;
        assert_eq!(res.status().as_u16(), 201);
    }
    let list: Value = app
        .get("/users/u1/payments")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(100));
}
