//! `/courses`: the catalog.

use axum::{Router, extract::State, routing::get};
use mesh::{
    BadRequest,
    extract::{Json, Path, Query},
};
use serde::Deserialize;

use crate::{
    AppState, db,
    error::{AppError, Result},
    model::{Course, CourseSummary, Lesson, Page},
};

/// Largest page a client may ask for: bounds the work one request causes.
pub const MAX_PER_PAGE: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/courses", get(list))
        .route("/courses/{course_id}", get(get_one))
        .route("/courses/{course_id}/lessons/{lesson_id}", get(get_lesson))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default = "first_page")]
    page: u32,
    #[serde(default = "default_per_page")]
    per_page: u32,
    tag: Option<String>,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    20
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<CourseSummary>>> {
    if params.page == 0 {
        return Err(BadRequest::invalid("page starts at 1").into());
    }
    if params.per_page == 0 || params.per_page > MAX_PER_PAGE {
        return Err(
            BadRequest::invalid(format!("per_page must be between 1 and {MAX_PER_PAGE}")).into(),
        );
    }
    if params.tag.as_ref().is_some_and(|t| t.len() > 64) {
        return Err(BadRequest::invalid("tag is at most 64 characters").into());
    }
    let limit = i64::from(params.per_page);
    let offset = i64::from(params.page - 1) * limit;
    let (items, total) = db::list_courses(&state.db, params.tag.as_deref(), limit, offset).await?;
    Ok(Json(Page {
        items,
        page: params.page,
        per_page: params.per_page,
        total,
    }))
}

async fn get_one(
    State(state): State<AppState>,
    Path(course_id): Path<String>,
) -> Result<Json<Course>> {
    db::get_course(&state.db, &course_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("course"))
}

async fn get_lesson(
    State(state): State<AppState>,
    Path((course_id, lesson_id)): Path<(String, String)>,
) -> Result<Json<Lesson>> {
    db::get_lesson(&state.db, &course_id, &lesson_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("lesson in this course"))
}
