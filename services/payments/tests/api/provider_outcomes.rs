//! Declines and provider failures.

use serde_json::Value;

use crate::helpers::{ProviderCalls, assert_error, charge_body, new_key, spawn_app_with};

#[tokio::test]
async fn a_decline_is_402_with_its_reason_stored_and_replayed() {
    let app = spawn_app_with(|c| c.provider.decline_rate = 1.0).await;
    let key = new_key();

    let declined = app.charge(Some(&key), &charge_body("u1")).await;
    assert!(declined.headers().get("idempotent-replayed").is_none());
    let body = assert_error(declined, 402, "payment_declined").await;
    let reason = body["error"]["reason"]
        .as_str()
        .expect("a reason")
        .to_owned();
    assert!(
        ["insufficient_funds", "card_declined", "expired_card"].contains(&reason.as_str()),
        "{reason}"
    );

    // The attempt is a payment row, declined, with the reason.
    assert_eq!(app.snapshot().await, (1, 1));
    let list: Value = app
        .get("/users/u1/payments")
        .await
        .json()
        .await
        .expect("JSON");
    let payment = &list["items"][0];
    assert_eq!(payment["status"], "declined");
    assert_eq!(payment["decline_reason"], reason.as_str());
    let id = payment["id"].as_str().expect("id");
    assert_eq!(
        app.stored(id).await,
        ("declined".to_owned(), Some(reason.clone()))
    );

    // A retry with the key replays the decline; the card is not tried again.
    let replay = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replayed = assert_error(replay, 402, "payment_declined").await;
    assert_eq!(replayed, body);
    assert_eq!(app.snapshot().await, (1, 1));
    assert_eq!(
        app.provider_calls().await,
        ProviderCalls {
            approved: 0,
            declined: 1,
            error: 0
        }
    );
}

#[tokio::test]
async fn a_provider_failure_is_502_stores_nothing_and_frees_the_key() {
    let app = spawn_app_with(|c| c.provider.error_rate = 1.0).await;
    let key = new_key();

    for attempt in 1..=2 {
        let failed = app.charge(Some(&key), &charge_body("u1")).await;
        assert_error(failed, 502, "provider_unavailable").await;
        assert_eq!(app.snapshot().await, (0, 0), "attempt {attempt}");
    }
    // Both attempts reached the provider: the first released the key.
    assert_eq!(app.provider_calls().await.error, 2);
}
