//! Checkout: the deepest synchronous path through the system.
//! gateway → courses (price) → payments (charge, which calls the payment
//! provider) → progress (enrollment, which asks courses again).

use axum::{Router, extract::State, routing::post};
use courses::model::CourseSummary;
use http::{HeaderMap, StatusCode};
use mesh::{BadRequest, extract::Json};
use payments::model::{ChargeRequest, Payment};
use progress::model::{EnrollRequest, Enrollment};
use serde::{Deserialize, Serialize};

use crate::{AppState, auth::Caller, error::Result};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/checkout", post(checkout))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub course_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Checkout {
    pub course: CourseSummary,
    /// `null` for a free course: nothing is charged.
    pub payment: Option<Payment>,
    pub enrollment: Enrollment,
}

/// Buys a course and enrolls the caller.
///
/// `Idempotency-Key` is required: the charge is made at most once per key,
/// and enrollment is idempotent per user and course, so a client that
/// retries a checkout with the same key gets the same result, never a
/// second charge.
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(req): Json<CheckoutRequest>,
) -> Result<(StatusCode, Json<Checkout>)> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            BadRequest::new(
                StatusCode::BAD_REQUEST,
                "missing_idempotency_key",
                "checkout needs an Idempotency-Key header (any unique string, e.g. a UUID, reused on retry)",
            )
        })?
        .to_str()
        .map_err(|_| {
            BadRequest::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be visible ASCII",
            )
        })?
        .to_owned();
    let course = state.courses.get(&req.course_id).await?.summary;
    let payment = if course.price_cents > 0 {
        let charge = ChargeRequest {
            user_id: caller.user_id.clone(),
            course_id: course.id.clone(),
            amount_cents: course.price_cents,
            currency: course.currency.clone(),
        };
        Some(state.payments.charge(&key, &charge).await?.payment)
    } else {
        None
    };
    let enrollment = state
        .progress
        .enroll(&EnrollRequest {
            user_id: caller.user_id,
            course_id: course.id.clone(),
            payment_id: payment.as_ref().map(|p| p.id.clone()),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Checkout {
            course,
            payment,
            enrollment,
        }),
    ))
}
