//! The public API through the gateway, with every service running as a
//! real process: authentication, users kept to their own data, bad input,
//! idempotent checkout, and the course page surviving a dead dependency.

use std::time::Duration;

use otlp_sink::span::{SpanKind, StatusCode as SpanStatus};
use serde_json::{Value, json};
use users::token::{AUDIENCE, Claims, ISSUER, TokenKeys};

use crate::support::{self, Otlp, TestSystem, trace_id_of};

const PAID_COURSE: &str = "c0001";

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn checkout(sys: &TestSystem, token: &str, course_id: &str, key: &str) -> (u16, Value) {
    send(sys.checkout(token, course_id, key)).await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_and_users_only_reach_their_own_data() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    let gw = sys.gateway();
    let (alice, alice_token) = sys.signed_up_user().await;
    let (_bob, bob_token) = sys.signed_up_user().await;
    let (status, bought) = checkout(&sys, &alice_token, PAID_COURSE, "alice-1").await;
    assert_eq!(status, 201, "{bought}");
    let payment_id = bought["payment"]["id"].as_str().unwrap();

    // No token, a malformed header, a tampered, expired, foreign-audience
    // or wrongly-signed token: 401 with a JSON error, never data.
    let keys = TokenKeys::new(users::config::DEV_JWT_SECRET.as_bytes()).unwrap();
    let mut expired = Claims::new(&alice, "Alice", now() - 7200, Duration::from_secs(60));
    expired.exp = now() - 3600;
    let mut wrong_audience = Claims::new(&alice, "Alice", now(), Duration::from_secs(600));
    wrong_audience.aud = "someone-else".into();
    let mut wrong_issuer = Claims::new(&alice, "Alice", now(), Duration::from_secs(600));
    wrong_issuer.iss = "evil".into();
    let other_keys = TokenKeys::new(&[7u8; 32]).unwrap();
    let mut tampered = alice_token.clone();
    tampered.pop();
    tampered.push(if alice_token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(wrong_issuer.aud, AUDIENCE);
    assert_ne!(wrong_issuer.iss, ISSUER);
    let bad_tokens = [
        tampered,
        keys.sign(&expired).unwrap(),
        keys.sign(&wrong_audience).unwrap(),
        keys.sign(&wrong_issuer).unwrap(),
        other_keys
            .sign(&Claims::new(
                &alice,
                "Alice",
                now(),
                Duration::from_secs(600),
            ))
            .unwrap(),
        "not-a-jwt".into(),
    ];
    let (status, body) = send(sys.http.get(format!("{gw}/api/me"))).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = send(
        sys.http
            .get(format!("{gw}/api/me"))
            .header("authorization", "Basic abc"),
    )
    .await;
    assert_error(status, &body, 401, "unauthorized");
    for token in &bad_tokens {
        for url in [
            format!("{gw}/api/me"),
            format!("{gw}/api/users/{alice}/enrollments"),
            format!("{gw}/api/payments/{payment_id}"),
        ] {
            let (status, body) = send(sys.http.get(&url).bearer_auth(token)).await;
            assert_error(status, &body, 401, "unauthorized");
        }
    }

    // Alice reads her own data.
    let (status, me) = send(
        sys.http
            .get(format!("{gw}/api/me"))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], alice.as_str());
    let (status, mine) = send(
        sys.http
            .get(format!("{gw}/api/users/{alice}/enrollments"))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);

    // Bob's valid token on every one of Alice's objects: 403, and no data.
    for (method, url) in [
        ("GET", format!("{gw}/api/users/{alice}/enrollments")),
        ("GET", format!("{gw}/api/users/{alice}/payments")),
        (
            "GET",
            format!("{gw}/api/users/{alice}/courses/{PAID_COURSE}/progress"),
        ),
        (
            "POST",
            format!(
                "{gw}/api/users/{alice}/courses/{PAID_COURSE}/lessons/{PAID_COURSE}-l01/complete"
            ),
        ),
        ("GET", format!("{gw}/api/payments/{payment_id}")),
    ] {
        let req = match method {
            "GET" => sys.http.get(&url),
            _ => sys.http.post(&url),
        };
        let (status, body) = send(req.bearer_auth(&bob_token)).await;
        assert_error(status, &body, 403, "forbidden");
        assert!(body.get("items").is_none() && body.get("id").is_none());
    }
    // Bob's attempt completed nothing for Alice.
    let (_, progress) = send(
        sys.http
            .get(format!(
                "{gw}/api/users/{alice}/courses/{PAID_COURSE}/progress"
            ))
            .bearer_auth(&alice_token),
    )
    .await;
    assert_eq!(progress["completed_lessons"], 0);
    sys.stop().await;
}

/// A correctly signed token for an account that does not exist (deleted,
/// or never made) buys nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_no_account_buys_nothing() {
    let sys = TestSystem::start(Otlp::Grpc, &[]).await;
    let course = sys.paid_course().await;
    let ghost = format!("ghost-{}", uuid::Uuid::new_v4().simple());
    let res = sys
        .checkout(
            &support::token_for(&ghost),
            course["id"].as_str().unwrap(),
            "ghost-1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
    let listed: Value = sys
        .http
        .get(format!("{}/users/{ghost}/payments", sys.url("payments")))
        .bearer_auth(support::token_for(&ghost))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "nothing charged");
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_rejects_bad_input_without_charging_and_replays_by_key() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    let gw = sys.gateway();
    let (user, token) = sys.signed_up_user().await;
    let url = format!("{gw}/api/checkout");

    let (status, body) = send(
        sys.http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"course_id": PAID_COURSE})),
    )
    .await;
    assert_error(status, &body, 400, "missing_idempotency_key");
    let (status, body) = checkout(&sys, &token, "no-such-course", "k-unknown").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = send(
        sys.http
            .post(&url)
            .bearer_auth(&token)
            .header("idempotency-key", "k-malformed")
            .header("content-type", "application/json")
            .body("{\"course_id\": "),
    )
    .await;
    assert_error(status, &body, 400, "invalid_json");
    let (status, body) = send(
        sys.http
            .post(&url)
            .bearer_auth(&token)
            .header("idempotency-key", "k-type")
            .json(&json!({"course_id": 42})),
    )
    .await;
    assert_error(status, &body, 422, "invalid_body");
    let (status, body) = send(
        sys.http
            .post(&url)
            .bearer_auth(&token)
            .header("idempotency-key", "k-extra")
            .json(&json!({"course_id": PAID_COURSE, "amount_cents": 1})),
    )
    .await;
    assert_error(status, &body, 422, "invalid_body");
    let (status, body) = send(
        sys.http
            .post(&url)
            .bearer_auth(&token)
            .header("idempotency-key", "k-big")
            .header("content-type", "application/json")
            .body(format!("{{\"course_id\": \"{}\"}}", "x".repeat(200_000))),
    )
    .await;
    assert_error(status, &body, 413, "body_too_large");
    let (status, body) = send(
        sys.http
            .post(&url)
            .header("idempotency-key", "k-anon")
            .json(&json!({"course_id": PAID_COURSE})),
    )
    .await;
    assert_error(status, &body, 401, "unauthorized");

    // None of that charged or enrolled anyone.
    let (_, payments) = send(
        sys.http
            .get(format!("{gw}/api/users/{user}/payments"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(payments["items"], json!([]));
    let (_, enrollments) = send(
        sys.http
            .get(format!("{gw}/api/users/{user}/enrollments"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(enrollments["items"], json!([]));

    // The same key twice: one charge, the same payment and enrollment; the
    // second answer says nothing new was bought.
    let (s1, first) = checkout(&sys, &token, PAID_COURSE, "k-once").await;
    let (s2, again) = checkout(&sys, &token, PAID_COURSE, "k-once").await;
    assert_eq!((s1, s2), (201, 200), "{first} {again}");
    assert_eq!(first["payment"]["id"], again["payment"]["id"]);
    assert_eq!(first["enrollment"]["id"], again["enrollment"]["id"]);
    // Buying an owned course again with a new key charges nothing either.
    let (s3, third) = checkout(&sys, &token, PAID_COURSE, "k-twice").await;
    assert_eq!(s3, 200, "{third}");
    assert_eq!(first["payment"]["id"], third["payment"]["id"]);
    let (_, payments) = send(
        sys.http
            .get(format!("{gw}/api/users/{user}/payments"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(payments["items"].as_array().unwrap().len(), 1);

    // Keys belong to their user: another user's identical key is a new
    // checkout, not a replay of (or a conflict with) this one.
    let (other, other_token) = sys.signed_up_user().await;
    let (status, theirs) = checkout(&sys, &other_token, PAID_COURSE, "k-once").await;
    assert_eq!(status, 201, "{theirs}");
    assert_eq!(theirs["payment"]["user_id"], other.as_str());
    assert_ne!(theirs["payment"]["id"], first["payment"]["id"]);
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_is_a_402_and_enrolls_nobody() {
    let sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "1"])],
    )
    .await;
    let (user, token) = sys.signed_up_user().await;
    let (status, body) = checkout(&sys, &token, PAID_COURSE, "k-declined").await;
    assert_error(status, &body, 402, "payment_declined");
    // The gateway passes on why, not just that.
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        ["insufficient_funds", "card_declined", "expired_card"].contains(&reason),
        "{body}"
    );
    let (_, enrollments) = send(
        sys.http
            .get(format!("{}/api/users/{user}/enrollments", sys.gateway()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(enrollments["items"], json!([]));
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_traceparent_starts_a_new_trace_instead_of_failing() {
    let sys = TestSystem::start(Otlp::Grpc, &[]).await;
    for bad in [
        "00-xyz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        &"0".repeat(600),
    ] {
        let res = sys
            .http
            .get(format!("{}/api/courses/{PAID_COURSE}", sys.gateway()))
            .header("traceparent", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "traceparent {bad:?}");
        let tr = res.headers()["traceresponse"].to_str().unwrap().to_owned();
        let trace_id = tr.split('-').nth(1).unwrap();
        assert_eq!(trace_id.len(), 32);
        assert_ne!(trace_id, "0".repeat(32));
        assert!(
            !bad.contains(trace_id),
            "a malformed traceparent is not continued: {bad}"
        );
    }
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_course_page_degrades_when_progress_is_down() {
    let mut sys = TestSystem::start(
        Otlp::Grpc,
        &[("payments", &["--provider-decline-rate", "0"])],
    )
    .await;
    let gw = sys.gateway();
    let (user, token) = sys.signed_up_user().await;
    let page_url = format!("{gw}/api/courses/{PAID_COURSE}/page");

    // Anonymous: the course, no progress lookup.
    let (status, page) = send(sys.http.get(&page_url)).await;
    assert_eq!(status, 200);
    assert_eq!(page["course"]["id"], PAID_COURSE);
    assert_eq!(page["progress"], Value::Null);
    assert_eq!(page["enrolled"], Value::Null);
    // Signed in, not enrolled.
    let (_, page) = send(sys.http.get(&page_url).bearer_auth(&token)).await;
    assert_eq!(page["enrolled"], false);
    // Enrolled, one lesson done: lessons open once payments' event has
    // made the enrollment active.
    assert_eq!(checkout(&sys, &token, PAID_COURSE, "k-page").await.0, 201);
    support::wait_active(&sys, &user, PAID_COURSE).await;
    let (status, progress) = send(
        sys.http
            .post(format!(
                "{gw}/api/users/{user}/courses/{PAID_COURSE}/lessons/{PAID_COURSE}-l01/complete"
            ))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200, "{progress}");
    let (_, page) = send(sys.http.get(&page_url).bearer_auth(&token)).await;
    assert_eq!(page["enrolled"], true);
    assert_eq!(page["progress"]["completed_lessons"], 1);
    assert_eq!(page["degraded"], json!([]));

    // progress crashes: the page still renders, says what is missing, and
    // the trace shows the failed call.
    sys.system.kill("progress").await.unwrap();
    let res = sys
        .http
        .get(&page_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trace_id = trace_id_of(&res);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["course"]["id"], PAID_COURSE);
    assert_eq!(page["progress"], Value::Null);
    assert_eq!(page["enrolled"], Value::Null);
    assert_eq!(page["degraded"], json!(["progress"]));

    let spans = sys
        .receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans.iter().any(|s| {
                s.trace_id == trace_id
                    && s.kind == SpanKind::Client
                    && s.attr_str("peer.service") == Some("progress")
            }) && ["gateway", "courses"].iter().all(|svc| {
                spans.iter().any(|s| {
                    s.trace_id == trace_id && s.service_name == *svc && s.kind == SpanKind::Server
                })
            })
        })
        .await
        .expect("the degraded page's trace is exported");
    let failed = spans
        .iter()
        .find(|s| {
            s.trace_id == trace_id
                && s.kind == SpanKind::Client
                && s.attr_str("peer.service") == Some("progress")
        })
        .unwrap();
    assert_eq!(failed.status.code, SpanStatus::Error);
    assert_eq!(failed.attr_str("error.type"), Some("connect"));
    assert_eq!(failed.attr_i64("http.response.status_code"), None);
    let root = spans
        .iter()
        .find(|s| {
            s.trace_id == trace_id && s.service_name == "gateway" && s.kind == SpanKind::Server
        })
        .unwrap();
    assert_eq!(root.attr_i64("http.response.status_code"), Some(200));

    // And the edge metric counts the failed call as served by a fallback
    // (no status: no response), not as an error.
    let scrape = sys.scrape("gateway").await;
    let progress_calls = |outcome| {
        scrape.sum(
            "http_client_request_duration_seconds_count",
            &[
                ("destination", "progress"),
                ("status", "0"),
                ("outcome", outcome),
            ],
        )
    };
    assert!(progress_calls("fallback") >= 1.0);
    assert_eq!(progress_calls("error"), 0.0);

    // A user-scoped route that needs progress answers 503, not 500.
    let (status, body) = send(
        sys.http
            .get(format!("{gw}/api/users/{user}/enrollments"))
            .bearer_auth(&token),
    )
    .await;
    assert_error(status, &body, 503, "dependency_unavailable");
    // That call had no fallback: it is an error on the edge.
    let scrape = sys.scrape("gateway").await;
    assert!(
        scrape.sum(
            "http_client_request_duration_seconds_count",
            &[("destination", "progress"), ("outcome", "error")],
        ) >= 1.0
    );
    sys.stop().await;
}
