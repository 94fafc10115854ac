//! Simulated latency with a long tail: a log-normal distribution given by
//! its median and 99th percentile, two numbers an operator can read off a
//! dashboard. Used by latency faults ([`crate::fault`]) and by services
//! that simulate a slow dependency (payments' card processor).

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution as _, LogNormal};

/// z-score of the 99th percentile of the standard normal distribution: a
/// log-normal with median `m` has p99 `m * exp(sigma * Z99)`.
const Z99: f64 = 2.326_347_874_040_841;

/// A log-normal latency distribution with a given median and p99.
#[derive(Debug, Clone, Copy)]
pub struct LogNormalLatency {
    /// Over seconds.
    seconds: LogNormal<f64>,
}

/// The median was zero, or above the p99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a log-normal latency needs a median above zero and at most its p99")]
pub struct InvalidLatency;

impl LogNormalLatency {
    /// The distribution whose median is `median` and 99th percentile
    /// `p99`. Equal values make it constant.
    pub fn new(median: Duration, p99: Duration) -> Result<Self, InvalidLatency> {
        if median.is_zero() || median > p99 {
            return Err(InvalidLatency);
        }
        // The median of a log-normal is e^mu and its p99 is
        // e^(mu + Z99 * sigma).
        let median = median.as_secs_f64();
        let mu = median.ln();
        let sigma = (p99.as_secs_f64() / median).ln() / Z99;
        LogNormal::new(mu, sigma)
            .map(|seconds| Self { seconds })
            .map_err(|_| InvalidLatency)
    }

    /// One latency, at most `cap`: the tail is unbounded, and past some
    /// point a call is not slow but hung.
    pub fn sample(&self, rng: &mut impl Rng, cap: Duration) -> Duration {
        // A valid distribution draws neither NaN nor a negative value,
        // but an overflowing one is possible in the far tail.
        Duration::try_from_secs_f64(self.seconds.sample(rng))
            .unwrap_or(cap)
            .min(cap)
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng as _, rngs::StdRng};

    use super::*;

    const CAP: Duration = Duration::from_secs(300);

    /// The median and p99 of `n` samples, in milliseconds.
    fn percentiles(latency: &LogNormalLatency, n: usize) -> (f64, f64) {
        let mut rng = StdRng::seed_from_u64(7);
        let mut samples: Vec<Duration> = (0..n).map(|_| latency.sample(&mut rng, CAP)).collect();
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        (ms(samples[n / 2]), ms(samples[n * 99 / 100]))
    }

    #[test]
    fn samples_have_the_median_and_p99_asked_for() {
        for (median, p99) in [(40, 250), (50, 800), (5, 5000)] {
            let latency =
                LogNormalLatency::new(Duration::from_millis(median), Duration::from_millis(p99))
                    .unwrap();
            let (got_median, got_p99) = percentiles(&latency, 100_000);
            let (median, p99) = (median as f64, p99 as f64);
            assert!(
                (got_median / median - 1.0).abs() < 0.03,
                "median {got_median} ms, asked for {median}"
            );
            assert!(
                (got_p99 / p99 - 1.0).abs() < 0.08,
                "p99 {got_p99} ms, asked for {p99}"
            );
        }
    }

    #[test]
    fn equal_median_and_p99_is_a_constant() {
        let latency =
            LogNormalLatency::new(Duration::from_millis(20), Duration::from_millis(20)).unwrap();
        let (median, p99) = percentiles(&latency, 100);
        assert!((median - 20.0).abs() < 0.01, "{median}");
        assert!((p99 - 20.0).abs() < 0.01, "{p99}");
    }

    #[test]
    fn samples_stay_under_the_cap() {
        let latency =
            LogNormalLatency::new(Duration::from_millis(100), Duration::from_secs(100)).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let cap = Duration::from_millis(500);
        assert!((0..10_000).all(|_| latency.sample(&mut rng, cap) <= cap));
    }

    #[test]
    fn a_zero_median_or_a_p99_below_it_is_refused() {
        let ms = Duration::from_millis;
        assert_eq!(
            LogNormalLatency::new(ms(0), ms(10)).unwrap_err(),
            InvalidLatency
        );
        assert_eq!(
            LogNormalLatency::new(ms(50), ms(10)).unwrap_err(),
            InvalidLatency
        );
    }
}
