//! The service's one error type and its HTTP mapping.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mesh::{BadRequest, error_response};

use crate::{domain::InvalidInput, password::HashError, token::TokenError};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 404: the user does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: an account already uses this email.
    #[error("email taken")]
    EmailTaken,
    /// 401: unknown email or wrong password. One variant and one message
    /// for both, so the answer does not tell which emails have accounts.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 422: a field is well-formed JSON but not an acceptable value; the
    /// message names the field.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// 4xx: the request itself is wrong (status chosen by the extractor).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// 500: the database failed; details are logged, not sent.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// 500: password hashing failed; details are logged, not sent.
    #[error("password hashing error: {0}")]
    Hashing(#[from] HashError),
    /// 500: the token could not be signed; details are logged, not sent.
    #[error("token error: {0}")]
    Token(#[from] TokenError),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::EmailTaken => StatusCode::CONFLICT,
            Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(e) => e.status,
            Self::Database(_) | Self::Hashing(_) | Self::Token(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match self {
            Self::NotFound(what) => {
                error_response(status, "not_found", format!("{what} not found"))
            }
            Self::EmailTaken => error_response(
                status,
                "email_taken",
                "an account with this email already exists",
            ),
            Self::InvalidCredentials => error_response(
                status,
                "invalid_credentials",
                "email or password is incorrect",
            ),
            Self::Invalid(e) => error_response(status, "invalid_input", e.to_string()),
            Self::BadRequest(e) => e.into_response(),
            Self::Database(_) | Self::Hashing(_) | Self::Token(_) => {
                // None of these errors' texts carry a password, hash or
                // token: sqlx binds values, argon2 and jsonwebtoken errors
                // name what failed, not the input.
                tracing::error!(error = %self, "request failed");
                error_response(status, "internal", "internal error")
            }
        }
    }
}
