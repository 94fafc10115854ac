//! Who is calling: the bearer token, verified with the same code the users
//! service signs with, so issuer and verifier cannot drift.

use axum::extract::FromRequestParts;
use http::{HeaderMap, header, request::Parts};
use users::token::{Claims, TokenKeys};

use crate::{AppState, error::AppError};

/// The verified caller of a user-scoped route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
}

impl Caller {
    /// 403 unless the caller is `user_id`: services trust the gateway to
    /// have checked that a user only reaches their own data.
    pub fn must_be(&self, user_id: &str) -> Result<(), AppError> {
        if self.user_id == user_id {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(AppError::Unauthorized(
            "Authorization must be `Bearer <token>`",
        )),
    }
}

fn verify(state: &AppState, token: &str) -> Result<Caller, AppError> {
    let claims: Claims = state
        .tokens
        .verify(token)
        .map_err(|_| AppError::Unauthorized("invalid or expired token"))?;
    Ok(Caller {
        user_id: claims.sub,
    })
}

/// The caller a request's bearer token verifies as, if it carries a valid
/// one; for what must know the caller before any handler runs (the rate
/// limit), which then leaves it in the request's extensions so
/// [`Caller`] and [`MaybeCaller`] do not verify the signature again.
/// Handlers use those two, which reject bad tokens.
pub fn verified_caller(tokens: &TokenKeys, headers: &HeaderMap) -> Option<Caller> {
    let token = bearer(headers).ok().flatten()?;
    tokens.verify(token).ok().map(|claims| Caller {
        user_id: claims.sub,
    })
}

/// The caller: already verified earlier in this request (the rate limit),
/// or verified now.
fn caller(parts: &Parts, state: &AppState, token: &str) -> Result<Caller, AppError> {
    match parts.extensions.get::<Caller>() {
        Some(caller) => Ok(caller.clone()),
        None => verify(state, token),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?
            .ok_or(AppError::Unauthorized("this route needs a bearer token"))?;
        caller(parts, state, token)
    }
}

/// A caller who may be anonymous; a token that is present must still be valid.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(&parts.headers)? {
            Some(token) => caller(parts, state, token).map(|c| MaybeCaller(Some(c))),
            None => Ok(MaybeCaller(None)),
        }
    }
}
