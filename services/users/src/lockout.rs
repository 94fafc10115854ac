//! Password guessing, held back per account: a token bucket of failed
//! logins per email (GCRA, from the `governor` crate). `LOGIN_FAILURES_BURST`
//! failures at once, then one more each `LOGIN_FAILURE_REPLENISH`; while an
//! account's bucket is empty, `POST /sessions` answers 429
//! `too_many_attempts` with `Retry-After`, before any hashing, and a right
//! password does not get in either.
//!
//! - The key is the email normalised the way login looks accounts up
//!   (trimmed, lowercased), whether or not an account has it: an unknown
//!   email is held back exactly like a known one, so a 429 does not tell
//!   which emails have accounts.
//! - Only failures take from the bucket; a successful login neither takes
//!   nor refills. Not taking: the owner logging in from many devices is
//!   no attack. Not refilling: the attacker may own the password too
//!   (a leaked one, tried against the account together with guesses of a
//!   newer one), and a reset would hand them a fresh burst of guesses
//!   after each success; the bucket refills with time alone.
//! - A lockout is a nuisance the attacker can cause the owner (5 wrong
//!   passwords lock the account for about a minute); that is the price of
//!   holding guessing to about 1,440 a day per account, and it ends by
//!   itself. The gateway's per-address credentials limit keeps one client
//!   from locking many accounts quickly.
//! - Buckets live in this process's memory: N replicas allow N times the
//!   attempts (each has its own buckets), and a restart forgets them.
//!   Bounding that needs a shared store; per replica, memory is bounded by
//!   the accounts that failed recently ([`FailedLogins::sweeper`]).
//! - Attempts racing one another may all pass the check while one failure
//!   is left in the bucket; at most as many as run at once (each holds a
//!   hashing permit, `MAX_CONCURRENT_HASHES`) get through that way.

use std::{
    cell::Cell,
    fmt,
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

/// How often the buckets that have filled up again are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Failed logins per account; cheap to clone (one set of buckets).
#[derive(Clone)]
pub struct FailedLogins<C: Clock = DefaultClock> {
    /// `None`: disabled (`LOGIN_FAILURES_BURST=0`).
    limiter: Option<Arc<Limiter<C>>>,
}

/// One GCRA limiter over the per-account [`Buckets`].
type Limiter<C> = RateLimiter<Probe, Buckets, C, NoOpMiddleware<<C as Clock>::Instant>>;

impl FailedLogins {
    /// `burst` failures at once, then one each `replenish`; `burst` 0
    /// disables the limit.
    pub fn new(burst: u32, replenish: Duration) -> anyhow::Result<Self> {
        Self::with_clock(burst, replenish, DefaultClock::default())
    }
}

impl<C: Clock> FailedLogins<C> {
    pub fn with_clock(burst: u32, replenish: Duration, clock: C) -> anyhow::Result<Self> {
        let Some(burst) = NonZeroU32::new(burst) else {
            return Ok(Self { limiter: None });
        };
        let quota = Quota::with_period(replenish)
            .ok_or_else(|| anyhow::anyhow!("LOGIN_FAILURE_REPLENISH must be above 0"))?
            .allow_burst(burst);
        Ok(Self {
            limiter: Some(Arc::new(RateLimiter::new(quota, Buckets::default(), clock))),
        })
    }

    /// `Err(wait)` while `account`'s bucket is empty: how long until its
    /// next failure is allowed. Takes nothing from the bucket.
    pub fn check(&self, account: &str) -> Result<(), Duration> {
        self.take(account, false)
    }

    /// Counts a failed login against `account`.
    pub fn failed(&self, account: &str) {
        // Already empty: attempts that raced past `check` together; the
        // bucket stays empty, which is what matters.
        let _ = self.take(account, true);
    }

    fn take(&self, account: &str, consume: bool) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let probe = Probe {
            account: account.to_owned(),
            consume,
        };
        limiter
            .check_key(&probe)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Accounts holding a bucket now (full buckets count until swept).
    pub fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// Drops the buckets that have been full again for a period (their
    /// accounts' failures are forgiven) now.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl<C: Clock + Send + Sync + 'static> FailedLogins<C> {
    /// Sweeps every `every` for as long as a clone of `self` lives (spawn
    /// it): memory holds the accounts that failed lately, not every email
    /// ever tried.
    pub fn sweeper(&self, every: Duration) -> impl Future<Output = ()> + Send + 'static {
        let limiter: Option<Weak<_>> = self.limiter.as_ref().map(Arc::downgrade);
        async move {
            let Some(limiter) = limiter else {
                return;
            };
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

impl<C: Clock> fmt::Debug for FailedLogins<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the keys: they are emails.
        f.debug_struct("FailedLogins")
            .field("enabled", &self.limiter.is_some())
            .field("tracked", &self.tracked())
            .finish()
    }
}

/// A look at an account's bucket (`consume: false`) or a failure taken
/// from it.
///
/// `governor` only offers "take a cell if there is one"; checking before
/// the password is hashed, without taking, needs a look that leaves the
/// bucket as it was. The limiter runs its usual GCRA decision through
/// [`Buckets`], which stores the new state only when the probe consumes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Probe {
    account: String,
    consume: bool,
}

/// One bucket per account, shared by both kinds of [`Probe`].
#[derive(Debug, Default)]
struct Buckets(DashMapStateStore<String>);

impl StateStore for Buckets {
    type Key = Probe;

    fn measure_and_replace<T, F, E>(&self, probe: &Probe, decide: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if probe.consume {
            return self.0.measure_and_replace(&probe.account, decide);
        }
        // Read the bucket's state by offering a replacement that is always
        // refused; an account with no bucket is a full bucket (`None`), and
        // gets none created.
        let seen = Cell::new(None);
        if self.0.contains_key(&probe.account) {
            let _ =
                self.0
                    .measure_and_replace(&probe.account, |state| -> Result<((), Nanos), ()> {
                        seen.set(state);
                        Err(())
                    });
        }
        decide(seen.get()).map(|(verdict, _)| verdict)
    }
}

impl ShrinkableKeyedStateStore<Probe> for Buckets {
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

    fn limited(burst: u32) -> (FailedLogins<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let logins = FailedLogins::with_clock(burst, MINUTE, clock.clone()).unwrap();
        (logins, clock)
    }

    #[test]
    fn checking_takes_nothing() {
        let (logins, _) = limited(2);
        for _ in 0..10 {
            assert_eq!(logins.check("ada@example.com"), Ok(()));
        }
        // A look creates no bucket.
        assert_eq!(logins.tracked(), 0);
    }

    #[test]
    fn the_burst_of_failures_then_one_per_period() {
        let (logins, clock) = limited(5);
        for _ in 0..5 {
            assert_eq!(logins.check("ada@example.com"), Ok(()));
            logins.failed("ada@example.com");
        }
        let wait = logins.check("ada@example.com").unwrap_err();
        assert_eq!(wait, MINUTE);
        // Other accounts are not held back.
        assert_eq!(logins.check("bob@example.com"), Ok(()));

        clock.advance(Duration::from_secs(45));
        assert_eq!(
            logins.check("ada@example.com"),
            Err(Duration::from_secs(15))
        );
        clock.advance(Duration::from_secs(15));
        assert_eq!(logins.check("ada@example.com"), Ok(()));
        logins.failed("ada@example.com");
        assert!(logins.check("ada@example.com").is_err());
    }

    #[test]
    fn full_buckets_are_swept() {
        let (logins, clock) = limited(2);
        logins.failed("ada@example.com");
        assert_eq!(logins.tracked(), 1);
        logins.sweep();
        assert_eq!(logins.tracked(), 1, "not full yet");
        // `governor` drops a bucket one period after it is full again.
        clock.advance(2 * MINUTE);
        logins.sweep();
        assert_eq!(logins.tracked(), 0);
    }

    #[test]
    fn zero_burst_disables() {
        let (logins, _) = limited(0);
        for _ in 0..100 {
            logins.failed("ada@example.com");
        }
        assert_eq!(logins.check("ada@example.com"), Ok(()));
        assert!(FailedLogins::new(5, Duration::ZERO).is_err());
    }
}
