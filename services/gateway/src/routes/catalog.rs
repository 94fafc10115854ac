//! Browsing the catalog, and the course page: a composite view.

use axum::{
    extract::State,
    response::{IntoResponse as _, Response},
};
use courses::{
    CatalogQuery,
    model::{Course, CourseSummary, Page},
};
use http::StatusCode;
use mesh::{
    CallError, ErrorBody,
    auth::MaybeCaller,
    extract::{EncodedJson, Json, Path, Query},
    outbound::fallback::with_fallback,
};
use progress::model::CourseProgress;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::Result, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(page))
}

/// The catalog query; the courses service checks the bounds.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Courses per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// Only courses with this tag.
    #[param(max_length = 64)]
    tag: Option<String>,
    /// Only courses whose title or instructor contains this, ignoring case.
    #[param(max_length = 64)]
    q: Option<String>,
}

/// The catalog, most popular first: courses' page, passed on as it came.
#[utoipa::path(
    get,
    path = "/api/courses",
    tag = "catalog",
    operation_id = "listCourses",
    params(ListParams),
    responses(
        (status = 200, description = "One page of courses.", body = Page<CourseSummary>),
        (status = 422, description = "`invalid_input`: a page, tag or search out of bounds.", body = ErrorBody),
    )
)]
async fn list(State(state): State<AppState>, Query(p): Query<ListParams>) -> Result<EncodedJson> {
    let page = state
        .courses
        .list_encoded(&CatalogQuery {
            page: p.page.unwrap_or(1),
            per_page: p.per_page.unwrap_or(20),
            tag: p.tag.as_deref(),
            search: p.q.as_deref(),
        })
        .await?;
    Ok(EncodedJson(page))
}

/// One course with its lessons: courses' answer, passed on as it came.
#[utoipa::path(
    get,
    path = "/api/courses/{course_id}",
    tag = "catalog",
    operation_id = "getCourse",
    params(("course_id" = String, Path, description = "The course's id (`c0001`).")),
    responses(
        (status = 200, description = "The course and its lessons.", body = Course),
        (status = 404, description = "`not_found`.", body = ErrorBody),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    Path(course_id): Path<String>,
) -> Result<EncodedJson> {
    Ok(EncodedJson(state.courses.get_encoded(&course_id).await?))
}

/// The course page: the course and, for a signed-in learner, their
/// progress in it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CoursePage {
    pub course: Course,
    /// `null` when anonymous, not enrolled, or progress is unavailable.
    pub progress: Option<CourseProgress>,
    /// Whether the caller's enrollment opens the course (an active one:
    /// not a pending or refunded one); `null` when unknown (anonymous, or
    /// progress unavailable).
    pub enrolled: Option<bool>,
    /// Parts left out because a service did not answer: the page still
    /// renders (graceful degradation), and says so.
    pub degraded: Vec<String>,
}

/// [`CoursePage`] as the gateway writes it: the course is courses' JSON,
/// checked to be one JSON value and passed on, not decoded and encoded
/// again.
#[derive(Serialize)]
struct EncodedCoursePage<'a> {
    course: &'a RawValue,
    progress: Option<CourseProgress>,
    enrolled: Option<bool>,
    degraded: Vec<String>,
}

/// Fetches the course and the caller's progress concurrently. Progress has
/// a fallback: if it fails, the page is served without it, says so in
/// `degraded`, and the call is counted with the `fallback` outcome (its
/// span still shows the error). Courses has none: without the course there
/// is no page.
#[utoipa::path(
    get,
    path = "/api/courses/{course_id}/page",
    tag = "catalog",
    operation_id = "getCoursePage",
    params(("course_id" = String, Path, description = "The course's id (`c0001`).")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The course, and the caller's progress in it when signed in.", body = CoursePage),
        (status = 401, description = "`unauthorized`: a token was sent and does not verify (send none to browse anonymously).", body = ErrorBody),
        (status = 404, description = "`not_found`.", body = ErrorBody),
    )
)]
async fn page(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(course_id): Path<String>,
) -> Result<Response> {
    let progress = async {
        match &caller {
            Some(c) => {
                Some(with_fallback(state.progress.progress(c, &c.user_id, &course_id)).await)
            }
            None => None,
        }
    };
    let (course, progress) = tokio::join!(state.courses.get_encoded(&course_id), progress);
    let course = course?;
    let course: &RawValue = serde_json::from_slice(&course).map_err(|e| CallError::Decode {
        destination: courses::NAME.into(),
        message: e.to_string(),
    })?;
    let mut degraded = Vec::new();
    let (progress, enrolled) = match progress {
        None => (None, None),
        Some(Ok(p)) => (Some(p), Some(true)),
        Some(Err(e)) if e.status() == Some(StatusCode::NOT_FOUND) => (None, Some(false)),
        // Pending (its payment not confirmed) or refunded: not enrolled in
        // the sense that matters here, which is what the course opens.
        Some(Err(e)) if e.code() == Some("enrollment_not_active") => (None, Some(false)),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "course page served without progress");
            degraded.push(progress::NAME.to_owned());
            (None, None)
        }
    };
    Ok(Json(EncodedCoursePage {
        course,
        progress,
        enrolled,
        degraded,
    })
    .into_response())
}
