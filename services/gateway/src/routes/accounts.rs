//! Sign up, log in, who am I.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use mesh::extract::Json;
use users::model::{LoginRequest, RegisterRequest, Session, User};

use crate::{AppState, auth::Caller, error::Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users", post(register))
        .route("/api/sessions", post(login))
        .route("/api/me", get(me))
}

async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<User>)> {
    let user = state.users.register(&req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<Session>> {
    Ok(Json(state.users.login(&req).await?))
}

async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<User>> {
    Ok(Json(state.users.get(&caller.user_id).await?))
}
