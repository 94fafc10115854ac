//! Failed logins per account: after the burst, `POST /sessions` is 429
//! with `Retry-After` for that email, even with the right password, until
//! the bucket refills (`users::lockout`).

mod helpers;

use std::time::Duration;

use helpers::{TestApp, assert_error, new_registration, spawn_app_with};
use http::{StatusCode, header};
use serde_json::json;
use users::model::RegisterRequest;

/// Short enough to wait out in a test, long enough that no failure's
/// worth refills while the five failures (each an Argon2id hash, slower
/// with other tests hashing in parallel) are made: the bucket is empty
/// from the 5th failure until one period after the 1st.
const REPLENISH: Duration = Duration::from_secs(2);

/// The default limit (5 failures, then one a minute).
async fn app() -> TestApp {
    spawn_app_with(&["--login-failures-burst", "5"]).await
}

async fn registered(app: &TestApp) -> RegisterRequest {
    let registration = new_registration();
    app.client
        .register(&registration)
        .await
        .expect("registered");
    registration
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.login(&json!({"email": email, "password": password}))
        .await
}

async fn assert_locked(res: reqwest::Response) {
    let retry_after: u64 = res
        .headers()
        .get(header::RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn five_failures_lock_the_account_until_the_bucket_refills() {
    let app = spawn_app_with(&["--login-failure-replenish", "2s"]).await;
    let ada = registered(&app).await;
    let bob = registered(&app).await;

    for _ in 0..5 {
        let res = login(&app, &ada.email, "not the password").await;
        assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // The 6th attempt is refused before the password is looked at: the
    // right one does not get in either, in any case of the email.
    assert_locked(login(&app, &ada.email, &ada.password).await).await;
    assert_locked(
        login(
            &app,
            &format!(" {} ", ada.email.to_uppercase()),
            &ada.password,
        )
        .await,
    )
    .await;

    // Another account is not held back.
    let res = login(&app, &bob.email, &bob.password).await;
    assert_eq!(res.status(), StatusCode::OK);

    // One failure's worth later, the right password works.
    tokio::time::sleep(REPLENISH).await;
    let res = login(&app, &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn successes_take_nothing_from_the_bucket() {
    let app = app().await;
    let ada = registered(&app).await;
    for _ in 0..4 {
        let res = login(&app, &ada.email, "not the password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..3 {
        let res = login(&app, &ada.email, &ada.password).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The fifth failure is still allowed, and empties the bucket.
    let res = login(&app, &ada.email, "not the password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_locked(login(&app, &ada.email, &ada.password).await).await;
}

#[tokio::test]
async fn unknown_emails_are_held_back_like_accounts() {
    let app = app().await;
    for _ in 0..5 {
        let res = login(&app, "nobody@example.com", "some password").await;
        assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    assert_locked(login(&app, "Nobody@Example.com", "some password").await).await;
    // So are emails that are not addresses at all.
    for _ in 0..5 {
        let res = login(&app, "not an email", "some password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_locked(login(&app, "not an email", "some password").await).await;
}

#[tokio::test]
async fn requests_out_of_bounds_do_not_count() {
    let app = app().await;
    let ada = registered(&app).await;
    for _ in 0..10 {
        let res = login(&app, &ada.email, "short").await;
        assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    }
    let res = login(&app, &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_zero_burst_disables_the_limit() {
    let app = spawn_app_with(&["--login-failures-burst", "0"]).await;
    let ada = registered(&app).await;
    for _ in 0..8 {
        let res = login(&app, &ada.email, "not the password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login(&app, &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);
}
