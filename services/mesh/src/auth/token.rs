//! Access tokens: issued by users at login, verified by the gateway and
//! again by every service that serves a user's own data.
//!
//! Issuer and verifiers share this one definition of a valid token
//! (algorithm, issuer, audience, leeway), so they cannot drift apart.
//!
//! Tokens are JWTs (RFC 7519) signed with HS256 (RFC 7518 §3.2): one shared
//! secret among our own services (`docs/security.md` says what that trusts,
//! and how to rotate it). Verification pins the algorithm to HS256, so a
//! token whose header says `none` or an asymmetric algorithm is rejected
//! before its signature is looked at.

use std::{fmt, time::Duration};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind,
    get_current_timestamp,
};
use serde::{Deserialize, Serialize};

/// `iss`: who issued the token.
pub const ISSUER: &str = "learnsphere-users";
/// `aud`: who the token is for (the platform's API, behind the gateway).
pub const AUDIENCE: &str = "learnsphere";
/// Clock skew tolerated on `exp`: hosts' clocks differ by a little, and 30 s
/// is small beside a token lifetime of an hour.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash
/// output, 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of a LearnSphere access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// The user's display name, so the gateway can show who is signed in
    /// without a call to this service.
    pub name: String,
}

impl Claims {
    /// Claims for `user_id`, issued at `issued_at` (Unix seconds) and valid
    /// for `ttl` (whole seconds).
    pub fn new(user_id: &str, display_name: &str, issued_at: u64, ttl: Duration) -> Self {
        Self {
            sub: user_id.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: issued_at,
            exp: issued_at.saturating_add(ttl.as_secs()),
            name: display_name.to_owned(),
        }
    }
}

/// Why a token was not issued or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The secret is too short to sign with (see [`MIN_SECRET_BYTES`]).
    #[error("the token secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 §3.2), got {0}")]
    SecretTooShort(usize),
    /// `exp` (plus [`LEEWAY`]) has passed.
    #[error("the token has expired")]
    Expired,
    /// The signature does not match: altered, or signed with another secret.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `iss` is not [`ISSUER`].
    #[error("the token was not issued by {ISSUER}")]
    WrongIssuer,
    /// `aud` is not [`AUDIENCE`].
    #[error("the token is not meant for {AUDIENCE}")]
    WrongAudience,
    /// Not an HS256 JWT carrying our claims: bad shape, encoding, algorithm,
    /// or a missing or mistyped claim.
    #[error("malformed token: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    /// Signing failed (not expected with HMAC).
    #[error("could not sign the token: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

impl TokenError {
    /// A short stable name, for `error.type` on spans and for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SecretTooShort(_) => "secret_too_short",
            Self::Expired => "expired",
            Self::BadSignature => "bad_signature",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Malformed(_) => "malformed",
            Self::Signing(_) => "signing",
        }
    }
}

/// The signing and verifying keys, and the rules a token must meet.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Keys for the shared `secret`, which must be at least
    /// [`MIN_SECRET_BYTES`] long.
    pub fn new(secret: &[u8]) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenError::SecretTooShort(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY.as_secs();
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// A token for `user_id`, valid from now for `ttl`.
    pub fn issue(
        &self,
        user_id: &str,
        display_name: &str,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        self.sign(&Claims::new(
            user_id,
            display_name,
            get_current_timestamp(),
            ttl,
        ))
    }

    /// Signs `claims` as they are. [`TokenKeys::issue`] is the usual way
    /// in; this one lets tests craft expired or foreign tokens.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(TokenError::Signing)
    }

    /// The claims of `token` if its signature, algorithm, `exp` (with
    /// [`LEEWAY`]), `iss` and `aud` are all good.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                _ => TokenError::Malformed(e),
            })
    }
}

/// Keys are secrets: `Debug` shows only the rules.
impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("algorithm", &Algorithm::HS256)
            .field("issuer", &ISSUER)
            .field("audience", &AUDIENCE)
            .field("leeway", &LEEWAY)
            .finish_non_exhaustive()
    }
}
