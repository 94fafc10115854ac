//! Password guessing, held back per account *and source*, under a higher
//! ceiling per account: token buckets of failed logins (GCRA, from the
//! `governor` crate).
//!
//! - **Per (account, source)**: `LOGIN_FAILURES_BURST` failures at once,
//!   then one more each `LOGIN_FAILURE_REPLENISH` (5, then one a minute).
//!   While the bucket is empty, `POST /sessions` from that source for that
//!   account answers 429 `too_many_attempts` with `Retry-After`, before
//!   any hashing, and a right password does not get in either.
//! - **Per account, over all sources**: `LOGIN_ACCOUNT_FAILURES_BURST`
//!   failures, then one each `LOGIN_ACCOUNT_FAILURE_REPLENISH` (50, then
//!   one every 10 s). While it is empty the account is being guessed at
//!   from many sources at once; then only sources the account has logged
//!   in from lately (`db::is_known_source`) may try, each still
//!   within its own bucket, and every other source gets the 429.
//!
//! Why the source is in the key. Keyed on the account alone, five wrong
//! passwords from anyone locked the owner out: their right password got
//! 429 for a minute, renewable forever by one request a minute from a
//! stranger. Keyed on (account, source), the stranger empties only their
//! own bucket. The other way out, letting the right password through
//! after a growing delay, was rejected: a delay slows nothing that runs in
//! parallel unless attempts on an account are queued one at a time, and
//! then the owner waits behind the attacker's queue, which is the lockout
//! again; it also holds a connection open per attempt.
//!
//! Why a ceiling per account, and why it spares known sources. Per
//! (account, source) alone, an attacker with N addresses makes N times
//! the guesses. The ceiling holds a distributed attack to about 50 at
//! once and 8,640 a day per account, instead of 1,440 a day per address.
//! When it is reached the attacker's sources and an owner on a network
//! they never used before look the same (the password is not checked, so
//! nothing tells them apart); an owner at a source they logged in from in
//! the last 30 days is told apart, and keeps their own bucket whatever
//! the rest of the internet does. This is the device-cookie idea of
//! OWASP's authentication guidance, with the client address for the
//! device: an owner on a new network during an attack on their account
//! waits for it to subside (or logs in from home). The ceiling is 10
//! sources' bursts, so a family or an office sharing an account, and the
//! owner's own typos, never come near it.
//!
//! What a source is. Through the gateway, the client address it computed
//! for its rate limit (an IPv6 client by its /64), signed
//! ([`mesh::auth::client_address`]): users believes no unsigned header.
//! Without a valid signature (a caller reaching users directly), the
//! connection's peer address, which the caller cannot choose.
//!
//! The rest is as before:
//! - The account key is the email normalised the way login looks accounts
//!   up (NFKC, lowercased, trimmed), whether or not an account has it: an
//!   unknown email is held back exactly like a known one, so a 429 does
//!   not tell which emails have accounts.
//! - Only failures take from the buckets; a successful login neither
//!   takes nor refills. Not taking: the owner logging in from many
//!   devices is no attack. Not refilling: the attacker may own the
//!   password too (a leaked one, tried against the account together with
//!   guesses of a newer one), and a reset would hand them a fresh burst
//!   of guesses after each success; the buckets refill with time alone.
//! - Buckets live in this process's memory: N replicas allow N times the
//!   attempts (each has its own buckets), and a restart forgets them.
//!   Memory holds the (account, source) pairs and accounts that failed in
//!   the last few minutes ([`FailedLogins::sweeper`]); the gateway's
//!   credentials limit (60 a minute per address) bounds how fast one
//!   address adds pairs.
//! - Attempts racing one another may all pass the check while one failure
//!   is left in a bucket; at most as many as run at once (each holds a
//!   hashing permit, `MAX_CONCURRENT_HASHES`) get through that way.

use std::{
    cell::Cell,
    fmt,
    hash::Hash,
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    nanos::Nanos,
    state::{
        StateStore,
        keyed::{DashMapStateStore, ShrinkableKeyedStateStore},
    },
};
use mesh::auth::ClientAddress;

/// How often the buckets that have filled up again are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Where a login attempt comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The client's address: vouched for by the gateway, or else the
    /// connection's peer.
    Address(ClientAddress),
    /// Neither is known (a request not made over a socket, as in router
    /// tests): one source for all of them.
    Unknown,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => address.fmt(f),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// The limits, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failures per (account, source) at once; 0 disables every limit.
    pub burst: u32,
    /// One more failure per (account, source) each this long.
    pub replenish: Duration,
    /// Failures per account, from all sources, at once; 0 disables the
    /// ceiling.
    pub account_burst: u32,
    /// One more failure per account each this long.
    pub account_replenish: Duration,
}

/// What [`FailedLogins::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Neither limit is reached.
    Allowed,
    /// This source has failed too often for this account: refuse.
    SourceLimited { retry_after: Duration },
    /// The account has failed too often from all sources: refuse unless
    /// the account has logged in from this source lately.
    AccountLimited { retry_after: Duration },
}

/// Failed logins per (account, source) and per account; cheap to clone
/// (one set of buckets).
#[derive(Clone)]
pub struct FailedLogins<C: Clock = DefaultClock> {
    /// `None`: disabled (`LOGIN_FAILURES_BURST=0`).
    limiters: Option<Arc<Limiters<C>>>,
}

struct Limiters<C: Clock> {
    per_source: Limiter<(String, Source), C>,
    /// `None`: no ceiling (`LOGIN_ACCOUNT_FAILURES_BURST=0`).
    per_account: Option<Limiter<String, C>>,
}

/// One GCRA limiter over [`Buckets`] keyed by `K`.
type Limiter<K, C> = RateLimiter<Probe<K>, Buckets<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

impl FailedLogins {
    pub fn new(limits: LoginLimits) -> anyhow::Result<Self> {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> FailedLogins<C> {
    pub fn with_clock(limits: LoginLimits, clock: C) -> anyhow::Result<Self> {
        let Some(burst) = NonZeroU32::new(limits.burst) else {
            return Ok(Self { limiters: None });
        };
        let quota = Quota::with_period(limits.replenish)
            .ok_or_else(|| anyhow::anyhow!("LOGIN_FAILURE_REPLENISH must be above 0"))?
            .allow_burst(burst);
        let per_account = match NonZeroU32::new(limits.account_burst) {
            None => None,
            Some(burst) => {
                let quota = Quota::with_period(limits.account_replenish)
                    .ok_or_else(|| {
                        anyhow::anyhow!("LOGIN_ACCOUNT_FAILURE_REPLENISH must be above 0")
                    })?
                    .allow_burst(burst);
                Some(RateLimiter::new(quota, Buckets::default(), clock.clone()))
            }
        };
        Ok(Self {
            limiters: Some(Arc::new(Limiters {
                per_source: RateLimiter::new(quota, Buckets::default(), clock),
                per_account,
            })),
        })
    }
}

impl<C: Clock> FailedLogins<C> {
    /// Whether `source` may try a password for `account` now. Takes
    /// nothing from any bucket.
    pub fn check(&self, account: &str, source: Source) -> Check {
        let Some(limiters) = &self.limiters else {
            return Check::Allowed;
        };
        if let Err(retry_after) = take(&limiters.per_source, (account.to_owned(), source), false) {
            return Check::SourceLimited { retry_after };
        }
        match &limiters.per_account {
            Some(limiter) => match take(limiter, account.to_owned(), false) {
                Ok(()) => Check::Allowed,
                Err(retry_after) => Check::AccountLimited { retry_after },
            },
            None => Check::Allowed,
        }
    }

    /// Counts a failed login by `source` against `account`.
    pub fn failed(&self, account: &str, source: Source) {
        let Some(limiters) = &self.limiters else {
            return;
        };
        // Already empty: attempts that raced past `check` together, or a
        // known source past the account's ceiling; the bucket stays
        // empty, which is what matters.
        let _ = take(&limiters.per_source, (account.to_owned(), source), true);
        if let Some(limiter) = &limiters.per_account {
            let _ = take(limiter, account.to_owned(), true);
        }
    }

    /// Buckets held now, of both kinds (full buckets count until swept).
    pub fn tracked(&self) -> usize {
        self.limiters.as_ref().map_or(0, |l| l.len())
    }

    /// Drops the buckets that have been full again for a period (their
    /// failures are forgiven) now.
    pub fn sweep(&self) {
        if let Some(limiters) = &self.limiters {
            limiters.sweep();
        }
    }
}

impl<C: Clock> Limiters<C> {
    fn len(&self) -> usize {
        self.per_source.len() + self.per_account.as_ref().map_or(0, |l| l.len())
    }

    fn sweep(&self) {
        self.per_source.retain_recent();
        self.per_source.shrink_to_fit();
        if let Some(limiter) = &self.per_account {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Looks at (`consume: false`) or takes a failure from `key`'s bucket:
/// `Err(wait)` while it is empty, how long until it holds one again.
fn take<K, C>(limiter: &Limiter<K, C>, key: K, consume: bool) -> Result<(), Duration>
where
    K: Clone + Hash + Eq,
    C: Clock,
{
    limiter
        .check_key(&Probe { key, consume })
        .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
}

impl<C: Clock + Send + Sync + 'static> FailedLogins<C> {
    /// Sweeps every `every` for as long as a clone of `self` lives (spawn
    /// it): memory holds the pairs and accounts that failed lately, not
    /// every email ever tried.
    pub fn sweeper(&self, every: Duration) -> impl Future<Output = ()> + Send + 'static {
        let limiters: Option<Weak<_>> = self.limiters.as_ref().map(Arc::downgrade);
        async move {
            let Some(limiters) = limiters else {
                return;
            };
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(limiters) = limiters.upgrade() else {
                    return;
                };
                limiters.sweep();
            }
        }
    }
}

impl<C: Clock> fmt::Debug for FailedLogins<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the keys: they are emails and addresses.
        f.debug_struct("FailedLogins")
            .field("enabled", &self.limiters.is_some())
            .field("tracked", &self.tracked())
            .finish()
    }
}

/// A look at a bucket (`consume: false`) or a failure taken from it.
///
/// `governor` only offers "take a cell if there is one"; checking before
/// the password is hashed, without taking, needs a look that leaves the
/// bucket as it was. The limiter runs its usual GCRA decision through
/// [`Buckets`], which stores the new state only when the probe consumes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Probe<K> {
    key: K,
    consume: bool,
}

/// One bucket per key, shared by both kinds of [`Probe`].
#[derive(Debug)]
struct Buckets<K: Clone + Hash + Eq>(DashMapStateStore<K>);

impl<K: Clone + Hash + Eq> Default for Buckets<K> {
    fn default() -> Self {
        Self(DashMapStateStore::default())
    }
}

impl<K: Clone + Hash + Eq> StateStore for Buckets<K> {
    type Key = Probe<K>;

    fn measure_and_replace<T, F, E>(&self, probe: &Probe<K>, decide: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if probe.consume {
            return self.0.measure_and_replace(&probe.key, decide);
        }
        // Read the bucket's state by offering a replacement that is always
        // refused; a key with no bucket is a full bucket (`None`), and gets
        // none created.
        let seen = Cell::new(None);
        if self.0.contains_key(&probe.key) {
            let _ = self
                .0
                .measure_and_replace(&probe.key, |state| -> Result<((), Nanos), ()> {
                    seen.set(state);
                    Err(())
                });
        }
        decide(seen.get()).map(|(verdict, _)| verdict)
    }
}

impl<K: Clone + Hash + Eq> ShrinkableKeyedStateStore<Probe<K>> for Buckets<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const ADA: &str = "ada@example.com";

    fn source(ip: &str) -> Source {
        Source::Address(ClientAddress::of(ip.parse().unwrap()))
    }

    fn limits(burst: u32, account_burst: u32) -> LoginLimits {
        LoginLimits {
            burst,
            replenish: MINUTE,
            account_burst,
            account_replenish: Duration::from_secs(10),
        }
    }

    fn limited(
        burst: u32,
        account_burst: u32,
    ) -> (FailedLogins<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let logins = FailedLogins::with_clock(limits(burst, account_burst), clock.clone()).unwrap();
        (logins, clock)
    }

    #[test]
    fn checking_takes_nothing() {
        let (logins, _) = limited(2, 10);
        for _ in 0..10 {
            assert_eq!(logins.check(ADA, source("192.0.2.1")), Check::Allowed);
        }
        // A look creates no bucket.
        assert_eq!(logins.tracked(), 0);
    }

    #[test]
    fn the_burst_of_failures_then_one_per_period_per_source() {
        let (logins, clock) = limited(5, 50);
        let attacker = source("192.0.2.66");
        let owner = source("198.51.100.7");
        for _ in 0..5 {
            assert_eq!(logins.check(ADA, attacker), Check::Allowed);
            logins.failed(ADA, attacker);
        }
        assert_eq!(
            logins.check(ADA, attacker),
            Check::SourceLimited {
                retry_after: MINUTE
            }
        );
        // The owner, elsewhere, is not held back; nor is another account
        // from the attacker's address.
        assert_eq!(logins.check(ADA, owner), Check::Allowed);
        assert_eq!(logins.check("bob@example.com", attacker), Check::Allowed);

        clock.advance(Duration::from_secs(45));
        assert_eq!(
            logins.check(ADA, attacker),
            Check::SourceLimited {
                retry_after: Duration::from_secs(15)
            }
        );
        clock.advance(Duration::from_secs(15));
        assert_eq!(logins.check(ADA, attacker), Check::Allowed);
        logins.failed(ADA, attacker);
        assert!(matches!(
            logins.check(ADA, attacker),
            Check::SourceLimited { .. }
        ));
    }

    #[test]
    fn many_sources_reach_the_account_ceiling() {
        let (logins, clock) = limited(5, 12);
        // Three addresses, four failures each: under their own bursts,
        // over the account's.
        for i in 1..=3 {
            for _ in 0..4 {
                logins.failed(ADA, source(&format!("192.0.2.{i}")));
            }
        }
        let fresh = source("203.0.113.1");
        assert_eq!(
            logins.check(ADA, fresh),
            Check::AccountLimited {
                retry_after: Duration::from_secs(10)
            }
        );
        // A source out of its own bucket is told so first.
        for _ in 0..5 {
            logins.failed(ADA, fresh);
        }
        assert!(matches!(
            logins.check(ADA, fresh),
            Check::SourceLimited { .. }
        ));
        // Other accounts are not affected, and the ceiling refills.
        assert_eq!(
            logins.check("bob@example.com", source("192.0.2.1")),
            Check::Allowed
        );
        clock.advance(Duration::from_secs(60));
        assert_eq!(logins.check(ADA, source("192.0.2.1")), Check::Allowed);
    }

    #[test]
    fn full_buckets_are_swept() {
        let (logins, clock) = limited(2, 10);
        logins.failed(ADA, source("192.0.2.1"));
        // One (account, source) bucket and one account bucket.
        assert_eq!(logins.tracked(), 2);
        logins.sweep();
        assert_eq!(logins.tracked(), 2, "not full yet");
        // `governor` drops a bucket one period after it is full again.
        clock.advance(2 * MINUTE);
        logins.sweep();
        assert_eq!(logins.tracked(), 0);
    }

    #[test]
    fn zero_bursts_disable() {
        let (logins, _) = limited(0, 10);
        for _ in 0..100 {
            logins.failed(ADA, source("192.0.2.1"));
        }
        assert_eq!(logins.check(ADA, source("192.0.2.1")), Check::Allowed);
        assert_eq!(logins.tracked(), 0);
        // No ceiling: many sources never reach one.
        let (logins, _) = limited(5, 0);
        for i in 1..=50 {
            for _ in 0..5 {
                logins.failed(ADA, source(&format!("192.0.2.{i}")));
            }
        }
        assert_eq!(logins.check(ADA, source("203.0.113.1")), Check::Allowed);
        assert!(
            FailedLogins::new(LoginLimits {
                replenish: Duration::ZERO,
                ..limits(5, 10)
            })
            .is_err()
        );
        assert!(
            FailedLogins::new(LoginLimits {
                account_replenish: Duration::ZERO,
                ..limits(5, 10)
            })
            .is_err()
        );
    }
}
