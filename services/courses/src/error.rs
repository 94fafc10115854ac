//! The service's one error type and its HTTP mapping.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mesh::{BadRequest, error_response};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 404: the course or lesson does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 4xx: the request itself is wrong (status chosen by the extractor).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// 500: the database failed; details are logged, not sent.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// 500: a row read could not be written as JSON (a popularity that is
    /// not a number, say); logged, not sent.
    #[error("encoding error: {0}")]
    Encode(#[from] serde_json::Error),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(e) => e.status,
            Self::Database(_) | Self::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound(what) => {
                error_response(self.status_code(), "not_found", format!("{what} not found"))
            }
            Self::BadRequest(e) => e.into_response(),
            Self::Database(ref e) => {
                tracing::error!(error = %e, "database error");
                error_response(self.status_code(), "internal", "internal error")
            }
            Self::Encode(ref e) => {
                tracing::error!(error = %e, "encoding error");
                error_response(self.status_code(), "internal", "internal error")
            }
        }
    }
}
