//! Domain types that parse, don't validate: once a value of one of these
//! types exists it is valid, so nothing downstream checks it again.

use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::model::ChargeRequest;

/// Why a value was rejected; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The client's `Idempotency-Key`: 1–255 visible ASCII characters (Stripe's
/// limit), typically a UUID the client made before its first attempt.
///
/// Visible ASCII only, so a key survives every HTTP stack and log line
/// unchanged and two keys that look equal are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "Idempotency-Key must be 1 to {} characters",
                Self::MAX_LEN
            )));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError(
                "Idempotency-Key must be visible ASCII characters (no spaces)".to_owned(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217-shaped currency code: three uppercase ASCII letters.
///
/// The shape is checked, not membership in the ISO list: the provider is
/// the authority on which currencies it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError(format!(
                "currency must be three uppercase letters (like \"USD\"), got {s:?}"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Money to charge: a positive number of minor units (cents) and a currency.
///
/// Integer cents, never floats, so no amount is ever rounded. The upper
/// bound (10 000.00) is far above any course price and stops a typo from
/// becoming a very large charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    cents: i64,
    currency: Currency,
}

impl Amount {
    pub const MAX_CENTS: i64 = 1_000_000;

    pub fn new(cents: i64, currency: &str) -> Result<Self, ParseError> {
        if !(1..=Self::MAX_CENTS).contains(&cents) {
            return Err(ParseError(format!(
                "amount_cents must be between 1 and {}",
                Self::MAX_CENTS
            )));
        }
        Ok(Self {
            cents,
            currency: Currency::parse(currency)?,
        })
    }

    pub fn cents(&self) -> i64 {
        self.cents
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }
}

/// Text ids of other services' entities (users, courses): non-empty and at
/// most 64 characters. Payments does not call those services to check the
/// ids exist; the caller (the gateway) already did.
fn parse_id(field: &str, s: &str) -> Result<String, ParseError> {
    if s.is_empty() || s.chars().count() > 64 {
        Err(ParseError(format!("{field} must be 1 to 64 characters")))
    } else if s.chars().any(char::is_control) {
        // NUL cannot be stored in PostgreSQL text; no id has control
        // characters.
        Err(ParseError(format!(
            "{field} must not contain control characters"
        )))
    } else {
        Ok(s.to_owned())
    }
}

/// The id of the user paying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(String);

impl UserId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_id("user_id", s).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of a payment named in a path (`/payments/{payment_id}`): ours
/// are uuids, so anything longer than an id, or with control characters
/// (NUL, which PostgreSQL text cannot hold, would be a 500), is refused
/// before the database is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentId(String);

impl PaymentId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_id("payment_id", s).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of the course being paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseId(String);

impl CourseId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_id("course_id", s).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A charge a client asked for, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharge {
    pub user_id: UserId,
    pub course_id: CourseId,
    pub amount: Amount,
}

impl NewCharge {
    pub fn parse(request: &ChargeRequest) -> Result<Self, ParseError> {
        Ok(Self {
            user_id: UserId::parse(&request.user_id)?,
            course_id: CourseId::parse(&request.course_id)?,
            amount: Amount::new(request.amount_cents, &request.currency)?,
        })
    }

    /// SHA-256 of the canonical request: the JSON of the parsed request,
    /// fields in declaration order, no whitespace. Two bodies that differ
    /// only in key order or spacing are the same request; any difference
    /// in a value is another request.
    pub fn fingerprint(&self) -> RequestFingerprint {
        let canonical = ChargeRequest {
            user_id: self.user_id.as_str().to_owned(),
            course_id: self.course_id.as_str().to_owned(),
            amount_cents: self.amount.cents(),
            currency: self.amount.currency().as_str().to_owned(),
        };
        // Serialising a struct of strings and an integer cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        RequestFingerprint(hex::encode(Sha256::digest(&bytes)))
    }
}

/// The hex SHA-256 of a canonical request body, stored beside its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    /// A fingerprint read back from the database.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_is_1_to_255_visible_ascii() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("0190b6b8-7c5e-7cc2-9a51-3d1f1c2a4b5e").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("tab\t").is_err());
        assert!(IdempotencyKey::parse("clé").is_err());
    }

    #[test]
    fn amount_is_bounded_and_currency_shaped() {
        assert_eq!(Amount::new(1, "USD").map(|a| a.cents()), Ok(1));
        assert!(Amount::new(1_000_000, "EUR").is_ok());
        assert!(Amount::new(0, "USD").is_err());
        assert!(Amount::new(-5, "USD").is_err());
        assert!(Amount::new(1_000_001, "USD").is_err());
        assert!(Amount::new(100, "usd").is_err());
        assert!(Amount::new(100, "US").is_err());
        assert!(Amount::new(100, "USDT").is_err());
        assert!(Amount::new(100, "ÜSD").is_err());
    }

    #[test]
    fn ids_are_1_to_64_characters() {
        assert!(UserId::parse("u1").is_ok());
        assert!(UserId::parse(&"é".repeat(64)).is_ok());
        assert!(UserId::parse("").is_err());
        assert!(CourseId::parse(&"c".repeat(65)).is_err());
        assert!(PaymentId::parse("0190b6b8-7c5e-7cc2-9a51-3d1f1c2a4b5e").is_ok());
        for bad in ["a\0b", "a\nb", "\u{7f}", "\u{85}"] {
            assert!(PaymentId::parse(bad).is_err(), "{bad:?}");
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn request(amount_cents: i64) -> ChargeRequest {
        ChargeRequest {
            user_id: "u1".into(),
            course_id: "c0001".into(),
            amount_cents,
            currency: "USD".into(),
        }
    }

    #[test]
    fn fingerprint_depends_on_every_value_only() {
        let a = NewCharge::parse(&request(4900)).expect("valid");
        let b = NewCharge::parse(&request(4900)).expect("valid");
        let c = NewCharge::parse(&request(4901)).expect("valid");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().as_str().len(), 64);
    }
}
