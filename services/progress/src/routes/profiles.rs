//! `/users/{user_id}/profile`: the learner as progress knows them.

use axum::{Router, extract::State, routing::get};
use mesh::extract::{Json, Path};

use crate::{
    AppState, db,
    domain::Id,
    error::{AppError, Result},
    model::LearnerProfile,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/users/{user_id}/profile", get(profile))
}

/// 200 with the profile; 404 `profile_not_found` until the user's
/// `user.registered` event has been processed (or for no such user).
async fn profile(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<LearnerProfile>> {
    let user_id = Id::parse("user_id", user_id)?;
    db::profile_of(&state.db, &user_id)
        .await?
        .map(Json)
        .ok_or(AppError::ProfileNotFound)
}
