//! Browsing the catalog, and the course page: a composite view.

use axum::{Router, extract::State, routing::get};
use courses::model::{Course, CourseSummary, Page};
use http::StatusCode;
use mesh::{
    extract::{Json, Path, Query},
    outbound::fallback::with_fallback,
};
use progress::model::CourseProgress;
use serde::{Deserialize, Serialize};

use crate::{AppState, auth::MaybeCaller, error::Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/courses", get(list))
        .route("/api/courses/{course_id}", get(get_one))
        .route("/api/courses/{course_id}/page", get(page))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    page: Option<u32>,
    per_page: Option<u32>,
    tag: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Page<CourseSummary>>> {
    let page = state
        .courses
        .list(
            p.page.unwrap_or(1),
            p.per_page.unwrap_or(20),
            p.tag.as_deref(),
        )
        .await?;
    Ok(Json(page))
}

async fn get_one(
    State(state): State<AppState>,
    Path(course_id): Path<String>,
) -> Result<Json<Course>> {
    Ok(Json(state.courses.get(&course_id).await?))
}

/// The course page: the course and, for a signed-in learner, their
/// progress in it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CoursePage {
    pub course: Course,
    /// `null` when anonymous, not enrolled, or progress is unavailable.
    pub progress: Option<CourseProgress>,
    /// Whether the caller is enrolled; `null` when unknown (anonymous, or
    /// progress unavailable).
    pub enrolled: Option<bool>,
    /// Parts left out because a service did not answer: the page still
    /// renders (graceful degradation), and says so.
    pub degraded: Vec<String>,
}

/// Fetches the course and the caller's progress concurrently. Progress has
/// a fallback: if it fails, the page is served without it, says so in
/// `degraded`, and the call is counted with the `fallback` outcome (its
/// span still shows the error). Courses has none: without the course there
/// is no page.
async fn page(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(course_id): Path<String>,
) -> Result<Json<CoursePage>> {
    let progress = async {
        match &caller {
            Some(c) => Some(with_fallback(state.progress.progress(&c.user_id, &course_id)).await),
            None => None,
        }
    };
    let (course, progress) = tokio::join!(state.courses.get(&course_id), progress);
    let course = course?;
    let mut degraded = Vec::new();
    let (progress, enrolled) = match progress {
        None => (None, None),
        Some(Ok(p)) => (Some(p), Some(true)),
        Some(Err(e)) if e.status() == Some(StatusCode::NOT_FOUND) => (None, Some(false)),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "course page served without progress");
            degraded.push(progress::NAME.to_owned());
            (None, None)
        }
    };
    Ok(Json(CoursePage {
        course,
        progress,
        enrolled,
        degraded,
    }))
}
