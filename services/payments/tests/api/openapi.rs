//! `/openapi.json`: every route with its security, the charge's bounds,
//! and a JSON body for every error, the decline's reason included.

use mesh::testing::{DocumentedRoute, assert_openapi_document};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_route_is_documented_with_its_security_and_errors() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    let route = |path, method| DocumentedRoute {
        path,
        method,
        secured: true,
    };
    assert_openapi_document(
        &doc,
        "LearnSphere payments",
        "payments",
        &[
            route("/payments", "post"),
            route("/payments/{payment_id}", "get"),
            route("/payments/{payment_id}/refund", "post"),
            route("/users/{user_id}/payments", "get"),
        ],
    );
    let charge = &doc["paths"]["/payments"]["post"];
    let statuses: Vec<&String> = charge["responses"].as_object().unwrap().keys().collect();
    for status in ["201", "200", "400", "402", "403", "409", "422", "502"] {
        assert!(
            statuses.iter().any(|s| *s == status),
            "{status} in {statuses:?}"
        );
    }
    let key = &charge["parameters"][0];
    assert_eq!(key["in"], "header");
    assert_eq!(key["schema"]["maxLength"], 255);
    // Path ids are bounded as the handlers bound them, and an impossible
    // one is a documented 422.
    for (path, method) in [
        ("/payments/{payment_id}", "get"),
        ("/payments/{payment_id}/refund", "post"),
        ("/users/{user_id}/payments", "get"),
    ] {
        let operation = &doc["paths"][path][method];
        let id = &operation["parameters"][0];
        assert_eq!(id["in"], "path", "{method} {path}");
        assert_eq!(id["schema"]["minLength"], 1, "{method} {path}");
        assert_eq!(id["schema"]["maxLength"], 64, "{method} {path}");
        for status in ["403", "422"] {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path}: no {status}"
            );
        }
    }
    let schemas = &doc["components"]["schemas"];
    let request = &schemas["ChargeRequest"];
    assert_eq!(request["additionalProperties"], false);
    assert_eq!(request["properties"]["amount_cents"]["minimum"], 1);
    assert_eq!(request["properties"]["amount_cents"]["maximum"], 1_000_000);
    assert_eq!(request["properties"]["user_id"]["maxLength"], 64);
    assert_eq!(
        schemas["PaymentStatus"]["enum"],
        json!(["captured", "declined", "refunded"])
    );
    assert_eq!(
        schemas["DeclineDetail"]["properties"]["reason"]["$ref"],
        "#/components/schemas/DeclineReason"
    );
}
