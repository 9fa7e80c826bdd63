//! Retrying a cloud call: throttled and transient failures are tried again
//! after a jittered, exponentially growing delay ("full jitter"), within a
//! total time budget; every other failure is final at once. The sleep is
//! injected, so the schedule is tested without waiting.
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
    /// The delays of one call add up to no more than this.
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

/// Runs `op` until it succeeds, fails for good, or the budget is spent.
/// `op` gets the attempt number (0-based).
pub fn retry<T>(
    policy: &Backoff,
    rng: &mut Rng,
    sleep: &mut dyn FnMut(Duration),
    mut op: impl FnMut(u32) -> Result<T, CloudError>,
) -> Result<T, CloudError> {
    let mut spent = Duration::ZERO;
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
        if spent + delay > policy.budget {
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
        sleep(delay);
        spent += delay;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> CloudError {
        CloudError {
            kind,
            message: "x".into(),
        }
    }

    #[test]
    fn throttling_is_retried_with_growing_jittered_delays() {
        let mut slept = Vec::new();
        let mut rng = Rng::new(3);
        let r = retry(&Backoff::default(), &mut rng, &mut |d| slept.push(d), |n| {
            if n < 4 {
                Err(err(ErrorKind::Throttled))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 4);
        assert_eq!(slept.len(), 4);
        for (i, d) in slept.iter().enumerate() {
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
            let r: Result<(), _> =
                retry(&Backoff::default(), &mut Rng::new(1), &mut |_| {}, |_| {
                    calls += 1;
                    Err(err(kind))
                });
            assert_eq!((r.unwrap_err().kind, calls), (kind, 1));
        }
    }

    #[test]
    fn the_budget_bounds_the_total_wait() {
        let mut total = Duration::ZERO;
        let policy = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            budget: Duration::from_secs(30),
        };
        let r: Result<(), _> = retry(&policy, &mut Rng::new(9), &mut |d| total += d, |_| {
            Err(err(ErrorKind::Transient))
        });
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.message.contains("gave up after"), "{}", e.message);
        assert!(total <= Duration::from_secs(30));
    }
}
