//! The service's one error type and its HTTP mapping.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mesh::{
    BadRequest,
    auth::{AuthError, token::TokenError},
    error_response,
};

use crate::{domain::InvalidInput, password::HashError};

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
    /// 429: this account has had too many failed logins lately
    /// ([`crate::lockout`]); `Retry-After` says when the next attempt is
    /// allowed.
    #[error("too many failed logins")]
    TooManyAttempts { retry_after: Duration },
    /// 401 without a valid token, 403 for another user's profile.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 422: a field is well-formed JSON but not an acceptable value; the
    /// message names the field, the code says which kind of rule
    /// (`invalid_input`, `invisible_characters`).
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
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Auth(AuthError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
            Self::Auth(AuthError::Forbidden) => StatusCode::FORBIDDEN,
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
            Self::TooManyAttempts { retry_after } => {
                let secs = whole_seconds(retry_after);
                let mut res = error_response(
                    status,
                    "too_many_attempts",
                    format!("too many failed logins for this account; retry in {secs} s"),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                res
            }
            Self::Auth(e) => e.into_response(),
            Self::Invalid(e) => error_response(status, e.code, e.to_string()),
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

/// Whole seconds, rounded up and at least 1: `Retry-After: 0` would invite
/// an immediate retry that fails again.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
    }
}
