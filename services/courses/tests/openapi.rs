//! `/openapi.json`: the document the running service serves describes
//! every route, the catalog query's bounds, and a JSON body for every
//! error it answers.

mod helpers;

use helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `(path, method)` of every API route; none needs a token.
const ROUTES: [(&str, &str); 3] = [
    ("/courses", "get"),
    ("/courses/{course_id}", "get"),
    ("/courses/{course_id}/lessons/{lesson_id}", "get"),
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
async fn every_route_is_documented_with_its_errors() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "LearnSphere courses");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(
        paths.len(),
        ROUTES.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method) in ROUTES {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert_eq!(operation["tags"], json!(["courses"]), "{method} {path}");
        assert!(operation["operationId"].is_string(), "{method} {path}");
        // The catalog is public.
        assert!(operation.get("security").is_none(), "{method} {path}");
        let responses = operation["responses"].as_object().expect("responses");
        for status in ["200", "400", "500", "503"] {
            assert!(responses.contains_key(status), "{method} {path} {status}");
        }
        for (status, response) in responses {
            let schema = &resolve(&doc, response)["content"]["application/json"]["schema"];
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
    }
    for path in [
        "/courses/{course_id}",
        "/courses/{course_id}/lessons/{lesson_id}",
    ] {
        assert!(
            doc["paths"][path]["get"]["responses"]["404"].is_object(),
            "{path}"
        );
    }
    assert!(doc["paths"]["/courses"]["get"]["responses"]["422"].is_object());
}

#[tokio::test]
async fn the_catalog_query_states_its_bounds() {
    let doc = document().await;
    let parameters = doc["paths"]["/courses"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let parameter = |name: &str| -> &Value {
        parameters
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is documented"))
    };
    for name in ["page", "per_page", "tag"] {
        assert_eq!(parameter(name)["in"], "query", "{name}");
        assert_ne!(parameter(name)["required"], true, "{name} is optional");
    }
    let page = &parameter("page")["schema"];
    assert_eq!(
        (&page["minimum"], &page["maximum"]),
        (&json!(1), &json!(10_000))
    );
    let per_page = &parameter("per_page")["schema"];
    assert_eq!(
        (&per_page["minimum"], &per_page["maximum"]),
        (&json!(1), &json!(100))
    );
    assert_eq!(parameter("tag")["schema"]["maxLength"], 64);
}

#[tokio::test]
async fn the_models_are_in_the_document() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    for name in ["CourseSummary", "Course", "Lesson", "ErrorBody"] {
        assert!(schemas[name].is_object(), "{name}");
    }
    let summary = &schemas["CourseSummary"];
    assert!(
        summary["required"]
            .as_array()
            .expect("required")
            .contains(&json!("popularity"))
    );
}
