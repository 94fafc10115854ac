//! A claim on an Idempotency-Key is a lease. A replica killed between
//! claiming a key and recording its payment leaves the key `in_progress`;
//! its heartbeat stops, and the client's retry (the gateway's, on another
//! replica) takes the charge over instead of answering 409 for ever. An
//! owner that is alive keeps its key however long the provider takes, and
//! an owner whose key was taken over records nothing.
//!
//! On PostgreSQL (the suite's second pass) these run against the shared
//! database that replicas race on.

use std::{sync::Arc, time::Duration};

use chrono::{SecondsFormat, Utc};
use payments::{domain::NewCharge, model::ChargeRequest};
use serde_json::Value;

use crate::helpers::{TestApp, charge_body, new_key, spawn_app_with};

/// A moment as the service stores it.
fn stored(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn fingerprint(body: &Value) -> String {
    let request: ChargeRequest = serde_json::from_value(body.clone()).unwrap();
    NewCharge::parse(&request)
        .unwrap()
        .fingerprint()
        .as_str()
        .to_owned()
}

/// What a replica killed during its provider call leaves behind: the key
/// in progress under its owner, heartbeat `silent_for` ago, and the
/// learner's purchase of the course claimed by that key.
async fn plant_dead_owner(app: &TestApp, key: &str, body: &Value, silent_for: Duration) {
    let then = stored(Utc::now() - silent_for);
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, state, payment_id, created_at, owner, heartbeat_at) \
         VALUES ($1, $2, 'in_progress', NULL, $3, 'killed-replica', $3)",
    )
    .bind(key)
    .bind(fingerprint(body))
    .bind(&then)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO purchases (user_id, course_id, idempotency_key, payment_id, claimed_at) \
         VALUES ($1, $2, $3, NULL, $4)",
    )
    .bind(body["user_id"].as_str().unwrap())
    .bind(body["course_id"].as_str().unwrap())
    .bind(key)
    .bind(&then)
    .execute(&app.db)
    .await
    .unwrap();
}

async fn key_row(app: &TestApp, key: &str) -> (String, Option<String>, Option<String>) {
    sqlx::query_as("SELECT state, owner, payment_id FROM idempotency_keys WHERE key = $1")
        .bind(key)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn payments_of(app: &TestApp, key: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT id, status FROM payments WHERE idempotency_key = $1")
        .bind(key)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn purchase_payment(app: &TestApp, user: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT payment_id FROM purchases WHERE user_id = $1 AND course_id = 'c0001'",
    )
    .bind(user)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_retry_of_a_charge_whose_replica_died_takes_it_over() {
    // A short wait: before leases, the retry waited this long for the dead
    // owner, then answered 409 request_in_progress (and every later retry
    // did too).
    let app = spawn_app_with(|c| c.idempotency_wait = Duration::from_secs(2)).await;
    let key = new_key();
    let body = charge_body("u1");
    plant_dead_owner(&app, &key, &body, Duration::from_secs(10)).await;

    let res = app.charge(Some(&key), &body).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let payment: Value = res.json().await.unwrap();
    assert_eq!(payment["status"], "captured");
    let id = payment["id"].as_str().unwrap();

    let (state, owner, payment_id) = key_row(&app, &key).await;
    assert_eq!(state, "completed");
    assert_ne!(owner.as_deref(), Some("killed-replica"));
    assert_eq!(payment_id.as_deref(), Some(id));
    assert_eq!(payments_of(&app, &key).await.len(), 1);
    // The purchase the dead owner claimed is bought by this payment.
    assert_eq!(purchase_payment(&app, "u1").await.as_deref(), Some(id));
    assert_eq!(app.provider_calls().await.total(), 1);

    // And the key now replays like any completed one.
    let again = app.charge(Some(&key), &body).await;
    assert_eq!(again.status(), 200);
    let replayed: Value = again.json().await.unwrap();
    assert_eq!(replayed["id"], payment["id"]);
}

/// Eight retries of the dead owner's key at once (the client's and the
/// gateway's, on several replicas): one takes over and charges, the others
/// wait for it and replay its payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_take_a_dead_charge_over_once() {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(100);
            c.provider.latency_p99 = Duration::from_millis(120);
        })
        .await,
    );
    let key = new_key();
    let body = charge_body("u1");
    plant_dead_owner(&app, &key, &body, Duration::from_secs(10)).await;

    let retries: Vec<_> = (0..8)
        .map(|_| {
            let (app, key, body) = (app.clone(), key.clone(), body.clone());
            tokio::spawn(async move {
                let res = app.charge(Some(&key), &body).await;
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                (status, body["id"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for retry in retries {
        answers.push(retry.await.unwrap());
    }
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let replayed = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, replayed), (1, 7), "{answers:?}");
    let ids: std::collections::HashSet<_> = answers.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(payments_of(&app, &key).await.len(), 1);
    assert_eq!(app.provider_calls().await.total(), 1);
}

/// A provider call longer than the lease: the owner's heartbeat keeps the
/// key, so a duplicate waits and replays instead of charging again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_owner_keeps_its_key_past_the_lease() {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(4500);
            c.provider.latency_p99 = Duration::from_millis(4600);
        })
        .await,
    );
    let key = new_key();
    let body = charge_body("u1");
    let first = {
        let (app, key, body) = (app.clone(), key.clone(), body.clone());
        tokio::spawn(async move { app.charge(Some(&key), &body).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let duplicate = app.charge(Some(&key), &body).await;
    let first = first.await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(
        duplicate.status(),
        200,
        "the duplicate replays the first charge"
    );
    let first: Value = first.json().await.unwrap();
    let duplicate: Value = duplicate.json().await.unwrap();
    assert_eq!(first["id"], duplicate["id"]);
    assert_eq!(app.provider_calls().await.total(), 1);
    assert_eq!(payments_of(&app, &key).await.len(), 1);
}

/// The interleaving a takeover can meet: the owner is alive but slow, and
/// another request took its key while the provider answered. The owner
/// must not record its charge over its successor's; it answers with what
/// the successor records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_key_was_taken_over_records_nothing() {
    let app = Arc::new(
        spawn_app_with(|c| {
            c.provider.latency_median = Duration::from_millis(1500);
            c.provider.latency_p99 = Duration::from_millis(1600);
        })
        .await,
    );
    let key = new_key();
    let body = charge_body("u1");
    let owner = {
        let (app, key, body) = (app.clone(), key.clone(), body.clone());
        tokio::spawn(async move { app.charge(Some(&key), &body).await })
    };
    // While the owner waits for the provider, its key changes hands. The
    // successor's heartbeat stays fresh for the rest of the test, as a
    // live successor's would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET owner = 'successor', heartbeat_at = $1 WHERE key = $2 AND state = 'in_progress'",
    )
    .bind(stored(Utc::now() + Duration::from_secs(60)))
    .bind(&key)
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(taken.rows_affected(), 1);

    // The provider has answered the owner; it recorded nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!owner.is_finished(), "the owner waits for the successor");
    assert!(payments_of(&app, &key).await.is_empty());
    let (state, who, _) = key_row(&app, &key).await;
    assert_eq!(
        (state.as_str(), who.as_deref()),
        ("in_progress", Some("successor"))
    );

    // The successor records its payment; the owner answers with it.
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO payments (id, user_id, course_id, amount_cents, currency, status, decline_reason, provider_reference, idempotency_key, created_at) \
         VALUES ($1, 'u1', 'c0001', $2, 'USD', 'captured', NULL, 'ch_successor', $3, $4)",
    )
    .bind(&id)
    .bind(body["amount_cents"].as_i64().unwrap())
    .bind(&key)
    .bind(stored(Utc::now()))
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'completed', payment_id = $1 WHERE key = $2 AND owner = 'successor'",
    )
    .bind(&id)
    .bind(&key)
    .execute(&app.db)
    .await
    .unwrap();
    let res = owner.await.unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(payments_of(&app, &key).await.len(), 1);
}
