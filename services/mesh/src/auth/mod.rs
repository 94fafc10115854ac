//! Who is calling, verified where the data is.
//!
//! The gateway verifies a user's bearer token at the edge and forwards the
//! same token to the services it calls. Each service that serves a user's
//! own data (users, payments, progress) verifies it again with [`Caller`]
//! and checks the object's owner itself ([`Caller::must_be`]): a caller
//! that reaches a service directly, or a gateway bug, still cannot read
//! someone else's enrollments, progress or payments (OWASP API1:2023,
//! broken object level authorization).
//!
//! Forwarding the token itself, rather than a header the gateway writes,
//! keeps one thing to trust (the signing secret) and one place that
//! defines a valid token ([`token`]).

pub mod client_address;
pub mod token;

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, FromRequestParts},
    response::{IntoResponse, Response},
};
use clap::Args;
use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};

use crate::error::error_response;
pub use client_address::ClientAddress;
pub use token::{Claims, TokenError, TokenKeys};

/// The development signing secret. Anyone who has read this source can
/// mint tokens with it: services warn while it is in use, and refuse it in
/// production ([`crate::config::Environment`]).
pub const DEV_JWT_SECRET: &str = "learnsphere-dev-secret-change-me";

/// The token secret and lifetime, for every service that issues or
/// verifies tokens.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Secret that signs and verifies access tokens (HS256, at least 32
    /// bytes): the same on users, which signs, and on every service that
    /// verifies (gateway, payments, progress). The default is for
    /// development only, and refused with `LEARNSPHERE_ENV=production`.
    #[arg(long, env = "JWT_SECRET", default_value = DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    pub jwt_secret: JwtSecret,

    /// How long an access token lives (`15m`, `1h`, ...): users issues
    /// tokens for this long, and every service refuses a token whose
    /// `exp - iat` is longer (30 s of leeway). Set the same value on every
    /// service, like `JWT_SECRET`.
    #[arg(long, env = "TOKEN_TTL", default_value = "1h", value_parser = parse_ttl)]
    pub token_ttl: Duration,
}

/// A humantime duration of at least one second: tokens carry whole
/// seconds, and a zero lifetime would issue tokens already expired.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(ttl)
}

impl AuthConfig {
    /// The keys for this secret, accepting lifetimes up to `TOKEN_TTL`;
    /// warns when the secret is the development default.
    pub fn keys(&self) -> anyhow::Result<Arc<TokenKeys>> {
        let keys = TokenKeys::new(self.jwt_secret.expose())
            .map_err(|e| anyhow::anyhow!("JWT_SECRET cannot be used: {e}"))?
            .with_max_ttl(self.token_ttl);
        if self.jwt_secret.is_development_default() {
            tracing::warn!(
                "JWT_SECRET is the development default: anyone can mint tokens; set a random secret outside development"
            );
        }
        Ok(Arc::new(keys))
    }
}

/// The token signing secret. `Debug` redacts it, so logging the config
/// cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtSecret(String);

impl JwtSecret {
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether this is [`DEV_JWT_SECRET`].
    pub fn is_development_default(&self) -> bool {
        self.0 == DEV_JWT_SECRET
    }
}

impl FromStr for JwtSecret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret([redacted])")
    }
}

/// Why a request was refused: 401 without a valid token (RFC 6750 §3,
/// with `WWW-Authenticate`), 403 for another user's data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// 401 `unauthorized`: no token, a malformed `Authorization` header,
    /// or a token that does not verify. The message says which, never why
    /// a signature failed in more detail than that.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403 `forbidden`: a valid token for another user.
    #[error("this belongs to another user")]
    Forbidden,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized(message) => {
                let mut res = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="learnsphere""#),
                );
                res
            }
            Self::Forbidden => error_response(StatusCode::FORBIDDEN, "forbidden", self.to_string()),
        }
    }
}

/// The verified caller of a user-scoped route: the token's subject, and
/// the token itself, to forward to the services this request calls.
#[derive(Clone)]
pub struct Caller {
    pub user_id: String,
    token: Arc<str>,
}

impl Caller {
    /// 403 unless the caller is `user_id`.
    pub fn must_be(&self, user_id: &str) -> Result<(), AuthError> {
        if self.user_id == user_id {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    /// The verified token, to forward on calls made on this caller's
    /// behalf (`RequestBuilder::bearer_auth`, which marks the header
    /// sensitive).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A caller for `token`, if it verifies.
    pub fn verify(keys: &TokenKeys, token: &str) -> Result<Self, TokenError> {
        keys.verify(token).map(|claims| Self {
            user_id: claims.sub,
            token: token.into(),
        })
    }
}

/// The token is a credential: `Debug` shows only whose it is.
impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// The bearer token of `headers`: `None` without an `Authorization`
/// header, 401 for one that is not `Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::Unauthorized(
            "Authorization must be `Bearer <token>`",
        )),
    }
}

/// The caller a request's bearer token verifies as, if it carries a valid
/// one, for what must know the caller before any handler runs (the
/// gateway's rate limit). Whoever calls this may leave the result in the
/// request's extensions, so [`Caller`] and [`MaybeCaller`] do not verify
/// the signature again.
pub fn verified_caller(keys: &TokenKeys, headers: &HeaderMap) -> Option<Caller> {
    let token = bearer(headers).ok().flatten()?;
    Caller::verify(keys, token).ok()
}

fn caller(parts: &Parts, keys: &TokenKeys, token: &str) -> Result<Caller, AuthError> {
    match parts.extensions.get::<Caller>() {
        Some(caller) => Ok(caller.clone()),
        None => Caller::verify(keys, token)
            .map_err(|_| AuthError::Unauthorized("invalid or expired token")),
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<TokenKeys>::from_ref(state);
        let token = bearer(&parts.headers)?
            .ok_or(AuthError::Unauthorized("this route needs a bearer token"))?;
        caller(parts, &keys, token)
    }
}

/// A caller who may be anonymous; a token that is present must still be
/// valid.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S> FromRequestParts<S> for MaybeCaller
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<TokenKeys>::from_ref(state);
        match bearer(&parts.headers)? {
            Some(token) => caller(parts, &keys, token).map(|c| MaybeCaller(Some(c))),
            None => Ok(MaybeCaller(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"a-test-secret-that-is-32-bytes-long!").unwrap()
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(matches!(bearer(&h), Ok(None)));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h).unwrap(), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer(&h).is_err());
    }

    #[test]
    fn a_caller_forwards_its_own_token_and_never_prints_it() {
        let keys = keys();
        let token = keys.issue("u1", "Ada", Duration::from_secs(60)).unwrap();
        let caller = Caller::verify(&keys, &token).unwrap();
        assert_eq!(caller.user_id, "u1");
        assert_eq!(caller.token(), token);
        assert!(!format!("{caller:?}").contains(&token));
        assert!(caller.must_be("u1").is_ok());
        assert!(matches!(caller.must_be("u2"), Err(AuthError::Forbidden)));
    }

    #[test]
    fn token_ttl_defaults_to_what_verification_assumes() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            auth: AuthConfig,
        }
        use clap::Parser as _;
        let cli = Cli::try_parse_from(["svc"]).unwrap();
        assert_eq!(cli.auth.token_ttl, token::DEFAULT_TTL);
        assert_eq!(cli.auth.keys().unwrap().max_ttl(), token::DEFAULT_TTL);
        let cli = Cli::try_parse_from(["svc", "--token-ttl", "15m"]).unwrap();
        assert_eq!(cli.auth.keys().unwrap().max_ttl(), Duration::from_secs(900));
        assert!(Cli::try_parse_from(["svc", "--token-ttl", "0s"]).is_err());
    }

    #[test]
    fn the_development_secret_is_never_printed() {
        let secret: JwtSecret = DEV_JWT_SECRET.parse().unwrap();
        assert!(secret.is_development_default());
        assert!(!format!("{secret:?}").contains(DEV_JWT_SECRET));
    }
}
