//! Retrying a cloud call: throttled and transient failures are tried again
//! after a jittered, exponentially growing delay ("full jitter"), within a
//! total time budget; every other failure is final at once. The budget
//! counts the calls' own time as well as the waits between them (a call
//! that hangs for its whole timeout spends the budget as surely as a
//! sleep does). The clock and the sleep are injected, so the schedule is
//! tested without waiting.
//!
//! Retrying a launch is safe only because every launch carries an
//! idempotency token: a retry of a call that did take effect returns the
//! same instance instead of a second one.

use std::time::Duration;

use super::{CloudError, ErrorKind};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The first delay's upper bound.
    pub initial: Duration,
    /// No single delay is longer.
    pub max: Duration,
    /// The attempts of one call and the waits between them take no
    /// longer than this (a last attempt is not cut short).
    pub budget: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(20),
            budget: Duration::from_secs(60),
        }
    }
}

/// Whether a failure is worth another try.
pub fn retryable(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Throttled | ErrorKind::Transient)
}

/// The time a retry loop sees: a monotonic reading and a way to wait.
pub trait Clock {
    /// Time since an arbitrary fixed origin; never goes back.
    fn elapsed(&self) -> Duration;
    fn sleep(&mut self, d: Duration);
}

/// Runs `op` until it succeeds, fails for good, or the budget is spent.
/// `op` gets the attempt number (0-based).
pub fn retry<T>(
    policy: &Backoff,
    rng: &mut Rng,
    clock: &mut dyn Clock,
    mut op: impl FnMut(u32) -> Result<T, CloudError>,
) -> Result<T, CloudError> {
    let began = clock.elapsed();
    let mut attempt = 0u32;
    loop {
        let err = match op(attempt) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !retryable(err.kind) {
            return Err(err);
        }
        let cap = policy
            .initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(policy.max);
        let delay = cap.mul_f64(rng.unit());
        let spent = clock.elapsed().saturating_sub(began);
        if spent.saturating_add(delay) > policy.budget {
            return Err(CloudError {
                kind: err.kind,
                message: format!(
                    "{} (gave up after {} attempts in {:.1} s)",
                    err.message,
                    attempt + 1,
                    spent.as_secs_f64()
                ),
            });
        }
        clock.sleep(delay);
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Virtual time: sleeping and each call (`call_takes`) move it on.
    #[derive(Default)]
    struct Fake {
        now: Duration,
        slept: Vec<Duration>,
    }

    impl Clock for Fake {
        fn elapsed(&self) -> Duration {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.now += d;
            self.slept.push(d);
        }
    }

    fn err(kind: ErrorKind) -> CloudError {
        CloudError {
            kind,
            message: "x".into(),
        }
    }

    #[test]
    fn throttling_is_retried_with_growing_jittered_delays() {
        let mut clock = Fake::default();
        let mut rng = Rng::new(3);
        let r = retry(&Backoff::default(), &mut rng, &mut clock, |n| {
            if n < 4 {
                Err(err(ErrorKind::Throttled))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 4);
        assert_eq!(clock.slept.len(), 4);
        for (i, d) in clock.slept.iter().enumerate() {
            assert!(*d <= Duration::from_millis(500) * (1 << i), "{i}: {d:?}");
        }
    }

    #[test]
    fn final_failures_are_not_retried() {
        for kind in [
            ErrorKind::Capacity,
            ErrorKind::Quota,
            ErrorKind::Auth,
            ErrorKind::Invalid,
        ] {
            let mut calls = 0;
            let r: Result<(), _> = retry(
                &Backoff::default(),
                &mut Rng::new(1),
                &mut Fake::default(),
                |_| {
                    calls += 1;
                    Err(err(kind))
                },
            );
            assert_eq!((r.unwrap_err().kind, calls), (kind, 1));
        }
    }

    #[test]
    fn the_budget_bounds_the_total_wait() {
        let mut clock = Fake::default();
        let policy = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            budget: Duration::from_secs(30),
        };
        let r: Result<(), _> = retry(&policy, &mut Rng::new(9), &mut clock, |_| {
            Err(err(ErrorKind::Transient))
        });
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.message.contains("gave up after"), "{}", e.message);
        assert!(clock.now <= Duration::from_secs(30));
    }

    /// A provider that answers each call only after 25 s (a hung API and
    /// its client timeout): with a 60 s budget the call is given up after
    /// three attempts, not retried for as long as the sleeps alone allow
    /// (which counted only the waits: 11 attempts, 275 s of calls).
    #[test]
    fn the_budget_counts_the_calls_own_time() {
        let policy = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(100),
            budget: Duration::from_secs(60),
        };
        let clock = std::cell::RefCell::new(Fake::default());
        let mut calls = 0;
        struct Shared<'a>(&'a std::cell::RefCell<Fake>);
        impl Clock for Shared<'_> {
            fn elapsed(&self) -> Duration {
                self.0.borrow().now
            }
            fn sleep(&mut self, d: Duration) {
                self.0.borrow_mut().sleep(d)
            }
        }
        let r: Result<(), _> = retry(&policy, &mut Rng::new(5), &mut Shared(&clock), |_| {
            calls += 1;
            clock.borrow_mut().now += Duration::from_secs(25);
            Err(err(ErrorKind::Transient))
        });
        assert!(r.is_err());
        assert_eq!(calls, 3, "attempts");
        let total = clock.borrow().now;
        assert!(total <= Duration::from_secs(60 + 25), "{total:?}");
    }
}
