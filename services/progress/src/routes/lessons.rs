//! `/users/{user_id}/courses/{course_id}/...`: lesson completions and the
//! progress they add up to.

use axum::extract::State;
use mesh::{
    ErrorBody,
    auth::Caller,
    extract::{Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db::{self, Completion},
    domain::{Id, percent_complete},
    error::{AppError, Result},
    model::{CourseProgress, Enrollment, EnrollmentStatus},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(complete))
        .routes(routes!(progress))
}

/// Records a completion (idempotently) and answers with the new progress.
#[utoipa::path(
    post,
    path = "/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
    tag = "progress",
    operation_id = "completeLesson",
    summary = "Complete a lesson",
    security(("bearer" = [])),
    params(
        ("user_id" = String, Path, min_length = 1, max_length = 64, description = "The caller's own id; no control characters."),
        ("course_id" = String, Path, min_length = 1, max_length = 64, description = "The course's id; no control characters."),
        ("lesson_id" = String, Path, min_length = 1, max_length = 64, description = "The lesson's id; no control characters."),
    ),
    responses(
        (status = 200, description = "The course's progress, this lesson included.", body = CourseProgress),
        (status = 403, description = "`forbidden`: another user's; `enrollment_not_active`: the enrollment is pending or refunded.", body = ErrorBody),
        (status = 404, description = "`not_enrolled`.", body = ErrorBody),
        (status = 422, description = "`lesson_not_in_course`, or `invalid_input` for an impossible id.", body = ErrorBody),
    )
)]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, course_id, lesson_id)): Path<(String, String, String)>,
) -> Result<Json<CourseProgress>> {
    let user_id = Id::parse("user_id", user_id)?;
    caller.must_be(user_id.as_str())?;
    let course_id = Id::parse("course_id", course_id)?;
    let lesson_id = Id::parse("lesson_id", lesson_id)?;

    // Enrollment first: it is local and cheap, and a user who is not
    // enrolled should not cost a call to courses.
    let enrollment = active_enrollment(&state, &user_id, &course_id).await?;
    let lesson = state
        .courses
        .lesson(course_id.as_str(), lesson_id.as_str())
        .await
        .map_err(|e| AppError::from_courses(e, AppError::LessonNotInCourse))?;
    // Courses promises a 404 for a lesson of another course; holding it to
    // that here costs nothing and keeps foreign lessons out of the table.
    if lesson.course_id != course_id.as_str() {
        return Err(AppError::LessonNotInCourse);
    }
    db::record_completion(&state.db, &state.outbox, &enrollment, &lesson_id, db::now()).await?;
    Ok(Json(course_progress(&state, enrollment).await?))
}

/// The caller's progress through one course.
#[utoipa::path(
    get,
    path = "/users/{user_id}/courses/{course_id}/progress",
    tag = "progress",
    operation_id = "getProgress",
    summary = "Progress in a course",
    security(("bearer" = [])),
    params(
        ("user_id" = String, Path, min_length = 1, max_length = 64, description = "The caller's own id; no control characters."),
        ("course_id" = String, Path, min_length = 1, max_length = 64, description = "The course's id; no control characters."),
    ),
    responses(
        (status = 200, description = "Lessons completed and the percentage.", body = CourseProgress),
        (status = 403, description = "`forbidden`: another user's; `enrollment_not_active`: the enrollment is pending or refunded.", body = ErrorBody),
        (status = 404, description = "`not_enrolled`.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: an impossible id.", body = ErrorBody),
    )
)]
async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, course_id)): Path<(String, String)>,
) -> Result<Json<CourseProgress>> {
    let user_id = Id::parse("user_id", user_id)?;
    caller.must_be(user_id.as_str())?;
    let course_id = Id::parse("course_id", course_id)?;
    let enrollment = active_enrollment(&state, &user_id, &course_id).await?;
    Ok(Json(course_progress(&state, enrollment).await?))
}

/// The user's enrollment in the course if it opens the course: a pending
/// one (its payment not confirmed) and a refunded one do not.
async fn active_enrollment(state: &AppState, user_id: &Id, course_id: &Id) -> Result<Enrollment> {
    let enrollment = db::enrollment_of(&state.db, user_id, course_id)
        .await?
        .ok_or(AppError::NotEnrolled)?;
    if enrollment.status != EnrollmentStatus::Active {
        return Err(AppError::EnrollmentNotActive(enrollment.status));
    }
    Ok(enrollment)
}

async fn course_progress(state: &AppState, enrollment: Enrollment) -> Result<CourseProgress> {
    let completions = db::completions_of(&state.db, &enrollment.id).await?;
    let last_activity_at = completions
        .iter()
        .map(|c| c.completed_at)
        .max()
        .unwrap_or(enrollment.enrolled_at);
    let completed_lessons = completions.len() as i64;
    Ok(CourseProgress {
        percent_complete: percent_complete(completed_lessons, enrollment.lesson_count),
        completed_lessons,
        lesson_count: enrollment.lesson_count,
        completed_lesson_ids: completions
            .into_iter()
            .map(|Completion { lesson_id, .. }| lesson_id)
            .collect(),
        last_activity_at,
        user_id: enrollment.user_id,
        course_id: enrollment.course_id,
        enrollment_id: enrollment.id,
    })
}
