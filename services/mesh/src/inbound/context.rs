//! The caller's trace context, read as hostile input.
//!
//! `traceparent`, `tracestate` and `baggage` come from whoever sent the
//! request. Each is checked against its W3C grammar and size limits before
//! the OpenTelemetry propagators see it, and the propagators see nothing
//! else: the SDK's own parsers are lenient (a trace id one digit short is
//! continued), keep the first of several headers where the specs say to
//! combine them, and log every malformed baggage header at WARN with the
//! caller's text in the line (`internal-logs`), which would let any client
//! write 8 KiB into our logs per request.
//!
//! A bad header is never an error answer: the request is served, its span
//! starting a new trace if the `traceparent` was dropped.
//!
//! The SDK's `SpanContext` also loses two things the W3C spec says must
//! travel on: the Level 2 random-trace-id flag, and a `tracestate` whose
//! keys its own check refuses. [`ReceivedTraceContext`] keeps them beside
//! the span context, and [`complete_injection`] puts them back on the
//! outbound requests of the same trace.
//!
//! Baggage is caller-supplied and unauthenticated: nothing in the mesh
//! reads it except to copy allow-listed keys onto the server span (see
//! `trace::copy_baggage`); it must never decide who may do what.

use std::{borrow::Cow, sync::Arc};

use http::{HeaderMap, HeaderValue};
use opentelemetry::{
    Context, global,
    propagation::Extractor,
    trace::{TraceContextExt as _, TraceFlags, TraceId, TraceState},
};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";

/// W3C Trace Context, "tracestate Header Field Values": "There can be a
/// maximum of 32 list-members in a list."
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The longest combined `tracestate` we continue. The spec only says
/// vendors "SHOULD propagate at least 512 characters of a combined header"
/// and lets a vendor document a limit of its own; 512 is ours, and a longer
/// header is dropped whole. (When truncating, the spec asks that whole
/// entries go; dropping all of them is that, taken to the end.)
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// W3C Baggage, "Limits": a platform "MUST propagate at least 64
/// list-members" and "a baggage-string of at least 8192 bytes". Those are
/// our limits too: beyond either, the header is dropped whole (the spec
/// lets us drop entries "in any order chosen by the implementation").
pub const MAX_BAGGAGE_MEMBERS: usize = 64;
/// See [`MAX_BAGGAGE_MEMBERS`].
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// The context the inbound stack continues: the request's propagation
/// headers, checked ([`PropagationHeaders`]), through the global
/// propagators (W3C Trace Context and Baggage, see `telemetry::init`).
///
/// Public (hidden) so the fuzz tests drive the very function the trace
/// layer calls.
#[doc(hidden)]
pub fn extract(headers: &HeaderMap) -> Context {
    let checked = PropagationHeaders::from_headers(headers);
    let cx = global::get_text_map_propagator(|p| p.extract(&checked));
    match ReceivedTraceContext::lost_by_sdk(&checked, &cx) {
        Some(received) => cx.with_value(received),
        None => cx,
    }
}

/// The `trace-flags` bit of the random-trace-id flag (Trace Context
/// Level 2, "Random Trace ID Flag").
const RANDOM_TRACE_ID: u8 = 0x02;

/// What the caller's trace context said that the SDK's `SpanContext`
/// cannot hold, kept in the extracted `Context` (and so in the context of
/// every span under the server span) for [`complete_injection`]:
///
/// - the random-trace-id flag. The SDK's `TraceContextPropagator` keeps
///   only the sampled bit, but Level 2 ("Random Trace ID Flag") says that
///   when continuing a trace, "if the flag is set in the incoming
///   `traceparent` header, it MUST also be set in all outgoing
///   `traceparent` headers which use the same `trace-id`".
/// - a `tracestate` the SDK refused. Its `TraceState` allows one `@` with
///   at most 13 characters after it, which is neither Level 1's grammar
///   (system ids of 14) nor Level 2's (see [`is_tracestate_key`]), and one
///   refused key empties the whole state; yet "vendors receiving a
///   `tracestate` request header MUST send it to outgoing requests"
///   ("Mutating the tracestate Field").
///
/// Only made when there is something to keep: most requests carry no
/// random flag and a state the SDK holds.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedTraceContext {
    trace_id: TraceId,
    random: bool,
    /// The checked `tracestate`, when the SDK's span context lost it.
    tracestate: Option<Arc<str>>,
}

impl ReceivedTraceContext {
    /// What `cx`, extracted from `checked`, lost; `None` if nothing, or if
    /// no trace is continued (a missing or refused `traceparent`, which
    /// also voids the `tracestate`).
    fn lost_by_sdk(checked: &PropagationHeaders<'_>, cx: &Context) -> Option<Self> {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        // Well formed, so the flags are two hex digits at 53..55.
        let flags = u8::from_str_radix(checked.traceparent()?.get(53..55)?, 16).ok()?;
        let random = flags & RANDOM_TRACE_ID != 0;
        let tracestate = checked
            .tracestate()
            .filter(|&state| sc.trace_state().header() != state)
            .map(Arc::from);
        (random || tracestate.is_some()).then(|| Self {
            trace_id: sc.trace_id(),
            random,
            tracestate,
        })
    }
}

/// Finishes what the SDK's propagator injected into `headers` for `cx`
/// (the outbound trace layer calls it right after): puts back what
/// [`ReceivedTraceContext`] kept, and leaves out an empty `tracestate`.
///
/// Only on requests that continue the trace the caller sent: the random
/// flag's rule is for headers "which use the same `trace-id`", and a
/// restarted trace "SHOULD clean up `tracestate`" ("Mutating the
/// traceparent Field").
pub(crate) fn complete_injection(cx: &Context, headers: &mut HeaderMap) {
    let span = cx.span();
    let sc = span.span_context();
    let received = cx
        .get::<ReceivedTraceContext>()
        .filter(|received| sc.is_valid() && received.trace_id == sc.trace_id());
    if let Some(received) = received {
        if received.random {
            // The SDK wrote version 00 with the sampled bit alone.
            let flags = (sc.trace_flags() & TraceFlags::SAMPLED).to_u8() | RANDOM_TRACE_ID;
            let traceparent = format!("00-{}-{}-{flags:02x}", sc.trace_id(), sc.span_id());
            if let Ok(value) = HeaderValue::from_str(&traceparent) {
                headers.insert(TRACEPARENT, value);
            }
        }
        if let Some(tracestate) = &received.tracestate {
            let merged = merged_tracestate(sc.trace_state(), tracestate);
            if let Ok(value) = HeaderValue::from_str(&merged) {
                headers.insert(TRACESTATE, value);
            }
        }
    }
    // The SDK injects `tracestate` even when its state is empty; "vendors
    // MUST accept empty `tracestate` headers but SHOULD avoid sending them".
    if headers.get(TRACESTATE).is_some_and(HeaderValue::is_empty) {
        headers.remove(TRACESTATE);
    }
}

/// The outgoing `tracestate`: the span's own state (entries this process
/// added or updated, which "MUST be moved to the beginning (left) of the
/// list"), then the received entries it does not override, in their
/// order ("the order of unmodified key/value pairs MUST be preserved").
/// Within the limits of "tracestate Header Field Values" and "tracestate
/// Limits": beyond 32 members "the right-most list-member should be
/// removed"; beyond 512 bytes whole entries go, those over 128 characters
/// first, then from the end.
///
/// `received` is checked (well-formed members, within the limits), so in
/// practice the span's state is empty (no sampler here adds entries) and
/// this is `received` itself.
fn merged_tracestate(local: &TraceState, received: &str) -> String {
    let mut members: Vec<(&str, &str)> = local.into_iter().collect();
    for member in received.split(',') {
        if let Some((key, value)) = member.split_once('=')
            && !members.iter().any(|(k, _)| *k == key)
        {
            members.push((key, value));
        }
    }
    members.truncate(MAX_TRACESTATE_MEMBERS);
    let entry_len = |(key, value): &(&str, &str)| key.len() + 1 + value.len();
    let combined_len = |members: &[(&str, &str)]| {
        members.iter().map(entry_len).sum::<usize>() + members.len().saturating_sub(1)
    };
    while combined_len(&members) > MAX_TRACESTATE_BYTES {
        match members.iter().rposition(|member| entry_len(member) > 128) {
            Some(large) => members.remove(large),
            None => members.pop().expect("over the limit, so not empty"),
        };
    }
    let mut combined = String::with_capacity(MAX_TRACESTATE_BYTES);
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            combined.push(',');
        }
        combined.push_str(key);
        combined.push('=');
        combined.push_str(value);
    }
    combined
}

/// The propagation headers of a request that passed their checks: what
/// the propagators get to read, and all they get to read.
#[doc(hidden)]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PropagationHeaders<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<String>,
    baggage: Option<Cow<'a, str>>,
}

impl<'a> PropagationHeaders<'a> {
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        let traceparent = traceparent(headers);
        // "If the vendor failed to parse traceparent, it MUST NOT attempt
        // to parse tracestate" (W3C Trace Context, "Tracestate Header").
        let tracestate = traceparent.and_then(|_| tracestate(headers));
        Self {
            traceparent,
            tracestate,
            baggage: baggage(headers),
        }
    }

    /// A well-formed `traceparent`, if the request carried exactly one.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent
    }

    /// The combined, well-formed `tracestate`, without empty members or
    /// later entries of a key seen before.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The combined `baggage` within limits, malformed members left out.
    pub fn baggage(&self) -> Option<&str> {
        self.baggage.as_deref()
    }
}

impl Extractor for PropagationHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            self.traceparent()
        } else if key.eq_ignore_ascii_case(TRACESTATE) {
            self.tracestate()
        } else if key.eq_ignore_ascii_case(BAGGAGE) {
            self.baggage()
        } else {
            None
        }
    }

    fn keys(&self) -> Vec<&str> {
        [
            self.traceparent.map(|_| TRACEPARENT),
            self.tracestate.as_ref().map(|_| TRACESTATE),
            self.baggage.as_ref().map(|_| BAGGAGE),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

// === traceparent ===

/// The one `traceparent`, if it is well formed. `traceparent` is not a
/// list, so RFC 7230 §3.2.2 forbids sending it twice; the W3C test suite
/// (`test_traceparent_duplicated`) expects two of them to restart the trace.
fn traceparent(headers: &HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(TRACEPARENT).iter();
    let value = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim_matches([' ', '\t']);
    is_well_formed_traceparent(value).then_some(value)
}

/// W3C Trace Context, "traceparent Header Field Values":
/// `version-trace_id-parent_id-flags`, exactly 2, 32, 16 and 2 lower-case
/// hex digits; version `ff` is invalid; version `00` has nothing after the
/// flags, a later version may add fields after another `-`. (All-zero ids
/// are left to the propagator, which rejects them.)
///
/// The SDK's `TraceContextPropagator` is lenient where the spec is not: it
/// parses the fields as numbers, so a trace id one digit short or a
/// one-digit flags field would be accepted and continued.
pub fn is_well_formed_traceparent(value: &str) -> bool {
    let b = value.as_bytes();
    let hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if b.len() < 55 {
        return false;
    }
    let fields = hex(&b[0..2])
        && b[2] == b'-'
        && hex(&b[3..35])
        && b[35] == b'-'
        && hex(&b[36..52])
        && b[52] == b'-'
        && hex(&b[53..55]);
    let rest = match &b[0..2] {
        b"ff" => false,
        b"00" => b.len() == 55,
        _ => b.len() == 55 || b[55] == b'-',
    };
    fields && rest
}

// === tracestate ===

/// The combined `tracestate`, or `None` if it is absent, longer than
/// [`MAX_TRACESTATE_BYTES`], holds more than [`MAX_TRACESTATE_MEMBERS`]
/// members or any malformed one: "failure to parse tracestate MUST NOT
/// affect the parsing of traceparent", so only the `tracestate` is lost.
/// ("If the `tracestate` header cannot be parsed the vendor MAY discard
/// the entire header", "Processing Model"; the W3C test suite expects
/// exactly that, e.g. `foo=,bar=3` loses `bar` too.)
///
/// Several `tracestate` fields "MUST be combined into a single header
/// according to RFC9110" (joined with commas, in order).
///
/// A key seen again keeps its first (left-most) entry and the header is
/// continued: "vendors MAY also discard duplicate keys that were not
/// generated by them" ("Mutating the tracestate Field", Level 2), and as a
/// vendor that updates its entry moves it to the left, the left-most one
/// is the most recent. The other vendors' entries are still good, and
/// "vendors receiving a `tracestate` request header MUST send it".
fn tracestate(headers: &HeaderMap) -> Option<String> {
    let values = headers.get_all(TRACESTATE);
    // The length first, so a huge header costs nothing more.
    if combined_len(values.iter()) > MAX_TRACESTATE_BYTES {
        return None;
    }
    let mut members: Vec<(&str, &str)> = Vec::new();
    // Members as received, duplicates included: the limit is on the list
    // sent (`list = list-member 0*31( OWS "," OWS list-member )`).
    let mut received = 0;
    for value in values {
        for member in value.to_str().ok()?.split(',') {
            let member = member.trim_matches([' ', '\t']);
            // "Empty and whitespace-only list members are allowed."
            if member.is_empty() {
                continue;
            }
            received += 1;
            if received > MAX_TRACESTATE_MEMBERS {
                return None;
            }
            let (key, value) = member.split_once('=')?;
            if !is_tracestate_key(key) || !is_tracestate_value(value) {
                return None;
            }
            if !members.iter().any(|(k, _)| *k == key) {
                members.push((key, value));
            }
        }
    }
    if members.is_empty() {
        return None;
    }
    let mut combined = String::with_capacity(MAX_TRACESTATE_BYTES);
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            combined.push(',');
        }
        combined.push_str(key);
        combined.push('=');
        combined.push_str(value);
    }
    Some(combined)
}

/// Trace Context Level 2, "Key":
///
/// ```abnf
/// key = ( lcalpha / DIGIT ) 0*255 ( keychar )
/// keychar    = lcalpha / DIGIT / "_" / "-"/ "*" / "/" / "@"
/// ```
///
/// Level 1 had a narrower form, `simple-key / multi-tenant-key` (one `@`,
/// a tenant id of at most 241 characters, a system id of at most 14
/// starting with a letter); Level 2 folded it into this one
/// (w3c/trace-context#386), which accepts every Level 1 key. Checking the
/// Level 1 form would drop a Level 2 caller's `foo@` or `t@` + 15
/// characters, valid keys whose entries we must send on.
pub fn is_tracestate_key(key: &str) -> bool {
    let key = key.as_bytes();
    let keychar =
        |c: &u8| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@');
    (1..=256).contains(&key.len())
        && matches!(key[0], b'a'..=b'z' | b'0'..=b'9')
        && key.iter().all(keychar)
}

/// Trace Context, "Value": up to 256 printable ASCII characters (0x20 to
/// 0x7E) except `,` and `=`, not ending in a space.
///
/// ```abnf
/// value    = 0*255(chr) nblk-chr
/// nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
/// chr      = %x20 / nblk-chr
/// ```
pub fn is_tracestate_value(value: &str) -> bool {
    let v = value.as_bytes();
    (1..=256).contains(&v.len())
        && v.iter()
            .all(|&c| matches!(c, 0x20..=0x7e) && c != b',' && c != b'=')
        && v.last() != Some(&b' ')
}

// === baggage ===

/// The combined `baggage`, or `None` if it is absent, over the limits, or
/// has no well-formed member.
///
/// W3C Baggage: "Multiple baggage headers are allowed. Values can be
/// combined in a single header according to RFC 7230", so the limits apply
/// to the combination. Within them, a malformed member is dropped on its
/// own: "If a system determines that the value of a baggage entry is not in
/// the format defined in this specification, it MAY remove that entry"
/// ("Mutating baggage").
fn baggage(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let values = headers.get_all(BAGGAGE);
    if combined_len(values.iter()) > MAX_BAGGAGE_BYTES {
        return None;
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut seen = 0;
    // Whether `kept` joined differs from the one header as received.
    let mut changed = false;
    for (i, value) in values.iter().enumerate() {
        changed |= i > 0;
        for member in value.as_bytes().split(|&c| c == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                changed = true;
                continue;
            }
            seen += 1;
            if seen > MAX_BAGGAGE_MEMBERS {
                return None;
            }
            // Only ASCII passes the member grammar, so this is valid UTF-8.
            match std::str::from_utf8(member) {
                Ok(member) if is_baggage_member(member) => kept.push(member),
                _ => changed = true,
            }
        }
    }
    match kept.as_slice() {
        [] => None,
        [_, ..] if !changed => values
            .iter()
            .next()
            .and_then(|v| v.to_str().ok())
            .map(Cow::Borrowed),
        _ => Some(Cow::Owned(kept.join(","))),
    }
}

/// W3C Baggage, "Definition":
///
/// ```abnf
/// list-member = key OWS "=" OWS value *( OWS ";" OWS property )
/// property    = key OWS "=" OWS value
/// property    =/ key OWS
/// key         = token ; RFC 7230, Section 3.2.6
/// value       = *baggage-octet
/// ```
///
/// Keys and values are also percent-decoded by the propagator ("A value
/// contains a URL encoded UTF-8 string"), so they must decode to UTF-8.
pub fn is_baggage_member(member: &str) -> bool {
    let mut parts = member.split(';');
    let Some((key, value)) = parts.next().and_then(|kv| kv.split_once('=')) else {
        return false;
    };
    let pair = |key: &str, value: &str| {
        let (key, value) = (trim_ows_str(key), trim_ows_str(value));
        is_token(key) && value.bytes().all(is_baggage_octet) && decodes(key) && decodes(value)
    };
    pair(key, value)
        && parts.all(|property| match property.split_once('=') {
            Some((key, value)) => pair(key, value),
            None => {
                let key = trim_ows_str(property);
                is_token(key) && decodes(key)
            }
        })
}

/// RFC 7230 §3.2.6: `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// `baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`: ASCII
/// without controls, whitespace, `"`, `,`, `;` and `\`.
fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn decodes(s: &str) -> bool {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .is_ok()
}

/// The length of the values joined with commas, as RFC 7230 combines them.
fn combined_len<'h>(values: impl Iterator<Item = &'h HeaderValue>) -> usize {
    let (count, bytes) = values.fold((0usize, 0usize), |(n, len), v| (n + 1, len + v.len()));
    bytes + count.saturating_sub(1)
}

/// RFC 7230 `OWS = *( SP / HTAB )`, trimmed from both ends.
fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| !matches!(c, b' ' | b'\t'));
    let end = s.iter().rposition(|c| !matches!(c, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &s[start..=end],
        _ => &[],
    }
}

fn trim_ows_str(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
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
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
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
}
