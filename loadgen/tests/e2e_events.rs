//! End to end: events over the real NATS server (127.0.0.1:4222, or
//! `NATS_URL`) between the real services. A checkout's payment is
//! published by payments' outbox and activates the enrollment in progress,
//! in one trace; the same event delivered twice is applied once; an event
//! no consumer can read is dead-lettered, not lost.
//!
//! Each test system has its own `EVENTS_PREFIX` (from its temp dir), so
//! these run side by side with each other and with anything else on the
//! server.

mod support;

use std::time::Duration;

use async_nats::jetstream;
use loadgen::receiver::{CapturedSpan, SpanKind};
use serde_json::{Value, json};
use support::{Otlp, TestSystem};

async fn paid_course(sys: &TestSystem) -> Value {
    let page: Value = sys
        .http
        .get(format!("{}/api/courses?per_page=50", sys.gateway()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["price_cents"].as_i64().unwrap() > 0)
        .expect("the catalog has paid courses")
        .clone()
}

/// The user's enrollments as progress answers them.
async fn enrollments(sys: &TestSystem, user_id: &str) -> Vec<Value> {
    let body: Value = sys
        .http
        .get(format!(
            "{}/users/{user_id}/enrollments",
            sys.url("progress")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["items"].as_array().cloned().unwrap_or_default()
}

/// Polls until the user's enrollment in `course_id` is active.
async fn wait_active(sys: &TestSystem, user_id: &str, course_id: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let items = enrollments(sys, user_id).await;
        let active = items
            .iter()
            .any(|e| e["course_id"] == course_id && e["status"] == "active");
        if active {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the enrollment never became active: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `messaging_client_consumed_messages_total` of progress's consumer.
async fn consumed(sys: &TestSystem, outcome: &str) -> f64 {
    sys.scrape("progress").await.sum(
        "messaging_client_consumed_messages_total",
        &[
            ("consumer", "progress-payment-captured"),
            ("outcome", outcome),
        ],
    )
}

async fn jetstream_of(sys: &TestSystem) -> jetstream::Context {
    let client = async_nats::connect(sys.system.nats_url())
        .await
        .expect("NATS is reachable (CI starts nats-server with JetStream)");
    jetstream::new(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_is_one_trace_across_the_queue() {
    let sys = TestSystem::start(Otlp::Grpc, &[]).await;
    let (user_id, token) = sys.signed_up_user().await;
    let course = paid_course(&sys).await;
    let course_id = course["id"].as_str().unwrap();

    let res = sys
        .checkout(&token, course_id, "events-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let traceresponse = res.headers()["traceresponse"].to_str().unwrap().to_owned();
    let trace_id = traceresponse.split('-').nth(1).unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let status = body["enrollment"]["status"].as_str().unwrap();
    assert!(
        status == "pending" || status == "active",
        "the checkout answers once the payment is captured, the enrollment pending until the event lands: {body}"
    );
    let payment_id = body["payment"]["id"].as_str().unwrap().to_owned();

    // The event lands: exactly one enrollment, active, for that payment.
    let items = wait_active(&sys, &user_id, course_id).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["payment_id"], payment_id.as_str());

    let spans = sys
        .receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans.iter().any(|s| {
                s.trace_id == trace_id
                    && s.kind == SpanKind::Consumer
                    && s.service_name == "progress"
            })
        })
        .await
        .unwrap_or_else(|spans| {
            panic!(
                "no consumer span in trace {trace_id}; {} spans received",
                spans.len()
            )
        });
    let mine: Vec<&CapturedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let find = |pred: &dyn Fn(&CapturedSpan) -> bool| mine.iter().copied().find(|s| pred(s));

    let producer = find(&|s| s.kind == SpanKind::Producer).expect("a producer span");
    assert_eq!(producer.service_name, "payments");
    assert_eq!(producer.name, "PUBLISH payment.captured");
    assert_eq!(producer.attr_str("messaging.system"), Some("nats"));
    assert_eq!(producer.attr_str("messaging.operation.type"), Some("send"));
    let subject = producer.attr_str("messaging.destination.name").unwrap();
    assert_eq!(
        subject,
        format!("{}.events.payment.captured", sys.system.events_prefix())
    );
    let event_id = producer.attr_str("messaging.message.id").unwrap();

    // The producer is a child of the payments request that committed the
    // event, through the outbox: the trace context was stored with it.
    let payments_server = find(&|s| s.service_name == "payments" && s.kind == SpanKind::Server)
        .expect("the payments server span");
    let parent = mine
        .iter()
        .find(|s| Some(s.span_id.as_str()) == producer.parent_span_id.as_deref())
        .expect("the producer's parent is in the trace");
    assert_eq!(parent.span_id, payments_server.span_id);
    assert!(
        producer.start_unix_nano >= payments_server.start_unix_nano,
        "the relay publishes after the request committed"
    );

    let consumer = find(&|s| s.kind == SpanKind::Consumer).expect("a consumer span");
    assert_eq!(consumer.service_name, "progress");
    assert_eq!(consumer.name, "process payment.captured");
    assert_eq!(
        consumer.parent_span_id.as_deref(),
        Some(producer.span_id.as_str()),
        "the consumer continues the producer's context from the message headers"
    );
    assert_eq!(consumer.attr_str("messaging.system"), Some("nats"));
    assert_eq!(
        consumer.attr_str("messaging.operation.type"),
        Some("process")
    );
    assert_eq!(
        consumer.attr_str("messaging.destination.name"),
        Some(subject)
    );
    assert_eq!(consumer.attr_str("messaging.message.id"), Some(event_id));
    assert_eq!(
        consumer.attr_str("messaging.consumer.group.name"),
        Some("progress-payment-captured")
    );
    // The activation itself, inside the consumer span.
    assert!(
        mine.iter().any(|s| s.service_name == "progress"
            && s.parent_span_id.as_deref() == Some(consumer.span_id.as_str())
            && s.name == "UPDATE enrollments"),
        "the enrollment update is a child of the consumer span"
    );

    // And the metrics counted it.
    let payments = sys.scrape("payments").await;
    assert_eq!(
        payments.sum(
            "messaging_client_sent_messages_total",
            &[("destination", "payment.captured"), ("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(consumed(&sys, "processed").await, 1.0);
    sys.stop().await;
}

/// A `payment.captured` envelope for a payment nobody made.
fn captured_event(id: &str, user_id: &str, course_id: &str) -> Value {
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
            "amount_cents": 1999,
            "currency": "USD",
            "captured_at": "2026-11-26T10:00:00Z"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_delivered_twice_is_applied_once() {
    let sys = TestSystem::start(Otlp::Grpc, &[]).await;
    let course = paid_course(&sys).await;
    let course_id = course["id"].as_str().unwrap();
    let user_id = format!("user-{}", uuid::Uuid::new_v4().simple());
    let js = jetstream_of(&sys).await;
    let subject = format!("{}.events.payment.captured", sys.system.events_prefix());
    let event = captured_event(&uuid::Uuid::now_v7().to_string(), &user_id, course_id);
    // Published twice on purpose, as two messages (distinct message ids,
    // so JetStream's duplicate window does not drop the second): the
    // consumer is what must notice.
    for _ in 0..2 {
        js.publish(subject.clone(), event.to_string().into())
            .await
            .unwrap()
            .await
            .expect("JetStream stores the event");
    }
    wait_active(&sys, &user_id, course_id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while consumed(&sys, "duplicate").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second delivery was never handled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(consumed(&sys, "processed").await, 1.0);
    assert_eq!(consumed(&sys, "duplicate").await, 1.0);
    let items = enrollments(&sys, &user_id).await;
    assert_eq!(items.len(), 1, "one enrollment, applied once: {items:?}");
    assert_eq!(items[0]["status"], "active");
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_event_is_dead_lettered_not_lost() {
    let sys = TestSystem::start(Otlp::Grpc, &[]).await;
    let js = jetstream_of(&sys).await;
    let prefix = sys.system.events_prefix().to_owned();
    // Wait for progress to have created the streams and its consumer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stream = js
            .get_stream(format!("{}_EVENTS", prefix.to_uppercase()))
            .await;
        if let Ok(stream) = stream
            && stream
                .get_consumer::<jetstream::consumer::pull::Config>("progress-payment-captured")
                .await
                .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "progress never created its consumer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    js.publish(
        format!("{prefix}.events.payment.captured"),
        "{not json".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let mut bad_version = captured_event("bad-version", "user-x", "c0001");
    bad_version["schema_version"] = json!(99);
    js.publish(
        format!("{prefix}.events.payment.captured"),
        bad_version.to_string().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while consumed(&sys, "dead_lettered").await < 2.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bad events were not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both are in the dead-letter stream, with the reason.
    let mut stream = js
        .get_stream(format!("{}_DEAD_LETTERS", prefix.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
    let last = stream
        .get_last_raw_message_by_subject(&format!("{prefix}.dead-letter.payment.captured"))
        .await
        .unwrap();
    let reason = last
        .headers
        .get("LearnSphere-Dead-Letter-Reason")
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert!(reason.contains("schema version 99"), "reason: {reason:?}");
    sys.stop().await;
}
