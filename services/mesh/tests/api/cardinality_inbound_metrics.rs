//! Metric cardinality under hostile traffic: ten thousand requests with
//! random paths (random segments, percent-encoded junk, very long paths)
//! and random methods (`FOO`, `PURGE`, made-up tokens) add no series to
//! `/metrics` once each route template and method class has been seen.
//! Unknown routes collapse to `route="unmatched"` and unknown methods to
//! `method="_OTHER"`, so a scanner cannot grow Prometheus's memory.

use std::collections::BTreeSet;

use axum::{Router, body::Body, routing::get};
use http::{Method, Request};
use mesh::{Mesh, Readiness, ServeConfig};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use crate::helpers::{Exposition, call, identity, scrape, serve_config};

const REQUESTS: usize = 10_000;
const DURATION_COUNT: &str = "http_server_request_duration_seconds_count";

fn app() -> Router {
    let api = Router::new()
        .route(
            "/items",
            get(|| async { "all items" }).post(|| async { "added" }),
        )
        .route("/items/{id}", get(|| async { "one item" }));
    let readiness = Readiness::new(None);
    readiness.mark_started();
    let serve = ServeConfig {
        metrics_enabled: true,
        ..serve_config()
    };
    Mesh::new(identity("items"), &serve).router(api, readiness)
}

/// Metric name and label set of every sample line, values ignored.
fn series(exposition: &Exposition) -> BTreeSet<String> {
    exposition
        .samples
        .iter()
        .map(|s| format!("{}{:?}", s.name, s.labels))
        .collect()
}

/// The values one label takes on the server request counter.
fn label_values(exposition: &Exposition, label: &str) -> BTreeSet<String> {
    exposition
        .matching(DURATION_COUNT, &[])
        .iter()
        .filter_map(|s| s.label(label).map(str::to_owned))
        .collect()
}

const METHODS: [&str; 14] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "FOO", "PURGE",
    "PROPFIND", "M-SEARCH", "get",
];

fn method(rng: &mut StdRng) -> Method {
    if rng.random_bool(0.3) {
        // A made-up token: any of RFC 9110's tchar, up to 16 of them.
        const TCHAR: &[u8] =
            b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let len = rng.random_range(1..=16);
        let token: Vec<u8> = (0..len).map(|_| *TCHAR.choose(rng).unwrap()).collect();
        Method::from_bytes(&token).unwrap()
    } else {
        Method::from_bytes(METHODS.choose(rng).unwrap().as_bytes()).unwrap()
    }
}

/// A random path, percent-encoded where it must be to make a valid URI.
fn path(rng: &mut StdRng) -> String {
    let segment = |rng: &mut StdRng| -> String {
        let len = rng.random_range(0..24);
        (0..len)
            .map(|_| {
                let byte: u8 = rng.random();
                if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
                    char::from(byte).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            })
            .collect()
    };
    match rng.random_range(0..10) {
        // Known templates with junk ids: must stay `/items/{id}`.
        0..=2 => format!("/items/{}", segment(rng)),
        3 => "/items".to_owned(),
        // Very long paths, one segment or many.
        4 => format!("/{}", "a".repeat(rng.random_range(1_000..16_000))),
        5 => (0..rng.random_range(50..400))
            .map(|_| format!("/{}", segment(rng)))
            .collect(),
        // Random segments under random prefixes.
        _ => {
            let n = rng.random_range(1..6);
            (0..n).map(|_| format!("/{}", segment(rng))).collect()
        }
    }
}

#[tokio::test]
async fn random_paths_and_methods_add_no_series() {
    let app = app();
    // Warm-up: every route template (and no route) with every method
    // class, so the baseline holds every series legitimate traffic makes.
    for method in [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "FOO",
    ] {
        for path in ["/items", "/items/1", "/nowhere"] {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let status = call(&app, req).await.status();
            assert!(!status.is_server_error(), "{method} {path}: {status}");
        }
    }
    let before = scrape(&app).await;

    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut sent = 0;
    while sent < REQUESTS {
        let (method, path) = (method(&mut rng), path(&mut rng));
        let Ok(req) = Request::builder()
            .method(method.clone())
            .uri(path.as_str())
            .body(Body::empty())
        else {
            continue;
        };
        let status = call(&app, req).await.status();
        assert!(
            !status.is_server_error(),
            "{method} {}: {status}",
            &path[..path.len().min(80)]
        );
        sent += 1;
    }
    let after = scrape(&app).await;

    let total: f64 = after
        .matching(DURATION_COUNT, &[])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(total, (REQUESTS + 24) as f64, "every request counted");

    let new: Vec<String> = series(&after)
        .difference(&series(&before))
        .cloned()
        .collect();
    assert!(
        new.len() <= 10,
        "{} new series after {REQUESTS} random requests:\n{}",
        new.len(),
        new.join("\n")
    );
    assert_eq!(
        label_values(&after, "route"),
        BTreeSet::from(["/items", "/items/{id}", "unmatched"].map(String::from))
    );
    let methods = label_values(&after, "method");
    let known: BTreeSet<String> = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "_OTHER",
    ]
    .map(String::from)
    .into();
    assert!(methods.is_subset(&known), "{methods:?}");
}
