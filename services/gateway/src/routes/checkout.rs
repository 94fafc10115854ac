//! Checkout: the deepest synchronous path through the system.
//! gateway → courses (price) → payments (charge, which calls the payment
//! provider) → progress (enrollment, which asks courses again).

use axum::extract::State;
use courses::model::CourseSummary;
use http::{HeaderMap, StatusCode};
use mesh::{BadRequest, ErrorBody, auth::Caller, extract::Json};
use payments::model::{ChargeRequest, Payment};
use progress::model::{EnrollRequest, Enrollment};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, error::Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(checkout))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// The course to buy (`c0001`).
    #[schema(min_length = 1, max_length = 64)]
    pub course_id: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkout {
    pub course: CourseSummary,
    /// `null` for a free course: nothing is charged.
    pub payment: Option<Payment>,
    pub enrollment: Enrollment,
}

/// Buys a course and enrolls the caller: 201 with the new payment and
/// enrollment, or 200 with the existing ones when the caller already owns
/// the course (nothing is charged).
///
/// `Idempotency-Key` is required: the charge is made at most once per key,
/// and enrollment is idempotent per user and course, so a client that
/// retries a checkout gets the same result, never a second charge.
///
/// A race is left open: two checkouts of one course with *different* keys,
/// in flight at the same moment, can both charge. Closing it needs a
/// reservation in progress before the charge (a saga), not a read.
#[utoipa::path(
    post,
    path = "/api/checkout",
    tag = "checkout",
    operation_id = "checkout",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "Any unique string (a UUID), reused when retrying the same checkout: it is charged at most once. Scoped to the caller."),
    ),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "Bought: the payment (`null` for a free course) and the enrollment, `pending` until the payment's event is processed.", body = Checkout),
        (status = 200, description = "The caller already owns the course: the existing payment and enrollment; nothing is charged.", body = Checkout),
        (status = 400, description = "`missing_idempotency_key` or `invalid_idempotency_key`, or a malformed body.", body = ErrorBody),
        (status = 402, description = "`payment_declined`, with the decline's `reason`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such course.", body = ErrorBody),
        (status = 409, description = "`request_in_progress`: a checkout with this key is still running; `Retry-After`.", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused` (the key was used for another course), `invalid_input` or `invalid_body`.", body = ErrorBody),
    )
)]
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(req): Json<CheckoutRequest>,
) -> Result<(StatusCode, Json<Checkout>)> {
    let key = payments_key(&caller.user_id, &headers)?;
    // The price and whether the caller already owns the course, at once.
    let (course, owned) = tokio::join!(
        state.courses.get(&req.course_id),
        state.progress.enrollments(&caller, &caller.user_id)
    );
    let course = course?.summary;
    let owned = owned?
        .items
        .into_iter()
        .find(|e| e.enrollment.course_id == course.id);
    if let Some(owned) = owned {
        let payment = match &owned.enrollment.payment_id {
            Some(id) => Some(state.payments.get(&caller, id).await?),
            None => None,
        };
        return Ok((
            StatusCode::OK,
            Json(Checkout {
                course,
                payment,
                enrollment: owned.enrollment,
            }),
        ));
    }
    let payment = if course.price_cents > 0 {
        let charge = ChargeRequest {
            user_id: caller.user_id.clone(),
            course_id: course.id.clone(),
            amount_cents: course.price_cents,
            currency: course.currency.clone(),
        };
        Some(state.payments.charge(&caller, &key, &charge).await?.payment)
    } else {
        None
    };
    let enrollment = state
        .progress
        .enroll(
            &caller,
            &EnrollRequest {
                user_id: caller.user_id.clone(),
                course_id: course.id.clone(),
                payment_id: payment.as_ref().map(|p| p.id.clone()),
            },
        )
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

/// The key payments sees: the client's `Idempotency-Key` scoped to the
/// caller, `hex(sha256(user id ":" key))`.
///
/// Keys are the client's to choose, so two users will pick the same one
/// (`checkout-1`); unscoped, the second would get the first's payment or a
/// 422, and a user who guessed another's key could block their checkout.
/// Hashing also keeps the key a fixed, valid length for payments.
fn payments_key(user_id: &str, headers: &HeaderMap) -> Result<String, BadRequest> {
    let key = headers.get("idempotency-key").ok_or_else(|| {
        BadRequest::new(
            StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "checkout needs an Idempotency-Key header (any unique string, e.g. a UUID, reused on retry)",
        )
    })?;
    let valid =
        (1..=255).contains(&key.len()) && key.as_bytes().iter().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(BadRequest::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    let digest = Sha256::new()
        .chain_update(user_id.as_bytes())
        .chain_update(b":")
        .chain_update(key.as_bytes())
        .finalize();
    Ok(hex::encode(digest))
}
