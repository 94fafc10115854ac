//! The service's one error type and its HTTP mapping.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use mesh::{BadRequest, error_response};

use crate::{
    domain::ParseError,
    model::{DeclineBody, DeclineDetail, DeclineReason, PAYMENT_DECLINED},
    provider::ProviderError,
};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401 without a valid token, 403 for another user's payment.
    #[error(transparent)]
    Auth(#[from] mesh::auth::AuthError),
    /// 404: the payment does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 4xx: the request itself is wrong (status chosen by the extractor or
    /// 422 `invalid_input` for values the domain types reject).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// 400: `POST /payments` without an `Idempotency-Key` header. Required,
    /// not optional: a charge without one cannot be retried safely.
    #[error("the Idempotency-Key header is required")]
    MissingIdempotencyKey,
    /// 400: the `Idempotency-Key` header is not a valid key.
    #[error("{0}")]
    InvalidIdempotencyKey(ParseError),
    /// 422: the key was first used with a different request body.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// 409 (with `Retry-After: 1`): another request with this key is still
    /// being processed and did not finish within the wait.
    #[error("a request with this Idempotency-Key is still in progress")]
    RequestInProgress,
    /// 422 `unsupported_currency`: not one of the currencies charges may
    /// be in.
    #[error("{0} is not a currency this service charges in")]
    UnsupportedCurrency(String),
    /// 422 `unknown_course`: the catalog has no such course.
    #[error("the catalog has no course {0:?}")]
    UnknownCourse(String),
    /// 422 `course_is_free`: nothing to charge for.
    #[error("course {0} is free: there is nothing to charge")]
    CourseIsFree(String),
    /// 409 `price_mismatch`: the amount asked is not the catalog's price;
    /// nothing was charged.
    #[error(
        "course {course} costs {price_cents} {price_currency}, not {amount_cents} {currency}: nothing was charged"
    )]
    PriceMismatch {
        course: String,
        price_cents: i64,
        price_currency: String,
        amount_cents: i64,
        currency: String,
    },
    /// 409 `already_purchased`: the learner already bought the course with
    /// another payment (named in the body); nothing was charged.
    #[error("the learner already bought this course (payment {0}); nothing was charged")]
    AlreadyPurchased(String),
    /// 409 `purchase_in_progress` (with `Retry-After: 1`): another charge
    /// for the same learner and course is in flight; nothing was charged.
    #[error("another charge for this learner and course is in progress; nothing was charged")]
    PurchaseInProgress,
    /// 503 `dependency_unavailable`: the catalog could not be asked for the
    /// price; nothing was charged.
    #[error("the courses service is unavailable: {0}")]
    CatalogUnavailable(mesh::CallError),
    /// 409 `not_refundable`: only a captured payment can be refunded.
    #[error("a {} payment cannot be refunded: only captured ones can", .0.as_str())]
    NotRefundable(crate::model::PaymentStatus),
    /// 402: the provider declined the card; the body carries the reason.
    #[error("the card was declined: {}", .0.as_str())]
    PaymentDeclined(DeclineReason),
    /// 502: the provider failed; nothing was charged and the key is free
    /// again, so the client may retry with it. Details are logged.
    #[error(transparent)]
    ProviderUnavailable(#[from] ProviderError),
    /// 500 (409 for a unique violation): the database failed; details are
    /// logged, not sent.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// 500: the task running a charge ended without an answer (it panicked).
    #[error("charge task failed: {0}")]
    ChargeTask(#[from] tokio::task::JoinError),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(mesh::auth::AuthError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
            Self::Auth(mesh::auth::AuthError::Forbidden) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(e) => e.status,
            Self::MissingIdempotencyKey | Self::InvalidIdempotencyKey(_) => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RequestInProgress
            | Self::NotRefundable(_)
            | Self::PriceMismatch { .. }
            | Self::AlreadyPurchased(_)
            | Self::PurchaseInProgress => StatusCode::CONFLICT,
            Self::UnsupportedCurrency(_) | Self::UnknownCourse(_) | Self::CourseIsFree(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::CatalogUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            Self::ProviderUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::Database(e) if is_unique_violation(e) => StatusCode::CONFLICT,
            Self::Database(_) | Self::ChargeTask(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match self {
            Self::Auth(e) => e.into_response(),
            Self::NotFound(_) => error_response(status, "not_found", self.to_string()),
            Self::NotRefundable(_) => error_response(status, "not_refundable", self.to_string()),
            Self::UnsupportedCurrency(_) => {
                error_response(status, "unsupported_currency", self.to_string())
            }
            Self::UnknownCourse(_) => error_response(status, "unknown_course", self.to_string()),
            Self::CourseIsFree(_) => error_response(status, "course_is_free", self.to_string()),
            Self::PriceMismatch { .. } => {
                error_response(status, "price_mismatch", self.to_string())
            }
            Self::AlreadyPurchased(ref payment_id) => (
                status,
                axum::Json(serde_json::json!({
                    "error": {
                        "code": "already_purchased",
                        "message": self.to_string(),
                        "payment_id": payment_id,
                    }
                })),
            )
                .into_response(),
            Self::PurchaseInProgress => {
                let mut res = error_response(status, "purchase_in_progress", self.to_string());
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
            Self::CatalogUnavailable(ref e) => {
                tracing::error!(error = %e, "the catalog could not price a charge");
                error_response(
                    status,
                    "dependency_unavailable",
                    "the courses service is unavailable; nothing was charged, retry with the same Idempotency-Key",
                )
            }
            Self::BadRequest(e) => e.into_response(),
            Self::MissingIdempotencyKey => {
                error_response(status, "missing_idempotency_key", self.to_string())
            }
            Self::InvalidIdempotencyKey(_) => {
                error_response(status, "invalid_idempotency_key", self.to_string())
            }
            Self::IdempotencyKeyReused => {
                error_response(status, "idempotency_key_reused", self.to_string())
            }
            Self::RequestInProgress => {
                let mut res = error_response(status, "request_in_progress", self.to_string());
                // RFC 9110 section 10.2.3: when to try again, in seconds.
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
            Self::PaymentDeclined(reason) => (
                status,
                axum::Json(DeclineBody {
                    error: DeclineDetail {
                        code: PAYMENT_DECLINED.to_owned(),
                        message: self.to_string(),
                        reason,
                    },
                }),
            )
                .into_response(),
            Self::ProviderUnavailable(ref e) => {
                tracing::warn!(error = %e, "payment provider failed");
                error_response(
                    status,
                    "provider_unavailable",
                    "the payment provider is unavailable; nothing was charged, retry with the same Idempotency-Key",
                )
            }
            Self::Database(ref e) if status == StatusCode::CONFLICT => {
                tracing::warn!(error = %e, "unique violation");
                error_response(status, "conflict", "conflicting write; retry")
            }
            Self::Database(ref e) => {
                tracing::error!(error = %e, "database error");
                error_response(status, "internal", "internal error")
            }
            Self::ChargeTask(ref e) => {
                tracing::error!(error = %e, "charge task failed");
                error_response(status, "internal", "internal error")
            }
        }
    }
}
