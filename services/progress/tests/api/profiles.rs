//! `GET /users/{user_id}/profile`: the learner as users' `user.registered`
//! event made them known, to its owner only.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, caller, spawn_app, token_for};

#[tokio::test]
async fn the_owner_reads_their_profile_once_it_is_known() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(app.url("/users/alice/profile"))
        .bearer_auth(token_for("alice"))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "profile_not_found").await;
    let err = app
        .client
        .profile(&caller("alice"), "alice")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("profile_not_found"));

    // The row the `user.registered` consumer writes.
    sqlx::query(
        "INSERT INTO learner_profiles (user_id, display_name, registered_at, created_at) \
         VALUES ($1, $2, $3, $3)",
    )
    .bind("alice")
    .bind("Alice")
    .bind("2026-01-02T03:04:05.678Z")
    .execute(&app.db)
    .await
    .unwrap();

    let res = app
        .http
        .get(app.url("/users/alice/profile"))
        .bearer_auth(token_for("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], "alice");
    assert_eq!(body["display_name"], "Alice");
    // RFC 3339, as the schema's `date-time` says.
    assert_eq!(body["registered_at"], "2026-01-02T03:04:05.678Z");
    let profile = app.client.profile(&caller("alice"), "alice").await.unwrap();
    assert_eq!(profile.display_name, "Alice");

    // Bob cannot read it, through the client either.
    let err = app
        .client
        .profile(&caller("bob"), "alice")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(err.code(), Some("forbidden"));
}
