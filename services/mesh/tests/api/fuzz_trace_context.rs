//! Fuzzing the inbound trace context as property tests: arbitrary and
//! mutated `traceparent`, `tracestate` and `baggage` headers (several of
//! each, huge ones, non-UTF-8 bytes) through the extraction the inbound
//! layer uses, then through a real mesh router.
//!
//! Bounded (2000-3000 cases each, about ten seconds in a debug build) so it
//! runs with every `cargo test`; raise `CASES` locally when hunting.

use axum::{Router, body::Body, routing::get};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use mesh::{
    Mesh, Readiness,
    inbound::context::{
        MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS,
        PropagationHeaders, extract, is_baggage_member, is_tracestate_key, is_tracestate_value,
        is_well_formed_traceparent,
    },
};
use opentelemetry::{
    baggage::BaggageExt as _, propagation::TextMapCompositePropagator, trace::TraceContextExt as _,
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use proptest::{
    prelude::*,
    sample::Index,
    test_runner::{Config, TestRunner},
};

use crate::helpers::{Telemetry, TraceParent, call, identity, serve_config};

const CASES: u32 = 2000;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// `base` with a few bytes replaced, inserted or removed.
fn mutated(base: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    (
        base,
        prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 0..4),
    )
        .prop_map(|(base, edits)| {
            let mut bytes = base.into_bytes();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            bytes
        })
}

fn arbitrary_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn traceparent() -> impl Strategy<Value = Vec<u8>> {
    let shaped = "(00|01|cc|ff|0)-[0-9a-f]{31,33}-[0-9a-f]{15,17}-[0-9a-f]{1,3}(-[a-z0-9-]{0,8})?";
    prop_oneof![
        4 => "(00|01|cc)-[0-9a-f]{32}-[0-9a-f]{16}-0[01]".prop_map(String::into_bytes),
        3 => shaped.prop_map(String::into_bytes),
        3 => mutated("00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]"),
        1 => "00-0{32}-[0-9a-f]{16}-01|00-[0-9a-f]{32}-0{16}-01".prop_map(String::into_bytes),
        1 => arbitrary_bytes(80),
    ]
}

fn tracestate() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        4 => "[a-z][a-z0-9_*/-]{0,12}",
        2 => "[a-z0-9][a-z0-9_*/-]{0,8}@[a-z][a-z0-9_*/-]{0,15}",
        1 => "[a-zA-Z0-9@ .=,_-]{0,10}",
        1 => "[a-z]{250,260}",
    ];
    let value = prop_oneof![
        4 => "[!-+\\--<>-~]{1,16}",
        1 => "[ -~]{0,20}",
        1 => "[a-z]{250,260}",
    ];
    let members = prop::collection::vec((key, value, "[ \t]{0,2}"), 0..40).prop_map(|members| {
        members
            .into_iter()
            .map(|(k, v, ows)| format!("{ows}{k}={v}{ows}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    // Mostly well-formed lists, so the limits (not the grammar) decide.
    let valid = prop::collection::vec(("[a-z][a-z0-9_]{0,9}", "[!-+\\--<>-~]{1,16}"), 0..40)
        .prop_map(|members| {
            members
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
    prop_oneof![
        4 => valid.prop_map(String::into_bytes),
        4 => members.prop_map(String::into_bytes),
        2 => mutated("[a-z]{1,4}=[a-z0-9]{1,8}(,[a-z]{1,4}=[a-z0-9]{1,8}){0,33}"),
        1 => arbitrary_bytes(600),
    ]
}

fn baggage() -> impl Strategy<Value = Vec<u8>> {
    let member = (
        prop_oneof![4 => "[A-Za-z0-9._~-]{1,12}", 1 => "[ -~]{0,8}"],
        prop_oneof![4 => "[A-Za-z0-9%._~=-]{0,16}", 1 => "[ -~]{0,12}", 1 => "%[0-9A-Fa-f]{2}"],
        prop_oneof![3 => Just(String::new()), 1 => ";[a-z]{1,5}(=[a-z0-9]{0,5})?"],
    )
        .prop_map(|(k, v, p)| format!("{k}={v}{p}"));
    prop_oneof![
        4 => prop::collection::vec(member, 0..90).prop_map(|m| m.join(",").into_bytes()),
        1 => (0usize..12_000).prop_map(|n| format!("k={}", "v".repeat(n)).into_bytes()),
        2 => mutated("[a-z]{1,6}=[a-z0-9]{0,8}(,[a-z]{1,6}=[a-z0-9]{0,8}){0,70}"),
        1 => arbitrary_bytes(400),
    ]
}

/// Up to eight context headers, any of the three, any number of times,
/// in any order (the header name's case varies too).
fn context_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let one = prop_oneof![
        traceparent().prop_map(|v| ("traceparent", v)),
        traceparent().prop_map(|v| ("TraceParent", v)),
        tracestate().prop_map(|v| ("tracestate", v)),
        baggage().prop_map(|v| ("baggage", v)),
        baggage().prop_map(|v| ("Baggage", v)),
    ];
    prop::collection::vec(one, 0..8)
}

/// The headers as hyper would hand them over: values it could not have
/// parsed (control characters) are left out.
fn header_map(pairs: &[(&'static str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
    }
    map
}

fn members(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
}

/// What `telemetry::init` installs: the W3C TraceContext and Baggage
/// propagators, composed.
fn install_propagators() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    });
}

proptest! {
    #![proptest_config(config(CASES))]

    /// What survives the checks is what the specs allow, and nothing else.
    #[test]
    fn checked_headers_are_well_formed_and_within_limits(pairs in context_headers()) {
        let map = header_map(&pairs);
        let checked = PropagationHeaders::from_headers(&map);
        if let Some(traceparent) = checked.traceparent() {
            prop_assert!(is_well_formed_traceparent(traceparent), "{traceparent:?}");
            prop_assert_eq!(map.get_all("traceparent").iter().count(), 1);
        }
        if let Some(tracestate) = checked.tracestate() {
            prop_assert!(checked.traceparent().is_some());
            prop_assert!(tracestate.len() <= MAX_TRACESTATE_BYTES);
            prop_assert!(members(tracestate).count() <= MAX_TRACESTATE_MEMBERS);
            for member in members(tracestate) {
                let (key, value) = member.split_once('=').unwrap();
                prop_assert!(is_tracestate_key(key) && is_tracestate_value(value), "{member:?}");
            }
        }
        if let Some(baggage) = checked.baggage() {
            prop_assert!(baggage.len() <= MAX_BAGGAGE_BYTES);
            prop_assert!(members(baggage).count() <= MAX_BAGGAGE_MEMBERS);
            for member in members(baggage) {
                prop_assert!(is_baggage_member(member), "{member:?}");
            }
        }
    }

    /// The extraction the inbound layer runs never panics; a continued
    /// trace is the one the kept `traceparent` names, its state at most 32
    /// members; baggage at most 64 entries.
    #[test]
    fn extraction_never_panics_and_stays_within_limits(pairs in context_headers()) {
        install_propagators();
        let map = header_map(&pairs);
        let checked = PropagationHeaders::from_headers(&map);
        let cx = extract(&map);
        let span = cx.span();
        let sc = span.span_context();
        match checked.traceparent() {
            None => prop_assert!(!sc.is_valid()),
            Some(traceparent) if sc.is_valid() => {
                prop_assert!(sc.is_remote());
                prop_assert_eq!(sc.trace_id().to_string(), &traceparent[3..35]);
            }
            Some(_) => {}
        }
        let state = sc.trace_state().header();
        prop_assert!(members(&state).count() <= MAX_TRACESTATE_MEMBERS, "{state}");
        prop_assert!(cx.baggage().len() <= MAX_BAGGAGE_MEMBERS);
    }
}

fn app() -> Router {
    let api = Router::new().route("/items/{id}", get(|| async { "one item" }));
    let readiness = Readiness::new(None);
    readiness.mark_started();
    Mesh::new(identity("items"), &serve_config()).router(api, readiness)
}

/// A few thousand random header combinations through a real router: every
/// request is answered (200, or 431 for oversized headers; never a 5xx,
/// never a panic) with a well-formed `traceresponse`, and continues the
/// caller's trace exactly when the checked `traceparent` names a valid one.
#[test]
fn random_context_headers_never_fail_a_request() {
    let telemetry = Telemetry::install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let app = app();
    let mut runner = TestRunner::new(config(CASES + 1000));
    runner
        .run(&context_headers(), |pairs| {
            let map = header_map(&pairs);
            let mut req = Request::get("/items/7").body(Body::empty()).unwrap();
            req.headers_mut().extend(map.clone());
            let res = rt.block_on(call(&app, req));
            // Served, whatever the headers say; a header total past the
            // mesh's limit is the client's 431, never a 5xx.
            prop_assert!(
                matches!(res.status().as_u16(), 200 | 431),
                "{}",
                res.status()
            );
            let answered = TraceParent::parse(
                res.headers()
                    .get("traceresponse")
                    .and_then(|v| v.to_str().ok())
                    .expect("a traceresponse on every answer"),
            );
            let parent = extract(&map);
            let parent = parent.span();
            let parent = parent.span_context();
            if parent.is_valid() {
                prop_assert_eq!(answered.trace_id, parent.trace_id());
            } else if let Some(sent) = PropagationHeaders::from_headers(&map).traceparent() {
                prop_assert_ne!(answered.trace_id.to_string(), &sent[3..35]);
            }
            // Parent-based sampling: a caller that did not sample gets an
            // unsampled (unexported) span.
            let exported = usize::from(!parent.is_valid() || parent.is_sampled());
            prop_assert_eq!(telemetry.spans().len(), exported);
            telemetry.reset();
            Ok(())
        })
        .unwrap();
}
