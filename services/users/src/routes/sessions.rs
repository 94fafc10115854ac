//! `/sessions`: login, answered with an access token.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use chrono::Utc;
use http::{HeaderValue, header, request::Parts};
use mesh::{
    ErrorBody,
    auth::{ClientAddress, TokenKeys},
    extract::Json,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db,
    domain::LoginAttempt,
    error::{AppError, Result},
    lockout::{Check, Source},
    model::{LoginRequest, Session},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// Verifies the password and issues a token.
///
/// Every failure is the same 401 after the same work: an email that does
/// not parse or names no account still costs one Argon2id verification
/// (against a dummy hash), so neither the answer nor its timing tells
/// which emails have accounts. Each failure counts against the email and
/// the client's address ([`crate::lockout`]); while that address has failed
/// too often for it, or the email has from everywhere and this address is
/// not one it logged in from lately, the answer is 429 whatever the
/// password, before any hashing.
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
        (status = 429, description = "`too_many_attempts`: this email has had too many failed logins lately from this client address (5, then one a minute, by default), or from all addresses together (50, then one every 10 s) and this is not an address it logged in from in the last 30 days; even the right password is refused until `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Whole seconds (at least 1) until the next attempt for this email from this address is allowed."))),
    )
)]
async fn login(
    State(state): State<AppState>,
    source: Source,
    Json(request): Json<LoginRequest>,
) -> Result<([(header::HeaderName, HeaderValue); 1], Json<Session>)> {
    let LoginAttempt {
        email,
        account: key,
        password,
    } = LoginAttempt::try_from(request)?;
    match state.failed_logins.check(&key, source) {
        Check::Allowed => {}
        Check::SourceLimited { retry_after } => {
            return Err(AppError::TooManyAttempts { retry_after });
        }
        Check::AccountLimited { retry_after } => {
            // Guessed at from everywhere: only the account's own places
            // may try. The same query for an unknown email, which knows
            // no source, so the answer does not tell them apart.
            let known = match &email {
                Some(email) => db::is_known_source(&state.db, email, source, Utc::now()).await?,
                None => false,
            };
            if !known {
                return Err(AppError::TooManyAttempts { retry_after });
            }
        }
    }
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
            state.failed_logins.failed(&key, source);
            return Err(AppError::InvalidCredentials);
        }
    };
    db::remember_source(&state.db, &user.id, source, Utc::now()).await?;
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

/// The login's source: the client address the gateway signed
/// ([`ClientAddress::attested`]), else the connection's peer address,
/// which a caller reaching users directly cannot choose.
impl<S> FromRequestParts<S> for Source
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<TokenKeys>::from_ref(state);
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| ClientAddress::of(addr.ip()))
        };
        Ok(ClientAddress::attested(&keys, &parts.headers)
            .or_else(peer)
            .map_or(Source::Unknown, Source::Address))
    }
}
