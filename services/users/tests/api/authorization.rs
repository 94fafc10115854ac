//! `GET /users/{user_id}` answers only its owner's token (OWASP API1:2023):
//! every other token, or none, is refused, with none of the profile in the
//! answer. What makes a token valid is tested in `tokens.rs`; this checks
//! that the route refuses each kind of invalid one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{StatusCode, header};
use users::{
    model::User,
    token::{Claims, TokenKeys},
};

use crate::helpers::{self, TestApp, assert_error, new_registration, spawn_app};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

async fn registered(app: &TestApp) -> User {
    app.client
        .register(&new_registration())
        .await
        .expect("registered")
}

/// Asserts a 401 `unauthorized` with its challenge, and that nothing of
/// `user` is in the body.
async fn assert_unauthorized(res: reqwest::Response, user: &User, what: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        res.headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().expect("ASCII")),
        Some(r#"Bearer realm="learnsphere""#),
        "{what}"
    );
    let body = res.text().await.expect("body");
    assert!(!body.contains(&user.email), "{what}: {body}");
    let body: mesh::ErrorBody = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(body.error.code, "unauthorized", "{what}");
}

#[tokio::test]
async fn without_a_token_a_profile_is_401_with_a_challenge() {
    let app = spawn_app().await;
    let user = registered(&app).await;
    let res = app.get(&format!("/users/{}", user.id)).await;
    assert_unauthorized(res, &user, "no token").await;

    for malformed in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token"] {
        let res = app
            .http
            .get(app.url(&format!("/users/{}", user.id)))
            .header(header::AUTHORIZATION, malformed)
            .send()
            .await
            .expect("request sent");
        assert_unauthorized(res, &user, malformed).await;
    }
}

#[tokio::test]
async fn another_users_token_is_403_and_reveals_nothing() {
    let app = spawn_app().await;
    let ada = registered(&app).await;
    let bob = registered(&app).await;

    let bobs = app.caller(&bob.id);
    let res = app
        .get_with_token(&format!("/users/{}", ada.id), bobs.token())
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = res.text().await.expect("body");
    for (what, secret) in [
        ("email", ada.email.as_str()),
        ("display name", ada.display_name.as_str()),
        ("created_at", &ada.created_at.to_rfc3339()),
    ] {
        assert!(!body.contains(secret), "Ada's {what} in {body}");
    }
    let body: mesh::ErrorBody = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(body.error.code, "forbidden");

    // The same answer for a user that does not exist: a 403 does not tell
    // whether an id has an account.
    let res = app
        .get_with_token("/users/0190f0e0-0000-7000-8000-000000000000", bobs.token())
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // The typed client reports it, and Bob still reads his own profile.
    let err = app
        .client
        .get(&bobs, &ada.id)
        .await
        .expect_err("Ada's profile");
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(err.code(), Some("forbidden"));
    assert_eq!(app.client.get(&bobs, &bob.id).await.expect("own"), bob);
}

#[tokio::test]
async fn invalid_tokens_are_401() {
    let app = spawn_app().await;
    let user = registered(&app).await;
    let keys = &app.tokens;
    let claims = || {
        Claims::new(
            &user.id,
            &user.display_name,
            now(),
            Duration::from_secs(600),
        )
    };
    let valid = keys.sign(&claims()).expect("signed");

    let tampered = {
        // Another subject's payload under this token's signature.
        let other = keys
            .sign(&Claims::new(
                "someone-else",
                "Eve",
                now(),
                Duration::from_secs(600),
            ))
            .expect("signed");
        let mut parts: Vec<&str> = valid.split('.').collect();
        parts[1] = other.split('.').nth(1).expect("payload");
        parts.join(".")
    };
    let other_secret = TokenKeys::new(b"someone-elses-secret-also-32-bytes-long")
        .expect("keys")
        .sign(&claims())
        .expect("signed");
    // {"alg":"none","typ":"JWT"}, the payload, no signature.
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        valid.split('.').nth(1).expect("payload")
    );
    let cases = [
        (
            // Beyond the 30 s leeway for clock skew.
            "expired",
            keys.sign(&Claims {
                iat: now() - 600,
                exp: now() - 60,
                ..claims()
            })
            .expect("signed"),
        ),
        ("tampered", tampered),
        (
            "wrong audience",
            keys.sign(&Claims {
                aud: "some-other-platform".to_owned(),
                ..claims()
            })
            .expect("signed"),
        ),
        (
            "wrong issuer",
            keys.sign(&Claims {
                iss: "someone-else".to_owned(),
                ..claims()
            })
            .expect("signed"),
        ),
        ("another secret", other_secret),
        ("alg none", unsigned),
        ("garbage", "not.a.token".to_owned()),
        (
            // Correctly signed, but good for 177 years.
            "expires in 2200",
            keys.sign(&Claims {
                exp: 7_258_118_400,
                ..claims()
            })
            .expect("signed"),
        ),
        (
            // Longer than this server's TOKEN_TTL (900 s) plus the leeway.
            "lifetime over TOKEN_TTL",
            keys.sign(&Claims {
                exp: now() + helpers::TEST_TOKEN_TTL_SECS + 31,
                ..claims()
            })
            .expect("signed"),
        ),
        (
            "issued in the future",
            keys.sign(&Claims {
                iat: now() + 600,
                exp: now() + 1200,
                ..claims()
            })
            .expect("signed"),
        ),
        (
            "no iat",
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &serde_json::json!({
                    "sub": user.id, "name": user.display_name,
                    "iss": users::token::ISSUER, "aud": users::token::AUDIENCE,
                    "exp": now() + 600,
                }),
                &jsonwebtoken::EncodingKey::from_secret(helpers::TEST_SECRET.as_bytes()),
            )
            .expect("signed"),
        ),
    ];
    for (what, token) in cases {
        let res = app
            .get_with_token(&format!("/users/{}", user.id), &token)
            .await;
        assert_unauthorized(res, &user, what).await;
    }

    // The valid one, for contrast.
    let res = app
        .get_with_token(&format!("/users/{}", user.id), &valid)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<User>().await.expect("a User"), user);
}

#[tokio::test]
async fn sign_up_and_login_need_no_token() {
    let app = spawn_app().await;
    let registration = new_registration();
    let res = app.register(&helpers::to_json(&registration)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .login(&serde_json::json!({"email": registration.email, "password": registration.password}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}
