//! Telemetry hygiene: no passwords, tokens, email addresses or card
//! numbers in exported spans, exported log records or console lines.
//!
//! Two controls, applied where telemetry leaves the process (the span
//! exporter, the log record pipeline, the console formatter), so no
//! handler has to remember them:
//!
//! - an allow-list of span attribute keys ([`is_allowed_attribute`]): the
//!   keys the mesh and the services emit on purpose. Any other attribute is
//!   dropped at export and counted in [`REDACTED_ATTRIBUTES`]. Dropping
//!   rather than writing `[REDACTED]` keeps unknown data out of the trace
//!   store entirely (key included) and costs nothing to store; the count
//!   says something was there. `tests/hygiene_*.rs` fails when code starts
//!   emitting a key that is not on the list.
//! - a value scrubber ([`scrub`]) for every string that survives: span
//!   names, attribute values, span events (the `tracing` events inside a
//!   span: name and fields), link attributes, status messages, and every
//!   field of a log line. It replaces what looks like a JWT, a `Bearer`
//!   credential, an email address, a card number (13-19 digits passing
//!   Luhn) or a `password=`/`"token": "…"` value with `[REDACTED:<kind>]`.
//!   Fields whose *name* says secret ([`is_sensitive_key`]) lose their value
//!   whatever it looks like.
//!
//! Metric labels need neither: they are route templates, methods from a
//! fixed set and status codes, and exemplars carry only a `trace_id`
//! (`metrics::TraceExemplar`).
//!
//! The scrubber is a hand-written single pass over the bytes (no regex
//! engine, no allocation when nothing matches): it runs on the batch
//! exporter's thread for spans and the log pipeline's thread for log
//! records ([`redact_log_record`], which also allow-lists their attribute
//! keys: [`ALLOWED_LOG_ATTRIBUTES`]), but on the request path for console
//! lines.

mod logs;

use std::borrow::Cow;

use opentelemetry::{Array, KeyValue, Value, trace::Status};
use opentelemetry_sdk::trace::SpanData;

pub use self::logs::{ALLOWED_LOG_ATTRIBUTES, is_allowed_log_attribute, redact_log_record};

/// Added to a span that lost attributes to the allow-list: how many.
pub const REDACTED_ATTRIBUTES: &str = "redacted.attributes";

/// What replaces the value of a field whose name says it is secret.
pub const REDACTED: &str = "[REDACTED]";

/// The span attribute keys exported as they are (values still scrubbed),
/// sorted for binary search. Adding a span field means adding it here;
/// `tests/api/hygiene_telemetry.rs` checks the code against this list.
pub const ALLOWED_SPAN_ATTRIBUTES: &[&str] = &[
    // users: password hashing cost (never the password).
    "argon2.m_cost_kib",
    "argon2.p_cost",
    "argon2.t_cost",
    // tracing-opentelemetry: time inside and outside the span.
    "busy_ns",
    // courses: a catalog read, served from memory or not, and from which
    // of its caches (`course`, `page`).
    "cache.hit",
    "cache.name",
    // HTTP server semantic conventions.
    "client.address",
    // tracing-opentelemetry: where the span was opened (current and
    // pre-1.26 semconv names).
    "code.file.path",
    "code.filepath",
    "code.line.number",
    "code.lineno",
    "code.module.name",
    "code.namespace",
    // courses: `#[instrument(fields(courses))]` on seeding the catalog.
    "courses",
    // Database client semantic conventions (`db.rs`); the query text is
    // the static SQL with placeholders, never the bound values.
    "db.collection.name",
    "db.namespace",
    "db.operation.name",
    "db.query.text",
    "db.system.name",
    // The error semantic conventions.
    "error.type",
    "exception.message",
    "exception.stacktrace",
    "exception.type",
    // The fault layer: injected failures told from real ones.
    "fault.injected",
    "fault.kind",
    // HTTP semantic conventions.
    "http.request.header.x-request-id",
    "http.request.method",
    "http.request.method_original",
    "http.response.status_code",
    "http.route",
    "idle_ns",
    // tracing-opentelemetry: the span's level and target.
    "level",
    // loadgen's journey spans.
    "loadgen.journey",
    "loadgen.scenario",
    // Messaging semantic conventions (the outbox and consumers).
    "messaging.consumer.group.name",
    "messaging.destination.name",
    "messaging.message.body.size",
    "messaging.message.id",
    "messaging.nats.delivery_count",
    "messaging.operation.name",
    "messaging.operation.type",
    "messaging.system",
    "network.peer.address",
    "network.peer.port",
    "network.protocol.version",
    // tracing-opentelemetry's special fields (consumed, not exported, by
    // current versions; harmless if a version exports them).
    "otel.kind",
    "otel.name",
    "otel.status_code",
    "otel.status_description",
    // payments: the provider call (amounts and references, no card data).
    "payment.amount_cents",
    "payment.currency",
    "payment.decline_reason",
    "payment.idempotency_key",
    "payment.provider.outcome",
    "payment.provider.pool_wait_ms",
    "payment.provider.reference",
    "peer.service",
    REDACTED_ATTRIBUTES,
    "server.address",
    "server.port",
    "target",
    "thread.id",
    "thread.name",
    "url.full",
    "url.path",
    "url.scheme",
    "url.template",
    "user_agent.original",
];

/// Whether a span attribute is exported: on [`ALLOWED_SPAN_ATTRIBUTES`],
/// or a `baggage.<key>` the service copies from baggage
/// (`BAGGAGE_SPAN_ATTRIBUTES`, see [`crate::baggage`]).
pub fn is_allowed_attribute(key: &str) -> bool {
    ALLOWED_SPAN_ATTRIBUTES.binary_search(&key).is_ok()
        || crate::baggage::attribute_keys()
            .iter()
            .any(|(_, attribute)| attribute.as_str() == key)
}

/// Words that make a field or attribute name secret, as the whole name or
/// its last part (`password`, `user.password`, `access_token`, `x-api-key`).
const SECRET_WORDS: &[&str] = &[
    "api-key",
    "api_key",
    "apikey",
    "authorization",
    "card_number",
    "cardnumber",
    "cookie",
    "credentials",
    "cvc",
    "cvv",
    "passwd",
    "password",
    "private_key",
    "pwd",
    "secret",
    "token",
];

/// Whether a field named `key` holds a secret whatever its value looks
/// like (a password has no shape to recognise).
pub fn is_sensitive_key(key: &str) -> bool {
    is_secret_word(key.as_bytes())
}

fn is_secret_word(word: &[u8]) -> bool {
    SECRET_WORDS.iter().any(|secret| {
        let secret = secret.as_bytes();
        word.len() >= secret.len()
            && word[word.len() - secret.len()..].eq_ignore_ascii_case(secret)
            && (word.len() == secret.len()
                || matches!(word[word.len() - secret.len() - 1], b'_' | b'-' | b'.'))
    })
}

/// What [`scrub`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A JSON Web Token: `eyJ….eyJ….…`.
    Jwt,
    /// The credential after `Bearer `.
    Bearer,
    /// An email address.
    Email,
    /// 13-19 digits (in groups of 3-6 if separated), starting 2-6, passing Luhn.
    Card,
    /// The value of `password=…`, `token=…`, `"secret": "…"` and the like.
    Secret,
}

impl Kind {
    pub fn marker(self) -> &'static str {
        match self {
            Kind::Jwt => "[REDACTED:jwt]",
            Kind::Bearer => "[REDACTED:bearer]",
            Kind::Email => "[REDACTED:email]",
            Kind::Card => "[REDACTED:card]",
            Kind::Secret => "[REDACTED:secret]",
        }
    }
}

/// `text` with every credential, email address and card number replaced
/// by its [`Kind::marker`]; borrowed when there was none.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        // Each pattern has a byte it cannot do without; test that first.
        let found = match b[i] {
            b'e' => jwt(b, i),
            b'b' | b'B' => bearer(b, i),
            b'@' => email(b, i, copied),
            b'2'..=b'6' => card(b, i),
            b'=' | b':' => secret(b, i, copied),
            _ => None,
        };
        match found {
            // Matches begin and end at ASCII bytes (or the end of the
            // text), so the slices are on character boundaries.
            Some((start, end, kind)) => {
                out.push_str(&text[copied..start]);
                out.push_str(kind.marker());
                copied = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

type Found = Option<(usize, usize, Kind)>;

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// RFC 7235 `token68` (without its trailing `=`s).
fn is_token68(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

fn run(b: &[u8], from: usize, class: impl Fn(u8) -> bool) -> usize {
    from + b[from..].iter().take_while(|c| class(**c)).count()
}

/// A JWS compact serialisation: a JSON header and payload (both base64url
/// of `{"…`, hence `eyJ`) and a signature (empty for `alg: none`).
fn jwt(b: &[u8], i: usize) -> Found {
    if !b[i..].starts_with(b"eyJ") || (i > 0 && is_base64url(b[i - 1])) {
        return None;
    }
    let header_end = run(b, i, is_base64url);
    if b.get(header_end) != Some(&b'.') || !b[header_end + 1..].starts_with(b"eyJ") {
        return None;
    }
    let payload_end = run(b, header_end + 1, is_base64url);
    if b.get(payload_end) != Some(&b'.') {
        return None;
    }
    Some((i, run(b, payload_end + 1, is_base64url), Kind::Jwt))
}

/// `Bearer <token68>`: the token goes, the scheme stays. Prose ("missing
/// bearer token") is left alone: a credential is long or not all letters.
fn bearer(b: &[u8], i: usize) -> Found {
    let scheme = b.get(i..i + 6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
        return None;
    }
    let start = run(b, i + 6, |c| matches!(c, b' ' | b'\t'));
    if start == i + 6 {
        return None;
    }
    let end = run(b, run(b, start, is_token68), |c| c == b'=');
    let token = &b[start..end];
    let credential = token.len() >= 20 || token.iter().any(|c| !c.is_ascii_alphabetic());
    (!token.is_empty() && credential).then_some((start, end, Kind::Bearer))
}

/// `local@domain.tld`: found at the `@`, the local part read backwards (no
/// further than what is already copied out), the domain at least two
/// labels with an alphabetic top-level one, so `tenant@vendor` tracestate
/// keys and `pkg@1.2.3` versions are not addresses.
fn email(b: &[u8], at: usize, floor: usize) -> Found {
    let is_local =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut start = at;
    while start > floor && is_local(b[start - 1]) {
        start -= 1;
    }
    while start < at && b[start] == b'.' {
        start += 1;
    }
    if start == at {
        return None;
    }
    let mut end = run(b, at + 1, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
    });
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &b[at + 1..end];
    let labels = domain.split(|c| *c == b'.');
    let tld = domain.rsplit(|c| *c == b'.').next()?;
    let valid = labels.clone().count() >= 2
        && labels.clone().all(|l| !l.is_empty())
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic);
    valid.then_some((start, end, Kind::Email))
}

/// A card number: 13-19 digits, unseparated or in groups of 3-6 split by
/// single spaces or dashes, starting with 2-6 (the payment card ranges;
/// millisecond and nanosecond timestamps start with 1), passing Luhn.
///
/// Only whole tokens count: a digit run inside a hex id, a dashed id (UUID,
/// `traceparent`), a decimal or a version is not a card.
fn card(b: &[u8], i: usize) -> Found {
    if i > 0 {
        let before = b[i - 1];
        if before.is_ascii_alphanumeric() || matches!(before, b'_' | b'.') {
            return None;
        }
        if before == b'-' && i > 1 && b[i - 2].is_ascii_alphanumeric() {
            return None;
        }
    }
    // Group ends and lengths; at most 19 digits are read.
    let mut ends = [0usize; 19];
    let mut lens = [0usize; 19];
    let mut groups = 0;
    let mut digits = 0;
    let mut p = i;
    loop {
        let start = p;
        while p < b.len() && b[p].is_ascii_digit() && digits < 19 {
            p += 1;
            digits += 1;
        }
        if p < b.len() && b[p].is_ascii_digit() {
            // A 20th digit: this group is not a card's end.
            break;
        }
        ends[groups] = p;
        lens[groups] = p - start;
        groups += 1;
        let separated = p + 1 < b.len() && matches!(b[p], b' ' | b'-') && b[p + 1].is_ascii_digit();
        if !separated || digits == 19 {
            break;
        }
        p += 1;
    }
    (1..=groups).rev().find_map(|k| {
        let end = ends[k - 1];
        let total: usize = lens[..k].iter().sum();
        let grouped = k == 1 || lens[..k].iter().all(|l| (3..=6).contains(l));
        let next = b.get(end).copied();
        let after = b.get(end + 1).copied();
        let bounded = match next {
            None => true,
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => false,
            Some(b'-') => !after.is_some_and(|c| c.is_ascii_alphanumeric()),
            Some(b'.') => !after.is_some_and(|c| c.is_ascii_digit()),
            Some(_) => true,
        };
        ((13..=19).contains(&total) && grouped && bounded && luhn(&b[i..end])).then_some((
            i,
            end,
            Kind::Card,
        ))
    })
}

/// The Luhn checksum of the digits in `s` (separators skipped).
fn luhn(s: &[u8]) -> bool {
    let sum: u32 = s
        .iter()
        .rev()
        .filter(|c| c.is_ascii_digit())
        .enumerate()
        .map(|(n, c)| {
            let d = u32::from(c - b'0');
            match (n % 2 == 1, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The value after a secret-named key: `password=hunter2` (query strings,
/// `key=value` logs), `"token": "…"` (JSON), `secret: "…"` (`Debug`).
/// Found at the `=` or `:`; after a `:` only a quoted value counts, so
/// prose ("invalid token: expired") is left alone, and a key followed by
/// a space (`token = $1` in SQL) is not a key.
fn secret(b: &[u8], sep: usize, floor: usize) -> Found {
    let mut key_end = sep;
    if key_end > floor && matches!(b[key_end - 1], b'"' | b'\'') {
        key_end -= 1;
    }
    let mut key_start = key_end;
    while key_start > floor
        && (b[key_start - 1].is_ascii_alphanumeric()
            || matches!(b[key_start - 1], b'_' | b'-' | b'.'))
    {
        key_start -= 1;
    }
    if key_start == key_end || !is_secret_word(&b[key_start..key_end]) {
        return None;
    }
    let mut start = sep + 1;
    if b[sep] == b':' {
        start = run(b, start, |c| c == b' ');
    }
    let (start, end) = match b.get(start) {
        Some(&quote @ (b'"' | b'\'')) => {
            let start = start + 1;
            let mut end = start;
            while end < b.len() && b[end] != quote {
                end += if b[end] == b'\\' { 2 } else { 1 };
            }
            (start, end.min(b.len()))
        }
        _ if b[sep] == b'=' => {
            let end = run(b, start, |c| {
                !c.is_ascii_whitespace()
                    && !matches!(
                        c,
                        b'&' | b',' | b';' | b'"' | b'\'' | b')' | b'}' | b'<' | b'>'
                    )
            });
            (start, end)
        }
        _ => return None,
    };
    // `end` is at an ASCII delimiter or quote, or the end of the text.
    (end > start).then_some((start, end, Kind::Secret))
}

// === spans ===

/// Applies the allow-list and the scrubber to a finished span, as the
/// exporter ([`crate::exporter::RedactingExporter`]) does to every span
/// it sends.
pub fn redact_span(span: &mut SpanData) {
    let before = span.attributes.len();
    span.attributes
        .retain(|kv| is_allowed_attribute(kv.key.as_str()));
    let dropped = before - span.attributes.len();
    for kv in &mut span.attributes {
        scrub_value(&mut kv.value);
    }
    if dropped > 0 {
        span.attributes.push(KeyValue::new(
            REDACTED_ATTRIBUTES,
            i64::try_from(dropped).unwrap_or(i64::MAX),
        ));
    }
    scrub_cow(&mut span.name);
    // Events are log lines inside the span: their fields vary too much for
    // an allow-list, so they get the log treatment (values scrubbed,
    // secret-named fields emptied).
    for event in &mut span.events.events {
        scrub_cow(&mut event.name);
        redact_fields(&mut event.attributes);
    }
    for link in &mut span.links.links {
        redact_fields(&mut link.attributes);
    }
    if let Status::Error { description } = &mut span.status {
        scrub_cow(description);
    }
}

/// Event and link attributes: no allow-list, but secret-named fields lose
/// their value and every string is scrubbed.
fn redact_fields(fields: &mut [KeyValue]) {
    for kv in fields {
        if is_sensitive_key(kv.key.as_str()) {
            kv.value = Value::from(REDACTED);
        } else {
            scrub_value(&mut kv.value);
        }
    }
}

fn scrub_cow(text: &mut Cow<'static, str>) {
    if let Cow::Owned(scrubbed) = scrub(text) {
        *text = Cow::Owned(scrubbed);
    }
}

/// Strings are scrubbed; numbers and booleans on allow-listed keys are
/// the code's own (sizes, ports, durations) and left alone.
fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(scrubbed) = scrub(s.as_str()) {
                *value = Value::from(scrubbed);
            }
        }
        Value::Array(Array::String(items)) => {
            for item in items {
                if let Cow::Owned(scrubbed) = scrub(item.as_str()) {
                    *item = scrubbed.into();
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use opentelemetry::{
        InstrumentationScope,
        trace::{Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use proptest::prelude::*;

    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    fn s(text: &str) -> String {
        scrub(text).into_owned()
    }

    #[test]
    fn the_allow_list_is_sorted_for_binary_search() {
        for pair in ALLOWED_SPAN_ATTRIBUTES.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        assert!(is_allowed_attribute("http.route"));
        assert!(is_allowed_attribute(REDACTED_ATTRIBUTES));
        assert!(!is_allowed_attribute("user.password"));
        assert!(!is_allowed_attribute("baggage.user.secret"));
    }

    #[test]
    fn jwts_are_redacted() {
        assert_eq!(s(JWT), "[REDACTED:jwt]");
        assert_eq!(
            s(&format!("token {JWT} expired")),
            "token [REDACTED:jwt] expired"
        );
        // alg: none has an empty signature.
        assert_eq!(s("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), "[REDACTED:jwt]");
        // Not a JWT: one part, or inside a longer base64 word.
        assert_eq!(s("eyJhbGciOiJIUzI1NiJ9"), "eyJhbGciOiJIUzI1NiJ9");
        assert_eq!(s(&format!("x{JWT}")), format!("x{JWT}"));
    }

    #[test]
    fn bearer_credentials_are_redacted_and_the_scheme_kept() {
        assert_eq!(
            s("Authorization: Bearer abc123.def"),
            "Authorization: Bearer [REDACTED:bearer]"
        );
        assert_eq!(s("bearer  hunter2"), "bearer  [REDACTED:bearer]");
        assert_eq!(s(&format!("BEARER {JWT}")), "BEARER [REDACTED:bearer]");
        assert_eq!(
            s("Bearer dGhpcyBpcyBhIHRva2Vu=="),
            "Bearer [REDACTED:bearer]"
        );
        // Prose and placeholders stay.
        for text in [
            "missing bearer token",
            "Authorization must be `Bearer <token>`",
            "the bearer of bad news",
            "Bearer",
        ] {
            assert_eq!(s(text), text);
        }
    }

    #[test]
    fn email_addresses_are_redacted() {
        assert_eq!(s("alice@example.com"), "[REDACTED:email]");
        assert_eq!(
            s("/users/first.last+tag@mail.example.co.uk/profile"),
            "/users/[REDACTED:email]/profile"
        );
        assert_eq!(
            s("https://user:pass@db.example.org/x"),
            "https://user:[REDACTED:email]/x"
        );
        assert_eq!(s("to <bob@example.com>."), "to <[REDACTED:email]>.");
        for text in [
            "tenant@vendor=1",
            "pkg@1.2.3",
            "@scope/package",
            "a@b",
            "user@localhost",
        ] {
            assert_eq!(s(text), text);
        }
    }

    #[test]
    fn card_numbers_are_redacted() {
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "2223003122003222",
        ] {
            assert_eq!(s(card), "[REDACTED:card]", "{card}");
            assert_eq!(
                s(&format!("paid with {card}, thanks")),
                "paid with [REDACTED:card], thanks"
            );
        }
        assert_eq!(s("/cards/4111111111111111"), "/cards/[REDACTED:card]");
        assert_eq!(
            s("4111111111111111 12 27"),
            "[REDACTED:card] 12 27",
            "the expiry after it is not part of it"
        );
        // Luhn fails, too short, too long, not a payment range.
        for text in [
            "4111111111111112",
            "411111111111",
            "41111111111111111111",
            "1111111111111117",
            "9111111111111115",
        ] {
            assert_eq!(s(text), text);
        }
    }

    #[test]
    fn secret_named_values_are_redacted() {
        assert_eq!(
            s("/login?user=bob&password=hunter2&next=/"),
            "/login?user=bob&password=[REDACTED:secret]&next=/"
        );
        assert_eq!(
            s(r#"{"access_token":"abc","scope":"read"}"#),
            r#"{"access_token":"[REDACTED:secret]","scope":"read"}"#
        );
        assert_eq!(
            s(r#"Login { email: "x", password: "hun\"ter2" }"#),
            r#"Login { email: "x", password: "[REDACTED:secret]" }"#
        );
        assert_eq!(s("api_key=k1 x"), "api_key=[REDACTED:secret] x");
        for text in [
            "invalid token: expired",
            "UPDATE users SET token = $1",
            "password_hash=argon2id",
            "tokens=3",
            "token=",
        ] {
            assert_eq!(s(text), text);
        }
    }

    #[test]
    fn ids_routes_and_timestamps_are_not_mistaken_for_secrets() {
        for text in [
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-12345678901234567890123456789012-4234567890123452-01",
            "12345678901234567890123456789012",
            "550e8400-e29b-41d4-a716-446655440000",
            "42345678-1234-1234-1234-123456789012",
            "0194b3c4-5e6f-7a8b-9c0d-4111111111111111",
            "GET /courses/{id}/lessons/{lesson_id}",
            "/api/payments/{id}/refund",
            "2026-11-26T10:49:57.482235Z",
            "2026-11-26 10:49:57.482235+00:00",
            "1732618197482",
            "1732618197482235000",
            "elapsed=0.4111111111111111s",
            "127.0.0.1:4001",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "curl/8.5.0",
            "SELECT id FROM courses WHERE id = $1",
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "tenant@vendor",
            "amount_cents=4999",
            "call 555-123-4567",
            "v1.2.3-beta.4",
        ] {
            assert_eq!(s(text), text);
            assert!(matches!(scrub(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn secret_names_are_recognised_by_their_last_word() {
        for key in [
            "password",
            "user.password",
            "access_token",
            "x-api-key",
            "http.request.header.authorization",
            "Cookie",
            "card_number",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in [
            "message",
            "tokens",
            "password_hash",
            "payment.idempotency_key",
            "error",
            "span",
        ] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }

    fn with_events(events: Vec<Event>) -> SpanEvents {
        let mut all = SpanEvents::default();
        all.events = events;
        all
    }

    fn with_links(links: Vec<Link>) -> SpanLinks {
        let mut all = SpanLinks::default();
        all.links = links;
        all
    }

    fn span_data() -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "GET /users/alice@example.com".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: vec![
                KeyValue::new("http.route", "/users/{id}"),
                KeyValue::new("url.path", "/users/alice@example.com"),
                KeyValue::new("http.response.status_code", 200),
                KeyValue::new("user.password", "hunter2"),
                KeyValue::new("enduser.id", "42"),
                KeyValue::new(
                    "user_agent.original",
                    Value::Array(Array::String(vec![format!("Bearer {JWT}").into()])),
                ),
            ],
            dropped_attributes_count: 0,
            events: with_events(vec![Event::new(
                "charged 4111 1111 1111 1111",
                SystemTime::now(),
                vec![
                    KeyValue::new("password", "hunter2"),
                    KeyValue::new("card_number", 4_111_111_111_111_111_i64),
                    KeyValue::new("detail", "mail bob@example.com"),
                    KeyValue::new("attempt", 2),
                ],
                0,
            )]),
            links: with_links(vec![Link::new(
                SpanContext::empty_context(),
                vec![KeyValue::new("note", format!("token={JWT}"))],
                0,
            )]),
            status: Status::error("refused alice@example.com"),
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    #[test]
    fn spans_keep_allow_listed_attributes_and_lose_secrets_everywhere() {
        let mut span = span_data();
        redact_span(&mut span);
        let attrs: Vec<(&str, String)> = span
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.to_string()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("http.route", "/users/{id}".to_owned()),
                ("url.path", "/users/[REDACTED:email]".to_owned()),
                ("http.response.status_code", "200".to_owned()),
                (
                    "user_agent.original",
                    r#"["Bearer [REDACTED:bearer]"]"#.to_owned()
                ),
                (REDACTED_ATTRIBUTES, "2".to_owned()),
            ]
        );
        assert_eq!(span.name, "GET /users/[REDACTED:email]");
        let event = &span.events.events[0];
        assert_eq!(event.name, "charged [REDACTED:card]");
        let fields: Vec<String> = event
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        assert_eq!(
            fields,
            [
                "password=[REDACTED]",
                "card_number=[REDACTED]",
                "detail=mail [REDACTED:email]",
                "attempt=2"
            ]
        );
        assert_eq!(
            span.links.links[0].attributes[0].value.to_string(),
            "token=[REDACTED:secret]"
        );
        assert_eq!(span.status, Status::error("refused [REDACTED:email]"));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Never panics (slicing stays on character boundaries), and a
        /// scrubbed text has nothing left to scrub.
        #[test]
        fn scrubbing_is_total_and_idempotent(
            text in prop_oneof![
                any::<String>(),
                "[a-zA-Z0-9 @.:=\"'_/-]{0,80}",
                "(Bearer |eyJ|[2-6][0-9]{3}[ -]?|[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}|password=|é|\\\\|\"| ){0,12}",
            ]
        ) {
            let once = scrub(&text).into_owned();
            prop_assert_eq!(scrub(&once).into_owned(), once);
        }

        #[test]
        fn generated_secrets_never_survive(
            user in "[a-z][a-z0-9._]{0,15}",
            host in "[a-z]{1,10}",
            tld in "[a-z]{2,6}",
            card in 0u64..1_000_000_000_000_000,
            prefix in "[ a-z]{0,10}",
        ) {
            let email = format!("{user}@{host}.{tld}");
            // A 16-digit Visa-range number, made to pass Luhn.
            let body = format!("4{card:014}");
            let check = (0..10).find(|d| luhn(format!("{body}{d}").as_bytes())).unwrap();
            let card = format!("{body}{check}");
            let text = format!("{prefix} {email} {card} Bearer {card}x");
            let out = scrub(&text).into_owned();
            prop_assert!(!out.contains(&email), "{}", out);
            prop_assert!(!out.contains(&card), "{}", out);
        }
    }
}
