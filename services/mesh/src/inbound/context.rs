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
mod tests;
