//! Access tokens: issued by users at login, verified by the gateway and
//! again by every service that serves a user's own data.
//!
//! Issuer and verifiers share this one definition of a valid token
//! (algorithm, issuer, audience, leeway, longest lifetime), so they cannot
//! drift apart.
//!
//! A valid signature is not enough: a token must also carry a bounded
//! lifetime. `exp - iat` may not exceed the configured `TOKEN_TTL` (plus
//! [`LEEWAY`]) and `iat` may not lie in the future (beyond [`LEEWAY`]).
//! Whoever holds the signing secret (a compromised service: HS256 is
//! symmetric) or a bug in an issuer could otherwise mint a token that
//! lives for centuries; with the bound, the worst such token is good for
//! one `TOKEN_TTL`, like any stolen one.
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
/// Clock skew tolerated on `exp`, on `iat` and on a token's lifetime:
/// hosts' clocks differ by a little, and 30 s is small beside a token
/// lifetime of an hour.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// `TOKEN_TTL`'s default: how long users' tokens live, and so the longest
/// lifetime a verifier accepts unless told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
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
    /// `exp - iat` is longer than the longest lifetime accepted
    /// ([`TokenKeys::max_ttl`], plus [`LEEWAY`]).
    #[error("the token's lifetime is longer than tokens are issued for")]
    LifetimeTooLong,
    /// `iat` is later than now (plus [`LEEWAY`]).
    #[error("the token was issued in the future")]
    IssuedInFuture,
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
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::IssuedInFuture => "issued_in_future",
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
    /// The longest `exp - iat` accepted (plus [`LEEWAY`]).
    max_ttl: Duration,
}

impl TokenKeys {
    /// Keys for the shared `secret`, which must be at least
    /// [`MIN_SECRET_BYTES`] long, accepting lifetimes up to
    /// [`DEFAULT_TTL`] ([`TokenKeys::with_max_ttl`] changes that).
    pub fn new(secret: &[u8]) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenError::SecretTooShort(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        // `iat` is required too, by `Claims` itself (not an `Option`): a
        // token without it has no lifetime to bound, and is malformed.
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY.as_secs();
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            max_ttl: DEFAULT_TTL,
        })
    }

    /// The same keys, accepting lifetimes up to `max_ttl` (`TOKEN_TTL`:
    /// what users issues for).
    pub fn with_max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// The longest lifetime (`exp - iat`) a token may have, before
    /// [`LEEWAY`].
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// A token for `user_id`, valid from now for `ttl`. A `ttl` over
    /// [`TokenKeys::max_ttl`] is refused: it would not verify.
    pub fn issue(
        &self,
        user_id: &str,
        display_name: &str,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        if ttl > self.max_ttl {
            return Err(TokenError::LifetimeTooLong);
        }
        self.sign(&Claims::new(
            user_id,
            display_name,
            get_current_timestamp(),
            ttl,
        ))
    }

    /// The key that signs, for other kinds of signed statement between
    /// the services ([`super::client_address`]).
    pub(super) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The key that verifies.
    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs `claims` as they are. [`TokenKeys::issue`] is the usual way
    /// in; this one lets tests craft expired or foreign tokens.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(TokenError::Signing)
    }

    /// The claims of `token` if its signature, algorithm, `exp` (with
    /// [`LEEWAY`]), `iss` and `aud` are all good, and its lifetime is
    /// bounded: `iat` present and not in the future, `exp - iat` at most
    /// [`TokenKeys::max_ttl`] (each with [`LEEWAY`]).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                _ => TokenError::Malformed(e),
            })?;
        self.check_lifetime(&claims, get_current_timestamp())?;
        Ok(claims)
    }

    /// `claims`' lifetime, judged at `now` (Unix seconds).
    fn check_lifetime(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        let leeway = LEEWAY.as_secs();
        if claims.iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        // `exp` before `iat` is a lifetime of zero: already expired, and
        // refused as such above unless within the leeway.
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime > self.max_ttl.as_secs().saturating_add(leeway) {
            return Err(TokenError::LifetimeTooLong);
        }
        Ok(())
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
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-test-secret-that-is-32-bytes-long!";
    const NOW: u64 = 1_800_000_000;

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET)
            .unwrap()
            .with_max_ttl(Duration::from_secs(900))
    }

    fn claims(iat: u64, exp: u64) -> Claims {
        Claims {
            iat,
            exp,
            ..Claims::new("u1", "Ada", NOW, Duration::ZERO)
        }
    }

    #[test]
    fn a_lifetime_up_to_the_ttl_plus_leeway_is_accepted() {
        let keys = keys();
        for (iat, exp) in [
            (NOW, NOW + 900),
            (NOW, NOW + 930),
            (NOW - 600, NOW + 300),
            // Clocks a little apart: issued up to 30 s "from now".
            (NOW + 30, NOW + 930),
        ] {
            assert!(
                keys.check_lifetime(&claims(iat, exp), NOW).is_ok(),
                "iat {iat} exp {exp}"
            );
        }
    }

    #[test]
    fn a_longer_lifetime_or_a_future_iat_is_refused() {
        let keys = keys();
        assert!(matches!(
            keys.check_lifetime(&claims(NOW, NOW + 931), NOW),
            Err(TokenError::LifetimeTooLong)
        ));
        // The year 2200.
        assert!(matches!(
            keys.check_lifetime(&claims(NOW, 7_258_118_400), NOW),
            Err(TokenError::LifetimeTooLong)
        ));
        // An iat of 0 makes any exp a lifetime of decades.
        assert!(matches!(
            keys.check_lifetime(&claims(0, NOW + 60), NOW),
            Err(TokenError::LifetimeTooLong)
        ));
        assert!(matches!(
            keys.check_lifetime(&claims(NOW + 31, NOW + 600), NOW),
            Err(TokenError::IssuedInFuture)
        ));
    }

    #[test]
    fn verify_applies_the_bound_and_issue_respects_it() {
        let keys = keys();
        let now = get_current_timestamp();
        let long = keys
            .sign(&Claims::new("u1", "Ada", now, Duration::from_secs(3600)))
            .unwrap();
        assert!(matches!(
            keys.verify(&long),
            Err(TokenError::LifetimeTooLong)
        ));
        // The same token is fine for keys that accept an hour.
        assert!(TokenKeys::new(SECRET).unwrap().verify(&long).is_ok());
        assert!(matches!(
            keys.issue("u1", "Ada", Duration::from_secs(901)),
            Err(TokenError::LifetimeTooLong)
        ));
        let token = keys.issue("u1", "Ada", Duration::from_secs(900)).unwrap();
        assert_eq!(keys.verify(&token).unwrap().sub, "u1");
    }
}
