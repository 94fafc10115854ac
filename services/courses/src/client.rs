//! The typed client other services (and loadgen) use to call courses.

use bytes::Bytes;
use mesh::{CallError, MeshClient, outbound::RequestBuilder};

use crate::model::{Course, CourseSummary, Lesson, Page};

/// Calls the courses service through the mesh's outbound stack.
#[derive(Clone, Debug)]
pub struct CoursesClient {
    mesh: MeshClient,
}

impl CoursesClient {
    /// The destination name edges and spans use.
    pub const DESTINATION: &'static str = crate::NAME;

    pub fn new(mesh: MeshClient) -> Self {
        Self { mesh }
    }

    /// `GET /courses`: one page, most popular first.
    pub async fn list(&self, query: &CatalogQuery<'_>) -> Result<Page<CourseSummary>, CallError> {
        self.list_request(query).send_json().await
    }

    /// [`Self::list`]'s page as courses encoded it, for a caller that
    /// passes it on unchanged.
    pub async fn list_encoded(&self, query: &CatalogQuery<'_>) -> Result<Bytes, CallError> {
        self.list_request(query).send_bytes().await
    }

    fn list_request(&self, q: &CatalogQuery<'_>) -> RequestBuilder {
        let mut query = vec![
            ("page", q.page.to_string()),
            ("per_page", q.per_page.to_string()),
        ];
        if let Some(tag) = q.tag {
            query.push(("tag", tag.to_owned()));
        }
        if let Some(search) = q.search {
            query.push(("q", search.to_owned()));
        }
        self.mesh.get("/courses", &[]).query(&query)
    }

    /// `GET /courses/{course_id}`: the course with its lessons.
    pub async fn get(&self, course_id: &str) -> Result<Course, CallError> {
        self.mesh
            .get("/courses/{course_id}", &[course_id])
            .send_json()
            .await
    }

    /// [`Self::get`]'s course as courses encoded it (a JSON object), for
    /// a caller that passes it on unchanged.
    pub async fn get_encoded(&self, course_id: &str) -> Result<Bytes, CallError> {
        self.mesh
            .get("/courses/{course_id}", &[course_id])
            .send_bytes()
            .await
    }

    /// `GET /courses/{course_id}/lessons/{lesson_id}`: 404 unless the lesson
    /// belongs to the course.
    pub async fn lesson(&self, course_id: &str, lesson_id: &str) -> Result<Lesson, CallError> {
        self.mesh
            .get(
                "/courses/{course_id}/lessons/{lesson_id}",
                &[course_id, lesson_id],
            )
            .send_json()
            .await
    }
}

/// Which page of the catalog to list, and what to filter it by.
#[derive(Debug, Clone, Copy)]
pub struct CatalogQuery<'a> {
    /// From 1.
    pub page: u32,
    pub per_page: u32,
    /// Only courses with this tag.
    pub tag: Option<&'a str>,
    /// Only courses whose title or instructor contains this, ignoring case.
    pub search: Option<&'a str>,
}

impl Default for CatalogQuery<'_> {
    /// The first page of 20, unfiltered (the API's defaults).
    fn default() -> Self {
        Self {
            page: 1,
            per_page: 20,
            tag: None,
            search: None,
        }
    }
}
