//! `POST /sessions`: login.

use http::StatusCode;
use serde_json::json;
use users::model::LoginRequest;

use crate::helpers::{self, TEST_TOKEN_TTL_SECS, assert_error, new_registration, spawn_app};

#[tokio::test]
async fn register_then_login_then_fetch_the_profile() {
    let app = spawn_app().await;
    let registration = new_registration();
    let user = app
        .client
        .register(&registration)
        .await
        .expect("registered");

    let res = app
        .login(&json!({
            // Login normalises the email the same way sign-up did.
            "email": format!(" {} ", registration.email.to_uppercase()),
            "password": registration.password,
        }))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get(http::header::CACHE_CONTROL)
            .map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let session: users::model::Session = res.json().await.expect("a Session");
    assert_eq!(session.token_type, "Bearer");
    assert_eq!(session.expires_in, TEST_TOKEN_TTL_SECS);
    assert_eq!(session.user_id, user.id);

    let claims = app
        .tokens
        .verify(&session.access_token)
        .expect("token verifies");
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.name, user.display_name);
    assert_eq!(claims.iss, users::token::ISSUER);
    assert_eq!(claims.aud, users::token::AUDIENCE);
    assert_eq!(claims.exp - claims.iat, TEST_TOKEN_TTL_SECS);

    // The token just issued reads its own profile.
    let caller = helpers::Caller::verify(&app.tokens, &session.access_token).expect("a caller");
    let profile = app.client.get(&caller, &claims.sub).await.expect("profile");
    assert_eq!(profile, user);
}

#[tokio::test]
async fn the_typed_client_logs_in() {
    let app = spawn_app().await;
    let registration = new_registration();
    let user = app
        .client
        .register(&registration)
        .await
        .expect("registered");
    let session = app
        .client
        .login(
            &LoginRequest {
                email: registration.email,
                password: registration.password,
            },
            None,
        )
        .await
        .expect("logged in");
    assert_eq!(session.user_id, user.id);
    assert!(!format!("{session:?}").contains(&session.access_token));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    let registration = new_registration();
    app.client
        .register(&registration)
        .await
        .expect("registered");

    let wrong_password = app
        .login(&json!({"email": registration.email, "password": "not the password"}))
        .await;
    let wrong_password = assert_error(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;

    let unknown_email = app
        .login(&json!({"email": "nobody@example.com", "password": registration.password}))
        .await;
    let unknown_email = assert_error(
        unknown_email,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;

    let unparseable_email = app
        .login(&json!({"email": "not an email", "password": registration.password}))
        .await;
    let unparseable_email = assert_error(
        unparseable_email,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;

    assert_eq!(wrong_password, unknown_email);
    assert_eq!(wrong_password, unparseable_email);
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn typed_client_reports_the_401_code() {
    let app = spawn_app().await;
    let err = app
        .client
        .login(
            &LoginRequest {
                email: "nobody@example.com".to_owned(),
                password: "whatever it is".to_owned(),
            },
            None,
        )
        .await
        .expect_err("no such account");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(err.code(), Some("invalid_credentials"));
}

#[tokio::test]
async fn malformed_logins_get_json_errors() {
    let app = spawn_app().await;
    let res = app
        .post_raw("/sessions", "application/json", "not json")
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_json").await;

    let res = app.login(&json!({"email": "ada@example.com"})).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    let res = app
        .login(&json!({"email": "ada@example.com", "password": 12345678}))
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    let res = app
        .login(&json!({"email": "ada@example.com", "password": "long enough", "remember": true}))
        .await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // Values no account can have: 422 before any lookup or hash.
    for body in [
        json!({"email": "ada@example.com", "password": "short"}),
        json!({"email": "ada@example.com", "password": "x".repeat(129)}),
        json!({"email": "ada@example.com", "password": "long\u{0}enough"}),
        json!({"email": "ada\u{0}@example.com", "password": "long enough"}),
        json!({"email": format!("{}@example.com", "a".repeat(250)), "password": "long enough"}),
    ] {
        let res = app.login(&body).await;
        assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    }

    let res = app
        .post_raw(
            "/sessions",
            "application/x-www-form-urlencoded",
            "email=a&password=b",
        )
        .await;
    assert_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    let res = app
        .login(&json!({"email": "ada@example.com", "password": "x".repeat(100 * 1024)}))
        .await;
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;

    assert_eq!(app.user_count().await, 0);
}
