//! Every bad input gets a clear JSON 4xx and changes nothing stored.

use serde_json::{Value, json};

use crate::helpers::{self, TestApp, assert_error, charge_body, new_key, spawn_app};

/// Asserts `response` is the error and no row was written since `before`,
/// and that the provider was never called.
async fn assert_rejected(
    app: &TestApp,
    before: (i64, i64),
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> Value {
    let body = assert_error(response, status, code).await;
    assert_eq!(app.snapshot().await, before, "nothing stored for {code}");
    assert_eq!(
        app.provider_calls().await.total(),
        0,
        "no provider call for {code}"
    );
    body
}

#[tokio::test]
async fn a_charge_without_an_idempotency_key_is_400() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let response = app.charge(None, &charge_body("u1")).await;
    assert_rejected(&app, before, response, 400, "missing_idempotency_key").await;
    // The key is checked before the body.
    let response = app
        .charge_raw(None, Some("application/json"), "{not json")
        .await;
    assert_rejected(&app, before, response, 400, "missing_idempotency_key").await;
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_400() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let too_long = "k".repeat(256);
    for key in ["", "has space", "tab\there", too_long.as_str()] {
        let response = app.charge(Some(key), &charge_body("u1")).await;
        assert_rejected(&app, before, response, 400, "invalid_idempotency_key").await;
    }

    // Non-ASCII bytes (obs-text is legal in a header, not in a key).
    let response = app
        .http
        .post(app.url(helpers::PAYMENTS))
        .bearer_auth(helpers::token_for("u1"))
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).expect("obs-text"),
        )
        .json(&charge_body("u1"))
        .send()
        .await
        .expect("sent");
    assert_rejected(&app, before, response, 400, "invalid_idempotency_key").await;

    // Two keys on one request: which one would count?
    let response = app
        .http
        .post(app.url(helpers::PAYMENTS))
        .bearer_auth(helpers::token_for("u1"))
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&charge_body("u1"))
        .send()
        .await
        .expect("sent");
    assert_rejected(&app, before, response, 400, "invalid_idempotency_key").await;

    // The longest valid key is accepted.
    let longest = "k".repeat(255);
    let response = app.charge(Some(&longest), &charge_body("u1")).await;
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let response = app
        .charge_raw(Some(&new_key()), Some("application/json"), "{\"user_id\": ")
        .await;
    assert_rejected(&app, before, response, 400, "invalid_json").await;
}

#[tokio::test]
async fn missing_unknown_or_wrongly_typed_fields_are_422() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let bodies = [
        json!({"user_id": "u1", "course_id": "c0001", "currency": "USD"}),
        json!({"user_id": "u1", "course_id": "c0001", "amount_cents": "4900", "currency": "USD"}),
        json!({"user_id": "u1", "course_id": "c0001", "amount_cents": 49.5, "currency": "USD"}),
        json!({"user_id": 7, "course_id": "c0001", "amount_cents": 4900, "currency": "USD"}),
        json!({"user_id": "u1", "course_id": "c0001", "amount_cents": 4900, "currency": "USD", "coupon": "FREE"}),
        json!(["u1", "c0001", 4900, "USD"]),
    ];
    for body in &bodies {
        let response = app.charge(Some(&new_key()), body).await;
        let error = assert_rejected(&app, before, response, 422, "invalid_body").await;
        assert!(
            !error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn invalid_values_are_422() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let long_id = "u".repeat(65);
    let cases = [
        ("amount_cents", json!(0)),
        ("amount_cents", json!(-100)),
        ("amount_cents", json!(1_000_001)),
        ("currency", json!("usd")),
        ("currency", json!("US")),
        ("currency", json!("DOLLARS")),
        ("user_id", json!("")),
        ("user_id", json!(long_id)),
        ("course_id", json!("")),
    ];
    for (field, value) in cases {
        let mut body = charge_body("u1");
        body[field] = value;
        let response = app.charge(Some(&new_key()), &body).await;
        let error = assert_rejected(&app, before, response, 422, "invalid_input").await;
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{message:?} names {field}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let body = charge_body("u1").to_string();
    let response = app
        .charge_raw(Some(&new_key()), Some("text/plain"), body.clone())
        .await;
    assert_rejected(&app, before, response, 415, "unsupported_media_type").await;
    let response = app.charge_raw(Some(&new_key()), None, body).await;
    assert_rejected(&app, before, response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let mut body = charge_body("u1");
    body["user_id"] = json!("u".repeat(70 * 1024));
    let response = app
        .charge_raw(Some(&new_key()), Some("application/json"), body.to_string())
        .await;
    assert_rejected(&app, before, response, 413, "body_too_large").await;
}

#[tokio::test]
async fn listing_with_an_impossible_user_id_is_422() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let response = app
        .get(&format!("/users/{}/payments", "u".repeat(65)))
        .await;
    assert_rejected(&app, before, response, 422, "invalid_input").await;
}

/// PostgreSQL text cannot hold NUL: an id with one must be refused before
/// a query, or it is a 500 (`TEST_DATABASE_URL` runs this on PostgreSQL).
#[tokio::test]
async fn path_ids_with_control_characters_or_over_64_characters_are_422() {
    let app = spawn_app().await;
    let response = app.charge(Some(&new_key()), &charge_body("u1")).await;
    assert_eq!(response.status(), 201);
    let before = app.snapshot().await;
    let long = "p".repeat(65);
    for id in ["a%00b", "a%01b", "a%7Fb", "%C2%85", long.as_str()] {
        let response = app.get(&format!("/payments/{id}")).await;
        assert_error(response, 422, "invalid_input").await;
        let response = app.refund(id).await;
        assert_error(response, 422, "invalid_input").await;
    }
    for user in ["u1%00", "u1%0A"] {
        let response = app.get(&format!("/users/{user}/payments")).await;
        assert_error(response, 422, "invalid_input").await;
    }
    // The longest possible id is merely unknown.
    let response = app.get(&format!("/payments/{}", "p".repeat(64))).await;
    assert_error(response, 404, "not_found").await;
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.count("outbox").await, 1, "only the capture's event");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let response = app.get("/refunds").await;
    assert_rejected(&app, before, response, 404, "route_not_found").await;
    let response = app
        .http
        .delete(app.url("/payments/some-id"))
        .send()
        .await
        .expect("sent");
    assert_rejected(&app, before, response, 405, "method_not_allowed").await;
}
