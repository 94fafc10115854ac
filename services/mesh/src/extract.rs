//! Extractors that reject bad input with the JSON error body instead of
//! axum's plain-text rejections.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::*},
    response::{IntoResponse, Response},
};
use http::{StatusCode, request::Parts};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::BadRequest;

/// `axum::Json`, rejecting with `{"error": ...}`: 400 for malformed JSON,
/// 415 without a JSON content type, 413 over the body limit, 422 for
/// missing or wrongly-typed fields (with the field path in the message).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BadRequest;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> BadRequest {
    let status = rejection.status();
    let code = match &rejection {
        JsonRejection::JsonDataError(_) => "invalid_body",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        _ => "invalid_body",
    };
    BadRequest::new(status, code, rejection.body_text())
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, rejecting with a JSON 400 naming the parameter.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = BadRequest;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|r: PathRejection| BadRequest::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text()))
    }
}

/// `axum::extract::Query`, rejecting with a JSON 400.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BadRequest;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|r: QueryRejection| BadRequest::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text()))
    }
}
