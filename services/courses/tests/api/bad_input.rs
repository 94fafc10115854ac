//! Every bad request gets a JSON 4xx `{"error": {"code", "message"}}` and
//! leaves the catalog as it was.

use reqwest::{Method, StatusCode};

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn bad_list_parameters_are_rejected() {
    let app = spawn_app().await;
    let before = app.row_counts().await;
    let long_tag = "t".repeat(65);
    let cases = [
        // Well-formed but out of range: 422.
        (
            "page=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "page",
        ),
        (
            "per_page=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "per_page",
        ),
        (
            "per_page=101",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "per_page",
        ),
        (
            &format!("tag={long_tag}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "tag",
        ),
        // Far pages would make the database skip millions of rows.
        (
            "page=10001",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "page",
        ),
        (
            "page=4294967295",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "page",
        ),
        (
            &format!("q={long_tag}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "q (the search)",
        ),
        (
            "q=rust%00",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "q (the search)",
        ),
        // Control characters (NUL would be a 500 from PostgreSQL).
        (
            "tag=rust%00",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "tag",
        ),
        (
            "tag=a%0Ab",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "tag",
        ),
        (
            &format!("tag={}", "%C3%A9".repeat(65)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "tag",
        ),
        // Not even the right type: 400.
        ("page=abc", StatusCode::BAD_REQUEST, "invalid_query", "page"),
        ("page=-1", StatusCode::BAD_REQUEST, "invalid_query", "page"),
        (
            "page=4294967296",
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "page",
        ),
        (
            "per_page=1.5",
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "per_page",
        ),
        (
            "page=1&page=2",
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "page",
        ),
        // A misspelt or unsupported parameter is an error, not ignored.
        (
            "sort=title",
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "sort",
        ),
        (
            "perpage=10",
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "perpage",
        ),
    ];
    for (query, status, code, names) in cases {
        let res = app.get(&format!("/courses?{query}")).await;
        let message = assert_error(res, status, code).await;
        assert!(message.contains(names), "{query}: {message}");
    }
    assert_eq!(app.row_counts().await, before);
}

#[tokio::test]
async fn the_limits_themselves_are_accepted() {
    let app = spawn_app().await;
    let tag = "t".repeat(64);
    // 64 characters, 128 bytes: the bound counts characters, as the
    // schema's `maxLength` does.
    let accented = "%C3%A9".repeat(64);
    for query in [
        "per_page=1",
        "per_page=100",
        "page=1",
        "page=10000",
        &format!("tag={tag}"),
        &format!("tag={accented}"),
    ] {
        let res = app.get(&format!("/courses?{query}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{query}");
    }
}

#[tokio::test]
async fn ids_with_control_characters_are_404_not_500() {
    let app = spawn_app().await;
    for path in [
        "/courses/c0001%00",
        "/courses/%00/lessons/c0001-l01",
        "/courses/c0001/lessons/c0001-l01%00",
        "/courses/c%07",
    ] {
        let res = app.get(path).await;
        assert_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let before = app.row_counts().await;
    for path in [
        "/",
        "/course",
        "/courses/",
        "/courses/c0001/lessons",
        "/courses/c0001/lessons/c0001-l01/extra",
    ] {
        let res = app.get(path).await;
        assert_error(res, StatusCode::NOT_FOUND, "route_not_found").await;
    }
    for (method, path) in [
        (Method::POST, "/courses"),
        (Method::PUT, "/courses/c0001"),
        (Method::DELETE, "/courses/c0001"),
        (Method::PATCH, "/courses/c0001/lessons/c0001-l01"),
    ] {
        let res = app
            .http
            .request(method.clone(), app.url(path))
            .json(&serde_json::json!({"title": "Hijacked"}))
            .send()
            .await
            .expect("request reaches courses");
        let message = assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        assert!(!message.is_empty(), "{method} {path}");
    }
    assert_eq!(app.row_counts().await, before);
}
