//! `/users`: sign-up and profiles.

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{SubsecRound as _, Utc};
use http::{StatusCode, header};
use mesh::extract::{Json, Path};

use crate::{
    AppState,
    db::{self, Inserted},
    domain::NewAccount,
    error::{AppError, Result},
    model::{RegisterRequest, User},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", post(register))
        .route("/users/{user_id}", get(get_one))
}

/// 201 with the new profile and its `Location`.
async fn register(
    State(state): State<AppState>,
    Json(request): Json<RegisterRequest>,
) -> Result<Response> {
    let NewAccount {
        email,
        display_name,
        password,
    } = NewAccount::try_from(request)?;
    let password_hash = state.passwords.hash(password).await?;
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.into_string(),
        display_name: display_name.into_string(),
        // Milliseconds, what the database keeps, so this answer and every
        // later read of the profile agree.
        created_at: Utc::now().trunc_subsecs(3),
    };
    match db::insert_user(&state.db, &state.outbox, &user, &password_hash).await? {
        Inserted::Created => {
            let location = format!("/users/{}", mesh::outbound::encode_path_segment(&user.id));
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(user),
            )
                .into_response())
        }
        Inserted::EmailTaken => Err(AppError::EmailTaken),
    }
}

async fn get_one(State(state): State<AppState>, Path(user_id): Path<String>) -> Result<Json<User>> {
    db::user_by_id(&state.db, &user_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("user"))
}
