//! The public contract: the gateway's OpenAPI document lists every route
//! with its security, and on every operation the edge's own answers (the
//! rate limit, a failed or silent service) with the error body.

use serde_json::{Value, json};

/// `(path, method, security)`: `None` public, `Some(true)` a token is
/// required, `Some(false)` a token is optional.
const ROUTES: [(&str, &str, Option<bool>); 12] = [
    ("/api/users", "post", None),
    ("/api/sessions", "post", None),
    ("/api/me", "get", Some(true)),
    ("/api/courses", "get", None),
    ("/api/courses/{course_id}", "get", None),
    ("/api/courses/{course_id}/page", "get", Some(false)),
    ("/api/checkout", "post", Some(true)),
    ("/api/users/{user_id}/enrollments", "get", Some(true)),
    (
        "/api/users/{user_id}/courses/{course_id}/progress",
        "get",
        Some(true),
    ),
    (
        "/api/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
        "post",
        Some(true),
    ),
    ("/api/users/{user_id}/payments", "get", Some(true)),
    ("/api/payments/{payment_id}", "get", Some(true)),
];

#[test]
fn every_public_route_is_in_the_contract_with_the_edges_own_answers() {
    let doc: Value = serde_json::to_value(gateway::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "LearnSphere API");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    // The refund is the thirteenth.
    assert_eq!(operations, ROUTES.len() + 1);
    assert!(doc["paths"]["/api/payments/{payment_id}/refund"]["post"].is_object());
    for (path, method, security) in ROUTES {
        let what = format!("{method} {path}");
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{what} is missing");
        assert!(operation["operationId"].is_string(), "{what}");
        match security {
            None => assert!(operation.get("security").is_none(), "{what}"),
            Some(true) => assert_eq!(operation["security"], json!([{"bearer": []}]), "{what}"),
            Some(false) => assert_eq!(operation["security"], json!([{}, {"bearer": []}]), "{what}"),
        }
        let responses = &operation["responses"];
        for status in ["429", "500", "502", "503"] {
            assert!(responses[status].is_object(), "{what}: no {status}");
        }
        if security.is_some() {
            assert!(responses["401"].is_object(), "{what}: no 401");
        }
        if path.contains("{user_id}") || path.contains("{payment_id}") {
            assert!(responses["403"].is_object(), "{what}: no 403");
        }
    }
    let key = &doc["paths"]["/api/checkout"]["post"]["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(key["in"], "header");
    assert_eq!(key["required"], true);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["bearerFormat"],
        "JWT"
    );
}
