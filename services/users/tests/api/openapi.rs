//! `/openapi.json`: the document the running service serves describes
//! every route, its security, and a JSON body for every error it answers.

use http::StatusCode;
use mesh::testing::{DocumentedRoute, assert_openapi_document};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

async fn document() -> Value {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON document")
}

#[tokio::test]
async fn every_route_is_documented_with_its_security_and_errors() {
    let route = |path, method, secured| DocumentedRoute {
        path,
        method,
        secured,
    };
    assert_openapi_document(
        &document().await,
        "LearnSphere users",
        "users",
        &[
            route("/users", "post", false),
            route("/users/{user_id}", "get", true),
            route("/sessions", "post", false),
        ],
    );
}

#[tokio::test]
async fn the_handlers_own_errors_are_listed() {
    let doc = document().await;
    let statuses = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .cloned()
            .collect()
    };
    for (path, method, expected) in [
        (
            "/users",
            "post",
            &["201", "409", "422", "400", "413", "415"][..],
        ),
        (
            "/users/{user_id}",
            "get",
            &["200", "401", "403", "404", "400"],
        ),
        ("/sessions", "post", &["200", "401", "422", "429"]),
    ] {
        let got = statuses(path, method);
        for status in expected {
            assert!(
                got.iter().any(|s| s == status),
                "{method} {path}: {status} in {got:?}"
            );
        }
    }
    let retry_after =
        &doc["paths"]["/sessions"]["post"]["responses"]["429"]["headers"]["Retry-After"];
    assert!(retry_after.is_object(), "429 documents Retry-After");
}

#[tokio::test]
async fn request_schemas_state_the_domains_bounds_and_refuse_unknown_fields() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let register = &schemas["RegisterRequest"];
    assert_eq!(register["additionalProperties"], false);
    assert_eq!(register["properties"]["email"]["maxLength"], 254);
    assert_eq!(register["properties"]["display_name"]["minLength"], 1);
    assert_eq!(register["properties"]["display_name"]["maxLength"], 64);
    assert_eq!(register["properties"]["password"]["minLength"], 8);
    assert_eq!(register["properties"]["password"]["maxLength"], 128);
    assert_eq!(
        register["required"],
        json!(["email", "display_name", "password"])
    );
    // The code's email rule is looser than JSON Schema's `email` format.
    assert!(register["properties"]["email"].get("format").is_none());

    let login = &schemas["LoginRequest"];
    assert_eq!(login["additionalProperties"], false);
    assert_eq!(login["properties"]["password"]["maxLength"], 128);

    let user = &schemas["User"];
    assert_eq!(user["properties"]["created_at"]["format"], "date-time");
    assert_eq!(
        user["required"],
        json!(["id", "email", "display_name", "created_at"])
    );
    assert!(schemas["Session"]["properties"]["access_token"].is_object());
}
