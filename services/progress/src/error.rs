//! The service's one error type and its HTTP mapping.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mesh::{BadRequest, CallError, error_response};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401 without a valid token, 403 for another user's data.
    #[error(transparent)]
    Auth(#[from] mesh::auth::AuthError),
    /// 404 `not_enrolled`: the user has no enrollment in the course.
    #[error("the user is not enrolled in this course")]
    NotEnrolled,
    /// 403 `enrollment_not_active`: the enrollment is pending (its payment
    /// not confirmed yet) or refunded; neither opens the course.
    #[error("the enrollment is {0}: only an active enrollment opens the course")]
    EnrollmentNotActive(crate::model::EnrollmentStatus),
    /// 402 `payment_required`: enrolling in a paid course needs the
    /// payment that bought it.
    #[error("the course costs money: enroll with the payment that bought it")]
    PaymentRequired,
    /// 422 `payment_not_needed`: a payment given for a free course.
    #[error("the course is free: enroll without a payment")]
    PaymentNotNeeded,
    /// 404 `profile_not_found`: no learner profile (yet): the user's
    /// `user.registered` event has not been processed, or no such user.
    #[error("no learner profile for this user (yet: profiles come from user.registered events)")]
    ProfileNotFound,
    /// 404 `course_not_found`: the courses service does not know the course.
    #[error("course not found")]
    CourseNotFound,
    /// 422 `lesson_not_in_course`: the courses service says the lesson is
    /// not part of the course (or does not exist at all).
    #[error("the lesson is not part of this course")]
    LessonNotInCourse,
    /// 503 `dependency_unavailable`: a service this one needs did not
    /// answer, or answered with something other than its documented
    /// answers. The message names the service; the details are logged, not
    /// sent.
    #[error("{destination} is unavailable: {source}")]
    Dependency {
        destination: &'static str,
        #[source]
        source: CallError,
    },
    /// 4xx: the request itself is wrong (status chosen by the extractor or
    /// by [`crate::domain`]).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// 500: the database failed; details are logged, not sent. Constraint
    /// violations cannot reach here: every insert that could collide says
    /// `ON CONFLICT DO NOTHING` and reads back the row that won.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(mesh::auth::AuthError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
            Self::Auth(mesh::auth::AuthError::Forbidden) => StatusCode::FORBIDDEN,
            Self::NotEnrolled | Self::CourseNotFound | Self::ProfileNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::LessonNotInCourse | Self::PaymentNotNeeded => StatusCode::UNPROCESSABLE_ENTITY,
            Self::EnrollmentNotActive(_) => StatusCode::FORBIDDEN,
            Self::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
            Self::Dependency { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest(e) => e.status,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Sorts a failed call to courses: its `404 not_found` is `not_found`
    /// (a missing course or lesson, the caller's problem); anything else,
    /// including a 404 for a route courses does not have, means courses
    /// cannot answer and is a 503 here.
    pub fn from_courses(error: CallError, not_found: AppError) -> Self {
        if error.status() == Some(StatusCode::NOT_FOUND) && error.code() == Some("not_found") {
            not_found
        } else {
            Self::Dependency {
                destination: courses::CoursesClient::DESTINATION,
                source: error,
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match self {
            Self::Auth(e) => e.into_response(),
            Self::NotEnrolled => error_response(status, "not_enrolled", self.to_string()),
            Self::EnrollmentNotActive(_) => {
                error_response(status, "enrollment_not_active", self.to_string())
            }
            Self::PaymentRequired => error_response(status, "payment_required", self.to_string()),
            Self::PaymentNotNeeded => {
                error_response(status, "payment_not_needed", self.to_string())
            }
            Self::ProfileNotFound => error_response(status, "profile_not_found", self.to_string()),
            Self::CourseNotFound => error_response(status, "course_not_found", self.to_string()),
            Self::LessonNotInCourse => {
                error_response(status, "lesson_not_in_course", self.to_string())
            }
            Self::BadRequest(e) => e.into_response(),
            Self::Dependency {
                destination,
                ref source,
            } => {
                tracing::error!(destination, error = %source, "dependency call failed");
                error_response(
                    status,
                    "dependency_unavailable",
                    format!("the {destination} service is unavailable; try again later"),
                )
            }
            Self::Database(ref e) => {
                tracing::error!(error = %e, "database error");
                error_response(status, "internal", "internal error")
            }
        }
    }
}
