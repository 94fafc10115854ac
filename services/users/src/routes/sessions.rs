//! `/sessions`: login, answered with an access token.

use axum::extract::State;
use http::{HeaderValue, header};
use mesh::{ErrorBody, extract::Json};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState, db,
    domain::LoginAttempt,
    error::{AppError, Result},
    model::{LoginRequest, Session},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// Verifies the password and issues a token.
///
/// Every failure is the same 401 after the same work: an email that does
/// not parse or names no account still costs one Argon2id verification
/// (against a dummy hash), so neither the answer nor its timing tells
/// which emails have accounts. Each failure counts against the email
/// ([`crate::lockout`]); while it has failed too often, the answer is 429
/// whatever the password, before any hashing.
#[utoipa::path(
    post,
    path = "/sessions",
    tag = "users",
    operation_id = "login",
    summary = "Log in",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A session: the access token and when it expires.", body = Session,
            headers(("Cache-Control" = String, description = "`no-store` (RFC 6749 §5.1)."))),
        (status = 401, description = "`invalid_credentials`: the same answer for an unknown email and a wrong password.", body = ErrorBody),
        (status = 422, description = "`invalid_input` (a password out of 8 to 128 characters or with NUL, an email over 254 bytes: no account can have them) or `invalid_body`.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: this email has had too many failed logins lately (5, then one a minute, by default); even the right password is refused until `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds (at least 1) until the next attempt for this email is allowed."))),
    )
)]
async fn login(
    State(state): State<AppState>,
    Json(request): Json<LoginRequest>,
) -> Result<([(header::HeaderName, HeaderValue); 1], Json<Session>)> {
    let LoginAttempt {
        email,
        account: key,
        password,
    } = LoginAttempt::try_from(request)?;
    state
        .failed_logins
        .check(&key)
        .map_err(|retry_after| AppError::TooManyAttempts { retry_after })?;
    let account = match email {
        Some(email) => db::account_by_email(&state.db, &email).await?,
        None => None,
    };
    let verified = state
        .passwords
        .verify(
            password.expose().to_owned(),
            account.as_ref().map(|a| &a.password_hash),
        )
        .await?;
    let user = match account {
        Some(account) if verified => account.user,
        _ => {
            state.failed_logins.failed(&key);
            return Err(AppError::InvalidCredentials);
        }
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
