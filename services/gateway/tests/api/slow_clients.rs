//! One account's slow requests must not take the gateway from everyone
//! ("Money and trust", availability 8): an attacker under the rate limit
//! sent a few hundred checkouts, each a `Content-Length` and a few bytes
//! of body, held every concurrency slot, and everyone got 503.
//!
//! Through the real gateway on a socket, with the replica's concurrency
//! limit small enough for one client to fill it: an account opens as many
//! slow checkouts as there are slots, and other sockets hold half-sent
//! heads and idle connections. The account gets its per-client share
//! (`CONCURRENCY_LIMIT_PER_CLIENT`) and 429 for the rest; a well-behaved
//! client's requests, and another user's, are answered as before, with
//! latency in the range of a baseline measured in the same test.
//!
//! The routes used answer without calling a service (403 for another
//! user's data, 422 for an empty checkout), so no other service runs.

use std::{net::SocketAddr, time::Duration};

use clap::Parser as _;
use gateway::Config;
use mesh::{ServiceIdentity, testing::RunningServer};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpSocket, TcpStream},
    time::Instant,
};
use users::token::TokenKeys;

/// The replica's `CONCURRENCY_LIMIT`: what the attacker tries to fill.
const SLOTS: usize = 24;
/// `CONCURRENCY_LIMIT_PER_CLIENT`.
const PER_CLIENT: usize = 4;
/// Requests per latency sample.
const SAMPLES: usize = 25;

struct Gateway {
    server: RunningServer,
    tokens: TokenKeys,
}

async fn spawn_gateway() -> Gateway {
    mesh::testing::init_test_log(gateway::NAME);
    let slots = SLOTS.to_string();
    let per_client = PER_CLIENT.to_string();
    let config = Config::try_parse_from([
        "gateway",
        "--port",
        "0",
        "--concurrency-limit",
        &slots,
        "--concurrency-limit-per-client",
        &per_client,
        // Long enough that nothing times out while the test measures:
        // this test is about the cap, `mesh`'s tests about the timeouts.
        "--header-read-timeout",
        "60s",
        "--body-read-timeout",
        "60s",
    ])
    .expect("valid flags");
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
    fn token(&self, user_id: &str) -> String {
        self.tokens
            .issue(user_id, user_id, Duration::from_secs(3600))
            .unwrap()
    }

    /// A raw connection from `ip` (any 127.0.0.0/8 address is this
    /// machine on Linux).
    async fn connect_from(&self, ip: [u8; 4]) -> BufReader<TcpStream> {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((ip, 0))).unwrap();
        BufReader::new(socket.connect(self.server.addr()).await.unwrap())
    }

    /// A checkout whose body never arrives: its head, a `Content-Length`
    /// and the first bytes.
    async fn slow_checkout(&self, token: &str) -> BufReader<TcpStream> {
        let mut conn = self.connect_from([127, 0, 0, 66]).await;
        let head = format!(
            "POST /api/checkout HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nIdempotency-Key: slow\r\nContent-Length: 200\r\n\r\n{{\"cou"
        );
        conn.get_mut().write_all(head.as_bytes()).await.unwrap();
        conn
    }

    /// A well-behaved request the gateway answers itself: another user's
    /// enrollments (403), or an empty checkout (422); with its latency.
    async fn timed(&self, client: &Client, token: &str, i: usize) -> (StatusCode, Duration) {
        let start = Instant::now();
        let res = if i.is_multiple_of(2) {
            client
                .get(format!(
                    "{}/api/users/someone-else/enrollments",
                    self.server.url()
                ))
                .bearer_auth(token)
                .send()
                .await
        } else {
            client
                .post(format!("{}/api/checkout", self.server.url()))
                .bearer_auth(token)
                .json(&serde_json::json!({}))
                .send()
                .await
        }
        .unwrap();
        let status = res.status();
        let _ = res.bytes().await;
        (status, start.elapsed())
    }

    /// `SAMPLES` well-behaved requests one after the other; every status
    /// must be the handler's own. Returns the median latency.
    async fn median_latency(&self, client: &Client, token: &str) -> Duration {
        let mut latencies = Vec::new();
        for i in 0..SAMPLES {
            let (status, took) = self.timed(client, token, i).await;
            let expected = if i.is_multiple_of(2) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            assert_eq!(status, expected, "request {i} of a well-behaved client");
            latencies.push(took);
        }
        latencies.sort();
        latencies[SAMPLES / 2]
    }
}

/// The response on `conn`, if one comes within `wait`: its status and body.
async fn answer_within(conn: &mut BufReader<TcpStream>, wait: Duration) -> Option<(u16, Value)> {
    tokio::time::timeout(wait, async {
        let mut line = String::new();
        conn.read_line(&mut line).await.ok()?;
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut length = 0;
        loop {
            line.clear();
            conn.read_line(&mut line).await.ok()?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().ok()?;
            }
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).await.ok()?;
        Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_account_cannot_take_the_gateway_from_everyone() {
    let gw = spawn_gateway().await;
    let client = Client::new();
    let alice = gw.token("alice");

    let baseline = gw.median_latency(&client, &alice).await;

    // Other sockets hold connections without a request in flight: half a
    // head, or nothing at all after connecting.
    let mut idle = Vec::new();
    for i in 0..20u8 {
        let mut half = gw.connect_from([127, 0, 1, i + 1]).await;
        half.get_mut()
            .write_all(b"GET /api/courses HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
            .await
            .unwrap();
        idle.push(half);
        idle.push(gw.connect_from([127, 0, 2, i + 1]).await);
    }

    // Mallory: as many slow checkouts as the replica has slots.
    let mallory = gw.token("mallory");
    let mut slow = Vec::new();
    for _ in 0..SLOTS {
        slow.push(gw.slow_checkout(&mallory).await);
    }
    let answers = futures::future::join_all(
        slow.iter_mut()
            .map(|conn| answer_within(conn, Duration::from_secs(1))),
    )
    .await;
    let held = answers.iter().filter(|a| a.is_none()).count();
    assert_eq!(held, PER_CLIENT, "slow checkouts held: {answers:?}");
    for (status, body) in answers.iter().flatten() {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["error"]["code"], "concurrency_limited", "{body}");
    }

    // While Mallory's requests are held: Alice, and Carol from another
    // address, are served as before.
    let under_attack = gw.median_latency(&client, &alice).await;
    let carol = gw.token("carol");
    let other_address = Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .unwrap();
    let concurrent =
        futures::future::join_all((0..PER_CLIENT * 2).map(|i| gw.timed(&other_address, &carol, i)))
            .await;
    for (i, (status, _)) in concurrent.iter().enumerate() {
        assert!(
            matches!(
                *status,
                StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "Carol's request {i}: {status}"
        );
    }
    assert!(
        under_attack <= baseline * 5 + Duration::from_millis(50),
        "median latency {under_attack:?} under attack, {baseline:?} before"
    );
    // Mallory's share stays hers only while her requests are in flight.
    let (status, _) = gw.timed(&client, &mallory, 0).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    drop(slow);
    let mut freed = false;
    for _ in 0..50 {
        if gw.timed(&client, &mallory, 0).await.0 == StatusCode::FORBIDDEN {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "Mallory's places were not given back");
    drop(idle);
    gw.server.stop().await;
}

#[test]
fn the_cap_defaults_to_16_and_zero_turns_it_off() {
    let config = Config::try_parse_from(["gateway"]).unwrap();
    assert_eq!(config.client_concurrency.per_client, 16);
    let config =
        Config::try_parse_from(["gateway", "--concurrency-limit-per-client", "0"]).unwrap();
    assert_eq!(config.client_concurrency.per_client, 0);
}
