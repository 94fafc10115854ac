//! What a service does with a connection, driven byte by byte over a real
//! socket (tokio `TcpStream`, no HTTP client to tidy things up): a
//! half-sent head, an idle keep-alive and a body that stops arriving are
//! each cut off by their own timeout; a declared body over the limit is
//! refused at once; too many header fields and a missing `Host` get the
//! JSON error body.
//!
//! The timeouts are a few hundred milliseconds here, so each test takes
//! about that long; the bounds asserted are generous (a loaded 2-core
//! machine), the lower ones show which clock did it.

use std::time::Duration;

use axum::{Router, routing};
use mesh::{Mesh, ServeConfig, extract::Json, testing::RunningServer};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    time::Instant,
};

use crate::helpers::{identity, serve_config};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(30);
/// Longest any test waits for something that should happen after SHORT.
const PATIENCE: Duration = Duration::from_secs(5);

/// A service with `GET /items/1` and `POST /items` (a JSON object),
/// body limit 1024 bytes, and the given timeouts.
async fn spawn(header_read: Duration, idle: Duration, body_read: Duration) -> RunningServer {
    mesh::testing::init_test_log("mesh");
    let api = Router::new()
        .route(
            "/items/{id}",
            routing::get(|| async { axum::Json(json!({"id": 1})) }),
        )
        .route(
            "/items",
            routing::post(|Json(item): Json<Value>| async move { axum::Json(item) }),
        );
    let serve = ServeConfig {
        header_read_timeout: header_read,
        idle_timeout: idle,
        body_read_timeout: body_read,
        ..serve_config()
    };
    let server = Mesh::new(identity("items"), &serve)
        .bind(api, None, 0)
        .await
        .expect("binds a free port");
    RunningServer::start(server)
}

/// A raw HTTP/1.1 connection.
struct Raw {
    stream: BufReader<TcpStream>,
}

/// One response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON error code, asserting the body is our error shape.
    fn error_code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let body: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {self:?}"));
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body["error"]["code"].as_str().expect("a code").to_owned()
    }
}

impl Raw {
    async fn connect(server: &RunningServer) -> Self {
        Self {
            stream: BufReader::new(TcpStream::connect(server.addr()).await.unwrap()),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Reads one response (its body by `Content-Length`), or fails the
    /// test after [`PATIENCE`].
    async fn answer(&mut self) -> Answer {
        tokio::time::timeout(PATIENCE, self.read_answer())
            .await
            .expect("an answer in time")
    }

    async fn read_answer(&mut self) -> Answer {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line, not {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').expect("a header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// How long until the server closes the connection (end of stream, or
    /// a reset), reading and discarding anything else it sends; fails the
    /// test if it is still open after [`PATIENCE`].
    async fn closed_after(&mut self) -> Duration {
        let start = Instant::now();
        let closed = tokio::time::timeout(PATIENCE, async {
            let mut sink = [0u8; 1024];
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the connection is still open after {PATIENCE:?}"
        );
        start.elapsed()
    }
}

const GET: &[u8] = b"GET /items/1 HTTP/1.1\r\nHost: test\r\n\r\n";

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_read_timeout() {
    let server = spawn(SHORT, LONG, LONG).await;
    let mut conn = Raw::connect(&server).await;
    conn.send(b"GET /items/1 HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await;
    let after = conn.closed_after().await;
    assert!(after >= SHORT - Duration::from_millis(50), "{after:?}");

    // Trickling the head a byte at a time does not restart the clock.
    let mut conn = Raw::connect(&server).await;
    let start = Instant::now();
    let trickle = async {
        for byte in b"GET /items/1 HTTP/1.1\r\nHost: test\r\n".iter() {
            if conn.stream.get_mut().write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    trickle.await;
    let total = start.elapsed() + conn.closed_after().await;
    assert!(total < SHORT + Duration::from_secs(2), "{total:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = spawn(LONG, SHORT, LONG).await;
    let mut conn = Raw::connect(&server).await;
    conn.send(GET).await;
    assert_eq!(conn.answer().await.status, 200);
    // Kept alive: a second request within the idle time is served.
    tokio::time::sleep(SHORT / 3).await;
    conn.send(GET).await;
    assert_eq!(conn.answer().await.status, 200);

    let after = conn.closed_after().await;
    assert!(after >= SHORT - Duration::from_millis(50), "{after:?}");

    // A connection that never sends anything is idle too.
    let mut silent = Raw::connect(&server).await;
    silent.closed_after().await;
}

#[tokio::test]
async fn an_idle_keep_alive_outlives_the_header_read_timeout() {
    // hyper's own header timeout would close this connection while it
    // waits for its next request; ours starts at the head's first byte.
    let server = spawn(SHORT, Duration::from_secs(3), LONG).await;
    let mut conn = Raw::connect(&server).await;
    conn.send(GET).await;
    assert_eq!(conn.answer().await.status, 200);
    tokio::time::sleep(SHORT * 3).await;
    conn.send(GET).await;
    assert_eq!(conn.answer().await.status, 200);
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_after_the_body_read_timeout() {
    let server = spawn(LONG, LONG, SHORT).await;
    let mut conn = Raw::connect(&server).await;
    let start = Instant::now();
    conn.send(
        b"POST /items HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"na",
    )
    .await;
    let answer = conn.answer().await;
    let took = start.elapsed();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.error_code(), "body_timeout");
    assert!(took >= SHORT - Duration::from_millis(50), "{took:?}");
    // The rest of the body never came: the connection cannot go on.
    conn.closed_after().await;

    // A body sent in time is served on a connection held open meanwhile.
    let mut conn = Raw::connect(&server).await;
    conn.send(
        b"POST /items HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 12\r\n\r\n{\"name\":",
    )
    .await;
    tokio::time::sleep(SHORT / 3).await;
    conn.send(b"\"a\"}").await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, br#"{"name":"a"}"#);
}

#[tokio::test]
async fn a_declared_length_over_the_body_limit_is_413_at_once() {
    let server = spawn(LONG, LONG, LONG).await;
    let mut conn = Raw::connect(&server).await;
    let start = Instant::now();
    // The head only: the server must not wait for 10 MB that never come.
    conn.send(
        b"POST /items HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000\r\n\r\n",
    )
    .await;
    let answer = conn.answer().await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.error_code(), "body_too_large");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    conn.closed_after().await;

    // At the limit (serve_config: 1024 bytes) it is read and served.
    let item = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 - 11));
    assert_eq!(item.len(), 1024);
    let mut conn = Raw::connect(&server).await;
    conn.send(
        format!(
            "POST /items HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: 1024\r\n\r\n{item}"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.answer().await.status, 200);
}

/// `GET /items/1` with `Host` and `extra` more `X-Field-<n>` headers.
fn with_fields(extra: usize) -> Vec<u8> {
    let mut head = String::from("GET /items/1 HTTP/1.1\r\nHost: test\r\n");
    for n in 0..extra {
        head.push_str(&format!("X-Field-{n}: {n}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

#[tokio::test]
async fn over_100_header_fields_is_a_json_431() {
    let server = spawn(LONG, LONG, LONG).await;
    // 100 fields in all, Host included: served.
    let mut conn = Raw::connect(&server).await;
    conn.send(&with_fields(mesh::MAX_HEADER_FIELDS - 1)).await;
    assert_eq!(conn.answer().await.status, 200);

    for extra in [mesh::MAX_HEADER_FIELDS, 150, 500] {
        let mut conn = Raw::connect(&server).await;
        conn.send(&with_fields(extra)).await;
        let answer = conn.answer().await;
        assert_eq!(answer.status, 431, "{} fields: {answer:?}", extra + 1);
        assert_eq!(answer.error_code(), "headers_too_large");
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{} header fields", extra + 1)),
            "{message}"
        );
    }
}

#[tokio::test]
async fn http_1_1_without_exactly_one_host_is_a_json_400() {
    let server = spawn(LONG, LONG, LONG).await;
    for head in [
        &b"GET /items/1 HTTP/1.1\r\n\r\n"[..],
        b"GET /items/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /items/1 HTTP/1.1\r\nHost: user@evil\r\n\r\n",
        b"GET http://test/items/1 HTTP/1.1\r\n\r\n",
    ] {
        let mut conn = Raw::connect(&server).await;
        conn.send(head).await;
        let answer = conn.answer().await;
        let what = String::from_utf8_lossy(head);
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
        assert_eq!(answer.error_code(), "invalid_host", "{what}");
    }
    // HTTP/1.0 may leave it out.
    let mut conn = Raw::connect(&server).await;
    conn.send(b"GET /items/1 HTTP/1.0\r\n\r\n").await;
    assert_eq!(conn.answer().await.status, 200);
}
