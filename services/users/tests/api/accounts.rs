//! `POST /users` and `GET /users/{user_id}`.

use http::StatusCode;
use serde_json::{Value, json};
use users::model::{RegisterRequest, User};

use crate::helpers::{assert_error, new_registration, spawn_app, to_json};

#[tokio::test]
async fn register_returns_the_profile_and_never_the_hash() {
    let app = spawn_app().await;
    let res = app
        .register(&json!({
            "email": "  Ada.Lovelace@Example.COM ",
            "display_name": "  Ada Lovelace ",
            "password": "analytical engine",
        }))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res
        .headers()
        .get(http::header::LOCATION)
        .expect("Location header")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let body: Value = res.json().await.expect("JSON");
    let fields: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["created_at", "display_name", "email", "id"]);
    assert_eq!(body["email"], "ada.lovelace@example.com");
    assert_eq!(body["display_name"], "Ada Lovelace");
    let user: User = serde_json::from_value(body).expect("a User");
    assert_eq!(location, format!("/users/{}", user.id));
    assert_eq!(app.user_count().await, 1);

    // The stored hash is Argon2id with the documented parameters.
    let stored: String = sqlx::query("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .and_then(|row| sqlx::Row::try_get(&row, "password_hash"))
        .expect("hash");
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!stored.contains("analytical engine"));
}

#[tokio::test]
async fn a_registered_user_can_be_fetched() {
    let app = spawn_app().await;
    let created = app
        .client
        .register(&new_registration())
        .await
        .expect("registered");
    let fetched = app
        .client
        .get(&app.caller(&created.id), &created.id)
        .await
        .expect("fetched");
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn an_unknown_user_is_404() {
    let app = spawn_app().await;
    // A valid token whose account is gone (or never was).
    let gone = "0190f0e0-0000-7000-8000-000000000000";
    let err = app
        .client
        .get(&app.caller(gone), gone)
        .await
        .expect_err("no such user");
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.code(), Some("not_found"));
    // An id that would be a path of its own is one (escaped) segment.
    let err = app
        .client
        .get(&app.caller("../sessions"), "../sessions")
        .await
        .expect_err("no such user");
    assert_eq!(err.code(), Some("not_found"));
}

#[tokio::test]
async fn a_duplicate_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    let first = new_registration();
    app.client.register(&first).await.expect("first sign-up");
    let again = RegisterRequest {
        email: format!("  {} ", first.email.to_uppercase()),
        display_name: "Someone Else".to_owned(),
        password: "another password".to_owned(),
    };
    let res = app.register(&to_json(&again)).await;
    assert_error(res, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn look_alike_emails_are_one_account() {
    let app = spawn_app().await;
    let res = app
        .register(
            &json!({"email": "ada@example.com", "display_name": "Ada", "password": "long enough"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Fullwidth letters and at sign: the same address once normalised.
    for look_alike in [
        "\u{FF21}da@example.com",
        "\u{FF41}\u{FF44}\u{FF41}\u{FF20}example.com",
        "ada@\u{FF45}xample.com",
    ] {
        let res = app
            .register(
                &json!({"email": look_alike, "display_name": "Eve", "password": "long enough"}),
            )
            .await;
        assert_error(res, StatusCode::CONFLICT, "email_taken").await;
    }
    // Invisible characters are refused outright.
    for (hidden, code_point) in [
        ("ada@examp\u{200B}le.com", "U+200B"),
        ("ada\u{00AD}@example.com", "U+00AD"),
        ("ada@example.com\u{202E}", "U+202E"),
    ] {
        let res = app
            .register(&json!({"email": hidden, "display_name": "Eve", "password": "long enough"}))
            .await;
        let message = assert_error(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invisible_characters",
        )
        .await;
        assert!(
            message.starts_with("email ") && message.contains(code_point),
            "{message}"
        );
    }
    assert_eq!(app.user_count().await, 1);
    // The fullwidth spelling logs in to the account, as its owner typed it.
    let res = app
        .login(&json!({"email": "\u{FF21}DA@example.com", "password": "long enough"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn display_names_are_normalised_and_never_reorder_or_hide_text() {
    let app = spawn_app().await;
    let register = |name: &str| {
        let mut request = to_json(&new_registration());
        request["display_name"] = Value::from(name);
        request
    };
    let res = app.register(&register("\u{FF21}da \u{FB01}sher")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: User = res.json().await.unwrap();
    assert_eq!(user.display_name, "Ada fisher");
    for (name, code) in [
        ("\u{202E}nimda", "invisible_characters"),
        ("Ada\u{2066}", "invisible_characters"),
        ("Ad\u{200B}a", "invisible_characters"),
        ("\u{200D}\u{FE0F}", "invalid_input"),
        (&"\u{FDFA}".repeat(4), "invalid_input"),
    ] {
        let res = app.register(&register(name)).await;
        let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert!(message.starts_with("display_name "), "{message}");
    }
    // Emoji and scripts that need joiners keep them.
    let res = app
        .register(&register("\u{1F469}\u{200D}\u{1F4BB} Ada"))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_create_one_account() {
    let app = spawn_app().await;
    let request = to_json(&new_registration());
    let attempts = futures::future::join_all((0..8).map(|_| app.register(&request))).await;
    let mut created = 0;
    let mut taken = 0;
    for res in attempts {
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_error(res, StatusCode::CONFLICT, "email_taken").await;
                taken += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, taken), (1, 7));
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn invalid_fields_are_422_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            "email",
            json!({"email": "", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "email",
            json!({"email": "ada.example.com", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "email",
            json!({"email": "ada@@example.com", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "email",
            json!({"email": "@example.com", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "email",
            json!({"email": "ada@localhost", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "email",
            json!({"email": "ada lovelace@example.com", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "email",
            json!({"email": format!("{}@example.com", "a".repeat(250)), "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "display_name",
            json!({"email": "ada@example.com", "display_name": "   ", "password": "long enough"}),
        ),
        (
            "display_name",
            json!({"email": "ada@example.com", "display_name": "x".repeat(65), "password": "long enough"}),
        ),
        (
            "display_name",
            json!({"email": "ada@example.com", "display_name": "Ada\u{1b}[31m", "password": "long enough"}),
        ),
        (
            "password",
            json!({"email": "ada@example.com", "display_name": "Ada", "password": "short"}),
        ),
        (
            "password",
            json!({"email": "ada@example.com", "display_name": "Ada", "password": "x".repeat(129)}),
        ),
        // NUL: PostgreSQL `text` cannot store it, so it must be a 422
        // before any query, not a 500 from the database.
        (
            "email",
            json!({"email": "ada\u{0}@example.com", "display_name": "Ada", "password": "long enough"}),
        ),
        (
            "display_name",
            json!({"email": "ada@example.com", "display_name": "Ada\u{0}", "password": "long enough"}),
        ),
        (
            "password",
            json!({"email": "ada@example.com", "display_name": "Ada", "password": "long\u{0}enough"}),
        ),
        (
            "display_name",
            json!({"email": "ada@example.com", "display_name": "Ada\u{7}Lovelace", "password": "long enough"}),
        ),
    ];
    for (field, body) in cases {
        let res = app.register(&body).await;
        let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
        assert!(message.starts_with(field), "{body}: {message}");
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn malformed_requests_get_json_errors_and_change_nothing() {
    let app = spawn_app().await;
    let valid = to_json(&new_registration());

    let res = app
        .post_raw("/users", "application/json", "{\"email\":")
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_json").await;

    let res = app
        .register(&json!({"email": "ada@example.com", "password": "long enough"}))
        .await;
    let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert!(message.contains("display_name"), "{message}");

    let mut wrong_type = valid.clone();
    wrong_type["display_name"] = json!(42);
    let res = app.register(&wrong_type).await;
    assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    let mut unknown_field = valid.clone();
    unknown_field["is_admin"] = json!(true);
    let res = app.register(&unknown_field).await;
    let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert!(message.contains("is_admin"), "{message}");

    let res = app
        .post_raw("/users", "text/plain", valid.to_string())
        .await;
    assert_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    let mut huge = valid.clone();
    huge["display_name"] = json!("x".repeat(100 * 1024));
    let res = app.register(&huge).await;
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;

    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = spawn_app().await;
    assert_error(
        app.get("/nope").await,
        StatusCode::NOT_FOUND,
        "route_not_found",
    )
    .await;
    assert_error(
        app.get("/sessions").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}
