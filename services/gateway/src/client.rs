//! The typed client of the gateway's public API (`docs/api.md`), for
//! whoever calls LearnSphere from outside: the load generator's journeys,
//! and tests. Every call goes through the mesh's outbound stack, so it
//! is traced (its `traceparent` and `baggage` come from the current span)
//! and counted like any other edge.

use courses::model::{Course, CourseSummary, Page};
use mesh::{CallError, MeshClient, outbound::RequestBuilder};
use payments::model::PaymentList;
use progress::model::{CourseProgress, EnrollmentList};
use serde_json::json;
use users::model::{LoginRequest, RegisterRequest, Session, User};

pub use crate::routes::{catalog::CoursePage, checkout::Checkout};

/// Who a call is made for.
#[derive(Clone, Debug, Default)]
pub struct Visitor {
    /// The bearer token of a signed-in user.
    pub token: Option<String>,
    /// The end client's address, sent as `X-Forwarded-For`: a client that
    /// speaks for many users (a proxy, the load generator) says whose
    /// request this is. The gateway uses it for rate limiting only when
    /// told to trust it.
    pub forwarded_for: Option<String>,
}

/// Calls the gateway through the mesh's outbound stack; cheap to clone.
#[derive(Clone, Debug)]
pub struct GatewayClient {
    mesh: MeshClient,
}

impl GatewayClient {
    /// The destination name edges and spans use.
    pub const DESTINATION: &'static str = crate::NAME;

    pub fn new(mesh: MeshClient) -> Self {
        Self { mesh }
    }

    fn with(builder: RequestBuilder, visitor: &Visitor) -> RequestBuilder {
        let builder = match &visitor.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        };
        match &visitor.forwarded_for {
            Some(addr) => builder.header("x-forwarded-for", addr),
            None => builder,
        }
    }

    /// `POST /api/users`: 201 with the new user.
    pub async fn register(
        &self,
        visitor: &Visitor,
        request: &RegisterRequest,
    ) -> Result<User, CallError> {
        Self::with(self.mesh.post("/api/users", &[]), visitor)
            .json(request)
            .send_json()
            .await
    }

    /// `POST /api/sessions`: a bearer token.
    pub async fn login(
        &self,
        visitor: &Visitor,
        request: &LoginRequest,
    ) -> Result<Session, CallError> {
        Self::with(self.mesh.post("/api/sessions", &[]), visitor)
            .json(request)
            .send_json()
            .await
    }

    /// `GET /api/me`.
    pub async fn me(&self, visitor: &Visitor) -> Result<User, CallError> {
        Self::with(self.mesh.get("/api/me", &[]), visitor)
            .send_json()
            .await
    }

    /// `GET /api/courses`: one page of the catalog, most popular first.
    pub async fn courses(
        &self,
        visitor: &Visitor,
        page: u32,
        per_page: u32,
        tag: Option<&str>,
    ) -> Result<Page<CourseSummary>, CallError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
        ];
        if let Some(tag) = tag {
            query.push(("tag", tag.to_owned()));
        }
        Self::with(self.mesh.get("/api/courses", &[]), visitor)
            .query(&query)
            .send_json()
            .await
    }

    /// `GET /api/courses/{course_id}`: a course with its lessons.
    pub async fn course(&self, visitor: &Visitor, course_id: &str) -> Result<Course, CallError> {
        Self::with(
            self.mesh.get("/api/courses/{course_id}", &[course_id]),
            visitor,
        )
        .send_json()
        .await
    }

    /// `GET /api/courses/{course_id}/page`: the course and, signed in, the
    /// caller's progress in it (`degraded` lists what was left out).
    pub async fn course_page(
        &self,
        visitor: &Visitor,
        course_id: &str,
    ) -> Result<CoursePage, CallError> {
        Self::with(
            self.mesh.get("/api/courses/{course_id}/page", &[course_id]),
            visitor,
        )
        .send_json()
        .await
    }

    /// `POST /api/checkout`: buys `course_id` for the signed-in caller.
    /// The same `idempotency_key` never charges twice.
    pub async fn checkout(
        &self,
        visitor: &Visitor,
        course_id: &str,
        idempotency_key: &str,
    ) -> Result<Checkout, CallError> {
        Self::with(self.mesh.post("/api/checkout", &[]), visitor)
            .header("idempotency-key", idempotency_key)
            .json(&json!({ "course_id": course_id }))
            .send_json()
            .await
    }

    /// `GET /api/users/{user_id}/enrollments`.
    pub async fn enrollments(
        &self,
        visitor: &Visitor,
        user_id: &str,
    ) -> Result<EnrollmentList, CallError> {
        Self::with(
            self.mesh
                .get("/api/users/{user_id}/enrollments", &[user_id]),
            visitor,
        )
        .send_json()
        .await
    }

    /// `GET /api/users/{user_id}/courses/{course_id}/progress`.
    pub async fn progress(
        &self,
        visitor: &Visitor,
        user_id: &str,
        course_id: &str,
    ) -> Result<CourseProgress, CallError> {
        Self::with(
            self.mesh.get(
                "/api/users/{user_id}/courses/{course_id}/progress",
                &[user_id, course_id],
            ),
            visitor,
        )
        .send_json()
        .await
    }

    /// `POST /api/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete`.
    pub async fn complete_lesson(
        &self,
        visitor: &Visitor,
        user_id: &str,
        course_id: &str,
        lesson_id: &str,
    ) -> Result<CourseProgress, CallError> {
        Self::with(
            self.mesh.post(
                "/api/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
                &[user_id, course_id, lesson_id],
            ),
            visitor,
        )
        .send_json()
        .await
    }

    /// `GET /api/users/{user_id}/payments`.
    pub async fn payments(
        &self,
        visitor: &Visitor,
        user_id: &str,
    ) -> Result<PaymentList, CallError> {
        Self::with(
            self.mesh.get("/api/users/{user_id}/payments", &[user_id]),
            visitor,
        )
        .send_json()
        .await
    }
}
