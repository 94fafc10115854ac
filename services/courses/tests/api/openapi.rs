//! `/openapi.json`: the document the running service serves describes
//! every route, the catalog query's bounds, and a JSON body for every
//! error it answers.

use mesh::testing::{DocumentedRoute, assert_openapi_document};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

async fn document() -> Value {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("JSON document")
}

#[tokio::test]
async fn every_route_is_documented_with_its_errors() {
    let doc = document().await;
    // The catalog is public: no route needs a token.
    let route = |path| DocumentedRoute {
        path,
        method: "get",
        secured: false,
    };
    assert_openapi_document(
        &doc,
        "LearnSphere courses",
        "courses",
        &[
            route("/courses"),
            route("/courses/{course_id}"),
            route("/courses/{course_id}/lessons/{lesson_id}"),
        ],
    );
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
