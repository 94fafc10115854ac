//! W3C trace context and baggage in NATS message headers, through the
//! same global propagators as HTTP.

use std::collections::BTreeMap;

use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
};

/// The propagation headers of `cx` (`traceparent`, `tracestate`,
/// `baggage`), as a map the outbox stores with the event.
pub(crate) fn capture(cx: &Context) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut MapInjector(&mut headers)));
    headers
}

/// The context carried by a message's headers (an empty context when
/// they carry none, or a malformed one: the propagators drop those).
pub(crate) fn extract(headers: Option<&async_nats::HeaderMap>) -> Context {
    match headers {
        Some(h) => global::get_text_map_propagator(|p| p.extract(&NatsExtractor(h))),
        None => Context::new(),
    }
}

/// Writes `cx`'s propagation headers into a message's headers.
pub(crate) fn inject(cx: &Context, headers: &mut async_nats::HeaderMap) {
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut NatsInjector(headers)));
}

struct MapInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct NatsInjector<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct NatsExtractor<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };

    use super::*;

    #[test]
    fn trace_context_survives_the_headers() {
        global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new().with_remote_span_context(span.clone());
        let mut headers = async_nats::HeaderMap::new();
        inject(&cx, &mut headers);
        assert_eq!(
            headers.get("traceparent").map(|v| v.as_str()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let back = extract(Some(&headers));
        assert_eq!(back.span().span_context().trace_id(), span.trace_id());
        assert_eq!(back.span().span_context().span_id(), span.span_id());

        let stored = capture(&cx);
        assert_eq!(
            stored.get("traceparent"),
            headers
                .get("traceparent")
                .map(|v| v.as_str().to_owned())
                .as_ref()
        );
    }

    #[test]
    fn a_malformed_traceparent_is_no_parent() {
        global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("traceparent", "00-zz-not-a-context");
        assert!(!extract(Some(&headers)).span().span_context().is_valid());
        assert!(!extract(None).span().span_context().is_valid());
    }
}
