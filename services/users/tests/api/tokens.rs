//! `users::token` as the gateway uses it: what verifies and what does not.

use std::time::Duration;

use users::token::{AUDIENCE, Claims, ISSUER, TokenError, TokenKeys};

const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";
const HOUR: Duration = Duration::from_secs(3600);

fn keys() -> TokenKeys {
    TokenKeys::new(SECRET).expect("secret is long enough")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn claims() -> Claims {
    Claims::new("user-1", "Ada", now(), HOUR)
}

#[test]
fn an_issued_token_verifies() {
    let keys = keys();
    let token = keys.issue("user-1", "Ada", HOUR).expect("issued");
    let claims = keys.verify(&token).expect("verifies");
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.name, "Ada");
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.exp - claims.iat, 3600);
}

#[test]
fn a_tampered_signature_fails() {
    let keys = keys();
    let token = keys.issue("user-1", "Ada", HOUR).expect("issued");
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    // Change a character in the middle: the last one may only hold padding bits.
    let mut forged: Vec<char> = signature.chars().collect();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged = format!("{signed}.{}", forged.into_iter().collect::<String>());
    assert!(matches!(
        keys.verify(&forged),
        Err(TokenError::BadSignature)
    ));
}

#[test]
fn a_tampered_payload_fails() {
    let keys = keys();
    let token = keys.issue("user-1", "Ada", HOUR).expect("issued");
    let other = keys.issue("user-2", "Eve", HOUR).expect("issued");
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = other.split('.').nth(1).expect("payload");
    assert!(matches!(
        keys.verify(&parts.join(".")),
        Err(TokenError::BadSignature)
    ));
}

#[test]
fn another_secret_fails() {
    let theirs = TokenKeys::new(b"someone-elses-secret-also-32-bytes-long").expect("keys");
    let token = theirs.issue("user-1", "Ada", HOUR).expect("issued");
    assert!(matches!(
        keys().verify(&token),
        Err(TokenError::BadSignature)
    ));
}

#[test]
fn the_wrong_audience_fails() {
    let keys = keys();
    let token = keys
        .sign(&Claims {
            aud: "some-other-platform".to_owned(),
            ..claims()
        })
        .expect("signed");
    assert!(matches!(
        keys.verify(&token),
        Err(TokenError::WrongAudience)
    ));
}

#[test]
fn the_wrong_issuer_fails() {
    let keys = keys();
    let token = keys
        .sign(&Claims {
            iss: "someone-else".to_owned(),
            ..claims()
        })
        .expect("signed");
    assert!(matches!(keys.verify(&token), Err(TokenError::WrongIssuer)));
}

#[test]
fn an_expired_token_fails_but_the_leeway_is_honoured() {
    let keys = keys();
    let long_expired = Claims {
        iat: now() - 2 * 3600,
        exp: now() - 3600,
        ..claims()
    };
    let token = keys.sign(&long_expired).expect("signed");
    assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));

    // Expired 5 s ago: within the 30 s allowed for clock skew.
    let just_expired = Claims {
        exp: now() - 5,
        ..claims()
    };
    let token = keys.sign(&just_expired).expect("signed");
    assert!(keys.verify(&token).is_ok());
}

#[test]
fn an_unsigned_token_fails() {
    let keys = keys();
    let token = keys.issue("user-1", "Ada", HOUR).expect("issued");
    let payload = token.split('.').nth(1).expect("payload");
    // {"alg":"none","typ":"JWT"}
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let unsigned = format!("{none_header}.{payload}.");
    assert!(matches!(
        keys.verify(&unsigned),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn garbage_fails() {
    let keys = keys();
    for garbage in ["", "abc", "a.b.c", "Bearer x.y.z"] {
        assert!(
            matches!(keys.verify(garbage), Err(TokenError::Malformed(_))),
            "{garbage:?}"
        );
    }
}

#[test]
fn short_secrets_are_refused() {
    assert!(matches!(
        TokenKeys::new(b"too-short"),
        Err(TokenError::SecretTooShort(9))
    ));
}

#[test]
fn debug_shows_no_secret() {
    let shown = format!("{:?}", keys());
    assert!(!shown.contains("a-test-secret"), "{shown}");
}
