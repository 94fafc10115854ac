//! Sign up, log in, who am I.

use axum::{Extension, extract::State, http::StatusCode};
use mesh::{
    ErrorBody,
    auth::{Caller, ClientAddress},
    extract::Json,
};
use users::model::{LoginRequest, RegisterRequest, Session, User};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::Result, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(me))
}

/// Creates an account.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "accounts",
    operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account.", body = User),
        (status = 409, description = "`email_taken`.", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<User>)> {
    let user = state.users.register(&req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Logs in: an access token for the `Authorization: Bearer` header.
///
/// Users holds failed logins back per email and client address, so the
/// gateway tells it the client's address (the one its rate limit keys on),
/// signed: users believes no address it cannot verify.
#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "accounts",
    operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A session: the access token and when it expires.", body = Session),
        (status = 401, description = "`invalid_credentials`: the same answer for an unknown email and a wrong password.", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddress>>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<Session>> {
    // Set by the rate limit layer; absent only outside a server (router
    // tests), where users then counts the gateway's own address.
    let signed = client.and_then(|Extension(address)| {
        address
            .attest(&state.tokens)
            .inspect_err(|e| tracing::warn!(error = %e, "could not sign the client's address"))
            .ok()
    });
    Ok(Json(state.users.login(&req, signed.as_deref()).await?))
}

/// The caller's own account.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "accounts",
    operation_id = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account.", body = User),
        (status = 404, description = "`not_found`: the account no longer exists.", body = ErrorBody),
    )
)]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<User>> {
    Ok(Json(state.users.get(&caller, &caller.user_id).await?))
}
