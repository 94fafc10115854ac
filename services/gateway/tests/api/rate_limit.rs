//! The per-client rate limit, through the real gateway on a socket: a
//! client over its burst gets 429 with `Retry-After` and our JSON error,
//! other clients (other users, other addresses) keep their own buckets,
//! and every refusal is counted by route.
//!
//! The routes used answer without calling a service (401 without a
//! token, 403 for another user's data), so no other service runs. The
//! rate is one request per 1000 s: the burst is all a client has for the
//! length of the test, whatever the machine's speed.

use std::{net::IpAddr, time::Duration};

use clap::Parser as _;
use gateway::Config;
use mesh::{ServiceIdentity, testing::RunningServer};
use reqwest::{Client, Response, StatusCode, header};
use serde_json::Value;
use users::token::TokenKeys;

const BURST: u32 = 3;

struct Gateway {
    server: RunningServer,
    tokens: TokenKeys,
}

/// The gateway limiting each client to one request per 1000 s with a
/// burst of [`BURST`]; `extra` flags added.
async fn spawn_gateway(extra: &[&str]) -> Gateway {
    spawn_gateway_at_rate("0.001", extra).await
}

async fn spawn_gateway_at_rate(per_second: &str, extra: &[&str]) -> Gateway {
    mesh::testing::init_test_log(gateway::NAME);
    let mut args = vec![
        "gateway",
        "--port",
        "0",
        "--rate-limit-per-second",
        per_second,
        "--rate-limit-burst",
        "3",
    ];
    args.extend_from_slice(extra);
    let config = Config::try_parse_from(args).expect("valid flags");
    let tokens = TokenKeys::new(config.auth.jwt_secret.expose()).unwrap();
    let identity = ServiceIdentity {
        name: gateway::NAME.into(),
        version: "0.0.0-test",
        instance_id: "gateway-test".into(),
    };
    let server = gateway::build(config, identity)
        .await
        .expect("the gateway builds");
    Gateway {
        server: RunningServer::start(server),
        tokens,
    }
}

impl Gateway {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn token(&self, user_id: &str) -> String {
        self.tokens
            .issue(user_id, user_id, Duration::from_secs(3600))
            .unwrap()
    }

    /// `GET /api/me` without a token: 401 from the handler, unless limited.
    async fn anonymous(&self, client: &Client) -> Response {
        client.get(self.url("/api/me")).send().await.unwrap()
    }

    /// Another user's enrollments: 403 from the handler, unless limited.
    async fn as_user(&self, client: &Client, user_id: &str) -> Response {
        client
            .get(self.url("/api/users/someone-else/enrollments"))
            .bearer_auth(self.token(user_id))
            .send()
            .await
            .unwrap()
    }

    async fn metric(&self, name: &str, route: &str) -> Option<f64> {
        let text = Client::new()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("{name}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .find(|l| l.contains(&format!("route=\"{route}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    async fn limited(&self, route: &str) -> Option<f64> {
        self.metric("gateway_rate_limited_requests_total", route)
            .await
    }
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address
/// is this machine on Linux).
fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn assert_limited(res: Response) {
    assert_limited_for(res, 1000, "this client").await;
}

/// 429 `rate_limited` by the limit of `whose`, whose next request is
/// `next_in` seconds away.
async fn assert_limited_for(res: Response, next_in: u64, whose: &str) {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    // One request per `next_in` s: the next one is about that far away.
    assert!(
        (next_in - 10..=next_in).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("from {whose};")), "{message}");
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_with_retry_after() {
    let gw = spawn_gateway(&[]).await;
    let client = Client::new();
    for _ in 0..BURST {
        assert_eq!(gw.anonymous(&client).await.status(), 401);
    }

    assert_limited(gw.anonymous(&client).await).await;
    assert_limited(gw.anonymous(&client).await).await;

    assert_eq!(gw.limited("/api/me").await, Some(2.0));
    // A route's series appears with its first request.
    assert_eq!(
        gw.limited("/api/users/{user_id}/enrollments").await,
        None,
        "no request on that route yet"
    );
    // A 429 is an answer like any other in the RED metrics.
    let text = Client::new()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines().any(|l| l.starts_with(
            "http_server_request_duration_seconds_count{service=\"gateway\",method=\"GET\",route=\"/api/me\",status=\"429\"} 2"
        )),
        "{text}"
    );
    gw.server.stop().await;
}

#[tokio::test]
async fn other_clients_keep_their_own_buckets() {
    let gw = spawn_gateway(&[]).await;
    let here = client_from("127.0.0.1");
    let there = client_from("127.0.0.2");
    for _ in 0..BURST {
        assert_eq!(gw.anonymous(&here).await.status(), 401);
    }
    assert_limited(gw.anonymous(&here).await).await;

    // Another address.
    assert_eq!(gw.anonymous(&there).await.status(), 401);
    // Users with valid tokens are counted per user, not per address.
    for _ in 0..BURST {
        assert_eq!(gw.as_user(&here, "alice").await.status(), 403);
    }
    assert_limited(gw.as_user(&here, "alice").await).await;
    assert_eq!(gw.as_user(&here, "bob").await.status(), 403);
    assert_eq!(gw.as_user(&there, "carol").await.status(), 403);

    assert_eq!(gw.limited("/api/me").await, Some(1.0));
    assert_eq!(
        gw.limited("/api/users/{user_id}/enrollments").await,
        Some(1.0)
    );
    gw.server.stop().await;
}

#[tokio::test]
async fn many_tokens_from_one_address_are_capped_by_its_ceiling() {
    // Each user 3 at once; an address twice that, whatever its tokens.
    let gw = spawn_gateway(&["--rate-limit-address-multiple", "2"]).await;
    let farm = client_from("127.0.0.5");
    // Two users use up the address's six.
    for user in ["sock-1", "sock-2"] {
        for _ in 0..BURST {
            assert_eq!(gw.as_user(&farm, user).await.status(), 403);
        }
    }
    // A third token from the same address buys nothing more (before the
    // ceiling, each new account was three more requests).
    // The address's rate is twice a client's: one every 500 s.
    for user in ["sock-3", "sock-4", "sock-5"] {
        assert_limited_for(gw.as_user(&farm, user).await, 500, "this address").await;
    }
    assert_limited_for(gw.anonymous(&farm).await, 500, "this address").await;
    // One user elsewhere still gets its own rate in full.
    let home = client_from("127.0.0.6");
    for _ in 0..BURST {
        assert_eq!(gw.as_user(&home, "alice").await.status(), 403);
    }
    for _ in 0..BURST {
        assert_limited(gw.as_user(&home, "alice").await).await;
    }
    // Alice's refused requests did not spend her address's share: another
    // user there is served.
    assert_eq!(gw.as_user(&home, "bob").await.status(), 403);
    gw.server.stop().await;
}

#[tokio::test]
async fn invalid_tokens_and_forwarded_for_do_not_buy_new_buckets() {
    let gw = spawn_gateway(&[]).await;
    let client = Client::new();
    for i in 0..BURST {
        let res = client
            .get(gw.url("/api/me"))
            .bearer_auth(format!("garbage-{i}"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let res = client
        .get(gw.url("/api/me"))
        .bearer_auth("garbage-again")
        .header("x-forwarded-for", "198.51.100.200")
        .send()
        .await
        .unwrap();
    assert_limited(res).await;
    gw.server.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_trusted_only_when_configured() {
    let gw = spawn_gateway(&["--rate-limit-trust-forwarded-for"]).await;
    let client = Client::new();
    let from = |ip: &'static str| {
        client
            .get(gw.url("/api/me"))
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .send()
    };
    for _ in 0..BURST {
        assert_eq!(from("198.51.100.1").await.unwrap().status(), 401);
    }
    assert_limited(from("198.51.100.1").await.unwrap()).await;
    // The proxy's last entry decides; the client's own claim (first) does not.
    assert_eq!(from("198.51.100.2").await.unwrap().status(), 401);
    gw.server.stop().await;
}

#[tokio::test]
async fn a_rate_of_zero_disables_the_limit() {
    let gw = spawn_gateway_at_rate("0", &[]).await;
    let client = Client::new();
    for _ in 0..20 {
        assert_eq!(gw.anonymous(&client).await.status(), 401);
    }
    assert_eq!(gw.limited("/api/me").await, Some(0.0));
    gw.server.stop().await;
}

#[test]
fn defaults_leave_room_for_ordinary_clients() {
    let config = Config::try_parse_from(["gateway"]).unwrap();
    assert_eq!(config.rate_limit.per_second, 50.0);
    assert_eq!(config.rate_limit.burst, 100);
    assert!(!config.rate_limit.trust_forwarded_for);
    // Ten users' worth per address: 500 a second, bursts of 1000.
    assert_eq!(config.rate_limit.address_multiple, 10);
    assert!(Config::try_parse_from(["gateway", "--rate-limit-per-second", "-1"]).is_err());
    assert!(Config::try_parse_from(["gateway", "--rate-limit-per-second", "NaN"]).is_err());
}

/// `POST /api/sessions` with an empty object: the gateway answers 422
/// itself (no service runs), unless limited.
async fn login_attempt(gw: &Gateway, client: &Client, token: Option<&str>) -> Response {
    let req = client
        .post(gw.url("/api/sessions"))
        .json(&serde_json::json!({}));
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn sign_ins_take_from_a_slower_bucket_per_address_that_no_token_refills() {
    // No general limit; sign-ups and logins 2 per address at once, then
    // one per 1000 minutes.
    let gw = spawn_gateway_at_rate(
        "0",
        &[
            "--credentials-rate-limit-per-minute",
            "0.001",
            "--credentials-rate-limit-burst",
            "2",
        ],
    )
    .await;
    let client = client_from("127.0.0.7");
    for _ in 0..2 {
        assert_eq!(login_attempt(&gw, &client, None).await.status(), 422);
    }
    let res = login_attempt(&gw, &client, None).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // A valid token does not buy more attempts, nor does signing up.
    let token = gw.token("mallory");
    let res = login_attempt(&gw, &client, Some(&token)).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = client
        .post(gw.url("/api/users"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other routes from the same address, and other addresses, go on.
    assert_eq!(gw.anonymous(&client).await.status(), 401);
    let other = client_from("127.0.0.8");
    assert_eq!(login_attempt(&gw, &other, None).await.status(), 422);
    assert_eq!(gw.limited("/api/sessions").await, Some(2.0));
    assert_eq!(gw.limited("/api/users").await, Some(1.0));
}
