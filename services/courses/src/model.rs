//! The service's JSON contract, shared by its routes and its typed client.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A course as listed in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CourseSummary {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub instructor: String,
    pub level: String,
    pub tags: Vec<String>,
    pub price_cents: i64,
    pub currency: String,
    pub lesson_count: i64,
    /// Relative popularity (1.0 = most popular); clients may weight by it.
    pub popularity: f64,
}

/// A course with its lessons in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Course {
    #[serde(flatten)]
    pub summary: CourseSummary,
    pub lessons: Vec<Lesson>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Lesson {
    pub id: String,
    pub course_id: String,
    /// 1-based position within the course.
    pub position: i64,
    pub title: String,
    pub duration_seconds: i64,
}

/// One page of a listing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    /// Matching items over all pages.
    pub total: i64,
}
