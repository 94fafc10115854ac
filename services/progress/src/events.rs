//! The events progress publishes (docs/events.md): their names, versions
//! and schemas. The events it consumes, and what it does with them, are in
//! `consumers.rs`.
//!
//! `course.completed` is published, through progress's outbox, when a
//! learner completes the last lesson of a course.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `course.completed`: a learner completed every lesson of a course.
pub const COURSE_COMPLETED: &str = "course.completed";
/// The `schema_version` of [`CourseCompleted`].
pub const COURSE_COMPLETED_VERSION: u32 = 1;

/// `data` of a `course.completed` event, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseCompleted {
    pub user_id: String,
    pub course_id: String,
    pub enrollment_id: String,
    pub lesson_count: i64,
    pub completed_at: DateTime<Utc>,
}
