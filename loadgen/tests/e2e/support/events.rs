//! What the event tests share: a bought course, a trace followed across
//! the queue, progress's consumer counts, the bus as its operator sees
//! it, and a hand-made `payment.captured` envelope.

use std::time::Duration;

use async_nats::jetstream;
use otlp_sink::span::{CapturedSpan, SpanKind};
use serde_json::{Value, json};

use super::TestSystem;

/// Signs a learner up and buys them a paid course: (user id, token,
/// course id, the checkout's answer).
pub async fn bought_course(
    sys: &TestSystem,
    key: &str,
) -> (String, String, String, reqwest::Response) {
    let (user_id, token) = sys.signed_up_user().await;
    let course = sys.paid_course().await;
    let course_id = course["id"].as_str().unwrap().to_owned();
    let res = sys.checkout(&token, &course_id, key).send().await.unwrap();
    assert_eq!(res.status(), 201, "checkout: {:?}", res.headers());
    (user_id, token, course_id, res)
}

/// Waits for progress's consumer span in `trace_id`; returns the spans
/// received and the trace's producer span.
pub async fn across_the_queue(
    sys: &TestSystem,
    trace_id: &str,
) -> (Vec<CapturedSpan>, CapturedSpan) {
    let spans = sys
        .receiver
        .wait_for(Duration::from_secs(20), |spans| {
            // Both ends: the services export on their own schedules.
            let mine = || spans.iter().filter(|s| s.trace_id == trace_id);
            mine().any(|s| s.kind == SpanKind::Consumer && s.service_name == "progress")
                && mine().any(|s| s.kind == SpanKind::Producer)
        })
        .await
        .unwrap_or_else(|_| panic!("no consumer span of progress in trace {trace_id}"));
    let producer = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == SpanKind::Producer)
        .expect("the trace has a producer span")
        .clone();
    (spans, producer)
}

/// `messaging_client_consumed_messages_total` of progress's consumer.
pub async fn consumed(sys: &TestSystem, outcome: &str) -> f64 {
    sys.scrape("progress").await.sum(
        "messaging_client_consumed_messages_total",
        &[
            ("consumer", "progress-payment-captured"),
            ("outcome", outcome),
        ],
    )
}

/// The system's event bus as its operator sees it (every subject).
pub async fn jetstream_of(sys: &TestSystem) -> jetstream::Context {
    let client = sys
        .system
        .nats_client()
        .await
        .expect("the system's NATS server is reachable");
    jetstream::new(client)
}

/// A `payment.captured` envelope for a payment nobody made, of `course`
/// at its catalog price.
pub fn captured_event(id: &str, user_id: &str, course: &Value) -> Value {
    let course_id = course["id"].as_str().unwrap();
    json!({
        "id": id,
        "type": "payment.captured",
        "source": "payments",
        "occurred_at": "2026-11-26T10:00:00Z",
        "schema_version": 1,
        "data": {
            "payment_id": format!("pay-{id}"),
            "user_id": user_id,
            "course_id": course_id,
            "amount_cents": course["price_cents"],
            "currency": course["currency"],
            "captured_at": "2026-11-26T10:00:00Z"
        }
    })
}
