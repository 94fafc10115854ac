//! The client's address, as the gateway saw it, vouched for to the
//! services it calls on the client's behalf.
//!
//! Behind the gateway, a service's socket shows the gateway's address
//! for every client. Users holds failed logins back per account *and
//! client address* (users' `lockout` module), so it must learn the client's
//! address, and must not believe whoever claims one: a caller that
//! reaches users directly could otherwise name the account owner's
//! address and lock them out again. So the gateway signs the address it
//! computed (the one its own rate limit keys on, honouring
//! `RATE_LIMIT_TRUST_FORWARDED_FOR`) into a header, and a service
//! believes that header only if the signature verifies with the token
//! secret every service already shares; otherwise it takes the
//! connection's peer address, which nobody can forge.
//!
//! The statement is a compact JWS (HS256, [`super::token::TokenKeys`]'
//! key) with its own issuer and audience, so it can never pass for an
//! access token nor an access token for it, and a lifetime of
//! [`LIFETIME`]: one replayed from a captured request (the deployment's
//! network is trusted for confidentiality, `docs/security.md`) is good
//! for a minute.
//!
//! An IPv6 client is its /64, which one host usually holds whole and
//! could otherwise walk through for a fresh address per request.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use http::{HeaderMap, HeaderName};
use jsonwebtoken::{Algorithm, Header, Validation, get_current_timestamp};
use serde::{Deserialize, Serialize};

use super::{TokenError, TokenKeys, token::LEEWAY};

/// The request header carrying the signed address.
pub const HEADER: HeaderName = HeaderName::from_static("learnsphere-client-address");
/// `iss` of the statement: only the gateway speaks for clients.
const ISSUER: &str = "learnsphere-gateway";
/// `aud` of the statement, unlike any access token's.
const AUDIENCE: &str = "learnsphere-client-address";
/// How long a statement is good for: it is made for one call, which the
/// gateway makes at once.
pub const LIFETIME: Duration = Duration::from_secs(60);

/// One client's address: an IPv4 address (also when mapped into IPv6),
/// or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

#[derive(Serialize, Deserialize)]
struct Statement {
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
    /// The address, as [`ClientAddress`]'s `Display` writes it.
    addr: String,
}

impl ClientAddress {
    /// The client `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(Ipv6Addr::from(
                    u128::from(v6) & !u128::from(u64::MAX),
                ))),
            },
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// A value for [`HEADER`] vouching for this address, signed with
    /// `keys` (a JWS: visible ASCII).
    pub fn attest(&self, keys: &TokenKeys) -> Result<String, TokenError> {
        let now = get_current_timestamp();
        let statement = Statement {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + LIFETIME.as_secs(),
            addr: self.to_string(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &statement,
            keys.encoding_key(),
        )
        .map_err(TokenError::Signing)
    }

    /// The address `headers` vouch for: `None` without [`HEADER`], or if
    /// it does not verify with `keys` (forged, expired, another kind of
    /// token, an address that does not parse).
    pub fn attested(keys: &TokenKeys, headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(&HEADER)?.to_str().ok()?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY.as_secs();
        let statement = jsonwebtoken::decode::<Statement>(value, keys.decoding_key(), &validation)
            .ok()?
            .claims;
        // A bounded lifetime, as for access tokens.
        let now = get_current_timestamp();
        let leeway = LEEWAY.as_secs();
        if statement.iat > now + leeway
            || statement.exp.saturating_sub(statement.iat) > LIFETIME.as_secs() + leeway
        {
            return None;
        }
        statement.addr.parse().ok().map(Self::of)
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"a-test-secret-that-is-32-bytes-long!").unwrap()
    }

    fn headers(value: impl AsRef<str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER.clone(),
            http::HeaderValue::try_from(value.as_ref()).unwrap(),
        );
        headers
    }

    #[test]
    fn an_ipv6_client_is_its_64_bit_prefix_and_ipv4_is_itself() {
        let a = ClientAddress::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddress::of("2001:db8:1:2:bbbb::2".parse().unwrap());
        let other = ClientAddress::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::");
        let v4 = ClientAddress::of("192.0.2.7".parse().unwrap());
        assert_eq!(ClientAddress::of("::ffff:192.0.2.7".parse().unwrap()), v4);
        assert_ne!(v4, ClientAddress::of("192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn a_signed_address_is_believed() {
        let keys = keys();
        for ip in ["203.0.113.9", "2001:db8:1:2::"] {
            let address = ClientAddress::of(ip.parse().unwrap());
            let value = address.attest(&keys).unwrap();
            assert_eq!(
                ClientAddress::attested(&keys, &headers(value)),
                Some(address)
            );
        }
    }

    #[test]
    fn anything_else_is_not() {
        let keys = keys();
        let address = ClientAddress::of("203.0.113.9".parse().unwrap());
        assert_eq!(ClientAddress::attested(&keys, &HeaderMap::new()), None);
        // A bare address, as a caller might try.
        assert_eq!(
            ClientAddress::attested(&keys, &headers("203.0.113.9")),
            None
        );
        // Signed with another secret.
        let theirs = TokenKeys::new(&[7u8; 32]).unwrap();
        let forged = address.attest(&theirs).unwrap();
        assert_eq!(ClientAddress::attested(&keys, &headers(forged)), None);
        // An access token is not a statement of address, and a statement
        // is not an access token.
        let token = keys.issue("u1", "Ada", Duration::from_secs(60)).unwrap();
        assert_eq!(ClientAddress::attested(&keys, &headers(token)), None);
        let statement = address.attest(&keys).unwrap();
        assert!(keys.verify(&statement).is_err());
        // Expired, or made to live long.
        let now = get_current_timestamp();
        for (iat, exp) in [(now - 600, now - 300), (now, now + 3600)] {
            let statement = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &Statement {
                    iss: ISSUER.into(),
                    aud: AUDIENCE.into(),
                    iat,
                    exp,
                    addr: address.to_string(),
                },
                keys.encoding_key(),
            )
            .unwrap();
            assert_eq!(ClientAddress::attested(&keys, &headers(statement)), None);
        }
    }
}
