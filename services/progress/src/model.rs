//! The service's JSON contract, shared by its routes and its typed client.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /enrollments`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// Who enrolls: must be the caller. No control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub user_id: String,
    /// No control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub course_id: String,
    /// The payment that bought the course; absent (or null) for free ones.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub payment_id: Option<String>,
}

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Bought, and the payment's `payment.captured` event has not been
    /// processed yet (docs/events.md): it becomes active when it is.
    Pending,
    /// The user may take the course's lessons.
    Active,
    /// The payment that bought it was refunded (`payment.refunded`).
    Refunded,
}

impl EnrollmentStatus {
    /// The spelling in JSON and in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Refunded => "refunded",
        }
    }
}

impl fmt::Display for EnrollmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `status` value this version does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown enrollment status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for EnrollmentStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "refunded" => Ok(Self::Refunded),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// A user's enrollment in a course.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Enrollment {
    pub id: String,
    pub user_id: String,
    pub course_id: String,
    pub payment_id: Option<String>,
    pub status: EnrollmentStatus,
    /// The course's lesson count when the user enrolled; progress is
    /// measured against it.
    pub lesson_count: i64,
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: DateTime<Utc>,
}

/// An enrollment with how far the user has got, as listed per user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EnrollmentProgress {
    #[serde(flatten)]
    pub enrollment: Enrollment,
    pub completed_lessons: i64,
    /// 0–100, one decimal.
    #[schema(minimum = 0, maximum = 100)]
    pub percent_complete: f64,
}

/// `GET /users/{user_id}/enrollments`: oldest enrollment first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EnrollmentList {
    pub items: Vec<EnrollmentProgress>,
}

/// A learner as progress knows them, from users' `user.registered` event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LearnerProfile {
    pub user_id: String,
    pub display_name: String,
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: DateTime<Utc>,
}

/// One user's progress through one course.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CourseProgress {
    pub user_id: String,
    pub course_id: String,
    pub enrollment_id: String,
    pub completed_lessons: i64,
    pub lesson_count: i64,
    /// 0–100, one decimal.
    #[schema(minimum = 0, maximum = 100)]
    pub percent_complete: f64,
    /// Sorted by id, which for catalog ids is course order.
    pub completed_lesson_ids: Vec<String>,
    /// The latest completion, or the enrollment when nothing is completed yet.
    #[schema(value_type = String, format = DateTime)]
    pub last_activity_at: DateTime<Utc>,
}
