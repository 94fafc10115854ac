//! A learner's own data: enrollments, progress, lesson completions,
//! payments. Every route checks the caller is the user in the path, and
//! forwards the caller's token: the services check again (`mesh::auth`).

use axum::extract::State;
use mesh::{
    ErrorBody,
    auth::{AuthError, Caller},
    extract::{Json, Path},
};
use payments::model::{Payment, PaymentList};
use progress::model::{CourseProgress, EnrollmentList};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::Result, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrollments))
        .routes(routes!(progress))
        .routes(routes!(complete))
        .routes(routes!(payments))
        .routes(routes!(payment))
        .routes(routes!(refund))
}

/// The caller's enrollments, with their progress.
#[utoipa::path(
    get,
    path = "/api/users/{user_id}/enrollments",
    tag = "learning",
    operation_id = "listEnrollments",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The caller's own user id.")),
    responses(
        (status = 200, description = "Every enrollment of the caller.", body = EnrollmentList),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
    )
)]
async fn enrollments(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<EnrollmentList>> {
    caller.must_be(&user_id)?;
    Ok(Json(state.progress.enrollments(&caller, &user_id).await?))
}

/// The caller's progress in one course.
#[utoipa::path(
    get,
    path = "/api/users/{user_id}/courses/{course_id}/progress",
    tag = "learning",
    operation_id = "getProgress",
    security(("bearer" = [])),
    params(
        ("user_id" = String, Path, description = "The caller's own user id."),
        ("course_id" = String, Path, description = "The course's id."),
    ),
    responses(
        (status = 200, description = "Lessons completed and the percentage.", body = CourseProgress),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
        (status = 404, description = "`not_enrolled`.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible course id.", body = ErrorBody),
    )
)]
async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, course_id)): Path<(String, String)>,
) -> Result<Json<CourseProgress>> {
    caller.must_be(&user_id)?;
    Ok(Json(
        state
            .progress
            .progress(&caller, &user_id, &course_id)
            .await?,
    ))
}

/// Marks a lesson completed (again is fine: nothing changes).
#[utoipa::path(
    post,
    path = "/api/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
    tag = "learning",
    operation_id = "completeLesson",
    security(("bearer" = [])),
    params(
        ("user_id" = String, Path, description = "The caller's own user id."),
        ("course_id" = String, Path, description = "The course's id."),
        ("lesson_id" = String, Path, description = "The lesson's id (`c0001-l01`)."),
    ),
    responses(
        (status = 200, description = "The course's progress, with this lesson completed.", body = CourseProgress),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
        (status = 404, description = "`not_enrolled`.", body = ErrorBody),
        (status = 422, description = "`lesson_not_in_course`.", body = ErrorBody),
    )
)]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, course_id, lesson_id)): Path<(String, String, String)>,
) -> Result<Json<CourseProgress>> {
    caller.must_be(&user_id)?;
    Ok(Json(
        state
            .progress
            .complete_lesson(&caller, &user_id, &course_id, &lesson_id)
            .await?,
    ))
}

/// The caller's payments, newest first (at most 100).
#[utoipa::path(
    get,
    path = "/api/users/{user_id}/payments",
    tag = "learning",
    operation_id = "listPayments",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The caller's own user id.")),
    responses(
        (status = 200, description = "The caller's payments.", body = PaymentList),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
    )
)]
async fn payments(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<PaymentList>> {
    caller.must_be(&user_id)?;
    let items = state.payments.list_for_user(&caller, &user_id).await?;
    Ok(Json(PaymentList { items }))
}

/// One of the caller's payments.
#[utoipa::path(
    get,
    path = "/api/payments/{payment_id}",
    tag = "learning",
    operation_id = "getPayment",
    security(("bearer" = [])),
    params(("payment_id" = String, Path, description = "The payment's id.")),
    responses(
        (status = 200, description = "The payment.", body = Payment),
        (status = 403, description = "`forbidden`: another user's payment.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible payment id (over 64 characters, or control characters).", body = ErrorBody),
    )
)]
async fn payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    Ok(Json(owned_payment(&state, &caller, &payment_id).await?))
}

/// Refunds one of the caller's payments (200 again if it already was:
/// nothing happens twice). progress then marks the enrollment the payment
/// bought `refunded` (docs/events.md).
#[utoipa::path(
    post,
    path = "/api/payments/{payment_id}/refund",
    tag = "learning",
    operation_id = "refundPayment",
    security(("bearer" = [])),
    params(("payment_id" = String, Path, description = "The payment's id.")),
    responses(
        (status = 200, description = "The payment, `refunded`.", body = Payment),
        (status = 403, description = "`forbidden`: another user's payment.", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
        (status = 409, description = "`not_refundable`: it was declined.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible payment id (over 64 characters, or control characters).", body = ErrorBody),
    )
)]
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(payment_id): Path<String>,
) -> Result<Json<Payment>> {
    owned_payment(&state, &caller, &payment_id).await?;
    Ok(Json(state.payments.refund(&caller, &payment_id).await?))
}

/// The payment, if it is the caller's; 403 if it is someone else's.
/// payments checks too; asking first keeps a foreign id from reaching the
/// refund at all.
async fn owned_payment(state: &AppState, caller: &Caller, payment_id: &str) -> Result<Payment> {
    let payment = state.payments.get(caller, payment_id).await?;
    if payment.user_id != caller.user_id {
        return Err(AuthError::Forbidden.into());
    }
    Ok(payment)
}
