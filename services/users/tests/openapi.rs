//! `/openapi.json`: the document the running service serves describes
//! every route, its security, and a JSON body for every error it answers.

mod helpers;

use helpers::spawn_app;
use http::StatusCode;
use serde_json::{Value, json};

/// `(path, method, secured)` of every API route.
const ROUTES: [(&str, &str, bool); 3] = [
    ("/users", "post", false),
    ("/users/{user_id}", "get", true),
    ("/sessions", "post", false),
];

async fn document() -> Value {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON document")
}

/// The response object, following a `$ref` to `components.responses`.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .expect("a response ref");
            &doc["components"]["responses"][name]
        }
        None => response,
    }
}

#[tokio::test]
async fn every_route_is_documented_with_its_security_and_errors() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "LearnSphere users");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(
        paths.len(),
        ROUTES.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method, secured) in ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert_eq!(operation["tags"], json!(["users"]), "{method} {path}");
        assert!(operation["operationId"].is_string(), "{method} {path}");
        if secured {
            assert_eq!(
                operation["security"],
                json!([{"bearer": []}]),
                "{method} {path}"
            );
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        } else {
            assert!(operation.get("security").is_none(), "{method} {path}");
        }
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let response = resolve(&doc, response);
            let schema = &response["content"]["application/json"]["schema"];
            assert!(
                schema.is_object(),
                "{method} {path} {status} has no JSON body schema"
            );
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        for status in ["500", "503"] {
            assert!(responses.contains_key(status), "{method} {path} {status}");
        }
    }
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
