//! `POST /payments/{payment_id}/refund`: captured payments only, once,
//! with its `payment.refunded` event in the outbox.

use serde_json::Value;

use crate::helpers::{assert_error, charge_body, new_key, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_captured_payment_is_refunded_once_with_one_event() {
    let app = spawn_app().await;
    let charged: Value = app
        .charge(Some(&new_key()), &charge_body("u1"))
        .await
        .json()
        .await
        .unwrap();
    let id = charged["id"].as_str().unwrap();
    let refund = || app.refund(id);

    let first = refund().await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "refunded");
    assert_eq!(first["id"], id);
    // Again: the same answer, nothing refunded twice.
    let again = refund().await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(
        app.stored(id).await,
        ("refunded".to_owned(), None),
        "the row says refunded"
    );
    // One payment.captured and one payment.refunded in the outbox.
    assert_eq!(app.count("outbox").await, 2);
    let read: Value = app
        .get(&format!("/payments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "refunded");
}

#[tokio::test]
async fn a_declined_payment_is_not_refundable_and_an_unknown_one_is_404() {
    let app = spawn_app_with(|c| c.provider.decline_rate = 1.0).await;
    let declined = app.charge(Some(&new_key()), &charge_body("u1")).await;
    assert_eq!(declined.status(), 402);
    let list: Value = app.get("/users/u1/payments").await.json().await.unwrap();
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();

    let res = app.refund(&id).await;
    assert_error(res, 409, "not_refundable").await;
    assert_eq!(app.stored(&id).await.0, "declined", "unchanged");
    assert_eq!(app.count("outbox").await, 0, "no event");

    let res = app.refund("no-such-payment").await;
    assert_error(res, 404, "not_found").await;
}
