//! `/users/{user_id}/profile`: the learner as progress knows them.

use axum::extract::State;
use mesh::{
    ErrorBody,
    auth::Caller,
    extract::{Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db,
    domain::Id,
    error::{AppError, Result},
    model::LearnerProfile,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(profile))
}

/// 200 with the profile; 404 `profile_not_found` until the user's
/// `user.registered` event has been processed (or for no such user).
#[utoipa::path(
    get,
    path = "/users/{user_id}/profile",
    tag = "progress",
    operation_id = "getProfile",
    summary = "The learner's profile",
    security(("bearer" = [])),
    params(("user_id" = String, Path, min_length = 1, max_length = 64, description = "The caller's own id; no control characters.")),
    responses(
        (status = 200, description = "The profile, from users' `user.registered` event.", body = LearnerProfile),
        (status = 403, description = "`forbidden`: another user's.", body = ErrorBody),
        (status = 404, description = "`profile_not_found`: not processed yet, or no such user.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: an impossible id.", body = ErrorBody),
    )
)]
async fn profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<LearnerProfile>> {
    let user_id = Id::parse("user_id", user_id)?;
    caller.must_be(user_id.as_str())?;
    db::profile_of(&state.db, &user_id)
        .await?
        .map(Json)
        .ok_or(AppError::ProfileNotFound)
}
