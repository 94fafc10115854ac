//! `/payments` and `/users/{user_id}/payments`.

use axum::{
    Router,
    extract::{FromRequestParts, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{HeaderValue, StatusCode, header, request::Parts};
use mesh::{
    BadRequest,
    extract::{Json, Path},
};

use crate::{
    AppState, charges, db,
    domain::{IdempotencyKey, NewCharge, ParseError, UserId},
    error::{AppError, Result},
    model::{
        Charge, ChargeRequest, DeclineReason, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, Payment,
        PaymentList, PaymentStatus,
    },
};

/// Most payments one listing returns: bounds the work one request causes.
pub const MAX_LISTED: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments", post(create))
        .route("/payments/{payment_id}", get(get_one))
        .route("/payments/{payment_id}/refund", post(refund))
        .route("/users/{user_id}/payments", get(list_for_user))
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
async fn create(
    State(state): State<AppState>,
    RequiredIdempotencyKey(key): RequiredIdempotencyKey,
    Json(body): Json<ChargeRequest>,
) -> Result<Response> {
    let charge = NewCharge::parse(&body).map_err(|e| BadRequest::invalid(e.to_string()))?;
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

async fn get_one(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    db::get_payment(&state.db, &payment_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("payment"))
}

/// 200 with the payment, refunded; again 200 for one already refunded
/// (nothing happens twice); 409 `not_refundable` for a declined one.
async fn refund(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
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

async fn list_for_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<PaymentList>> {
    let user_id = UserId::parse(&user_id).map_err(|e| BadRequest::invalid(e.to_string()))?;
    let items = db::list_for_user(&state.db, user_id.as_str(), MAX_LISTED).await?;
    Ok(Json(PaymentList { items }))
}
