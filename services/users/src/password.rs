//! Password hashing: Argon2id with OWASP's parameters, run off the async
//! workers and bounded in how many run at once.

use std::{fmt, num::NonZeroUsize, sync::Arc};

use argon2::{
    Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::{self, PasswordHash, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::domain::Password;

/// Memory per hash, in KiB (19 MiB).
///
/// The three costs are the first configuration of the OWASP Password
/// Storage Cheat Sheet for Argon2id (m=19456 KiB, t=2, p=1). They equal
/// argon2 0.5's defaults today; they are spelled out so that a dependency
/// upgrade cannot change them silently. Each stored hash records the
/// parameters it was made with (PHC string format), so raising them later
/// leaves existing hashes verifiable.
pub const M_COST_KIB: u32 = 19_456;
/// Passes over the memory.
pub const T_COST: u32 = 2;
/// Lanes: one, so one hash occupies one blocking thread.
pub const P_COST: u32 = 1;

/// Hashes and verifies passwords.
///
/// One hash costs tens of milliseconds of CPU, so it runs on tokio's
/// blocking pool (`spawn_blocking`) where it cannot stall the async
/// workers. It also holds 19 MiB, and the blocking pool grows to 512
/// threads, so a semaphore bounds how many hashes run at once (to the
/// number of CPUs by default: more would only queue inside the OS
/// scheduler, with their memory held); the rest wait their turn inside the
/// hash's span, where the wait is visible in the trace.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// The hash of a random password nobody knows, verified against when
    /// a login names no account: a missing account then costs the same
    /// time as a wrong password, so timing does not tell an attacker which
    /// emails have accounts.
    dummy_hash: Arc<str>,
}

/// A stored Argon2id hash (PHC string). Not a secret the way a password
/// is, but it lets an attacker guess offline, so `Debug` redacts it too.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedPassword(String);

impl HashedPassword {
    /// Wraps a hash read back from the database.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashedPassword([redacted])")
    }
}

/// Hashing did not produce an answer (never "the password was wrong").
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Argon2 failed, or a stored hash is not a valid PHC string.
    #[error("argon2: {0}")]
    Argon2(password_hash::Error),
    /// The blocking task panicked or was cancelled at shutdown.
    #[error("hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once. Computes
    /// the dummy hash, so it takes one hash's time.
    pub async fn new(max_concurrent: NonZeroUsize) -> Result<Self, HashError> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
            .map_err(|e| HashError::Argon2(e.into()))?;
        let mut hasher = Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(max_concurrent.get())),
            dummy_hash: Arc::from(""),
        };
        let unguessable = SaltString::generate(&mut OsRng);
        let dummy = hasher.run_hash(unguessable.as_str().to_owned()).await?;
        hasher.dummy_hash = dummy.0.into();
        Ok(hasher)
    }

    /// Hashes a new password with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<HashedPassword, HashError> {
        self.run_hash(password.expose().to_owned()).await
    }

    /// Whether `password` matches `stored`. With no stored hash (no such
    /// account) it verifies against the dummy hash, spending the same
    /// time, and answers `false`.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<&HashedPassword>,
    ) -> Result<bool, HashError> {
        let (phc, account_exists) = match stored {
            Some(hash) => (hash.0.clone(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let argon2 = self.argon2.clone();
        let matches = self
            .blocking(tracing::info_span!("argon2id verify"), move || {
                let hash = PasswordHash::new(&phc)?;
                match argon2.verify_password(password.as_bytes(), &hash) {
                    Ok(()) => Ok(true),
                    Err(password_hash::Error::Password) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(matches && account_exists)
    }

    async fn run_hash(&self, password: String) -> Result<HashedPassword, HashError> {
        let argon2 = self.argon2.clone();
        let span = tracing::info_span!(
            "argon2id hash",
            argon2.m_cost_kib = M_COST_KIB,
            argon2.t_cost = T_COST,
            argon2.p_cost = P_COST,
        );
        self.blocking(span, move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| HashedPassword(hash.to_string()))
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free, all inside
    /// `span` (a child of the caller's span).
    ///
    /// The permit moves into the blocking task, so it is released when the
    /// work ends, not when the caller stops waiting: a client hanging up
    /// cannot let more hashes run than the bound.
    async fn blocking<T: Send + 'static>(
        &self,
        span: tracing::Span,
        work: impl FnOnce() -> Result<T, password_hash::Error> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .instrument(span.clone())
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(work)
        })
        .await?
        .map_err(HashError::Argon2)
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost_kib", &M_COST_KIB)
            .field("t_cost", &T_COST)
            .field("p_cost", &P_COST)
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(s: &str) -> Password {
        Password::parse(s.to_owned()).expect("valid password")
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(NonZeroUsize::MIN)
            .await
            .expect("hasher");
        let hash = hasher.hash(password("correct horse")).await.expect("hash");
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(&hash))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(&hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn salts_differ() {
        let hasher = PasswordHasher::new(NonZeroUsize::MIN)
            .await
            .expect("hasher");
        let a = hasher.hash(password("same password")).await.expect("hash");
        let b = hasher.hash(password("same password")).await.expect("hash");
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn missing_account_never_verifies() {
        let hasher = PasswordHasher::new(NonZeroUsize::MIN)
            .await
            .expect("hasher");
        assert!(
            !hasher
                .verify("anything".into(), None)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn corrupt_stored_hash_is_an_error_not_a_mismatch() {
        let hasher = PasswordHasher::new(NonZeroUsize::MIN)
            .await
            .expect("hasher");
        let corrupt = HashedPassword::from_stored("not a phc string".into());
        assert!(
            hasher
                .verify("anything".into(), Some(&corrupt))
                .await
                .is_err()
        );
    }
}
