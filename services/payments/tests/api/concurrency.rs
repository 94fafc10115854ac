//! Concurrent duplicates: one payment, one provider call, whatever the race.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{assert_error, charge_body, charge_for, course, new_key, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_duplicates_make_one_payment_and_one_provider_call() {
    // Slow enough that the duplicates arrive while the first is in flight.
    let app = std::sync::Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(50);
            c.provider.latency_p99 = Duration::from_millis(60);
        })
        .await,
    );
    let key = new_key();

    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                let res = app.charge(Some(&key), &charge_body("u1")).await;
                let status = res.status().as_u16();
                let replayed = res.headers().get("idempotent-replayed").is_some();
                let body: Value = res.json().await.expect("JSON");
                (status, replayed, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request task"));
    }

    let created = answers.iter().filter(|(s, _, _)| *s == 201).count();
    let replayed = answers.iter().filter(|(s, r, _)| *s == 200 && *r).count();
    assert_eq!((created, replayed), (1, 19), "answers: {answers:?}");
    let id = &answers[0].2["id"];
    assert!(id.is_string());
    assert!(answers.iter().all(|(_, _, body)| &body["id"] == id));

    assert_eq!(app.snapshot().await, (1, 1));
    let calls = app.provider_calls().await;
    assert_eq!(calls.total(), 1, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_that_outwaits_its_bound_gets_409_with_retry_after() {
    let app = std::sync::Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(400);
            c.provider.latency_p99 = Duration::from_millis(400);
            c.idempotency_wait = Duration::from_millis(50);
        })
        .await,
    );
    let key = new_key();
    let first = {
        let (app, key) = (app.clone(), key.clone());
        tokio::spawn(async move { app.charge(Some(&key), &charge_body("u1")).await.status() })
    };
    // Wait (bounded) until the first request has claimed the key.
    for _ in 0..200 {
        if app.count("idempotency_keys").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(app.count("idempotency_keys").await, 1, "the key is claimed");

    let duplicate = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(
        duplicate.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_error(duplicate, 409, "request_in_progress").await;

    assert_eq!(first.await.expect("first request").as_u16(), 201);
    let retry = app.charge(Some(&key), &charge_body("u1")).await;
    assert_eq!(retry.status().as_u16(), 200);
    assert_eq!(app.snapshot().await, (1, 1));
    assert_eq!(app.provider_calls().await.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_distinct_keys_for_distinct_courses_each_charge_once() {
    let app = std::sync::Arc::new(
        spawn_app_with(|c| {
            // A pool smaller than the burst: calls queue for a slot.
            c.provider.concurrency = 2;
        })
        .await,
    );
    let requests: Vec<_> = (0..10)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                app.charge(Some(&new_key()), &charge_for("u1", &course(n)))
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.expect("request task"), 201);
    }
    assert_eq!(app.snapshot().await, (10, 10));
    assert_eq!(app.provider_calls().await.approved, 10);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("payments_provider_pool_size 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("payments_provider_pool_in_use 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("payments_provider_pool_waiting 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("payments_provider_request_duration_seconds_count 10"),
        "{metrics}"
    );
}
