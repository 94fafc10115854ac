//! Password hashing: Argon2id with OWASP's parameters, run off the async
//! workers and bounded in how many run at once.

use std::{
    fmt,
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString, rand_core::OsRng},
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
///
/// Each running hash works in a 19 MiB buffer taken from a pool and put
/// back afterwards, so the service holds at most `max_concurrent` of them
/// for its lifetime. Allocating one per hash, as `argon2`'s
/// `PasswordHasher` does, let glibc keep a freed 19 MiB block in each of
/// the blocking threads' malloc arenas: users grew to 455 MiB under the
/// steady scenario (docs/performance.md).
#[derive(Clone)]
pub struct PasswordHasher {
    /// Argon2id v1.3 with these costs ([`M_COST_KIB`], [`T_COST`], [`P_COST`]).
    params: Params,
    permits: Arc<Semaphore>,
    /// Argon2 memory, one buffer per hash running now or before; never
    /// more than the permits.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
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
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.get())),
            memory: Arc::default(),
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
        let matches = self
            .blocking(tracing::info_span!("argon2id verify"), move |memory| {
                verify_with(password.as_bytes(), &PasswordHash::new(&phc)?, memory)
            })
            .await?;
        Ok(matches && account_exists)
    }

    async fn run_hash(&self, password: String) -> Result<HashedPassword, HashError> {
        let setup = (Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let span = tracing::info_span!(
            "argon2id hash",
            argon2.m_cost_kib = M_COST_KIB,
            argon2.t_cost = T_COST,
            argon2.p_cost = P_COST,
        );
        self.blocking(span, move |memory| {
            let salt = SaltString::generate(&mut OsRng);
            hash_with(setup, password.as_bytes(), salt.as_salt(), memory)
                .map(|hash| HashedPassword(hash.to_string()))
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free, with a
    /// buffer from the pool, all inside `span` (a child of the caller's
    /// span).
    ///
    /// The permit moves into the blocking task, so it is released when the
    /// work ends, not when the caller stops waiting: a client hanging up
    /// cannot let more hashes run than the bound.
    async fn blocking<T: Send + 'static>(
        &self,
        span: tracing::Span,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, password_hash::Error> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .instrument(span.clone())
            .await
            .expect("the semaphore is never closed");
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut memory = taken.unwrap_or_default();
            let result = span.in_scope(|| work(&mut memory));
            pool.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
            result
        })
        .await?
        .map_err(HashError::Argon2)
    }
}

/// What `argon2`'s `PasswordHasher::hash_password` does, in `memory`
/// (grown to the block count the parameters need) instead of a fresh
/// allocation.
fn hash_with<'a>(
    (algorithm, version, params): (Algorithm, Version, Params),
    password: &[u8],
    salt: Salt<'a>,
    memory: &mut Vec<Block>,
) -> password_hash::Result<PasswordHash<'a>> {
    let argon2 = Argon2::new(algorithm, version, params);
    let params = argon2.params();
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let hash = Output::init_with(output_len, |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut memory[..])?)
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(hash),
    })
}

/// What `argon2`'s `PasswordVerifier::verify_password` does, in `memory`:
/// hashes `password` with the stored hash's own algorithm, version,
/// parameters and salt, and compares the outputs in constant time.
fn verify_with(
    password: &[u8],
    stored: &PasswordHash<'_>,
    memory: &mut Vec<Block>,
) -> password_hash::Result<bool> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(password_hash::Error::PhcStringField);
    };
    let version = stored.version.map(Version::try_from).transpose()?;
    let setup = (
        Algorithm::try_from(stored.algorithm)?,
        version.unwrap_or_default(),
        Params::try_from(stored)?,
    );
    let computed = hash_with(setup, password, salt, memory)?;
    // `Output`'s equality is constant-time.
    Ok(computed.hash == Some(expected))
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

    /// Hashes stored before the pooled memory (argon2's own hasher), or
    /// with other costs, still verify; ours verify with argon2's verifier.
    #[tokio::test]
    async fn compatible_with_argon2s_own_phc_strings() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(NonZeroUsize::MIN)
            .await
            .expect("hasher");
        let cheaper = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8_192, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = cheaper.hash_password(b"old password", &salt).unwrap();
        let theirs = HashedPassword::from_stored(theirs.to_string());
        assert!(
            hasher
                .verify("old password".into(), Some(&theirs))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("old passwore".into(), Some(&theirs))
                .await
                .unwrap()
        );

        let ours = hasher.hash(password("new password")).await.expect("hash");
        let parsed = PasswordHash::new(ours.as_str()).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"new password", &parsed)
                .is_ok()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_reused_not_reallocated() {
        let hasher = PasswordHasher::new(NonZeroUsize::new(2).unwrap())
            .await
            .expect("hasher");
        let hashes = (0..6).map(|i| {
            let hasher = hasher.clone();
            async move { hasher.hash(password(&format!("password {i}"))).await }
        });
        for hash in futures::future::join_all(hashes).await {
            hash.expect("hash");
        }
        let memory = hasher.memory.lock().unwrap();
        assert!(
            (1..=2).contains(&memory.len()),
            "{} buffers held for 2 permits",
            memory.len()
        );
        let blocks = usize::try_from(M_COST_KIB).unwrap();
        assert!(memory.iter().all(|m| m.len() == blocks));
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
