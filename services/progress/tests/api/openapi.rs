//! `/openapi.json`: every route with its security and a JSON body for
//! every error it answers.

use mesh::testing::{DocumentedRoute, assert_openapi_document};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_route_is_documented_with_its_security_and_errors() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    let route = |path, method| DocumentedRoute {
        path,
        method,
        secured: true,
    };
    assert_openapi_document(
        &doc,
        "LearnSphere progress",
        "progress",
        &[
            route("/enrollments", "post"),
            route("/users/{user_id}/enrollments", "get"),
            route("/users/{user_id}/profile", "get"),
            route(
                "/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
                "post",
            ),
            route("/users/{user_id}/courses/{course_id}/progress", "get"),
        ],
    );
    // Every path id is bounded as `domain::Id` bounds it, and an
    // impossible one is a documented 422; another user's, a 403.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let what = format!("{method} {path} {}", parameter["name"]);
                assert_eq!(parameter["in"], "path", "{what}");
                assert_eq!(parameter["schema"]["minLength"], 1, "{what}");
                assert_eq!(parameter["schema"]["maxLength"], 64, "{what}");
            }
            for status in ["403", "422"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path}: no {status}"
                );
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["EnrollRequest"]["additionalProperties"], false);
    assert_eq!(
        schemas["EnrollmentStatus"]["enum"],
        json!(["pending", "active", "refunded"])
    );
    assert_eq!(
        schemas["Enrollment"]["properties"]["enrolled_at"]["format"],
        "date-time"
    );
}
