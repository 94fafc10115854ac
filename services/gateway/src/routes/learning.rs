//! A learner's own data: enrollments, progress, lesson completions,
//! payments. Every route checks the caller is the user in the path.

use axum::{
    Router,
    extract::State,
    routing::{get, post},
};
use mesh::extract::{Json, Path};
use payments::model::{Payment, PaymentList};
use progress::model::{CourseProgress, EnrollmentList};

use crate::{
    AppState,
    auth::Caller,
    error::{AppError, Result},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/{user_id}/enrollments", get(enrollments))
        .route(
            "/api/users/{user_id}/courses/{course_id}/progress",
            get(progress),
        )
        .route(
            "/api/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
            post(complete),
        )
        .route("/api/users/{user_id}/payments", get(payments))
        .route("/api/payments/{payment_id}", get(payment))
        .route("/api/payments/{payment_id}/refund", post(refund))
}

/// The caller's own payment, refunded (200 again if it already was);
/// someone else's is 403, as for reading it. progress then marks the
/// enrollment the payment bought `refunded` (docs/events.md).
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    owned_payment(&state, &caller, &payment_id).await?;
    Ok(Json(state.payments.refund(&payment_id).await?))
}

async fn enrollments(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<EnrollmentList>> {
    caller.must_be(&user_id)?;
    Ok(Json(state.progress.enrollments(&user_id).await?))
}

async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, course_id)): Path<(String, String)>,
) -> Result<Json<CourseProgress>> {
    caller.must_be(&user_id)?;
    Ok(Json(state.progress.progress(&user_id, &course_id).await?))
}

async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, course_id, lesson_id)): Path<(String, String, String)>,
) -> Result<Json<CourseProgress>> {
    caller.must_be(&user_id)?;
    Ok(Json(
        state
            .progress
            .complete_lesson(&user_id, &course_id, &lesson_id)
            .await?,
    ))
}

async fn payments(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<PaymentList>> {
    caller.must_be(&user_id)?;
    let items = state.payments.list_for_user(&user_id).await?;
    Ok(Json(PaymentList { items }))
}

/// A payment by id; another user's payment is 403, the same answer as for
/// every other user-scoped route.
async fn payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    Ok(Json(owned_payment(&state, &caller, &payment_id).await?))
}

/// The payment, if it is the caller's; 403 if it is someone else's.
async fn owned_payment(state: &AppState, caller: &Caller, payment_id: &str) -> Result<Payment> {
    let payment = state.payments.get(payment_id).await?;
    if payment.user_id != caller.user_id {
        return Err(AppError::Forbidden);
    }
    Ok(payment)
}
