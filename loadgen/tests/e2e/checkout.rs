//! End to end: the five services as real processes, a checkout through the
//! gateway, and what an operator would then see — the exported trace and
//! each service's `/metrics`.

use std::{collections::BTreeSet, time::Duration};

use otlp_sink::span::{AttrValue, CapturedSpan, SpanKind};
use serde_json::{Value, json};

use crate::support::{Otlp, TestSystem};

fn by_service<'a>(spans: &'a [CapturedSpan], service: &str) -> Vec<&'a CapturedSpan> {
    spans.iter().filter(|s| s.service_name == service).collect()
}

fn parent_of<'a>(spans: &'a [CapturedSpan], span: &CapturedSpan) -> Option<&'a CapturedSpan> {
    let parent = span.parent_span_id.as_deref()?;
    spans.iter().find(|s| s.span_id == parent)
}

/// Every assertion of the checkout trace, for either OTLP transport.
async fn checkout_is_traced_across_every_service(otlp: Otlp) {
    let sys = TestSystem::start(otlp, &[("payments", &["--provider-decline-rate", "0"])]).await;
    let (user_id, token) = sys.signed_up_user().await;
    let course = sys.paid_course().await;
    let course_id = course["id"].as_str().unwrap();

    // The caller starts the trace: our traceparent must be continued, and
    // our baggage must travel to the deepest service.
    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let caller_span_id = "00f067aa0ba902b7";
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let res = sys
        .http
        .post(format!("{}/api/checkout", sys.gateway()))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{caller_span_id}-01"))
        .header("baggage", format!("scenario={marker}"))
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"course_id": course_id}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let traceresponse = res
        .headers()
        .get("traceresponse")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "checkout: {body}");
    assert_eq!(body["payment"]["status"], "captured");
    assert_eq!(body["payment"]["amount_cents"], course["price_cents"]);
    assert_eq!(body["enrollment"]["user_id"], user_id.as_str());
    assert_eq!(body["enrollment"]["course_id"], course_id);

    // traceresponse (W3C Trace Context Level 2): our trace id, the
    // gateway's server span as child id.
    let traceresponse = traceresponse.expect("checkout answers with traceresponse");
    let parts: Vec<&str> = traceresponse.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceresponse}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], trace_id, "the caller's trace is continued");
    assert_ne!(parts[2], caller_span_id);

    // Wait until every service has exported its part of the trace: the
    // server spans (users once: the buyer's account exists; courses at
    // least three times: for the gateway, for payments' price check and
    // for progress's enrollment, and again when payments' event reaches
    // progress (docs/events.md); progress twice: the ownership check and
    // the enrollment), the provider call, and database spans from each
    // service that owns one.
    let spans = sys
        .receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let mine: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
            let servers = |svc: &str| {
                mine.iter()
                    .filter(|s| s.service_name == svc && s.kind == SpanKind::Server)
                    .count()
            };
            let has_db = |svc: &str| {
                mine.iter()
                    .any(|s| s.service_name == svc && s.attr_str("db.system.name").is_some())
            };
            servers("gateway") == 1
                && servers("users") == 1
                && servers("courses") >= 3
                && servers("payments") == 1
                && servers("progress") == 2
                && ["courses", "payments", "progress"].into_iter().all(has_db)
                && mine
                    .iter()
                    .any(|s| s.attr_str("peer.service") == Some("payment-provider"))
                // A span can arrive before its parent (each service
                // exports on its own, and a parent ends, so is exported,
                // after its children: the event's consumer span after its
                // database spans): wait for every parent, or the trace is
                // checked half-arrived. Only the gateway's server span has
                // its parent elsewhere, in this test.
                && mine
                    .iter()
                    .filter(|s| !(s.kind == SpanKind::Server && s.service_name == "gateway"))
                    .all(|s| {
                        mine.iter()
                            .any(|p| s.parent_span_id.as_deref() == Some(p.span_id.as_str()))
                    })
        })
        .await
        .unwrap_or_else(|spans| {
            let mine: Vec<_> = spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .map(|s| format!("{} {:?} {}", s.service_name, s.kind, s.name))
                .collect();
            panic!("incomplete trace after 20 s; spans of this trace: {mine:#?}")
        });
    let trace: Vec<CapturedSpan> = spans
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service_name.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["gateway", "users", "courses", "payments", "progress"])
    );

    // The gateway's server span is the child of the caller's span.
    let root = trace
        .iter()
        .find(|s| s.service_name == "gateway" && s.kind == SpanKind::Server)
        .unwrap();
    assert_eq!(root.parent_span_id.as_deref(), Some(caller_span_id));
    assert_eq!(root.name, "POST /api/checkout");
    assert_eq!(
        root.span_id, parts[2],
        "traceresponse names the gateway's span"
    );
    assert_eq!(root.attr_str("http.request.method"), Some("POST"));
    assert_eq!(root.attr_str("http.route"), Some("/api/checkout"));
    assert_eq!(root.attr_str("url.path"), Some("/api/checkout"));
    assert_eq!(root.attr_i64("http.response.status_code"), Some(201));

    // Every server span below the gateway is the child of a client span in
    // the calling service that names it as peer.service.
    for server in trace
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.service_name != "gateway")
    {
        let client = parent_of(&trace, server).unwrap_or_else(|| {
            panic!(
                "{} {} has no parent in the trace",
                server.service_name, server.name
            )
        });
        assert_eq!(
            client.kind,
            SpanKind::Client,
            "parent of {} {}",
            server.service_name,
            server.name
        );
        assert_ne!(client.service_name, server.service_name);
        assert_eq!(
            client.attr_str("peer.service"),
            Some(server.service_name.as_str())
        );
        assert!(client.attr_str("server.address").is_some());
        assert_eq!(
            client.attr_i64("http.response.status_code"),
            server.attr_i64("http.response.status_code"),
            "client and server agree on the status"
        );
        let route = server
            .attr_str("http.route")
            .expect("server spans carry http.route");
        assert_eq!(
            server.name,
            format!(
                "{} {route}",
                server.attr_str("http.request.method").unwrap()
            )
        );
        assert!(server.attr_str("url.path").is_some());
    }

    // The calls the checkout must make, each on its edge.
    let edge = |from: &str, to: &str, route: &str| {
        trace.iter().any(|s| {
            s.service_name == from
                && s.kind == SpanKind::Client
                && s.attr_str("peer.service") == Some(to)
                && s.attr_str("url.template") == Some(route)
        })
    };
    assert!(edge("gateway", "courses", "/courses/{course_id}"));
    assert!(edge("gateway", "payments", "/payments"));
    assert!(edge("gateway", "progress", "/enrollments"));

    // The payment provider call is a client span inside payments.
    let provider = trace
        .iter()
        .find(|s| s.attr_str("peer.service") == Some("payment-provider"))
        .unwrap();
    assert_eq!(provider.service_name, "payments");
    assert_eq!(provider.kind, SpanKind::Client);

    // Courses reads the catalog through its cache: each read is a span
    // saying whether it was in memory, with the database spans of a miss
    // inside it.
    let catalog_reads: Vec<_> = by_service(&trace, "courses")
        .into_iter()
        .filter(|s| s.name == "catalog cache")
        .collect();
    assert!(
        !catalog_reads.is_empty(),
        "courses has no catalog cache spans"
    );
    for read in &catalog_reads {
        let reads_database = trace.iter().any(|s| {
            s.parent_span_id.as_deref() == Some(&read.span_id)
                && s.attr_str("db.system.name").is_some()
        });
        match read.attr("cache.hit") {
            Some(AttrValue::Bool(true)) => assert!(!reads_database, "a hit reads no database"),
            Some(AttrValue::Bool(false)) => assert!(reads_database, "a miss reads the database"),
            other => panic!("cache.hit is a boolean: {other:?}"),
        }
    }

    // Database spans under each service that owns a database (courses'
    // only where its cache missed).
    for svc in ["courses", "payments", "progress"] {
        let db_spans: Vec<_> = by_service(&trace, svc)
            .into_iter()
            .filter(|s| s.attr_str("db.system.name").is_some())
            .collect();
        if svc != "courses" {
            assert!(!db_spans.is_empty(), "{svc} has no database spans");
        }
        for span in db_spans {
            assert_eq!(span.kind, SpanKind::Client);
            assert!(span.attr_str("db.operation.name").is_some());
            assert!(span.attr_str("db.collection.name").is_some());
            let text = span.attr_str("db.query.text").unwrap();
            assert!(
                !text.contains(&user_id),
                "statement text carries no values: {text}"
            );
            // Its ancestors reach the service's own entry span: the
            // request's server span, or the consumer span of an event.
            let mut cur = parent_of(&trace, span);
            while let Some(p) = cur {
                if matches!(p.kind, SpanKind::Server | SpanKind::Consumer) {
                    break;
                }
                cur = parent_of(&trace, p);
            }
            assert_eq!(cur.map(|p| p.service_name.as_str()), Some(svc));
        }
    }

    // Baggage reached the deepest hop: courses, called by progress.
    let deepest = trace
        .iter()
        .find(|s| {
            s.service_name == "courses"
                && s.kind == SpanKind::Server
                && parent_of(&trace, s).is_some_and(|p| p.service_name == "progress")
        })
        .expect("progress asks courses during enrollment");
    assert_eq!(deepest.attr_str("baggage.scenario"), Some(marker.as_str()));

    // Every span of every service carries the per-replica resource.
    for span in &trace {
        assert!(span.resource.contains_key("service.instance.id"));
        assert!(span.resource.contains_key("service.version"));
    }

    // The gateway's /metrics counts the checkout on the gateway→payments
    // edge, with this trace as exemplar.
    let scrape = sys.scrape("gateway").await;
    let edge_labels = [
        ("source", "gateway"),
        ("destination", "payments"),
        ("route", "/payments"),
        ("method", "POST"),
        ("status", "201"),
        ("outcome", "success"),
    ];
    assert_eq!(
        scrape.sum("http_client_request_duration_seconds_count", &edge_labels),
        1.0,
        "one charge on the gateway→payments edge"
    );
    let exemplar_traces: Vec<&str> = scrape
        .find("http_client_request_duration_seconds_bucket", &edge_labels)
        .filter_map(|s| s.exemplar.as_ref())
        .map(|e| e.labels["trace_id"].as_str())
        .collect();
    assert_eq!(
        exemplar_traces,
        [trace_id.as_str()],
        "the edge's exemplar is the checkout's trace"
    );

    // The gateway's own RED metric counts it under the route template.
    let red = [
        ("route", "/api/checkout"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(
        scrape.sum("http_server_request_duration_seconds_count", &red),
        1.0
    );
    assert!(
        scrape
            .find("http_server_request_duration_seconds_bucket", &red)
            .filter_map(|s| s.exemplar.as_ref())
            .any(|e| e.labels["trace_id"] == trace_id)
    );

    // And payments counts it on its inbound side.
    let payments = sys.scrape("payments").await;
    assert_eq!(
        payments.sum(
            "http_server_request_duration_seconds_count",
            &[
                ("route", "/payments"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        1.0
    );

    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_trace_over_otlp_grpc() {
    checkout_is_traced_across_every_service(Otlp::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_trace_over_otlp_http_protobuf() {
    checkout_is_traced_across_every_service(Otlp::HttpProtobuf).await;
}
