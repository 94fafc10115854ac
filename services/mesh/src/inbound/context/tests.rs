use std::sync::{Arc, Mutex};

use http::{HeaderMap, HeaderValue};
use opentelemetry::{
    baggage::BaggageExt as _,
    propagation::TextMapCompositePropagator,
    trace::{TraceContextExt as _, TraceId},
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn checked(pairs: &[(&str, &str)]) -> PropagationHeaders<'static> {
    let map = Box::leak(Box::new(headers(pairs)));
    PropagationHeaders::from_headers(map)
}

/// The checked `tracestate` of `pairs` after a valid `traceparent`.
fn tracestate_of(pairs: &[(&str, &str)]) -> Option<String> {
    let parent = format!("00-{ID}-01");
    let mut all = vec![("traceparent", parent.as_str())];
    all.extend_from_slice(pairs);
    let checked = checked(&all);
    assert!(checked.traceparent().is_some());
    checked.tracestate().map(str::to_owned)
}

fn baggage_of(pairs: &[(&str, &str)]) -> Option<String> {
    checked(pairs).baggage().map(str::to_owned)
}

fn install_propagators() {
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

#[test]
fn traceparent_format_follows_the_w3c_grammar() {
    let ok = is_well_formed_traceparent;
    assert!(ok(&format!("00-{ID}-01")));
    assert!(ok(&format!("00-{ID}-00")));
    // A later version may carry more fields; version 00 may not.
    assert!(ok(&format!("01-{ID}-01-what-the-future-holds")));
    assert!(ok(&format!("01-{ID}-01")));
    assert!(!ok(&format!("00-{ID}-01-extra")));
    assert!(!ok(&format!("01-{ID}-01extra")));
    assert!(!ok(&format!("ff-{ID}-01")));
    assert!(!ok(&format!("00-{ID}-1")));
    assert!(!ok(&format!("0-{ID}-01")));
    assert!(!ok(&format!("00-{}-01", ID.to_uppercase())));
    assert!(!ok(
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"
    ));
    assert!(!ok(
        "00-4bf92f3577b34da6a3ce929d0e0e47366-0f067aa0ba902b7-01"
    ));
    assert!(!ok(""));
}

#[test]
fn a_traceparent_sent_twice_is_dropped_with_its_tracestate() {
    let parent = format!("00-{ID}-01");
    let twice = checked(&[
        ("traceparent", &parent),
        ("traceparent", &parent),
        ("tracestate", "rojo=1"),
    ]);
    assert_eq!(twice.traceparent(), None);
    assert_eq!(twice.tracestate(), None);
    // Surrounding whitespace is not part of the value.
    let padded = format!(" {parent}\t");
    assert_eq!(
        checked(&[("traceparent", &padded)]).traceparent(),
        Some(parent.as_str())
    );
}

#[test]
fn a_malformed_traceparent_voids_tracestate_but_not_baggage() {
    let got = checked(&[
        ("traceparent", "00-not-a-trace-01"),
        ("tracestate", "rojo=1"),
        ("baggage", "scenario=checkout"),
    ]);
    assert_eq!(got.traceparent(), None);
    assert_eq!(got.tracestate(), None);
    assert_eq!(got.baggage(), Some("scenario=checkout"));
    // Without a traceparent, no tracestate either.
    assert_eq!(checked(&[("tracestate", "rojo=1")]).tracestate(), None);
}

#[test]
fn tracestate_keys_follow_the_level_2_grammar() {
    let key = is_tracestate_key;
    assert!(key("rojo"));
    assert!(key("a0_-*/@"));
    assert!(key(&"z".repeat(256)));
    assert!(!key(&"z".repeat(257)));
    // A letter or a digit first, then any keychar, `@` included.
    assert!(key("0rojo"));
    assert!(key("fw529a3039@dt"));
    assert!(key("foo@"));
    assert!(key("foo@@bar"));
    assert!(key("foo@bar@baz"));
    assert!(key("t@0v"));
    // Every Level 1 multi-tenant key still passes, and the Level 1
    // limits (tenant 241, system 14) no longer apply: 256 in all.
    assert!(key(&format!("{}@{}", "t".repeat(241), "v".repeat(14))));
    assert!(key(&format!("{}@v", "t".repeat(242))));
    assert!(key(&format!("t@{}", "v".repeat(15))));
    assert!(!key(&format!("{}@{}", "t".repeat(241), "v".repeat(15))));
    for bad in [
        "", "@foo", "_foo", "FOO", "fOo", "foo ", " foo", "foo.bar", "foo=bar",
    ] {
        assert!(!key(bad), "{bad:?}");
    }
}

#[test]
fn tracestate_values_are_printable_ascii_without_comma_or_equals() {
    let value = is_tracestate_value;
    assert!(value("00f067aa0ba902b7"));
    assert!(value(" leading spaces are kept"));
    assert!(value(&"v".repeat(256)));
    assert!(!value(&"v".repeat(257)));
    assert!(!value(""));
    assert!(!value("trailing "));
    assert!(!value("a=b"));
    assert!(!value("tab\there"));
    assert!(!value("caf\u{e9}"));
    let all: String = (0x20u8..=0x7e)
        .filter(|c| *c != b',' && *c != b'=')
        .map(char::from)
        .collect();
    assert!(value(&all));
}

#[test]
fn tracestate_headers_are_combined_in_order_without_empty_members() {
    assert_eq!(
        tracestate_of(&[
            ("tracestate", "foo=1,bar=2"),
            ("tracestate", "rojo=1, \t congo=2"),
            ("tracestate", ""),
            ("tracestate", "baz=3,,"),
        ])
        .as_deref(),
        Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
    );
    assert_eq!(tracestate_of(&[("tracestate", "")]), None);
    assert_eq!(
        tracestate_of(&[("tracestate", "\t foo=1 \t")]).as_deref(),
        Some("foo=1")
    );
}

#[test]
fn a_malformed_tracestate_is_dropped_whole() {
    for bad in [
        "foo=1,BAR=2",
        "foo=1,bar",
        "@foo=1,bar=2",
        "foo =1",
        "foo.bar=1",
        "foo=",
        "foo=,bar=3",
        "foo=bar=baz",
        "foo=a\tb",
    ] {
        assert_eq!(tracestate_of(&[("tracestate", bad)]), None, "{bad:?}");
    }
    // One bad header spoils the combination.
    let long_key = format!("{}=1", "z".repeat(257));
    assert_eq!(
        tracestate_of(&[("tracestate", "foo=1"), ("tracestate", &long_key)]),
        None
    );
}

#[test]
fn a_duplicated_key_keeps_its_first_entry_and_the_rest_of_the_header() {
    for (sent, kept) in [
        (&[("tracestate", "foo=1,foo=1")][..], "foo=1"),
        (&[("tracestate", "foo=1,foo=2")], "foo=1"),
        (&[("tracestate", "foo=1"), ("tracestate", "foo=2")], "foo=1"),
        (
            &[
                ("tracestate", "congo=2,rojo=1"),
                ("tracestate", "congo=1,baz=3"),
            ],
            "congo=2,rojo=1,baz=3",
        ),
    ] {
        assert_eq!(tracestate_of(sent).as_deref(), Some(kept), "{sent:?}");
    }
}

#[test]
fn level_2_keys_with_at_signs_are_continued() {
    for sent in ["foo@=1,bar=2", "foo@@bar=1,bar=2", "foo@bar@baz=1,bar=2"] {
        assert_eq!(
            tracestate_of(&[("tracestate", sent)]).as_deref(),
            Some(sent)
        );
    }
    for key in [
        "z".repeat(256),
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
    ] {
        let member = format!("{key}=1");
        assert_eq!(
            tracestate_of(&[("tracestate", "foo=1"), ("tracestate", &member)]),
            Some(format!("foo=1,{member}"))
        );
    }
}

#[test]
fn tracestate_keeps_32_members_and_drops_33() {
    let members = |n: usize| {
        (1..=n)
            .map(|i| format!("bar{i:02}={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let kept = tracestate_of(&[("tracestate", &members(32))]).unwrap();
    assert_eq!(kept.split(',').count(), 32);
    assert_eq!(tracestate_of(&[("tracestate", &members(33))]), None);
    // Over several headers, as the W3C suite sends them.
    let all = members(33);
    let (first, rest) = all.split_at(all.find(",bar11").unwrap());
    assert_eq!(
        tracestate_of(&[("tracestate", first), ("tracestate", &rest[1..])]),
        None
    );
    // The list as sent counts, duplicates included: 33 members are
    // outside the grammar even if only 32 keys are distinct.
    let with_duplicate = format!("{},bar01=01", members(32));
    assert_eq!(tracestate_of(&[("tracestate", &with_duplicate)]), None);
    // Empty members are not members.
    let with_empties = format!(",{}, ,,", members(32));
    assert!(tracestate_of(&[("tracestate", &with_empties)]).is_some());
}

#[test]
fn tracestate_over_512_bytes_is_dropped_whole() {
    // 2 + 1 + 253 = 256 bytes a member; two are 513 with the comma.
    let member = |k: &str| format!("{k}={}", "v".repeat(253));
    let two = format!("{},{}", member("aa"), member("bb"));
    assert_eq!(two.len(), 513);
    assert_eq!(tracestate_of(&[("tracestate", &two)]), None);
    // Split over two headers, the combined length counts.
    assert_eq!(
        tracestate_of(&[("tracestate", &member("aa")), ("tracestate", &member("bb"))]),
        None
    );
    let fits = format!("{},{}", member("aa"), &member("b")[..254]);
    assert_eq!(fits.len(), 511);
    assert_eq!(tracestate_of(&[("tracestate", &fits)]), Some(fits));
}

#[test]
fn baggage_members_follow_the_w3c_grammar() {
    let ok = is_baggage_member;
    assert!(ok("userId=alice"));
    assert!(ok("serverNode = DF%2028"));
    assert!(ok("key1=value1;property1;property2"));
    assert!(ok("key3=value3; propertyKey=propertyValue"));
    assert!(ok("empty="));
    assert!(ok("eq=a=b"));
    for bad in [
        "novalue",
        "=nokey",
        "bad key=1",
        "k=\"quoted\"",
        "k=back\\slash",
        "k=sp ace",
        "k=v;bad prop",
        "k=%FF",
        "k=caf\u{e9}",
        "k(=1",
    ] {
        assert!(!ok(bad), "{bad:?}");
    }
}

#[test]
fn malformed_baggage_members_are_dropped_one_by_one() {
    assert_eq!(
        baggage_of(&[("baggage", "a=1,bad key=2, ,c=3;p")]).as_deref(),
        Some("a=1,c=3;p")
    );
    assert_eq!(baggage_of(&[("baggage", "only junk")]), None);
    // Untouched when nothing is dropped: no copy.
    let map = headers(&[("baggage", "a=1, b = 2")]);
    let got = PropagationHeaders::from_headers(&map);
    assert!(matches!(got.baggage, Some(Cow::Borrowed("a=1, b = 2"))));
}

#[test]
fn several_baggage_headers_are_combined() {
    assert_eq!(
        baggage_of(&[
            ("baggage", "userId=alice"),
            ("baggage", "serverNode=DF%2028,isProduction=false"),
        ])
        .as_deref(),
        Some("userId=alice,serverNode=DF%2028,isProduction=false")
    );
}

#[test]
fn baggage_over_64_members_or_8192_bytes_is_dropped_whole() {
    let members = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(baggage_of(&[("baggage", &members(64))]).is_some());
    assert_eq!(baggage_of(&[("baggage", &members(65))]), None);
    // Malformed members count: a flood of junk is not a way around it.
    let junk = format!("{},{}", members(1), vec!["bad key=1"; 64].join(","));
    assert_eq!(baggage_of(&[("baggage", &junk)]), None);
    // Over two headers as in one.
    assert_eq!(
        baggage_of(&[("baggage", &members(40)), ("baggage", &members(40))]),
        None
    );

    let big = |n: usize| format!("k={}", "v".repeat(n - 2));
    assert!(baggage_of(&[("baggage", &big(8192))]).is_some());
    assert_eq!(baggage_of(&[("baggage", &big(8193))]), None);
    assert_eq!(
        baggage_of(&[("baggage", &big(4096)), ("baggage", &big(4096))]),
        None,
        "8193 bytes once combined"
    );
}

#[test]
fn non_ascii_headers_are_dropped_not_fatal() {
    let mut map = HeaderMap::new();
    let parent = format!("00-{ID}-01");
    map.insert("traceparent", HeaderValue::from_str(&parent).unwrap());
    map.insert("tracestate", HeaderValue::from_bytes(b"rojo=\xff").unwrap());
    map.append("baggage", HeaderValue::from_bytes(b"a=\xc3\xa9").unwrap());
    map.append("baggage", HeaderValue::from_static("b=2"));
    let got = PropagationHeaders::from_headers(&map);
    assert_eq!(got.traceparent(), Some(parent.as_str()));
    assert_eq!(got.tracestate(), None);
    assert_eq!(got.baggage(), Some("b=2"));
}

#[test]
fn extraction_continues_the_trace_with_checked_state_and_baggage() {
    install_propagators();
    let map = headers(&[
        ("traceparent", &format!("00-{ID}-01")),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("baggage", "scenario=checkout,bad key=1"),
        ("baggage", "journey=browse"),
    ]);
    let cx = extract(&map);
    let span = cx.span();
    let sc = span.span_context();
    assert!(sc.is_remote());
    assert_eq!(sc.trace_id(), TraceId::from_hex(TRACE_ID).unwrap());
    assert_eq!(
        sc.trace_state().header(),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    );
    let baggage = cx.baggage();
    assert_eq!(baggage.len(), 2);
    assert_eq!(
        baggage.get("scenario").map(|v| v.as_str()),
        Some("checkout")
    );
    assert_eq!(baggage.get("journey").map(|v| v.as_str()), Some("browse"));
}

/// What the outbound trace layer sends for `cx`: the SDK's propagator,
/// then [`complete_injection`].
fn injected(cx: &Context) -> HeaderMap {
    let mut headers = HeaderMap::new();
    global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut opentelemetry_http::HeaderInjector(&mut headers))
    });
    complete_injection(cx, &mut headers);
    headers
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn the_random_flag_goes_out_with_the_trace_it_came_with() {
    install_propagators();
    for (flags, sent) in [("02", "02"), ("03", "03"), ("00", "00"), ("01", "01")] {
        let cx = extract(&headers(&[("traceparent", &format!("00-{ID}-{flags}"))]));
        assert_eq!(
            cx.get::<ReceivedTraceContext>().is_some(),
            flags == "02" || flags == "03",
            "kept only when there is a flag to keep"
        );
        assert_eq!(
            header(&injected(&cx), "traceparent"),
            Some(format!("00-{ID}-{sent}").as_str())
        );
    }
    // Other flags are not ours to send ("Other Flags": set to 0).
    let cx = extract(&headers(&[("traceparent", &format!("00-{ID}-ff"))]));
    assert_eq!(
        header(&injected(&cx), "traceparent"),
        Some(format!("00-{ID}-03").as_str())
    );
}

#[test]
fn a_tracestate_the_sdk_refuses_goes_out_as_received() {
    install_propagators();
    for sent in [
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
        "rojo=1,t@vvvvvvvvvvvvvvv=1",
    ] {
        let cx = extract(&headers(&[
            ("traceparent", &format!("00-{ID}-01")),
            ("tracestate", sent),
        ]));
        let span = cx.span();
        assert_eq!(
            span.span_context().trace_state().header(),
            "",
            "SDK refused"
        );
        assert_eq!(header(&injected(&cx), "tracestate"), Some(sent));
    }
    // A state the SDK holds needs nothing kept beside it.
    let cx = extract(&headers(&[
        ("traceparent", &format!("00-{ID}-01")),
        ("tracestate", "rojo=1,congo=2"),
    ]));
    assert_eq!(cx.get::<ReceivedTraceContext>(), None);
    assert_eq!(header(&injected(&cx), "tracestate"), Some("rojo=1,congo=2"));
}

#[test]
fn no_empty_tracestate_is_sent() {
    install_propagators();
    let cx = extract(&headers(&[
        ("traceparent", &format!("00-{ID}-01")),
        ("tracestate", " , "),
    ]));
    let sent = injected(&cx);
    assert!(header(&sent, "traceparent").is_some());
    assert_eq!(sent.get("tracestate"), None);
}

#[test]
fn what_was_kept_is_not_sent_on_another_trace() {
    install_propagators();
    let cx = extract(&headers(&[
        ("traceparent", &format!("00-{ID}-03")),
        ("tracestate", "foo@@bar=1"),
    ]));
    assert!(cx.get::<ReceivedTraceContext>().is_some());
    let restarted = opentelemetry::trace::SpanContext::new(
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
        opentelemetry::trace::SpanId::from_hex("b7ad6b7169203331").unwrap(),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    let sent = injected(&cx.with_remote_span_context(restarted));
    assert_eq!(
        header(&sent, "traceparent"),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(sent.get("tracestate"), None);
}

#[test]
fn merged_tracestate_puts_local_entries_first_within_the_limits() {
    let local = TraceState::from_key_value([("congo", "local")]).unwrap();
    assert_eq!(
        merged_tracestate(&local, "rojo=1,congo=2,baz=3"),
        "congo=local,rojo=1,baz=3"
    );
    assert_eq!(merged_tracestate(&TraceState::NONE, "a@@b=1"), "a@@b=1");
    // 32 members at most: the right-most go.
    let received = (1..=32)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let merged = merged_tracestate(&local, &received);
    assert_eq!(merged.split(',').count(), 32);
    assert!(merged.starts_with("congo=local,k1=v,"));
    assert!(merged.ends_with(",k31=v"));
    // 512 bytes at most: entries over 128 characters go first, then
    // entries from the end, only as many as needed.
    let big = format!("big={}", "v".repeat(200));
    let received = format!("a={},{big},b={},c=1", "v".repeat(150), "v".repeat(100));
    let local = TraceState::from_key_value([("l", "v".repeat(100))]).unwrap();
    let merged = merged_tracestate(&local, &received);
    assert!(merged.len() <= MAX_TRACESTATE_BYTES, "{}", merged.len());
    let keys: Vec<_> = merged
        .split(',')
        .map(|m| m.split_once('=').unwrap().0)
        .collect();
    // 567 bytes: dropping `big` (the right-most of those over 128) is
    // enough; `a`, over 128 too, stays.
    assert_eq!(keys, ["l", "a", "b", "c"]);
    let local = TraceState::from_key_value([("l", "v".repeat(120))]).unwrap();
    let received = (0..5)
        .map(|i| format!("k{i}={}", "v".repeat(100)))
        .collect::<Vec<_>>()
        .join(",");
    let keys: Vec<_> = merged_tracestate(&local, &received)
        .split(',')
        .map(|m| m.split_once('=').unwrap().0.to_owned())
        .collect();
    assert_eq!(keys, ["l", "k0", "k1", "k2"]);
}

/// The SDK logs every malformed baggage header at WARN, the caller's
/// text included; checked headers never get it there.
#[test]
fn malformed_context_headers_write_nothing_to_the_logs() {
    install_propagators();
    #[derive(Clone, Default)]
    struct Count(Arc<Mutex<usize>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            *self.0.lock().unwrap() += 1;
        }
    }
    let count = Count::default();
    let subscriber = tracing_subscriber::registry().with(count.clone());
    tracing::subscriber::with_default(subscriber, || {
        let map = headers(&[
            ("traceparent", "00-junk"),
            ("tracestate", "INJECTED=x"),
            ("baggage", "noequals,=,a=%ZZ%FF,user=<script>"),
            ("baggage", &"x".repeat(9000)),
        ]);
        let _ = extract(&map);
        let map = headers(&[("baggage", "noequals,ok=1")]);
        assert_eq!(extract(&map).baggage().len(), 1);
        assert_eq!(*count.0.lock().unwrap(), 0);
        // What the SDK does with the raw header: a line per request.
        let raw = opentelemetry_http::HeaderExtractor(&map);
        let _ = global::get_text_map_propagator(|p| p.extract(&raw));
        assert!(*count.0.lock().unwrap() > 0);
    });
}
