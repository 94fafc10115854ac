//! `/courses`: the catalog.

use axum::extract::State;
use bytes::Bytes;
use mesh::{
    BadRequest, ErrorBody,
    extract::{EncodedJson, Json, Path, Query},
};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    cache::PageKey,
    db,
    error::{AppError, Result},
    model::{Course, CourseSummary, Lesson, Page},
    state::AppState,
};

/// Largest page a client may ask for: bounds the work one request causes.
pub const MAX_PER_PAGE: u32 = 100;
/// Last page number a client may ask for: bounds the `OFFSET` the
/// database skips (at most a million rows), however large the catalog.
pub const MAX_PAGE: u32 = 10_000;
/// Longest tag, in characters; every catalog tag is far shorter.
pub const MAX_TAG_CHARS: usize = 64;
/// Longest search, in characters: longer than any title, and it bounds
/// the pattern the database matches.
pub const MAX_SEARCH_CHARS: usize = 64;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(get_lesson))
}

/// The catalog query. Unknown parameters are a 400 `invalid_query`, not
/// ignored; values that parse but are out of bounds are 422
/// `invalid_input`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Page number, from 1.
    #[serde(default = "first_page")]
    #[param(minimum = 1, maximum = 10_000, default = 1)]
    page: u32,
    /// Courses per page.
    #[serde(default = "default_per_page")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    per_page: u32,
    /// Only courses with this tag (exact match); no control characters.
    #[param(max_length = 64)]
    tag: Option<String>,
    /// Only courses whose title or instructor contains this text, ignoring
    /// case; no control characters. Blank is no filter.
    #[param(max_length = 64)]
    q: Option<String>,
}

fn first_page() -> u32 {
    1
}

fn default_per_page() -> u32 {
    20
}

impl ListParams {
    /// The first bound broken, as a 422.
    fn check(&self) -> Result<(), BadRequest> {
        if !(1..=MAX_PAGE).contains(&self.page) {
            return Err(BadRequest::invalid(format!(
                "page must be between 1 and {MAX_PAGE}"
            )));
        }
        if !(1..=MAX_PER_PAGE).contains(&self.per_page) {
            return Err(BadRequest::invalid(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        if let Some(tag) = &self.tag {
            check_text("tag", tag, MAX_TAG_CHARS)?;
        }
        if let Some(q) = &self.q {
            check_text("q (the search)", q, MAX_SEARCH_CHARS)?;
        }
        Ok(())
    }
}

/// A filter's text: at most `max` characters, and no control character
/// (NUL would also fail in PostgreSQL `text`: a 422, not a 500).
fn check_text(name: &str, text: &str, max: usize) -> Result<(), BadRequest> {
    if text.chars().count() > max {
        return Err(BadRequest::invalid(format!(
            "{name} is at most {max} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(BadRequest::invalid(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(())
}

/// One page of the catalog, most popular first.
#[utoipa::path(
    get,
    path = "/courses",
    tag = "courses",
    operation_id = "listCourses",
    summary = "List courses",
    params(ListParams),
    responses(
        (status = 200, description = "One page of courses, and how many match over all pages.", body = Page<CourseSummary>),
        (status = 400, description = "`invalid_query`: a parameter that does not parse (`page=abc`, `page=-1`), is repeated, or is unknown.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: `page`, `per_page`, `tag` or `q` out of its bounds; the message names it.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<EncodedJson> {
    params.check()?;
    let key = PageKey {
        page: params.page,
        per_page: params.per_page,
        tag: params.tag,
        // Searched for lowercased, so `Rust` and `rust` are one cache entry.
        search: params
            .q
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty()),
    };
    let load = async {
        let limit = i64::from(key.per_page);
        let offset = i64::from(key.page - 1) * limit;
        let filter = db::Filter {
            tag: key.tag.as_deref(),
            search: key.search.as_deref(),
        };
        let (items, total) = db::list_courses(&state.db, filter, limit, offset).await?;
        encode(&Page {
            items,
            page: key.page,
            per_page: key.per_page,
            total,
        })
    };
    Ok(EncodedJson(state.cache.page(&key, load).await?))
}

/// A course or page as JSON, encoded once, when first read: the cache
/// keeps it so.
fn encode(value: &impl serde::Serialize) -> Result<Bytes> {
    Ok(serde_json::to_vec(value).map(Bytes::from)?)
}

/// Whether `id` could name a row: no id has control characters, and NUL
/// would fail in PostgreSQL `text` (a 500 instead of the 404 it is).
fn could_exist(id: &str) -> bool {
    !id.chars().any(char::is_control)
}

/// One course with its lessons in order.
#[utoipa::path(
    get,
    path = "/courses/{course_id}",
    tag = "courses",
    operation_id = "getCourse",
    summary = "A course and its lessons",
    params(("course_id" = String, Path, description = "The course's id (`c0001`).")),
    responses(
        (status = 200, description = "The course and its lessons.", body = Course),
        (status = 404, description = "`not_found`: no such course.", body = ErrorBody),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    Path(course_id): Path<String>,
) -> Result<EncodedJson> {
    if !could_exist(&course_id) {
        return Err(AppError::NotFound("course"));
    }
    let load = async {
        db::get_course(&state.db, &course_id)
            .await?
            .map(|course: Course| encode(&course))
            .transpose()
    };
    state
        .cache
        .course(&course_id, load)
        .await?
        .map(EncodedJson)
        .ok_or(AppError::NotFound("course"))
}

/// One lesson of a course.
#[utoipa::path(
    get,
    path = "/courses/{course_id}/lessons/{lesson_id}",
    tag = "courses",
    operation_id = "getLesson",
    summary = "A lesson of a course",
    params(
        ("course_id" = String, Path, description = "The course's id (`c0001`)."),
        ("lesson_id" = String, Path, description = "The lesson's id (`c0001-l01`)."),
    ),
    responses(
        (status = 200, description = "The lesson.", body = Lesson),
        (status = 404, description = "`not_found`: no such lesson in this course.", body = ErrorBody),
    )
)]
async fn get_lesson(
    State(state): State<AppState>,
    Path((course_id, lesson_id)): Path<(String, String)>,
) -> Result<Json<Lesson>> {
    if !could_exist(&course_id) || !could_exist(&lesson_id) {
        return Err(AppError::NotFound("lesson in this course"));
    }
    db::get_lesson(&state.db, &course_id, &lesson_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("lesson in this course"))
}
