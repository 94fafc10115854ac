//! `/users`: sign-up and profiles.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use chrono::{SubsecRound as _, Utc};
use http::{StatusCode, header};
use mesh::{
    ErrorBody,
    auth::Caller,
    extract::{Json, Path},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db::{self, Inserted},
    domain::NewAccount,
    error::{AppError, Result},
    model::{RegisterRequest, User},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(get_one))
}

/// Creates an account: 201 with the new profile and its `Location`.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    operation_id = "register",
    summary = "Create an account",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new profile.", body = User,
            headers(("Location" = String, description = "`/users/{id}` of the new profile."))),
        (status = 409, description = "`email_taken`: an account already has this email, in any case or look-alike spelling (the same once normalised).", body = ErrorBody),
        (status = 422, description = "`invalid_input` (a field breaks its rule; the message names it), `invisible_characters` (the email or display name holds a default-ignorable or bidi control character; the message names the field and the code point) or `invalid_body` (a missing, mistyped or unknown field).", body = ErrorBody),
    )
)]
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

/// The caller's own profile. The email in it is personal data, so only
/// its owner's token reads it (OWASP API1:2023): another user's valid
/// token is 403 before the database is asked, so the answer does not even
/// tell whether that user exists.
#[utoipa::path(
    get,
    path = "/users/{user_id}",
    tag = "users",
    operation_id = "getUser",
    summary = "A user's own profile",
    params(("user_id" = String, Path, description = "The user's id (a UUIDv7); the token's subject must be this user.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile.", body = User),
        (status = 403, description = "`forbidden`: the token is another user's.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account no longer exists.", body = ErrorBody),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<User>> {
    caller.must_be(&user_id)?;
    db::user_by_id(&state.db, &user_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("user"))
}
