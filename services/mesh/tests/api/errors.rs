//! Every answer the mesh gives on a service's behalf for a bad request is
//! the JSON error body `{"error": {"code", "message"}}` with the right
//! status: unknown routes, wrong methods, and the rejections of the mesh's
//! extractors.

use axum::{Router, body::Body, routing};
use http::{Request, StatusCode, header};
use mesh::{
    Mesh, Readiness,
    extract::{Json, Path, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{body_json, call, get, identity, serve_config};

#[derive(Debug, Deserialize)]
struct NewItem {
    name: String,
    price_cents: i64,
}

#[derive(Debug, Deserialize)]
struct Search {
    limit: u32,
}

fn app() -> Router {
    let api = Router::new()
        .route(
            "/items",
            routing::post(|Json(item): Json<NewItem>| async move {
                Json(json!({"name": item.name, "price_cents": item.price_cents}))
            }),
        )
        .route(
            "/items/{id}",
            routing::get(|Path(id): Path<i64>| async move { Json(json!({"id": id})) }),
        )
        .route(
            "/search",
            routing::get(|Query(q): Query<Search>| async move { Json(json!({"limit": q.limit})) }),
        );
    let readiness = Readiness::new(None);
    readiness.mark_started();
    // serve_config(): max_body_bytes = 1024.
    Mesh::new(identity("items"), &serve_config()).router(api, readiness)
}

fn post_json(body: impl Into<Body>, content_type: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/items");
    if let Some(content_type) = content_type {
        req = req.header(header::CONTENT_TYPE, content_type);
    }
    req.body(body.into()).unwrap()
}

/// Asserts the status and the error code; returns the message.
async fn expect_error(req: Request<Body>, status: StatusCode, code: &str) -> String {
    let what = format!("{} {}", req.method(), req.uri());
    let res = call(&app(), req).await;
    assert_eq!(res.status(), status, "{what}");
    let body = body_json(res).await;
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: message in {body}"));
    assert!(!message.is_empty(), "{what}");
    // Nothing but the error object: no stack traces, no debug fields.
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert_eq!(body["error"].as_object().unwrap().len(), 2, "{body}");
    message.to_owned()
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    expect_error(
        get("/no/such/route"),
        StatusCode::NOT_FOUND,
        "route_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let req = Request::delete("/items/1").body(Body::empty()).unwrap();
    expect_error(req, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let req = Request::get("/items").body(Body::empty()).unwrap();
    expect_error(req, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn good_input_passes_every_extractor() {
    let app = app();
    let res = call(
        &app,
        post_json(
            r#"{"name": "mug", "price_cents": 1200}"#,
            Some("application/json"),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        body_json(res).await,
        json!({"name": "mug", "price_cents": 1200})
    );
    // Any application/*+json, parameters ignored.
    let res = call(
        &app,
        post_json(
            r#"{"name": "mug", "price_cents": 1}"#,
            Some("application/vnd.items+json; charset=utf-8"),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(&app, get("/items/42")).await;
    assert_eq!(body_json(res).await, json!({"id": 42}));
    let res = call(&app, get("/search?limit=5")).await;
    assert_eq!(body_json(res).await, json!({"limit": 5}));
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    for body in [
        r#"{"name": "mug", "#,
        r#"{"name": "mug" "price_cents": 1}"#,
        r#"{"name": "mug", "price_cents": 1}}"#,
        "{",
        "{ name: 'mug' }",
    ] {
        expect_error(
            post_json(body, Some("application/json")),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        )
        .await;
    }
}

#[tokio::test]
async fn well_formed_json_of_the_wrong_shape_is_422_invalid_body() {
    let message = expect_error(
        post_json(r#"{"name": "mug"}"#, Some("application/json")),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert!(
        message.contains("price_cents"),
        "names the missing field: {message}"
    );
    let message = expect_error(
        post_json(
            r#"{"name": "mug", "price_cents": "twelve"}"#,
            Some("application/json"),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert!(
        message.contains("price_cents"),
        "names the wrong field: {message}"
    );
    // The positional spelling serde would accept for a struct is refused.
    expect_error(
        post_json(r#"["mug", 1200]"#, Some("application/json")),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415() {
    let body = r#"{"name": "mug", "price_cents": 1200}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/jsonx"),
        Some("json"),
    ] {
        expect_error(
            post_json(body, content_type),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_body_too_large() {
    let name = "x".repeat(2 * 1024);
    let body = format!(r#"{{"name": "{name}", "price_cents": 1}}"#);
    expect_error(
        post_json(body, Some("application/json")),
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;

    // A body of unknown length (streamed, chunked) is cut off as well.
    let name = "y".repeat(2 * 1024);
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok(r#"{"name": ""#.to_owned()),
        Ok(name),
        Ok(r#"", "price_cents": 1}"#.to_owned()),
    ];
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    expect_error(
        post_json(streamed, Some("application/json")),
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
}

#[tokio::test]
async fn a_path_parameter_of_the_wrong_type_is_400_invalid_path() {
    for path in ["/items/abc", "/items/1.5", "/items/99999999999999999999"] {
        expect_error(get(path), StatusCode::BAD_REQUEST, "invalid_path").await;
    }
}

#[tokio::test]
async fn a_bad_query_is_400_invalid_query() {
    for uri in ["/search", "/search?limit=lots", "/search?limit=-1"] {
        expect_error(get(uri), StatusCode::BAD_REQUEST, "invalid_query").await;
    }
}

#[tokio::test]
async fn bad_request_helpers_keep_the_contract() {
    // What services build their own answers with.
    let res = axum::response::IntoResponse::into_response(mesh::BadRequest::invalid(
        "price must be positive",
    ));
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = body_json(res).await;
    assert_eq!(
        body,
        json!({"error": {"code": "invalid_input", "message": "price must be positive"}})
    );
}

#[tokio::test]
async fn oversized_headers_are_a_json_431_and_deep_json_a_400() {
    let big = "x".repeat(mesh::MAX_HEADER_BYTES);
    let req = Request::get("/items/1")
        .header("x-padding", big.as_str())
        .body(Body::empty())
        .unwrap();
    let message = expect_error(
        req,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    assert!(message.contains("byte limit"), "{message}");
    // Just under the limit is served.
    let fits = "x".repeat(mesh::MAX_HEADER_BYTES / 2);
    let req = Request::get("/items/1")
        .header("x-padding", fits.as_str())
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app(), req).await.status(), StatusCode::OK);

    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    expect_error(
        post_json(deep, Some("application/json")),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
}
