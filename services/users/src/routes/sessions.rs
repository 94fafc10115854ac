//! `/sessions`: login, answered with an access token.

use axum::{Router, extract::State, routing::post};
use http::{HeaderValue, header};
use mesh::extract::Json;

use crate::{
    AppState, db,
    domain::Email,
    error::{AppError, Result},
    model::{LoginRequest, Session},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/sessions", post(login))
}

/// Verifies the password and issues a token.
///
/// Every failure is the same 401 after the same work: an email that does
/// not parse or names no account still costs one Argon2id verification
/// (against a dummy hash), so neither the answer nor its timing tells
/// which emails have accounts.
async fn login(
    State(state): State<AppState>,
    Json(request): Json<LoginRequest>,
) -> Result<([(header::HeaderName, HeaderValue); 1], Json<Session>)> {
    let LoginRequest { email, password } = request;
    let account = match Email::parse(&email) {
        Ok(email) => db::account_by_email(&state.db, &email).await?,
        Err(_) => None,
    };
    let verified = state
        .passwords
        .verify(password, account.as_ref().map(|a| &a.password_hash))
        .await?;
    let user = match account {
        Some(account) if verified => account.user,
        _ => return Err(AppError::InvalidCredentials),
    };
    let access_token = state
        .tokens
        .issue(&user.id, &user.display_name, state.token_ttl)?;
    Ok((
        // RFC 6749 §5.1: a response carrying a token must not be cached.
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(Session {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: state.token_ttl.as_secs(),
            user_id: user.id,
        }),
    ))
}
