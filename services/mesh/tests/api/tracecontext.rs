//! The cases of the W3C Trace Context validation suite (the `test/` folder
//! of github.com/w3c/trace-context), as our own tests, end to end: a
//! request carrying the case's headers reaches a mesh service on a
//! loopback port (the real inbound stack, so `inbound::context` checks
//! them), which calls a destination through a `MeshClient` (the real
//! outbound stack, which injects); the destination reports the
//! `traceparent` and `tracestate` it received. Each test names the suite
//! case it stands for.
//!
//! The suite itself runs against `examples/tracecontext.rs` by hand
//! (docs/architecture.md, "W3C Trace Context conformance"); these keep
//! the behaviour from drifting in between.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::post,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use mesh::{MeshClient, Readiness, server::Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Telemetry, TraceParent, identity, serve_config};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A `traceparent` of version 00 for the test trace with `flags`.
fn parent(flags: &str) -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-{flags}")
}

/// The propagation fields one call carried, in the order received.
type Fields = Vec<(String, String)>;

/// What the destination saw of one call.
#[derive(Debug)]
struct Sent {
    traceparent: TraceParent,
    /// Every `tracestate` field, combined as RFC 9110 says (none: `None`).
    tracestate: Option<String>,
}

impl Sent {
    fn from_fields(fields: &Fields) -> Self {
        let named = |name: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let traceparents = named("traceparent");
        assert_eq!(traceparents.len(), 1, "one traceparent in {fields:?}");
        let tracestates = named("tracestate");
        assert!(
            tracestates.iter().all(|v| !v.is_empty()),
            "no empty tracestate is sent: {fields:?}"
        );
        Self {
            traceparent: TraceParent::parse(traceparents[0]),
            tracestate: (!tracestates.is_empty()).then(|| tracestates.join(",")),
        }
    }

    fn trace_id(&self) -> String {
        self.traceparent.trace_id.to_string()
    }

    /// The test trace, continued: same trace id, our own parent id.
    fn continues(&self) -> bool {
        self.trace_id() == TRACE_ID && self.traceparent.span_id.to_string() != PARENT_ID
    }

    /// The tracestate's members as `(key, value)`.
    fn members(&self) -> Vec<(String, String)> {
        self.tracestate
            .iter()
            .flat_map(|state| state.split(','))
            .map(|member| {
                let (key, value) = member.split_once('=').expect("key=value");
                (key.to_owned(), value.to_owned())
            })
            .collect()
    }

    fn value_of(&self, key: &str) -> Option<String> {
        self.members()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// The service under test (`POST /relay/{count}` makes `count` calls
/// through its `MeshClient` and answers with what each one carried) and
/// the destination behind it.
struct Relay {
    url: String,
    http: reqwest::Client,
    _telemetry: Telemetry,
}

impl Relay {
    async fn spawn() -> Self {
        let telemetry = Telemetry::install();
        // The destination reports the propagation fields as received, not
        // through a mesh of its own: nothing may tidy them up on the way.
        let destination = Router::new().route(
            "/callback",
            post(|headers: HeaderMap| async move {
                let fields: Fields = headers
                    .iter()
                    .filter(|(name, _)| matches!(name.as_str(), "traceparent" | "tracestate"))
                    .map(|(name, value)| {
                        (
                            name.to_string(),
                            value.to_str().unwrap_or("<not ASCII>").to_owned(),
                        )
                    })
                    .collect();
                Json(fields)
            }),
        );
        let destination = spawn_server(destination).await;

        let mesh = mesh::Mesh::new(identity("relay"), &serve_config());
        let client = mesh
            .client("harness", &destination)
            .expect("valid base URL");
        let api = Router::new()
            .route(
                "/relay/{count}",
                post(
                    |State(client): State<MeshClient>, Path(count): Path<usize>| async move {
                        let mut calls = Vec::with_capacity(count);
                        for _ in 0..count {
                            let fields: Fields = client
                                .post("/callback", &[])
                                .send_json()
                                .await
                                .expect("the destination answers");
                            calls.push(fields);
                        }
                        Json(calls)
                    },
                ),
            )
            .with_state(client);
        let readiness = Readiness::new(None);
        readiness.mark_started();
        let url = spawn_server(mesh.router(api, readiness)).await;
        Self {
            url,
            http: reqwest::Client::new(),
            _telemetry: telemetry,
        }
    }

    /// Sends `headers` (in order, repeated names as separate fields) and
    /// returns what the one call made on its behalf carried.
    async fn call(&self, headers: &[(&str, &str)]) -> Sent {
        let mut sent = self.calls(headers, 1).await;
        sent.pop().unwrap()
    }

    async fn calls(&self, headers: &[(&str, &str)], count: usize) -> Vec<Sent> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let res = self
            .http
            .post(format!("{}/relay/{count}", self.url))
            .headers(map)
            .send()
            .await
            .expect("the relay answers");
        assert_eq!(res.status(), 200);
        let calls: Vec<Fields> = res.json().await.expect("JSON");
        assert_eq!(calls.len(), count);
        calls.iter().map(Sent::from_fields).collect()
    }

    /// Like [`Relay::call`], with the header lines written as given: an
    /// HTTP client library would normalise the names' case.
    async fn call_raw(&self, header_lines: &[&str]) -> Sent {
        let addr = self.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut request = format!("POST /relay/1 HTTP/1.1\r\nHost: {addr}\r\n");
        for line in header_lines {
            request.push_str(line);
            request.push_str("\r\n");
        }
        request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let calls: Vec<Fields> = serde_json::from_str(body).expect("JSON");
        Sent::from_fields(&calls[0])
    }
}

async fn spawn_server(router: Router) -> String {
    let server = Server::bind([127, 0, 0, 1].into(), 0, router, Duration::from_secs(1))
        .await
        .expect("binds a free port");
    let url = format!("http://{}", server.local_addr());
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    url
}

// === traceparent ===

/// `test_both_traceparent_and_tracestate_missing`
#[tokio::test]
async fn without_context_a_call_starts_a_trace() {
    let relay = Relay::spawn().await;
    let sent = relay.call(&[]).await;
    assert_ne!(sent.trace_id(), TRACE_ID);
    assert_eq!(sent.tracestate, None);
}

/// `test_traceparent_included_tracestate_missing`
#[tokio::test]
async fn a_traceparent_is_continued_with_a_parent_id_of_our_own() {
    let relay = Relay::spawn().await;
    let sent = relay.call(&[("traceparent", &parent("01"))]).await;
    assert!(sent.continues(), "{sent:?}");
    assert_eq!(sent.traceparent.flags, 0x01);
    assert_eq!(sent.tracestate, None);
}

/// `test_traceparent_duplicated`: `traceparent` is not a list, so two of
/// them are malformed (RFC 9110 section 5.3), and the trace restarts.
#[tokio::test]
async fn two_traceparents_restart_the_trace() {
    let relay = Relay::spawn().await;
    let other = format!("00-{TRACE_ID}-b7ad6b7169203331-01");
    let sent = relay
        .call(&[("traceparent", &other), ("traceparent", &parent("01"))])
        .await;
    assert_ne!(sent.trace_id(), TRACE_ID);
}

/// `test_traceparent_header_name`, `test_tracestate_header_name`
#[tokio::test]
async fn context_under_other_header_names_is_ignored() {
    let relay = Relay::spawn().await;
    for name in ["trace-parent", "trace.parent"] {
        let sent = relay.call(&[(name, &parent("01"))]).await;
        assert_ne!(sent.trace_id(), TRACE_ID, "{name}");
    }
    for name in ["trace-state", "trace.state"] {
        let sent = relay
            .call(&[("traceparent", &parent("00")), (name, "foo=1")])
            .await;
        assert!(sent.continues());
        assert_eq!(sent.tracestate, None, "{name}");
    }
}

/// `test_traceparent_header_name_valid_casing`,
/// `test_tracestate_header_name_valid_casing`
#[tokio::test]
async fn header_names_are_case_insensitive() {
    let relay = Relay::spawn().await;
    for (traceparent, tracestate) in [
        ("TraceParent", "TraceState"),
        ("TrAcEpArEnT", "TrAcEsTaTe"),
        ("TRACEPARENT", "TRACESTATE"),
    ] {
        let sent = relay
            .call_raw(&[
                &format!("{traceparent}: {}", parent("01")),
                &format!("{tracestate}: foo=1"),
            ])
            .await;
        assert!(sent.continues(), "{traceparent}");
        assert_eq!(sent.value_of("foo").as_deref(), Some("1"), "{tracestate}");
    }
}

/// `test_traceparent_version_0x00`, `test_traceparent_version_0xff`,
/// `test_traceparent_version_illegal_characters`,
/// `test_traceparent_version_too_long`, `test_traceparent_version_too_short`
#[tokio::test]
async fn a_malformed_version_restarts_the_trace() {
    let relay = Relay::spawn().await;
    let ids = format!("{TRACE_ID}-{PARENT_ID}");
    for traceparent in [
        // Version 00 has nothing after the flags.
        format!("00-{ids}-01."),
        format!("00-{ids}-01-what-the-future-will-be-like"),
        format!("ff-{ids}-01"),
        format!(".0-{ids}-01"),
        format!("0.-{ids}-01"),
        format!("000-{ids}-01"),
        format!("0000-{ids}-01"),
        format!("0-{ids}-01"),
    ] {
        let sent = relay.call(&[("traceparent", &traceparent)]).await;
        assert_ne!(sent.trace_id(), TRACE_ID, "{traceparent}");
    }
}

/// `test_traceparent_version_0xcc`: a later version is read as far as
/// version 00 goes, and sent on as 00.
#[tokio::test]
async fn a_later_version_is_continued_as_version_00() {
    let relay = Relay::spawn().await;
    let ids = format!("{TRACE_ID}-{PARENT_ID}");
    for traceparent in [
        format!("cc-{ids}-01"),
        format!("cc-{ids}-01-what-the-future-will-be-like"),
    ] {
        let sent = relay.call(&[("traceparent", &traceparent)]).await;
        assert!(sent.continues(), "{traceparent}");
    }
    // Later fields still follow a `-`.
    let sent = relay
        .call(&[(
            "traceparent",
            &format!("cc-{ids}-01.what-the-future-will-be-like"),
        )])
        .await;
    assert_ne!(sent.trace_id(), TRACE_ID);
}

/// `test_traceparent_trace_id_all_zero`,
/// `test_traceparent_trace_id_illegal_characters`,
/// `test_traceparent_trace_id_too_long`, `test_traceparent_trace_id_too_short`
#[tokio::test]
async fn a_malformed_trace_id_restarts_the_trace() {
    let relay = Relay::spawn().await;
    for trace_id in [
        "00000000000000000000000000000000",
        ".bf92f3577b34da6a3ce929d0e0e4736",
        "4bf92f3577b34da6a3ce929d0e0e473.",
        "4bf92f3577b34da6a3ce929d0e0e47366",
        "4bf92f3577b34da6a3ce929d0e0e473",
    ] {
        let sent = relay
            .call(&[("traceparent", &format!("00-{trace_id}-{PARENT_ID}-01"))])
            .await;
        // Neither the id sent nor any 32-digit part of it.
        assert!(!trace_id.contains(&sent.trace_id()), "{trace_id}");
        assert!(!sent.trace_id().contains(&trace_id[..31]), "{trace_id}");
    }
}

/// `test_traceparent_parent_id_all_zero`,
/// `test_traceparent_parent_id_illegal_characters`,
/// `test_traceparent_parent_id_too_long`, `test_traceparent_parent_id_too_short`
#[tokio::test]
async fn a_malformed_parent_id_restarts_the_trace() {
    let relay = Relay::spawn().await;
    for parent_id in [
        "0000000000000000",
        ".0f067aa0ba902b7",
        "00f067aa0ba902b.",
        "00f067aa0ba902b77",
        "00f067aa0ba902b",
    ] {
        let sent = relay
            .call(&[("traceparent", &format!("00-{TRACE_ID}-{parent_id}-01"))])
            .await;
        assert_ne!(sent.trace_id(), TRACE_ID, "{parent_id}");
    }
}

/// `test_traceparent_trace_flags_illegal_characters`,
/// `test_traceparent_trace_flags_too_long`, `test_traceparent_trace_flags_too_short`
#[tokio::test]
async fn malformed_flags_restart_the_trace() {
    let relay = Relay::spawn().await;
    for flags in [".0", "0.", "001", "1"] {
        let sent = relay.call(&[("traceparent", &parent(flags))]).await;
        assert_ne!(sent.trace_id(), TRACE_ID, "{flags}");
    }
}

/// `test_traceparent_ows_handling`
#[tokio::test]
async fn whitespace_around_the_traceparent_is_ignored() {
    let relay = Relay::spawn().await;
    let traceparent = parent("01");
    for padded in [
        format!(" {traceparent}"),
        format!("\t{traceparent}"),
        format!("{traceparent} "),
        format!("{traceparent}\t"),
        format!("\t {traceparent} \t"),
    ] {
        let sent = relay.call(&[("traceparent", &padded)]).await;
        assert!(sent.continues(), "{padded:?}");
    }
}

// === tracestate ===

/// `test_tracestate_included_traceparent_missing`: without a trace to
/// continue, the state is not ours to send.
#[tokio::test]
async fn a_tracestate_without_traceparent_is_dropped() {
    let relay = Relay::spawn().await;
    for tracestate in ["foo=1", "foo=1,bar=2"] {
        let sent = relay.call(&[("tracestate", tracestate)]).await;
        assert_ne!(sent.trace_id(), TRACE_ID);
        assert_eq!(sent.tracestate, None, "{tracestate}");
    }
}

/// `test_tracestate_included_traceparent_included`
#[tokio::test]
async fn a_tracestate_is_continued_with_its_traceparent() {
    let relay = Relay::spawn().await;
    let sent = relay
        .call(&[
            ("traceparent", &parent("00")),
            ("tracestate", "foo=1,bar=2"),
        ])
        .await;
    assert!(sent.continues());
    assert_eq!(sent.tracestate.as_deref(), Some("foo=1,bar=2"));
}

/// `test_tracestate_empty_header`
#[tokio::test]
async fn empty_tracestate_fields_are_ignored() {
    let relay = Relay::spawn().await;
    let traceparent = parent("00");
    let sent = relay
        .call(&[("traceparent", &traceparent), ("tracestate", "")])
        .await;
    assert!(sent.continues());
    assert_eq!(sent.tracestate, None, "none rather than an empty one");
    for fields in [
        [("tracestate", "foo=1"), ("tracestate", "")],
        [("tracestate", ""), ("tracestate", "foo=1")],
    ] {
        let mut headers = vec![("traceparent", traceparent.as_str())];
        headers.extend(fields);
        let sent = relay.call(&headers).await;
        assert!(sent.continues());
        assert_eq!(sent.tracestate.as_deref(), Some("foo=1"), "{fields:?}");
    }
}

/// `test_tracestate_multiple_headers_different_keys`
#[tokio::test]
async fn tracestate_fields_are_combined_in_order() {
    let relay = Relay::spawn().await;
    let sent = relay
        .call(&[
            ("traceparent", &parent("00")),
            ("tracestate", "foo=1,bar=2"),
            ("tracestate", "rojo=1,congo=2"),
            ("tracestate", "baz=3"),
        ])
        .await;
    assert!(sent.continues());
    assert_eq!(
        sent.tracestate.as_deref(),
        Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
    );
}

/// `test_tracestate_duplicated_keys`: the suite accepts either entry;
/// we keep the left-most, the most recent (see `inbound::context`).
#[tokio::test]
async fn a_duplicated_key_keeps_its_first_entry() {
    let relay = Relay::spawn().await;
    let traceparent = parent("00");
    for fields in [
        &[("tracestate", "foo=1,foo=1")][..],
        &[("tracestate", "foo=1,foo=2")],
        &[("tracestate", "foo=1"), ("tracestate", "foo=1")],
        &[("tracestate", "foo=1"), ("tracestate", "foo=2")],
    ] {
        let mut headers = vec![("traceparent", traceparent.as_str())];
        headers.extend_from_slice(fields);
        let sent = relay.call(&headers).await;
        assert!(sent.continues());
        assert_eq!(sent.tracestate.as_deref(), Some("foo=1"), "{fields:?}");
    }
    // The other vendors' entries go on.
    let sent = relay
        .call(&[
            ("traceparent", &traceparent),
            ("tracestate", "congo=2,rojo=1,congo=1"),
        ])
        .await;
    assert_eq!(sent.tracestate.as_deref(), Some("congo=2,rojo=1"));
}

/// `test_tracestate_all_allowed_characters`
#[tokio::test]
async fn every_allowed_character_is_continued() {
    let relay = Relay::spawn().await;
    let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
    let vendor_key = format!("{key}@a-z0-9_-*/");
    // Printable ASCII but `,` and `=`.
    let value: String = (0x20u8..=0x7e)
        .filter(|c| !matches!(c, b',' | b'='))
        .map(char::from)
        .collect();
    for key in [key, vendor_key] {
        let sent = relay
            .call(&[
                ("traceparent", &parent("00")),
                ("tracestate", &format!("{key}={value}")),
            ])
            .await;
        assert_eq!(sent.value_of(&key).as_deref(), Some(value.as_str()));
    }
}

/// `test_tracestate_ows_handling`, `test_tracestate_trailing_ows`
#[tokio::test]
async fn whitespace_around_members_is_ignored() {
    let relay = Relay::spawn().await;
    let traceparent = parent("00");
    for (tracestate, continued) in [
        ("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3"),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3"),
        (" foo=1", "foo=1"),
        ("\tfoo=1", "foo=1"),
        ("foo=1 ", "foo=1"),
        ("foo=1\t", "foo=1"),
        ("\t foo=1 \t", "foo=1"),
    ] {
        let sent = relay
            .call(&[("traceparent", &traceparent), ("tracestate", tracestate)])
            .await;
        assert!(sent.continues());
        assert_eq!(
            sent.tracestate.as_deref(),
            Some(continued),
            "{tracestate:?}"
        );
    }
}

/// `test_tracestate_key_illegal_characters`
#[tokio::test]
async fn a_key_with_illegal_characters_drops_the_tracestate() {
    let relay = Relay::spawn().await;
    for tracestate in ["foo =1", "FOO=1", "foo.bar=1", "foo=1,FOO=2"] {
        let sent = relay
            .call(&[("traceparent", &parent("00")), ("tracestate", tracestate)])
            .await;
        assert!(sent.continues());
        assert_eq!(sent.tracestate, None, "{tracestate:?}");
    }
}

/// `test_tracestate_key_illegal_vendor_format`: Level 2's key grammar
/// takes `@` anywhere but first.
#[tokio::test]
async fn at_signs_follow_the_level_2_key_grammar() {
    let relay = Relay::spawn().await;
    let traceparent = parent("00");
    for tracestate in ["foo@=1,bar=2", "foo@@bar=1,bar=2", "foo@bar@baz=1,bar=2"] {
        let sent = relay
            .call(&[("traceparent", &traceparent), ("tracestate", tracestate)])
            .await;
        assert_eq!(sent.tracestate.as_deref(), Some(tracestate));
    }
    let sent = relay
        .call(&[
            ("traceparent", &traceparent),
            ("tracestate", "@foo=1,bar=2"),
        ])
        .await;
    assert!(sent.continues());
    assert_eq!(sent.tracestate, None);
}

/// `test_tracestate_member_count_limit`
#[tokio::test]
async fn thirty_two_members_are_continued_and_thirty_three_dropped() {
    let relay = Relay::spawn().await;
    let traceparent = parent("00");
    let fields = |count: usize| -> Vec<String> {
        let members: Vec<String> = (1..=count).map(|i| format!("bar{i:02}={i:02}")).collect();
        members.chunks(10).map(|chunk| chunk.join(",")).collect()
    };
    for (count, continued) in [(32, true), (33, false)] {
        let fields = fields(count);
        let mut headers = vec![("traceparent", traceparent.as_str())];
        headers.extend(fields.iter().map(|f| ("tracestate", f.as_str())));
        let sent = relay.call(&headers).await;
        assert!(sent.continues());
        if continued {
            assert_eq!(sent.members().len(), 32);
            assert_eq!(sent.value_of("bar01").as_deref(), Some("01"));
        } else {
            assert_eq!(sent.tracestate, None);
        }
    }
}

/// `test_tracestate_key_length_limit`
#[tokio::test]
async fn keys_of_up_to_256_characters_are_continued() {
    let relay = Relay::spawn().await;
    let traceparent = parent("00");
    for key in [
        "z".repeat(256),
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
    ] {
        let member = format!("{key}=1");
        let sent = relay
            .call(&[
                ("traceparent", &traceparent),
                ("tracestate", "foo=1"),
                ("tracestate", &member),
            ])
            .await;
        assert_eq!(sent.tracestate, Some(format!("foo=1,{member}")));
    }
    let sent = relay
        .call(&[
            ("traceparent", &traceparent),
            ("tracestate", "foo=1"),
            ("tracestate", &format!("{}=1", "z".repeat(257))),
        ])
        .await;
    assert!(sent.continues());
    assert_eq!(sent.tracestate, None);
}

/// `test_tracestate_value_illegal_characters`
#[tokio::test]
async fn an_illegal_value_drops_the_tracestate() {
    let relay = Relay::spawn().await;
    for tracestate in ["foo=bar=baz", "foo=,bar=3"] {
        let sent = relay
            .call(&[("traceparent", &parent("00")), ("tracestate", tracestate)])
            .await;
        assert!(sent.continues());
        assert_eq!(sent.tracestate, None, "{tracestate:?}");
    }
}

/// Not a suite case: the bound we set ourselves ("tracestate Limits" lets
/// a vendor document one), end to end.
#[tokio::test]
async fn a_tracestate_over_512_bytes_is_dropped() {
    let relay = Relay::spawn().await;
    let member = |key: &str| format!("{key}={}", "v".repeat(253));
    let sent = relay
        .call(&[
            ("traceparent", &parent("00")),
            ("tracestate", &member("aa")),
            ("tracestate", &member("bb")),
        ])
        .await;
    assert!(sent.continues());
    assert_eq!(sent.tracestate, None);
}

// === several calls (the suite's AdvancedTest) ===

/// `test_multiple_requests_with_valid_traceparent`
#[tokio::test]
async fn each_call_of_a_continued_trace_has_its_own_parent_id() {
    let relay = Relay::spawn().await;
    let sent = relay.calls(&[("traceparent", &parent("01"))], 3).await;
    assert!(sent.iter().all(Sent::continues), "{sent:?}");
    assert_distinct_parent_ids(&sent);
}

/// `test_multiple_requests_without_traceparent`
#[tokio::test]
async fn each_call_of_a_new_trace_has_its_own_parent_id() {
    let relay = Relay::spawn().await;
    let sent = relay.calls(&[], 3).await;
    assert_eq!(trace_ids(&sent).len(), 1, "one trace for the request");
    assert_distinct_parent_ids(&sent);
}

/// `test_multiple_requests_with_illegal_traceparent`
#[tokio::test]
async fn an_illegal_traceparent_starts_one_new_trace_for_every_call() {
    let relay = Relay::spawn().await;
    let zero = format!("00-{}-{PARENT_ID}-01", "0".repeat(32));
    let sent = relay.calls(&[("traceparent", &zero)], 3).await;
    let traces = trace_ids(&sent);
    assert_eq!(traces.len(), 1);
    assert!(!traces.contains(&"0".repeat(32)));
    assert_distinct_parent_ids(&sent);
}

fn trace_ids(sent: &[Sent]) -> std::collections::HashSet<String> {
    sent.iter().map(Sent::trace_id).collect()
}

fn assert_distinct_parent_ids(sent: &[Sent]) {
    let ids: std::collections::HashSet<_> = sent.iter().map(|s| s.traceparent.span_id).collect();
    assert_eq!(ids.len(), sent.len(), "{sent:?}");
}

// === Level 2 ===

/// `test_propagates_random_flag` (the suite's TraceContext2Test), and the
/// other half of the rule: an unset flag stays unset. The sampled flag
/// follows the caller's (parent-based sampling).
#[tokio::test]
async fn the_random_flag_goes_on_as_received() {
    let relay = Relay::spawn().await;
    for flags in [0x00u8, 0x01, 0x02, 0x03] {
        let sent = relay
            .call(&[("traceparent", &parent(&format!("{flags:02x}")))])
            .await;
        assert!(sent.continues());
        assert_eq!(sent.traceparent.flags, flags, "{flags:02x}");
    }
    // With a tracestate the SDK refuses, both are put back.
    let sent = relay
        .call(&[
            ("traceparent", &parent("03")),
            ("tracestate", "foo@@bar=1,bar=2"),
        ])
        .await;
    assert_eq!(sent.traceparent.flags, 0x03);
    assert_eq!(sent.tracestate.as_deref(), Some("foo@@bar=1,bar=2"));
}
