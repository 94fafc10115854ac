//! The typed client other services (the gateway, loadgen) use to call
//! progress.

use mesh::{CallError, MeshClient, auth::Caller};

use crate::model::{CourseProgress, EnrollRequest, Enrollment, EnrollmentList, LearnerProfile};

/// Calls the progress service through the mesh's outbound stack, on a
/// user's behalf: every call forwards the caller's token, and progress
/// serves only the caller's own data.
#[derive(Clone, Debug)]
pub struct ProgressClient {
    mesh: MeshClient,
}

impl ProgressClient {
    /// The destination name edges and spans use.
    pub const DESTINATION: &'static str = crate::NAME;

    pub fn new(mesh: MeshClient) -> Self {
        Self { mesh }
    }

    /// `POST /enrollments`: the new enrollment (201) or the one the user
    /// already had (200); the two are not told apart here.
    pub async fn enroll(
        &self,
        caller: &Caller,
        request: &EnrollRequest,
    ) -> Result<Enrollment, CallError> {
        self.mesh
            .post("/enrollments", &[])
            .bearer_auth(caller.token())
            .json(request)
            .send_json()
            .await
    }

    /// `GET /users/{user_id}/enrollments`: oldest first, with progress.
    pub async fn enrollments(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> Result<EnrollmentList, CallError> {
        self.mesh
            .get("/users/{user_id}/enrollments", &[user_id])
            .bearer_auth(caller.token())
            .send_json()
            .await
    }

    /// `POST /users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete`:
    /// the course progress after recording the completion.
    pub async fn complete_lesson(
        &self,
        caller: &Caller,
        user_id: &str,
        course_id: &str,
        lesson_id: &str,
    ) -> Result<CourseProgress, CallError> {
        self.mesh
            .post(
                "/users/{user_id}/courses/{course_id}/lessons/{lesson_id}/complete",
                &[user_id, course_id, lesson_id],
            )
            .bearer_auth(caller.token())
            .send_json()
            .await
    }

    /// `GET /users/{user_id}/courses/{course_id}/progress`.
    pub async fn progress(
        &self,
        caller: &Caller,
        user_id: &str,
        course_id: &str,
    ) -> Result<CourseProgress, CallError> {
        self.mesh
            .get(
                "/users/{user_id}/courses/{course_id}/progress",
                &[user_id, course_id],
            )
            .bearer_auth(caller.token())
            .send_json()
            .await
    }
    /// `GET /users/{user_id}/profile`: 404 `profile_not_found` until the
    /// user's `user.registered` event has been processed.
    pub async fn profile(
        &self,
        caller: &Caller,
        user_id: &str,
    ) -> Result<LearnerProfile, CallError> {
        self.mesh
            .get("/users/{user_id}/profile", &[user_id])
            .bearer_auth(caller.token())
            .send_json()
            .await
    }
}
