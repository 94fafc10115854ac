//! Failed logins through the gateway count against the client who made
//! them, not against the gateway: the gateway and a real users service on
//! sockets, and clients on two addresses (every 127.0.0.0/8 address is
//! this machine on Linux).
//!
//! Behind the gateway users sees one peer address for every client; the
//! gateway signs the client's address into each login, and users keys its
//! failed-login limit on it. Before, five wrong passwords from anyone
//! locked the owner out everywhere.

use std::net::IpAddr;

use clap::Parser as _;
use mesh::{
    ServiceIdentity,
    testing::{RunningServer, TestDatabase},
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

struct System {
    gateway: RunningServer,
    _users: RunningServer,
    // Last: dropped after the server that uses it.
    _database: TestDatabase,
}

async fn start() -> System {
    mesh::testing::init_test_log(gateway::NAME);
    let database = TestDatabase::create(users::NAME).await;
    let config = users::Config::try_parse_from([
        "users",
        "--port",
        "0",
        "--database-url",
        database.url(),
        // No broker: events wait in the outbox.
        "--nats-url",
        "nats://127.0.0.1:9",
    ])
    .unwrap();
    let identity = ServiceIdentity::resolve(users::NAME, "test", &config.telemetry);
    let users = RunningServer::start(users::build(config, identity).await.unwrap());
    let config =
        gateway::Config::try_parse_from(["gateway", "--port", "0", "--users-url", &users.url()])
            .unwrap();
    let identity = ServiceIdentity::resolve(gateway::NAME, "test", &config.telemetry);
    let gateway = RunningServer::start(gateway::build(config, identity).await.unwrap());
    System {
        gateway,
        _users: users,
        _database: database,
    }
}

fn from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

impl System {
    async fn login(&self, client: &Client, email: &str, password: &str) -> (StatusCode, Value) {
        let res = client
            .post(format!("{}/api/sessions", self.gateway.url()))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }
}

#[tokio::test]
async fn a_strangers_failed_logins_do_not_lock_the_owner_out() {
    let system = start().await;
    let ada = from("127.0.0.3");
    let res = ada
        .post(format!("{}/api/users", system.gateway.url()))
        .json(&json!({
            "email": "ada@example.com",
            "display_name": "Ada",
            "password": "analytical engine",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let stranger = from("127.0.0.2");
    for _ in 0..5 {
        let (status, body) = system
            .login(&stranger, "ada@example.com", "not the password")
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, body) = system
        .login(&stranger, "ada@example.com", "analytical engine")
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");

    // Ada, from her own address, is let in.
    let (status, body) = system
        .login(&ada, "ada@example.com", "analytical engine")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
}
