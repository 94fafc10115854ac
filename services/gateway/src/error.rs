//! The gateway's one error type. Errors from the services are passed on
//! with their status and code when they are the client's to fix (4xx);
//! failures of the services themselves become 502/503 without details.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mesh::{BadRequest, CallError, auth::AuthError, error_response};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401 without a valid token, 403 for another user's data.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 4xx: the request itself is wrong (status chosen by the extractor).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// A service's answer: its 4xx passes through; 5xx → 502; no answer → 503.
    #[error(transparent)]
    Upstream(#[from] CallError),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(AuthError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
            Self::Auth(AuthError::Forbidden) => StatusCode::FORBIDDEN,
            Self::BadRequest(e) => e.status,
            Self::Upstream(CallError::Status { status, .. }) if status.is_client_error() => *status,
            Self::Upstream(CallError::Status { .. } | CallError::Decode { .. }) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Upstream(CallError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match self {
            Self::Auth(e) => e.into_response(),
            Self::BadRequest(e) => e.into_response(),
            // The service's own answer, extra fields (a decline's
            // `reason`) and `Retry-After` included.
            Self::Upstream(CallError::Status {
                code,
                message,
                body,
                retry_after,
                ..
            }) if status.is_client_error() => {
                let mut res = match body {
                    Some(body) => (status, axum::Json(*body)).into_response(),
                    None => error_response(status, &code, message),
                };
                if let Some(value) = retry_after.and_then(|v| http::HeaderValue::from_str(&v).ok())
                {
                    res.headers_mut().insert(http::header::RETRY_AFTER, value);
                }
                res
            }
            Self::Upstream(error) => {
                // Which service failed is worth telling; how is not. An open
                // breaker was logged when it opened: one line per refused
                // request would bury everything else.
                let retry_after = match &error {
                    CallError::Unavailable(e) => e.retry_after(),
                    _ => None,
                };
                if retry_after.is_some() {
                    tracing::debug!(error = %error, "upstream paused");
                } else {
                    tracing::error!(error = %error, "upstream failure");
                }
                let (code, service) = match &error {
                    CallError::Unavailable(e) => {
                        ("dependency_unavailable", e.destination().to_owned())
                    }
                    CallError::Status { destination, .. }
                    | CallError::Decode { destination, .. } => {
                        ("bad_gateway", destination.to_string())
                    }
                };
                let mut res = error_response(
                    status,
                    code,
                    format!("the {service} service is not answering correctly"),
                );
                if let Some(after) = retry_after {
                    // Whole seconds, rounded up (RFC 9110 section 10.2.3).
                    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                    res.headers_mut()
                        .insert(http::header::RETRY_AFTER, secs.max(1).into());
                }
                res
            }
        }
    }
}
