//! The service's JSON contract, shared by its routes and its typed client.
//!
//! Request types reject unknown fields, so a misspelt field is a 422, not
//! a value silently ignored (`additionalProperties: false` in the OpenAPI
//! schemas derived here). The schemas' bounds are the domain's
//! ([`crate::domain`]); rules a JSON Schema cannot state (an email's shape,
//! no control characters) are in the descriptions and answered with 422
//! `invalid_input`, or `invisible_characters` for a default-ignorable or
//! bidi control character. Types carrying a password or a token print
//! them as `[redacted]` in `Debug`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /users`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Normalised to NFKC, lowercased and trimmed, then at most 254 bytes:
    /// one `@`, a name before it, a domain with a dot after it, no spaces
    /// or control characters, and no invisible or text-direction
    /// characters (Default_Ignorable_Code_Point, Bidi_Control: 422
    /// `invisible_characters`). Look-alike spellings (fullwidth letters)
    /// are the same email.
    #[schema(min_length = 1, max_length = 254)]
    pub email: String,
    /// Shown to other people: normalised to NFKC and trimmed; 1 to 64
    /// characters (as sent and once normalised), at least one visible; no
    /// control characters, no bidi controls, and no default-ignorable
    /// characters but ZWJ, ZWNJ and variation selectors (422
    /// `invisible_characters`).
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: String,
    /// 8 to 128 characters (not bytes), any of them but NUL; kept exactly
    /// as sent.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// `POST /sessions`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Compared normalised (NFKC, lowercased, trimmed), as sign-up stored
    /// it; at most 254 bytes.
    #[schema(max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, no NUL, as every account's password is.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// A user's profile: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct User {
    /// UUIDv7.
    pub id: String,
    /// Normalised: NFKC, lowercased, trimmed.
    pub email: String,
    pub display_name: String,
    /// RFC 3339, UTC, millisecond precision.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// A successful login (the shape of an OAuth 2.0 token response, RFC 6749
/// §5.1, so generic clients understand it).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Session {
    /// The JWT to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(pattern = "^Bearer$")]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub user_id: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("user_id", &self.user_id)
            .finish()
    }
}
