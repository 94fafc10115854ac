//! The typed client other services use, against the real server.

use payments::{
    client::is_declined,
    model::{ChargeRequest, PaymentStatus},
};

use crate::helpers::{caller, new_key, spawn_app, spawn_app_with};

fn request(user_id: &str) -> ChargeRequest {
    ChargeRequest {
        user_id: user_id.to_owned(),
        course_id: "c0042".to_owned(),
        amount_cents: 1999,
        currency: "USD".to_owned(),
    }
}

#[tokio::test]
async fn the_client_charges_replays_gets_and_lists() {
    let app = spawn_app().await;
    let client = app.client();
    let key = new_key();
    let u7 = caller("u7");

    let first = client
        .charge(&u7, &key, &request("u7"))
        .await
        .expect("charged");
    assert!(!first.replayed);
    assert_eq!(first.payment.status, PaymentStatus::Captured);
    assert_eq!(first.payment.amount_cents, 1999);

    let again = client
        .charge(&u7, &key, &request("u7"))
        .await
        .expect("replayed");
    assert!(again.replayed);
    assert_eq!(again.payment, first.payment);

    let read = client.get(&u7, &first.payment.id).await.expect("read");
    assert_eq!(read, first.payment);
    let listed = client.list_for_user(&u7, "u7").await.expect("listed");
    assert_eq!(listed, vec![first.payment]);
    // Ids are path-escaped: this is one (unknown) user, not another route.
    assert_eq!(
        client
            .list_for_user(&caller("u7/../x"), "u7/../x")
            .await
            .expect("listed"),
        vec![]
    );

    let missing = client.get(&u7, "nope").await.expect_err("404");
    assert_eq!(missing.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(missing.code(), Some("not_found"));

    let mut other = request("u7");
    other.amount_cents = 1;
    let reused = client.charge(&u7, &key, &other).await.expect_err("422");
    assert_eq!(reused.code(), Some("idempotency_key_reused"));
    assert!(!is_declined(&reused));
}

#[tokio::test]
async fn the_client_tells_a_decline_apart() {
    let app = spawn_app_with(|c| c.provider.decline_rate = 1.0).await;
    let error = app
        .client()
        .charge(&caller("u7"), &new_key(), &request("u7"))
        .await
        .expect_err("declined");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(402));
    assert!(is_declined(&error), "{error}");
}
