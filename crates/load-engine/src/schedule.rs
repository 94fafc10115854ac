//! When an open-model executor's arrivals are due.
//!
//! A schedule is a piecewise-linear arrival rate `r(t)` over the
//! executor's duration: one constant segment for a constant arrival rate,
//! one segment per stage for a ramping one (each stage ramps linearly from
//! the previous target to its own, as k6's `ramping-arrival-rate` does).
//! The `i`-th arrival (from 0) is due at the `t` where the number of
//! arrivals so far, `N(t) = ∫₀ᵗ r`, reaches `i`: the first one at the
//! start, and as many in all as the area under the rate, rounded up.
//!
//! Every arrival time is computed from the executor's start, never from
//! the previous arrival, so rounding does not accumulate into drift over a
//! long run, and a scheduler that wakes late still knows exactly which
//! arrivals it owes.

use std::time::Duration;

/// One stage of a ramping arrival rate: ramp linearly to `target`
/// arrivals per second over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// One linear piece of the rate: `from` to `to` per second over
/// `[start, start + length)` (seconds from the executor's start).
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    length: f64,
    from: f64,
    to: f64,
    /// Arrivals due before this segment: `N(start)`.
    before: f64,
}

impl Segment {
    fn area(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.length
    }

    /// Seconds into the segment at which `n` more arrivals (counted from
    /// its start) are due; `n` is at most the segment's area.
    ///
    /// Solves `from·u + k·u²/2 = n` with `k = (to − from) / length`, in
    /// the form `u = 2n / (from + √(from² + 2kn))`, which stays exact for
    /// a flat segment (`k = 0`) and for a ramp from zero (`from = 0`),
    /// where the textbook form divides by zero.
    fn offset_of(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let k = (self.to - self.from) / self.length;
        let root = (self.from * self.from + 2.0 * k * n).max(0.0).sqrt();
        let u = 2.0 * n / (self.from + root);
        u.clamp(0.0, self.length)
    }

    fn rate_at(&self, u: f64) -> f64 {
        self.from + (self.to - self.from) * (u / self.length)
    }
}

/// The arrival times of one open-model executor.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalSchedule {
    segments: Vec<Segment>,
    duration: f64,
}

impl ArrivalSchedule {
    /// `rate` arrivals per second for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Self {
        Self::ramping(
            rate,
            &[Stage {
                duration,
                target: rate,
            }],
        )
    }

    /// Starting at `start_rate` per second, each stage in turn.
    pub fn ramping(start_rate: f64, stages: &[Stage]) -> Self {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut at, mut before, mut from) = (0.0, 0.0, start_rate.max(0.0));
        for stage in stages {
            let length = stage.duration.as_secs_f64();
            let to = stage.target.max(0.0);
            if length > 0.0 {
                let segment = Segment {
                    start: at,
                    length,
                    from,
                    to,
                    before,
                };
                before += segment.area();
                at += length;
                segments.push(segment);
            }
            // A zero-length stage is a step: the next one starts from its target.
            from = to;
        }
        Self {
            segments,
            duration: at,
        }
    }

    /// The area under the rate: arrivals the schedule asks for, before
    /// rounding up to a whole arrival.
    pub fn expected_arrivals(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.before + s.area())
    }

    /// How many arrivals are due in all.
    pub fn total_arrivals(&self) -> u64 {
        let area = self.expected_arrivals();
        // A hair of tolerance so that 2,000/s over 10 s is 20,000 arrivals,
        // not 20,001 because the area came out as 20000.000000001.
        (area - 1e-9).ceil().max(0.0) as u64
    }

    /// The mean rate the schedule asks for, per second.
    pub fn mean_rate(&self) -> f64 {
        if self.duration > 0.0 {
            self.expected_arrivals() / self.duration
        } else {
            0.0
        }
    }

    /// The rate asked for `at` into the schedule (0 outside it).
    pub fn rate_at(&self, at: Duration) -> f64 {
        let t = at.as_secs_f64();
        self.segments
            .iter()
            .find(|s| t >= s.start && t < s.start + s.length)
            .map_or(0.0, |s| s.rate_at(t - s.start))
    }

    /// The arrival times, from the schedule's start, in order.
    pub fn arrivals(&self) -> Arrivals<'_> {
        Arrivals {
            schedule: self,
            next: 0,
            total: self.total_arrivals(),
            segment: 0,
        }
    }
}

/// The arrival times of an [`ArrivalSchedule`]: each computed from the
/// start, in O(1) amortised (the segment only moves forward).
#[derive(Debug, Clone)]
pub(crate) struct Arrivals<'a> {
    schedule: &'a ArrivalSchedule,
    next: u64,
    total: u64,
    segment: usize,
}

impl Iterator for Arrivals<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next >= self.total {
            return None;
        }
        let n = self.next as f64;
        let segments = &self.schedule.segments;
        // The segment in which N(t) reaches n: the last whose start is due
        // at or before n and which has arrivals in it. A flat zero-rate
        // segment is skipped: nothing is ever due inside it.
        while self.segment + 1 < segments.len() && segments[self.segment + 1].before <= n {
            self.segment += 1;
        }
        let segment = segments.get(self.segment)?;
        let at = segment.start + segment.offset_of(n - segment.before);
        self.next += 1;
        Some(Duration::from_secs_f64(at.min(self.schedule.duration)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.total - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn stage(s: f64, target: f64) -> Stage {
        Stage {
            duration: secs(s),
            target,
        }
    }

    #[test]
    fn a_constant_rate_is_evenly_spaced_from_the_start() {
        let schedule = ArrivalSchedule::constant(2_000.0, secs(10.0));
        assert_eq!(schedule.total_arrivals(), 20_000);
        let times: Vec<_> = schedule.arrivals().collect();
        assert_eq!(times.len(), 20_000);
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[1], secs(0.0005));
        // Computed from the start, not by adding 0.5 ms 19,999 times.
        assert_eq!(times[19_999], secs(19_999.0 / 2_000.0));
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_fractional_area_rounds_up_to_whole_arrivals() {
        // 3 per second for 1.5 s: 4.5 arrivals due, at 0, 1/3, 2/3, 1.
        let schedule = ArrivalSchedule::constant(3.0, secs(1.5));
        assert_eq!(schedule.total_arrivals(), 5);
        let times: Vec<_> = schedule.arrivals().collect();
        assert_eq!(times.len(), 5);
        assert!((times[4].as_secs_f64() - 4.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_from_zero_follows_the_area_under_it() {
        // 0 → 100/s over 10 s: N(t) = 5t², 500 arrivals; the i-th at √(i/5).
        let schedule = ArrivalSchedule::ramping(0.0, &[stage(10.0, 100.0)]);
        assert_eq!(schedule.total_arrivals(), 500);
        let times: Vec<_> = schedule.arrivals().collect();
        assert_eq!(times.len(), 500);
        for (i, t) in times.iter().enumerate() {
            let expected = (i as f64 / 5.0).sqrt();
            assert!((t.as_secs_f64() - expected).abs() < 1e-9, "arrival {i}");
        }
        // Sparse at the start, dense at the end.
        assert!(times[1] - times[0] > times[499] - times[498]);
    }

    #[test]
    fn stages_ramp_up_hold_and_ramp_down() {
        // 0 → 100 over 2 s (100), hold 2 s (200), 100 → 0 over 2 s (100).
        let schedule = ArrivalSchedule::ramping(
            0.0,
            &[stage(2.0, 100.0), stage(2.0, 100.0), stage(2.0, 0.0)],
        );
        assert_eq!(Duration::from_secs_f64(schedule.duration), secs(6.0));
        assert_eq!(schedule.total_arrivals(), 400);
        let times: Vec<_> = schedule.arrivals().collect();
        assert_eq!(times.len(), 400);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(*times.last().unwrap() < secs(6.0));
        let in_hold = times
            .iter()
            .filter(|t| **t >= secs(2.0) && **t < secs(4.0))
            .count();
        assert_eq!(in_hold, 200);
        // The ramp down: N(4 + u) = 300 + 100u − 25u², so arrival 375 is at u = 1.
        assert!((times[375].as_secs_f64() - 5.0).abs() < 1e-9);
        assert!((schedule.rate_at(secs(5.0)) - 50.0).abs() < 1e-9);
        assert_eq!(schedule.rate_at(secs(7.0)), 0.0);
        assert!((schedule.mean_rate() - 400.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn a_pause_at_zero_rate_schedules_nothing_inside_it() {
        let schedule = ArrivalSchedule::ramping(
            10.0,
            &[
                stage(1.0, 10.0),
                stage(0.0, 0.0),
                stage(5.0, 0.0),
                stage(0.0, 10.0),
                stage(1.0, 10.0),
            ],
        );
        assert_eq!(schedule.total_arrivals(), 20);
        let times: Vec<_> = schedule.arrivals().collect();
        assert_eq!(times.len(), 20);
        assert!(times.iter().all(|t| *t < secs(1.0) || *t >= secs(6.0)));
        assert_eq!(times[10], secs(6.0));
    }

    #[test]
    fn an_empty_or_zero_schedule_has_no_arrivals() {
        assert_eq!(ArrivalSchedule::ramping(5.0, &[]).arrivals().count(), 0);
        assert_eq!(
            ArrivalSchedule::constant(0.0, secs(10.0))
                .arrivals()
                .count(),
            0
        );
        assert_eq!(
            ArrivalSchedule::constant(100.0, Duration::ZERO)
                .arrivals()
                .count(),
            0
        );
        assert_eq!(ArrivalSchedule::constant(0.0, secs(10.0)).mean_rate(), 0.0);
    }

    #[test]
    fn long_runs_do_not_drift() {
        // 1,000/s for an hour: the last arrival is exactly where it belongs.
        let schedule = ArrivalSchedule::constant(1_000.0, secs(3_600.0));
        let last = schedule.arrivals().last().unwrap();
        assert!((last.as_secs_f64() - 3_599.999).abs() < 1e-6);
    }
}
