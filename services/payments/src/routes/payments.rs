//! `/payments` and `/users/{user_id}/payments`.

use axum::{
    extract::{FromRequestParts, State},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header, request::Parts};
use mesh::{
    BadRequest, ErrorBody,
    auth::Caller,
    extract::{Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    charges, db,
    domain::{IdempotencyKey, NewCharge, ParseError, PaymentId, UserId},
    error::{AppError, Result},
    model::{
        Charge, ChargeRequest, DeclineBody, DeclineReason, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED,
        Payment, PaymentList, PaymentStatus,
    },
    state::AppState,
};

/// Most payments one listing returns: bounds the work one request causes.
pub const MAX_LISTED: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get_one))
        .routes(routes!(refund))
        .routes(routes!(list_for_user))
}

/// The required `Idempotency-Key` header, parsed.
///
/// Extracted before the body, so a request without a key is told so
/// whatever its body holds.
struct RequiredIdempotencyKey(IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for RequiredIdempotencyKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let value = values.next().ok_or(AppError::MissingIdempotencyKey)?;
        if values.next().is_some() {
            return Err(AppError::InvalidIdempotencyKey(ParseError::new(
                "send one Idempotency-Key header, not several",
            )));
        }
        // Non-ASCII bytes become U+FFFD, which the key's parser rejects.
        IdempotencyKey::parse(&String::from_utf8_lossy(value.as_bytes()))
            .map(Self)
            .map_err(AppError::InvalidIdempotencyKey)
    }
}

/// 201 with the payment; 200 and `Idempotent-Replayed: true` when the key
/// was seen before; 402 when the card was declined (replays too).
///
/// Only for the caller: a charge for another user is 403 before the key
/// is looked at, so it neither charges nor reserves the key. (Invalid
/// values are 422 first: they say nothing about anyone.)
#[utoipa::path(
    post,
    path = "/payments",
    tag = "payments",
    operation_id = "charge",
    summary = "Charge for a course, once per Idempotency-Key",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "One logical charge across retries: the same key and body answer the original payment."),
    ),
    request_body = ChargeRequest,
    responses(
        (status = 201, description = "Captured.", body = Payment,
            headers(("Location" = String, description = "`/payments/{id}`."))),
        (status = 200, description = "The payment first made with this key (`Idempotent-Replayed: true`).", body = Payment),
        (status = 400, description = "`missing_idempotency_key`, `invalid_idempotency_key`, or a malformed body.", body = ErrorBody),
        (status = 402, description = "`payment_declined`, with the decline's `reason`.", body = DeclineBody),
        (status = 403, description = "`forbidden`: `user_id` is not the caller.", body = ErrorBody),
        (status = 409, description = "`request_in_progress` (`Retry-After: 1`): a request with this key is still running; `purchase_in_progress` (`Retry-After: 1`): another charge for this learner and course is; `already_purchased`: the learner bought the course already (its `payment_id` in the error); `price_mismatch`: the amount is not the catalog's price. Nothing was charged.", body = ErrorBody),
        (status = 422, description = "`invalid_input`, `invalid_body`, `idempotency_key_reused` (the key came with another body), `unsupported_currency`, `unknown_course` or `course_is_free`.", body = ErrorBody),
        (status = 502, description = "`provider_unavailable`: nothing was charged; retry with the same key.", body = ErrorBody),
        (status = 503, description = "`dependency_unavailable`: the catalog could not price the charge; nothing was charged.", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RequiredIdempotencyKey(key): RequiredIdempotencyKey,
    Json(body): Json<ChargeRequest>,
) -> Result<Response> {
    let charge = NewCharge::parse(&body).map_err(|e| BadRequest::invalid(e.to_string()))?;
    caller.must_be(charge.user_id.as_str())?;
    let currency = charge.amount.currency().as_str();
    if !state.currencies.iter().any(|c| c == currency) {
        return Err(AppError::UnsupportedCurrency(currency.to_owned()));
    }
    let Charge { payment, replayed } = charges::charge(&state, key, charge).await?;
    let mut response = match payment.status {
        // A replayed charge answers with the payment as it is now, refunded
        // since, perhaps.
        PaymentStatus::Captured | PaymentStatus::Refunded if replayed => {
            (StatusCode::OK, Json(payment)).into_response()
        }
        PaymentStatus::Captured | PaymentStatus::Refunded => {
            let location = HeaderValue::from_str(&format!("/payments/{}", payment.id)).ok();
            let mut response = (StatusCode::CREATED, Json(payment)).into_response();
            if let Some(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        // Every declined row has a reason; the fallback is the generic one.
        PaymentStatus::Declined => AppError::PaymentDeclined(
            payment
                .decline_reason
                .unwrap_or(DeclineReason::CardDeclined),
        )
        .into_response(),
    };
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// One of the caller's payments; another user's is 403.
#[utoipa::path(
    get,
    path = "/payments/{payment_id}",
    tag = "payments",
    operation_id = "getPayment",
    summary = "One payment",
    security(("bearer" = [])),
    params(("payment_id" = String, Path, min_length = 1, max_length = 64,
        description = "The payment's id (a uuid); no control characters.")),
    responses(
        (status = 200, description = "The payment.", body = Payment),
        (status = 403, description = "`forbidden`: another user's payment.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible payment id.", body = ErrorBody),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    Ok(Json(owned(&state, &caller, &payment_id).await?))
}

/// The payment if it is the caller's: 422 for an id no payment can have,
/// 404 if there is none, 403 if it is another user's.
async fn owned(state: &AppState, caller: &Caller, payment_id: &str) -> Result<Payment> {
    let payment_id =
        PaymentId::parse(payment_id).map_err(|e| BadRequest::invalid(e.to_string()))?;
    let payment = db::get_payment(&state.db, payment_id.as_str())
        .await?
        .ok_or(AppError::NotFound("payment"))?;
    caller.must_be(&payment.user_id)?;
    Ok(payment)
}

/// 200 with the payment, refunded; again 200 for one already refunded
/// (nothing happens twice); 409 `not_refundable` for a declined one.
/// Another user's payment is 403 and stays as it is.
#[utoipa::path(
    post,
    path = "/payments/{payment_id}/refund",
    tag = "payments",
    operation_id = "refundPayment",
    summary = "Refund a captured payment",
    security(("bearer" = [])),
    params(("payment_id" = String, Path, min_length = 1, max_length = 64,
        description = "The payment's id (a uuid); no control characters.")),
    responses(
        (status = 200, description = "The payment, `refunded`.", body = Payment),
        (status = 403, description = "`forbidden`: another user's payment.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`not_refundable`: only captured payments are.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible payment id.", body = ErrorBody),
    )
)]
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    // `owned` has checked the id, so the refund's queries see a valid one.
    owned(&state, &caller, &payment_id).await?;
    match db::refund(&state.db, &state.outbox, &payment_id, chrono::Utc::now()).await? {
        db::Refund::Refunded(payment) => {
            tracing::info!(payment.id = %payment.id, "payment refunded");
            Ok(Json(payment))
        }
        db::Refund::Unchanged(payment) if payment.status == PaymentStatus::Refunded => {
            Ok(Json(payment))
        }
        db::Refund::Unchanged(payment) => Err(AppError::NotRefundable(payment.status)),
        db::Refund::NotFound => Err(AppError::NotFound("payment")),
    }
}

/// The caller's latest payments, newest first.
#[utoipa::path(
    get,
    path = "/users/{user_id}/payments",
    tag = "payments",
    operation_id = "listPayments",
    summary = "A user's payments",
    security(("bearer" = [])),
    params(("user_id" = String, Path, min_length = 1, max_length = 64,
        description = "The caller's own id; no control characters.")),
    responses(
        (status = 200, description = "At most 100, newest first.", body = PaymentList),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible user id.", body = ErrorBody),
    )
)]
async fn list_for_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<PaymentList>> {
    // An impossible id is 422 whoever asks: it names no one's data.
    let user_id = UserId::parse(&user_id).map_err(|e| BadRequest::invalid(e.to_string()))?;
    caller.must_be(user_id.as_str())?;
    let items = db::list_for_user(&state.db, user_id.as_str(), MAX_LISTED).await?;
    Ok(Json(PaymentList { items }))
}
