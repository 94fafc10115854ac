//! Values that parse, don't validate: once a handler holds an [`Id`] it is
//! well formed, so queries, outbound calls and logs never see an empty,
//! oversized or control-character id.

use std::fmt;

use mesh::BadRequest;

/// Longest id accepted, in characters. Every id this service stores or
/// forwards is a uuid (36) or a catalog id (`c0001-l01`); the bound keeps a
/// caller from filling rows, URLs and span attributes with megabytes.
pub const MAX_ID_CHARS: usize = 64;

/// An id from the outside world: a user, course, lesson or payment id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(String);

impl Id {
    /// Accepts 1 to [`MAX_ID_CHARS`] characters without control characters;
    /// `field` names the offender in the 422 `invalid_input` message.
    pub fn parse(field: &'static str, raw: String) -> Result<Self, BadRequest> {
        if raw.is_empty() {
            return Err(BadRequest::invalid(format!("{field} must not be empty")));
        }
        if raw.chars().count() > MAX_ID_CHARS {
            return Err(BadRequest::invalid(format!(
                "{field} is at most {MAX_ID_CHARS} characters"
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(BadRequest::invalid(format!(
                "{field} must not contain control characters"
            )));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Id> for String {
    fn from(id: Id) -> Self {
        id.0
    }
}

/// Share of `lesson_count` completed, 0–100 with one decimal.
///
/// Clamped to 100: the count is the course's at enrollment time, and a
/// course that later gains lessons (and the user completes them) must not
/// read as 110 % done. A course without lessons reads 0, not NaN.
pub fn percent_complete(completed: i64, lesson_count: i64) -> f64 {
    if lesson_count <= 0 {
        return 0.0;
    }
    let tenths = (completed.max(0) as f64 * 1000.0 / lesson_count as f64).round();
    (tenths / 10.0).min(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_printable() {
        assert!(Id::parse("user_id", "u-1".into()).is_ok());
        assert!(Id::parse("user_id", "x".repeat(MAX_ID_CHARS)).is_ok());
        // Characters, not bytes: 64 two-byte characters are fine.
        assert!(Id::parse("user_id", "é".repeat(MAX_ID_CHARS)).is_ok());
        for bad in [String::new(), "x".repeat(MAX_ID_CHARS + 1), "a\nb".into()] {
            let err = Id::parse("user_id", bad).unwrap_err();
            assert_eq!(err.status, http::StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(err.code, "invalid_input");
            assert!(err.message.starts_with("user_id "), "{}", err.message);
        }
    }

    #[test]
    fn percent_has_one_decimal_and_stays_in_range() {
        assert_eq!(percent_complete(0, 6), 0.0);
        assert_eq!(percent_complete(1, 6), 16.7);
        assert_eq!(percent_complete(2, 3), 66.7);
        assert_eq!(percent_complete(6, 6), 100.0);
        assert_eq!(percent_complete(7, 6), 100.0);
        assert_eq!(percent_complete(3, 0), 0.0);
    }
}
