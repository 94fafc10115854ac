//! Domain types that parse, don't validate: a value that is an [`Email`],
//! a [`DisplayName`] or a [`Password`] has passed its rules once, so nothing
//! downstream checks again and no code path can forget to.
//!
//! Emails and display names are Unicode as people type it, so two strings
//! that look the same can differ in code points. Both are normalised to
//! NFKC (Unicode Standard Annex #15), which maps compatibility variants to
//! the characters they stand for (fullwidth `Ａ` to `A`, `ﬁ` to `fi`,
//! superscripts to digits, the ideographic space to a space), and both
//! refuse the characters that are not seen at all: Default_Ignorable_Code_Point
//! (zero-width spaces and joiners, soft hyphens, tags...) and Bidi_Control
//! (the marks, embeddings, overrides and isolates that reorder text, the
//! "Trojan Source" characters). Without that, `ada@examp\u{200B}le.com`
//! or `ａda@example.com` was an account of its own beside
//! `ada@example.com`, and a name could read backwards. Property data and
//! normalisation come from ICU4X, so both follow one Unicode version.
//! Look-alikes across scripts (Cyrillic `а` for Latin `a`) remain distinct
//! code points and are not caught here (UTS #39 confusables would be the
//! next step).

use std::{borrow::Cow, fmt};

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::{
    CodePointSetData,
    props::{BidiControl, DefaultIgnorableCodePoint},
};

use crate::model::{LoginRequest, RegisterRequest};

/// Why a request field was rejected. Displays as `"{field} {reason}"`, so
/// the 422 message always names the field; `code` is the error's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct InvalidInput {
    /// The JSON field, as the client spelled it.
    pub field: &'static str,
    pub reason: String,
    /// [`InvalidInput::CODE`], or [`InvalidInput::INVISIBLE_CHARACTERS`].
    pub code: &'static str,
}

impl InvalidInput {
    /// A field that breaks its rule (length, shape, control characters).
    pub const CODE: &'static str = "invalid_input";
    /// A field holding a default-ignorable or bidi control character: a
    /// look-alike of another value, or text that reads otherwise than it
    /// is stored.
    pub const INVISIBLE_CHARACTERS: &'static str = "invisible_characters";

    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
            code: Self::CODE,
        }
    }

    fn invisible(field: &'static str, c: char) -> Self {
        Self {
            field,
            reason: format!(
                "must not contain invisible or text-direction characters (U+{:04X})",
                u32::from(c)
            ),
            code: Self::INVISIBLE_CHARACTERS,
        }
    }
}

/// `text` in Normalization Form KC.
fn nfkc(text: &str) -> Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfkc().normalize(text)
}

/// Whether `c` is not seen, or changes the order in which the text around
/// it is seen: Default_Ignorable_Code_Point or Bidi_Control.
fn is_invisible(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || CodePointSetData::new::<BidiControl>().contains(c)
}

/// An email as accounts are keyed by: NFKC, lowercased, trimmed. NFKC runs
/// again after lowercasing, which can leave a string that is no longer
/// normalised; the result is stable (folding it again changes nothing).
fn fold_email(raw: &str) -> String {
    let lower = nfkc(raw).to_lowercase();
    nfkc(&lower).trim().to_owned()
}

/// A normalised email address: NFKC, lowercased and trimmed, with no
/// invisible or text-direction characters (see the module's comment).
///
/// Deliberately loose. The only real test of an address is mail reaching
/// it, and RFC 5322 allows far more than a sign-up form should try to
/// parse; these rules catch typos and nonsense:
///
/// - at most [`Email::MAX_LEN`] bytes (RFC 5321 §4.5.3.1.3: a path is at
///   most 256 octets including the angle brackets);
/// - exactly one `@`, with a non-empty local part;
/// - a domain of at least two non-empty dot-separated labels;
/// - no whitespace or control characters;
/// - no default-ignorable or bidi control characters (422
///   `invisible_characters`).
///
/// The bound applies to the normalised form, which is what is stored;
/// input over four times that is refused before normalising.
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
        let too_long = || invalid(&format!("must be at most {} bytes", Self::MAX_LEN));
        if raw.len() > 4 * Self::MAX_LEN {
            return Err(too_long());
        }
        let email = fold_email(raw);
        if email.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(too_long());
        }
        if let Some(c) = email.chars().find(|&c| is_invisible(c)) {
            return Err(InvalidInput::invisible("email", c));
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

/// The name shown to other people, NFKC-normalised and trimmed: at most
/// [`DisplayName::MAX_CHARS`] characters both as sent and once
/// normalised (NFKC can lengthen a string: `ﷺ` is 18 characters), at
/// least one visible character, and no control characters (they would
/// break every page and log line the name is printed in; NUL cannot even
/// be stored in PostgreSQL `text`).
///
/// No bidi controls (a name must not reverse the text after it) and no
/// default-ignorable characters (a name must not look empty or hide
/// text), except those that change how the visible character beside them
/// is drawn, which real names and emoji need: ZWNJ and ZWJ (U+200C,
/// U+200D: Persian and Indic spelling, emoji sequences such as 👩‍💻) and
/// variation selectors (U+FE00–FE0F: the emoji form of ❤️, which phone
/// keyboards add; U+E0100–E01EF: the glyph variants Japanese family names
/// are registered with). They can make two names differ invisibly, but
/// display names are not unique and identify no one: two people may
/// already show the same name.
///
/// The bound as sent, surrounding spaces included, is the `maxLength` the
/// OpenAPI schema states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let length = || {
            InvalidInput::new(
                "display_name",
                format!(
                    "must be 1 to {} characters, not only spaces",
                    Self::MAX_CHARS
                ),
            )
        };
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(length());
        }
        let normalised = nfkc(raw);
        let name = normalised.trim();
        if name.chars().count() > Self::MAX_CHARS {
            return Err(length());
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "display_name",
                "must not contain control characters",
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|&c| is_invisible(c) && !Self::shapes_a_neighbour(c))
        {
            return Err(InvalidInput::invisible("display_name", c));
        }
        if !name
            .chars()
            .any(|c| !c.is_whitespace() && !Self::shapes_a_neighbour(c))
        {
            return Err(length());
        }
        Ok(Self(name.to_owned()))
    }

    /// The default-ignorable characters a name may hold: they change how
    /// the character beside them is drawn (see the type's comment).
    fn shapes_a_neighbour(c: char) -> bool {
        matches!(c, '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
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
    /// [`Email::parse`] does (NFKC, lowercased, trimmed), parsed or not,
    /// so unknown emails are held back like known ones and a look-alike
    /// spelling of an email counts toward the same account.
    pub account: String,
    pub password: Password,
}

impl TryFrom<LoginRequest> for LoginAttempt {
    type Error = InvalidInput;

    fn try_from(request: LoginRequest) -> Result<Self, Self::Error> {
        // Bounded before normalising, as sign-up does.
        let account = if request.email.len() > 4 * Email::MAX_LEN {
            request.email
        } else {
            fold_email(&request.email)
        };
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
    fn email_look_alikes_fold_to_one_address() {
        for look_alike in [
            "ada@example.com",
            "ADA@EXAMPLE.COM",
            // Fullwidth letters and at sign.
            "\u{FF21}da@example.com",
            "\u{FF41}\u{FF44}\u{FF41}\u{FF20}\u{FF45}xample.com",
            // The ideographic space is trimmed like any other.
            "\u{3000}ada@example.com",
        ] {
            assert_eq!(
                Email::parse(look_alike).expect(look_alike).as_str(),
                "ada@example.com",
                "{look_alike:?}"
            );
        }
        // A ligature and a superscript stand for plain letters and digits.
        assert_eq!(
            Email::parse("\u{FB01}n@example\u{B2}.com")
                .unwrap()
                .as_str(),
            "fin@example2.com"
        );
        // Non-Latin addresses stay as they are, composed (NFC ⊂ NFKC).
        assert_eq!(
            Email::parse("Jos\u{0065}\u{0301}@b\u{FC}cher.de")
                .unwrap()
                .as_str(),
            "jos\u{E9}@b\u{FC}cher.de"
        );
    }

    #[test]
    fn emails_with_invisible_or_direction_characters_are_refused() {
        for (raw, c) in [
            ("ada@examp\u{200B}le.com", 0x200B),   // zero width space
            ("a\u{200D}da@example.com", 0x200D),   // zero width joiner
            ("ada\u{00AD}@example.com", 0xAD),     // soft hyphen
            ("\u{FEFF}ada@example.com", 0xFEFF),   // BOM
            ("ada@exa\u{2060}mple.com", 0x2060),   // word joiner
            ("ada@moc.elpmaxe\u{202E}", 0x202E),   // right-to-left override
            ("ada\u{200F}@example.com", 0x200F),   // right-to-left mark
            ("ada\u{2066}@example.com", 0x2066),   // left-to-right isolate
            ("ada@exam\u{E0041}ple.com", 0xE0041), // tag character
        ] {
            let err = Email::parse(raw).expect_err(raw);
            assert_eq!(err.field, "email");
            assert_eq!(err.code, InvalidInput::INVISIBLE_CHARACTERS, "{raw:?}");
            assert!(err.reason.contains(&format!("U+{c:04X}")), "{err}");
        }
        // Bounded before any normalising.
        let err = Email::parse(&"\u{FF41}".repeat(400)).unwrap_err();
        assert_eq!(err.to_string(), "email must be at most 254 bytes");
    }

    #[test]
    fn folding_an_email_twice_changes_nothing() {
        for raw in [
            "\u{FF21}da@example.com",
            "\u{130}stanbul@example.com", // İ lowercases to i + U+0307
            "\u{1E9E}@example.com",       // ẞ
            "\u{212B}ngstr\u{F6}m@example.com", // the Ångström sign
            "\u{3392}@example.com",       // ㎒
        ] {
            let once = fold_email(raw);
            assert_eq!(fold_email(&once), once, "{raw:?}");
        }
    }

    #[test]
    fn display_names_are_normalised_and_invisible_characters_refused() {
        assert_eq!(
            DisplayName::parse("\u{FF21}da").unwrap().into_string(),
            "Ada"
        );
        assert_eq!(
            DisplayName::parse("\u{3000}Ada Lovelace\u{3000}")
                .unwrap()
                .into_string(),
            "Ada Lovelace"
        );
        for (raw, c) in [
            ("\u{202E}ecalevol ada", 0x202E),
            ("Ada\u{200B}", 0x200B),
            ("Ada\u{2067}", 0x2067),
            ("A\u{00AD}da", 0xAD),
            ("Ada\u{E0020}", 0xE0020),
        ] {
            let err = DisplayName::parse(raw).expect_err(raw);
            assert_eq!(
                (err.field, err.code),
                ("display_name", InvalidInput::INVISIBLE_CHARACTERS)
            );
            assert!(err.reason.contains(&format!("U+{c:04X}")), "{err}");
        }
        // What real names and emoji need.
        for ok in [
            "\u{639}\u{644}\u{6CC}\u{200C}\u{627}\u{6A9}\u{628}\u{631}", // Persian, with ZWNJ
            "\u{1F469}\u{200D}\u{1F4BB} Ada",                            // 👩‍💻
            "\u{2764}\u{FE0F} Ada",                                      // ❤️
            "\u{845B}\u{E0100}\u{98FE}", // 葛󠄀飾, a registered variant
        ] {
            assert_eq!(DisplayName::parse(ok).expect(ok).into_string(), ok);
        }
        // Nothing visible is not a name.
        for blank in ["\u{200D}", " \u{FE0F} ", "\u{200C}\u{200D}"] {
            assert_eq!(
                DisplayName::parse(blank).expect_err(blank).code,
                InvalidInput::CODE
            );
        }
        // Bounded once normalised too: U+FDFA is 18 characters in NFKC.
        assert!(DisplayName::parse(&"\u{FDFA}".repeat(3)).is_ok());
        assert!(DisplayName::parse(&"\u{FDFA}".repeat(4)).is_err());
    }

    #[test]
    fn a_login_counts_look_alikes_toward_one_account() {
        let attempt = |email: &str| {
            LoginAttempt::try_from(LoginRequest {
                email: email.to_owned(),
                password: "long enough".to_owned(),
            })
            .unwrap()
        };
        let fullwidth = attempt("\u{FF21}DA@example.com");
        assert_eq!(fullwidth.account, "ada@example.com");
        assert_eq!(
            fullwidth.email.map(Email::into_string).as_deref(),
            Some("ada@example.com")
        );
        // An invisible character: no account can have it, a failed login.
        let hidden = attempt("ada@examp\u{200B}le.com");
        assert!(hidden.email.is_none());
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(
            DisplayName::parse("  Ann Lee ")
                .expect("valid")
                .into_string(),
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
