//! Domain types that parse, don't validate: a value that is an [`Email`],
//! a [`DisplayName`] or a [`Password`] has passed its rules once, so nothing
//! downstream checks again and no code path can forget to.

use std::fmt;

use crate::model::{LoginRequest, RegisterRequest};

/// Why a request field was rejected. Displays as `"{field} {reason}"`, so
/// the 422 message always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct InvalidInput {
    /// The JSON field, as the client spelled it.
    pub field: &'static str,
    pub reason: String,
}

impl InvalidInput {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A normalised email address: trimmed and lowercased.
///
/// Deliberately loose. The only real test of an address is mail reaching
/// it, and RFC 5322 allows far more than a sign-up form should try to
/// parse; these rules catch typos and nonsense:
///
/// - at most [`Email::MAX_LEN`] bytes (RFC 5321 §4.5.3.1.3: a path is at
///   most 256 octets including the angle brackets);
/// - exactly one `@`, with a non-empty local part;
/// - a domain of at least two non-empty dot-separated labels;
/// - no whitespace or control characters.
///
/// Lowercasing the local part is not what RFC 5321 §2.4 promises, but no
/// mainstream provider treats `Ann@` and `ann@` as different mailboxes,
/// and treating them as different accounts invites duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = |reason: &str| InvalidInput::new("email", reason);
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(invalid(&format!("must be at most {} bytes", Self::MAX_LEN)));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must contain an '@'"));
        };
        if domain.contains('@') {
            return Err(invalid("must contain exactly one '@'"));
        }
        if local.is_empty() {
            return Err(invalid("needs a name before the '@'"));
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(invalid(
                "needs a domain with a dot after the '@', like example.com",
            ));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name shown to other people: at most [`DisplayName::MAX_CHARS`]
/// characters as sent, at least one once trimmed, and no control
/// characters (they would break every page and log line the name is
/// printed in; NUL cannot even be stored in PostgreSQL `text`).
///
/// The bound counts the name as sent, surrounding spaces included, so it
/// is the `maxLength` the OpenAPI schema states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        if name.is_empty() || raw.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "display_name",
                format!(
                    "must be 1 to {} characters, not only spaces",
                    Self::MAX_CHARS
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "display_name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A new password: [`Password::MIN_CHARS`] to [`Password::MAX_CHARS`]
/// characters, and no other rule.
///
/// This is NIST SP 800-63B §5.1.1.2: length is what makes a password hard
/// to guess, composition rules ("one digit, one symbol") only make it hard
/// to remember, and every character, spaces included, is allowed. Length
/// counts Unicode characters, not bytes, so non-Latin passwords are not
/// penalised. The password is not trimmed: it is exactly what was typed.
/// The upper bound keeps one request from feeding the hasher megabytes.
/// NUL is refused: C-string interfaces (password managers, other
/// hashers' bindings) would cut the password there.
///
/// `Debug` prints `[redacted]` and there is no `Display`, so a password
/// cannot end up in a log line or on a span by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: String) -> Result<Self, InvalidInput> {
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(InvalidInput::new(
                "password",
                format!(
                    "must be {} to {} characters",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ));
        }
        if raw.contains('\0') {
            return Err(InvalidInput::new(
                "password",
                "must not contain NUL characters",
            ));
        }
        Ok(Self(raw))
    }

    /// The password itself, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A sign-up whose every field has been parsed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub display_name: DisplayName,
    pub password: Password,
}

impl TryFrom<RegisterRequest> for NewAccount {
    type Error = InvalidInput;

    /// Fields are checked in the order of the form, and the first bad one
    /// is reported.
    fn try_from(request: RegisterRequest) -> Result<Self, Self::Error> {
        Ok(Self {
            email: Email::parse(&request.email)?,
            display_name: DisplayName::parse(&request.display_name)?,
            password: Password::parse(request.password)?,
        })
    }
}

/// A login whose fields are within the bounds any account's could be.
///
/// A password out of [`Password`]'s bounds, or an email longer than
/// [`Email::MAX_LEN`], cannot belong to any account: they are 422 before
/// the account is looked at, so they neither cost a hash nor count as a
/// failure. An email that is otherwise not an address is a failed login
/// like a wrong password (401), so the answer for it is the answer for
/// an unknown account.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    /// The email as sign-up would have stored it; `None` when it does not
    /// parse, so no account has it.
    pub email: Option<Email>,
    /// Whose failures this attempt counts toward: the email normalised as
    /// [`Email::parse`] does, parsed or not, so unknown emails are held
    /// back like known ones.
    pub account: String,
    pub password: Password,
}

impl TryFrom<LoginRequest> for LoginAttempt {
    type Error = InvalidInput;

    fn try_from(request: LoginRequest) -> Result<Self, Self::Error> {
        let account = request.email.trim().to_lowercase();
        if account.len() > Email::MAX_LEN {
            return Err(InvalidInput::new(
                "email",
                format!("must be at most {} bytes", Email::MAX_LEN),
            ));
        }
        if account.contains('\0') {
            return Err(InvalidInput::new(
                "email",
                "must not contain spaces or control characters",
            ));
        }
        let password = Password::parse(request.password)?;
        Ok(Self {
            email: Email::parse(&account).ok(),
            account,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let email = Email::parse("  Ann.Lee@Example.COM \n").expect("valid");
        assert_eq!(email.as_str(), "ann.lee@example.com");
    }

    #[test]
    fn email_rules() {
        let long_local = "a".repeat(Email::MAX_LEN - "@example.com".len() + 1);
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@@example.com",
            "ann@b@example.com",
            "ann@example",
            "ann@.example.com",
            "ann@example.com.",
            "ann@example..com",
            "ann lee@example.com",
            "ann\u{7}@example.com",
            &format!("{long_local}@example.com"),
        ] {
            let err = Email::parse(bad).expect_err(bad);
            assert_eq!(err.field, "email", "{bad:?}");
        }
        let longest = "a".repeat(Email::MAX_LEN - "@example.com".len());
        assert!(Email::parse(&format!("{longest}@example.com")).is_ok());
        assert!(Email::parse("a@b.co").is_ok());
        assert!(Email::parse("first.last+tag@sub.example.org").is_ok());
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(
            DisplayName::parse("  Ann Lee ").expect("valid").as_str(),
            "Ann Lee"
        );
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        for bad in [
            "",
            "   ",
            "Ann\nLee",
            "\u{0}",
            "Ann\u{0}",
            &"x".repeat(65),
            &format!(" {} ", "x".repeat(63)),
        ] {
            let err = DisplayName::parse(bad).expect_err(bad);
            assert_eq!(err.field, "display_name");
        }
    }

    #[test]
    fn password_counts_characters_not_bytes() {
        assert!(Password::parse("ééééééé".to_owned()).is_err());
        assert!(Password::parse("éééééééé".to_owned()).is_ok());
        assert!(Password::parse("x".repeat(128)).is_ok());
        let err = Password::parse("x".repeat(129)).expect_err("too long");
        assert_eq!(err.to_string(), "password must be 8 to 128 characters");
        let err = Password::parse("nul\0 in the middle".to_owned()).expect_err("NUL");
        assert_eq!(err.field, "password");
        // Spaces count and are kept.
        assert_eq!(
            Password::parse("  spaced  ".to_owned())
                .expect("valid")
                .expose(),
            "  spaced  "
        );
    }

    #[test]
    fn a_login_is_keyed_by_its_normalised_email_parsed_or_not() {
        let attempt = |email: &str, password: &str| {
            LoginAttempt::try_from(LoginRequest {
                email: email.to_owned(),
                password: password.to_owned(),
            })
        };
        let ok = attempt(" Ada@Example.COM ", "long enough").expect("valid");
        assert_eq!(ok.account, "ada@example.com");
        assert_eq!(
            ok.email.map(Email::into_string).as_deref(),
            Some("ada@example.com")
        );
        let unparseable = attempt(" Not An Email ", "long enough").expect("a failed login");
        assert_eq!(unparseable.account, "not an email");
        assert!(unparseable.email.is_none());
        for (email, password, field) in [
            ("ada@example.com", "short", "password"),
            ("ada@example.com", &"x".repeat(129), "password"),
            ("ada@example.com", "long\0enough", "password"),
            ("ada\0@example.com", "long enough", "email"),
            (&"a".repeat(255), "long enough", "email"),
        ] {
            assert_eq!(attempt(email, password).expect_err(email).field, field);
        }
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::parse("hunter2hunter2".to_owned()).expect("valid");
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
