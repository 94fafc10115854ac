//! The JSON error body every LearnSphere service answers with, and the
//! rejections of the mesh's extractors turned into it.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde::{Deserialize, Serialize};

/// `{"error": {"code": "...", "message": "..."}}`: every error answer of
/// every LearnSphere service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong. Some errors add fields (a declined payment's
/// `reason`); clients should ignore fields they do not know.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`not_found`, `invalid_json`, ...).
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
}

/// A JSON error response.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }),
    )
        .into_response()
}

/// An error from a request the client got wrong: which status, which code,
/// what to tell them. The mesh's extractors reject with this.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BadRequest {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl BadRequest {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 422 `invalid_input`: well-formed, but the values are wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, self.message)
    }
}

/// Fallback for paths no route matches.
pub async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
