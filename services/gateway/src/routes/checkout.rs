//! Checkout: the deepest synchronous path through the system.
//! gateway → courses (price) → payments (charge, which calls the payment
//! provider) → progress (enrollment, which asks courses again).

use axum::extract::State;
use courses::model::CourseSummary;
use http::{HeaderMap, StatusCode};
use mesh::{
    BadRequest, CallError, ErrorBody,
    auth::{AuthError, Caller},
    extract::Json,
};
use payments::model::{ChargeRequest, Payment};
use progress::model::{EnrollRequest, Enrollment, EnrollmentStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::Result, state::AppState};

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
/// One purchase per learner and course, whatever the keys: payments
/// claims the (learner, course) pair before it charges, so two checkouts
/// at once (a double-click, each with its own key) charge once. The
/// second answers 409 `purchase_in_progress` while the first runs, and 200
/// with the first's payment once it is done. The price is the catalog's:
/// payments checks it. A refunded course can be bought again.
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
        (status = 200, description = "The caller already owns the course, or bought it a moment ago with another key: the existing payment and enrollment; nothing is charged.", body = Checkout),
        (status = 400, description = "`missing_idempotency_key` or `invalid_idempotency_key`, or a malformed body.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid token, or the token's account does not exist.", body = ErrorBody),
        (status = 402, description = "`payment_declined`, with the decline's `reason`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such course.", body = ErrorBody),
        (status = 409, description = "`request_in_progress`: a checkout with this key is still running; `purchase_in_progress`: another checkout of this course by the caller is; both with `Retry-After`.", body = ErrorBody),
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
    // The price, whether the caller already owns the course, and whether
    // the caller's account exists (a token outlives a deleted account,
    // and nothing is sold to nobody), at once.
    let (course, owned, learner) = tokio::join!(
        state.courses.get(&req.course_id),
        state.progress.enrollments(&caller, &caller.user_id),
        state.users.get(&caller, &caller.user_id),
    );
    match learner {
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
            return Err(AuthError::Unauthorized("the token's account does not exist").into());
        }
        other => other.map(drop)?,
    }
    let course = course?.summary;
    // Owned means active: a pending purchase may have failed, and a
    // refunded one is for buying again. Payments is the judge of a
    // purchase in flight.
    let owned = owned?.items.into_iter().find(|e| {
        e.enrollment.course_id == course.id && e.enrollment.status == EnrollmentStatus::Active
    });
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
    let (status, payment) = if course.price_cents > 0 {
        let charge = ChargeRequest {
            user_id: caller.user_id.clone(),
            course_id: course.id.clone(),
            amount_cents: course.price_cents,
            currency: course.currency.clone(),
        };
        match state.payments.charge(&caller, &key, &charge).await {
            // A retry of this checkout (its key seen before) is answered as
            // the original was, with 200: nothing new was bought.
            Ok(charged) if charged.replayed => (StatusCode::OK, Some(charged.payment)),
            Ok(charged) => (StatusCode::CREATED, Some(charged.payment)),
            // Bought a moment ago, under another key (a double-click, a
            // second tab): that purchase is the answer, and nothing more
            // is charged.
            Err(e) => match bought_already(&e) {
                Some(payment_id) => (
                    StatusCode::OK,
                    Some(state.payments.get(&caller, &payment_id).await?),
                ),
                None => return Err(e.into()),
            },
        }
    } else {
        (StatusCode::CREATED, None)
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
        status,
        Json(Checkout {
            course,
            payment,
            enrollment,
        }),
    ))
}

/// The payment that bought the course, when payments refused a charge
/// because the learner already has (`409 already_purchased`).
fn bought_already(error: &CallError) -> Option<String> {
    match error {
        CallError::Status {
            code,
            body: Some(body),
            ..
        } if code == "already_purchased" => body["error"]["payment_id"].as_str().map(str::to_owned),
        _ => None,
    }
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
