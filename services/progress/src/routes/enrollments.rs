//! `/enrollments` and `/users/{user_id}/enrollments`: who takes which course.

use axum::extract::State;
use http::StatusCode;
use mesh::{
    ErrorBody,
    auth::Caller,
    extract::{Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db,
    domain::{Id, percent_complete},
    error::{AppError, Result},
    model::{EnrollRequest, Enrollment, EnrollmentList, EnrollmentProgress, EnrollmentStatus},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll))
        .routes(routes!(list))
}

/// 201 with a new enrollment, or 200 with the one the user already has.
/// Only the caller enrolls themselves, in a free course without a
/// payment, in a paid one with the payment that bought it. A bought
/// enrollment is `pending`, and opens nothing, until its payment's
/// `payment.captured` event is processed (docs/events.md).
#[utoipa::path(
    post,
    path = "/enrollments",
    tag = "progress",
    operation_id = "enroll",
    summary = "Enroll the caller in a course",
    security(("bearer" = [])),
    request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled: `pending` with a `payment_id` until its `payment.captured` event is processed, else `active`.", body = Enrollment),
        (status = 200, description = "Already enrolled: the existing enrollment (a refunded one bought again is `pending` on the new payment).", body = Enrollment),
        (status = 402, description = "`payment_required`: a paid course without a `payment_id`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: `user_id` is not the caller.", body = ErrorBody),
        (status = 404, description = "`course_not_found`.", body = ErrorBody),
        (status = 422, description = "`invalid_input` (an id breaks its rule), `payment_not_needed` (a payment for a free course) or `invalid_body`.", body = ErrorBody),
    )
)]
async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<EnrollRequest>,
) -> Result<(StatusCode, Json<Enrollment>)> {
    let user_id = Id::parse("user_id", body.user_id)?;
    caller.must_be(user_id.as_str())?;
    let course_id = Id::parse("course_id", body.course_id)?;
    let payment_id = body
        .payment_id
        .map(|p| Id::parse("payment_id", p))
        .transpose()?;

    // A repeat needs nothing from courses, so it is answered even while
    // courses is down.
    if let Some(existing) = db::enrollment_of(&state.db, &user_id, &course_id).await? {
        return Ok((
            StatusCode::OK,
            Json(rebought(&state, existing, payment_id).await?),
        ));
    }

    let course = state
        .courses
        .get(course_id.as_str())
        .await
        .map_err(|e| AppError::from_courses(e, AppError::CourseNotFound))?;
    match (course.summary.price_cents > 0, &payment_id) {
        (true, None) => return Err(AppError::PaymentRequired),
        (false, Some(_)) => return Err(AppError::PaymentNotNeeded),
        _ => {}
    }
    let enrollment = Enrollment {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_string(),
        course_id: course_id.to_string(),
        // A bought course waits for its payment's `payment.captured` event
        // (events.rs), which may also have landed first: then the row
        // exists, and this request is answered as a repeat.
        status: if payment_id.is_some() {
            EnrollmentStatus::Pending
        } else {
            EnrollmentStatus::Active
        },
        payment_id: payment_id.map(String::from),
        lesson_count: course.summary.lesson_count,
        enrolled_at: db::now(),
    };
    if db::insert_enrollment(&state.db, &enrollment).await? {
        return Ok((StatusCode::CREATED, Json(enrollment)));
    }
    // A concurrent duplicate (or the payment's event) inserted first: its
    // row is the enrollment, and this request is the repeat.
    let existing = db::enrollment_of(&state.db, &user_id, &course_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok((StatusCode::OK, Json(existing)))
}

/// An existing enrollment asked for again. A refunded one with a new
/// payment was bought again: it is `pending` on that payment until the
/// payment's event decides (which may already have made it active, or may
/// yet find the payment refunded too). Anything else is answered as is.
async fn rebought(
    state: &AppState,
    existing: Enrollment,
    payment_id: Option<Id>,
) -> Result<Enrollment> {
    match payment_id {
        Some(payment_id)
            if existing.status == EnrollmentStatus::Refunded
                && existing.payment_id.as_deref() != Some(payment_id.as_str()) =>
        {
            db::pend_refunded(&state.db, &existing.id, payment_id.as_str()).await?;
            Ok(db::enrollment_by_id(&state.db, &existing.id)
                .await?
                .ok_or(sqlx::Error::RowNotFound)?)
        }
        _ => Ok(existing),
    }
}

/// The caller's enrollments, oldest first; an unknown user simply has none.
#[utoipa::path(
    get,
    path = "/users/{user_id}/enrollments",
    tag = "progress",
    operation_id = "listEnrollments",
    summary = "A user's enrollments",
    security(("bearer" = [])),
    params(("user_id" = String, Path, min_length = 1, max_length = 64, description = "The caller's own id; no control characters.")),
    responses(
        (status = 200, description = "With completed lessons and percentage.", body = EnrollmentList),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a possible user id.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<EnrollmentList>> {
    let user_id = Id::parse("user_id", user_id)?;
    caller.must_be(user_id.as_str())?;
    let items = db::enrollments_of_user(&state.db, &user_id)
        .await?
        .into_iter()
        .map(|(enrollment, completed_lessons)| EnrollmentProgress {
            percent_complete: percent_complete(completed_lessons, enrollment.lesson_count),
            completed_lessons,
            enrollment,
        })
        .collect();
    Ok(Json(EnrollmentList { items }))
}
