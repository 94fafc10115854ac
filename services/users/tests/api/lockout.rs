//! Failed logins per account and source: after the burst, `POST /sessions`
//! is 429 with `Retry-After` for that email from that address, even with
//! the right password, until the bucket refills; other addresses are not
//! held back, until the account's ceiling, and then only addresses the
//! account has logged in from are (`users::lockout`).
//!
//! Every 127.0.0.0/8 address is this machine on Linux: a client bound to
//! 127.0.0.2 is another source than one bound to 127.0.0.3.

use std::{net::IpAddr, time::Duration};

use http::{StatusCode, header};
use mesh::auth::{ClientAddress, TokenKeys, client_address};
use serde_json::json;
use sqlx::Row as _;
use users::model::RegisterRequest;

use crate::helpers::{TEST_SECRET, TestApp, assert_error, new_registration, spawn_app_with};

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

/// A client whose connections come from `ip`.
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/sessions"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// A login carrying `header` as the client-address header, as the
/// gateway (or a forger) sends it.
async fn login_as(app: &TestApp, header: &str, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/sessions"))
        .header(client_address::HEADER.as_str(), header)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `ip`, signed as the gateway signs it.
fn signed(ip: &str) -> String {
    ClientAddress::of(ip.parse().unwrap())
        .attest(&TokenKeys::new(TEST_SECRET.as_bytes()).unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let app = app().await;
    let ada = registered(&app).await;
    let stranger = from("127.0.0.2");
    for _ in 0..5 {
        let res = login_from(&app, &stranger, &ada.email, "not the password").await;
        assert_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // The stranger is held back, even with the right password...
    assert_locked(login_from(&app, &stranger, &ada.email, &ada.password).await).await;
    // ...and Ada, from her own address, is not.
    let res = login_from(&app, &from("127.0.0.3"), &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_gateways_signed_address_is_the_source_and_nothing_else_is() {
    let app = app().await;
    let ada = registered(&app).await;
    // Behind the gateway every login comes from its address; the signed
    // header tells the clients apart.
    for _ in 0..5 {
        let res = login_as(
            &app,
            &signed("203.0.113.66"),
            &ada.email,
            "not the password",
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_locked(login_as(&app, &signed("203.0.113.66"), &ada.email, &ada.password).await).await;
    let res = login_as(&app, &signed("198.51.100.7"), &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);

    // An address nobody signed is not believed: these failures count
    // against the connection's own address (127.0.0.4)...
    let direct = from("127.0.0.4");
    let forged = TokenKeys::new(b"someone-elses-secret-also-32-bytes-long").unwrap();
    for (header, times) in [
        ("192.0.2.99".to_owned(), 3),
        (
            ClientAddress::of("192.0.2.99".parse().unwrap())
                .attest(&forged)
                .unwrap(),
            2,
        ),
    ] {
        for _ in 0..times {
            let res = direct
                .post(app.url("/sessions"))
                .header(client_address::HEADER.as_str(), &header)
                .json(&json!({"email": ada.email, "password": "not the password"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert_locked(login_from(&app, &direct, &ada.email, &ada.password).await).await;
    // ...not against the address they named.
    let res = login_as(&app, &signed("192.0.2.99"), &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn past_the_account_ceiling_only_known_sources_may_try() {
    // Six failures per account from all sources (and none back during
    // the test), five per source.
    let app = spawn_app_with(&[
        "--login-account-failures-burst",
        "6",
        "--login-account-failure-replenish",
        "1h",
    ])
    .await;
    let ada = registered(&app).await;
    let home = from("127.0.0.3");
    let res = login_from(&app, &home, &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Three addresses, two guesses each: none is over its own burst.
    for i in 10..13 {
        let bot = from(&format!("127.0.0.{i}"));
        for _ in 0..2 {
            let res = login_from(&app, &bot, &ada.email, "not the password").await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    // The account is being guessed at from everywhere: a new address is
    // refused before the password is looked at, right or not...
    assert_locked(login_from(&app, &from("127.0.0.20"), &ada.email, &ada.password).await).await;
    assert_locked(login_from(&app, &from("127.0.0.21"), &ada.email, "a wrong guess").await).await;
    // ...and so is an email with no account, which knows no address.
    for i in 10..13 {
        let bot = from(&format!("127.0.0.{i}"));
        for _ in 0..2 {
            login_from(&app, &bot, "nobody@example.com", "not the password").await;
        }
    }
    assert_locked(
        login_from(
            &app,
            &from("127.0.0.20"),
            "nobody@example.com",
            "a wrong guess",
        )
        .await,
    )
    .await;
    // Ada at home logs in, and may even mistype first.
    let res = login_from(&app, &home, &ada.email, "a typo, surely").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = login_from(&app, &home, &ada.email, &ada.password).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_account_keeps_its_most_recent_sources_only() {
    let app = app().await;
    let ada = registered(&app).await;
    for i in 1..=10 {
        let res = login_from(
            &app,
            &from(&format!("127.0.1.{i}")),
            &ada.email,
            &ada.password,
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        // Distinct timestamps, so "most recent" is well defined.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // And again from one it knows: no new row.
    login_from(&app, &from("127.0.1.10"), &ada.email, &ada.password).await;
    let sources: Vec<String> = sqlx::query("SELECT source FROM login_sources ORDER BY source")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("source").unwrap())
        .collect();
    let expected: Vec<String> = (3..=10).map(|i| format!("127.0.1.{i}")).collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(sources, expected);
}
