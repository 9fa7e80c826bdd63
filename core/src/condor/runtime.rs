//! How long a job says it will run, read from its own ad: the planner
//! keeps a job off a node whose remaining life is shorter (the pilot's
//! hard stop would kill it).
//!
//! Read, in this order, the first that gives a number of seconds:
//! - `AllowedJobDuration` (HTCondor's `allowed_job_duration`, seconds),
//!   then the site conventions `MaxJobRuntime`, `JobDuration`, `MaxRuntime`
//!   (seconds) and `MaxWallTimeMins` (minutes, as CMS and OSG pilots use);
//!   each is evaluated in the job's ad, so an expression works too;
//! - a `PeriodicRemove` or `PeriodicHold` limit on the run time: a
//!   comparison `> N` or `>= N` (either way round) of a literal with
//!   `RemoteWallClockTime`, `ActivationDuration`, or a difference from
//!   `JobCurrentStartDate`, `JobStartDate` or `EnteredCurrentStatus`
//!   (`time() - JobCurrentStartDate > 3600`); the smallest such limit.
//!
//! A job that states none has no expected runtime: it may go anywhere.

use crate::classad::matching::with_value;
use crate::classad::{BinOp, ClassAd, Expr, Value};

const SECONDS: &[&str] = &[
    "AllowedJobDuration",
    "MaxJobRuntime",
    "JobDuration",
    "MaxRuntime",
];
const MINUTES: &str = "MaxWallTimeMins";
const LIMITS: &[&str] = &["PeriodicRemove", "PeriodicHold"];
/// Attributes that measure how long the job has run.
const RUN_CLOCKS: &[&str] = &["RemoteWallClockTime", "ActivationDuration"];
/// Attributes a run time is measured from (`time() - X`).
const RUN_STARTS: &[&str] = &[
    "JobCurrentStartDate",
    "JobStartDate",
    "EnteredCurrentStatus",
];

/// The attributes read, for `condor_q -attributes`.
pub fn attributes() -> impl Iterator<Item = &'static str> {
    SECONDS
        .iter()
        .copied()
        .chain([MINUTES])
        .chain(LIMITS.iter().copied())
}

/// The stated run time as a startd reads it from the job (`TARGET`), for
/// the pilot's `START`: the duration attributes `expected` reads, in its
/// order, else 0 (a policy limit is the schedd's, not the startd's).
pub fn target_expr() -> String {
    let mut e = format!("ifThenElse(TARGET.{MINUTES} isnt undefined, TARGET.{MINUTES} * 60, 0)");
    for name in SECONDS.iter().rev() {
        e = format!("ifThenElse(TARGET.{name} isnt undefined, TARGET.{name}, {e})");
    }
    e
}

/// The job's expected runtime in seconds, if its ad states one.
pub fn expected(ad: &ClassAd, now: i64) -> Option<i64> {
    let seconds = |name: &str| {
        let expr = ad.get(name.as_bytes())?;
        with_value(expr, Some(ad), None, now, |v| match v {
            Ok(Value::Int(i)) if *i > 0 => Some(*i),
            Ok(Value::Real(r)) if r.is_finite() && *r > 0.0 && *r < 1e15 => Some(r.ceil() as i64),
            _ => None,
        })
    };
    SECONDS
        .iter()
        .find_map(|n| seconds(n))
        .or_else(|| seconds(MINUTES).map(|m| m.saturating_mul(60)))
        .or_else(|| {
            LIMITS
                .iter()
                .filter_map(|n| ad.get(n.as_bytes()))
                .filter_map(limit)
                .min()
        })
}

/// The smallest run-time limit a policy expression states.
fn limit(e: &Expr) -> Option<i64> {
    let mut found = None;
    walk(e, &mut |e| {
        if let Expr::Binary(op, sides) = e {
            let (l, r) = (&sides.0, &sides.1);
            let n = match op {
                BinOp::Gt | BinOp::Ge if measures_run(l) => int(r),
                BinOp::Lt | BinOp::Le if measures_run(r) => int(l),
                _ => None,
            };
            if let Some(n) = n.filter(|n| *n > 0) {
                found = Some(found.map_or(n, |f: i64| f.min(n)));
            }
        }
    });
    found
}

fn walk(e: &Expr, f: &mut impl FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Unary(_, x) | Expr::Paren(x) => walk(x, f),
        Expr::Binary(_, sides) => {
            walk(&sides.0, f);
            walk(&sides.1, f);
        }
        Expr::Cond(parts) => {
            walk(&parts.0, f);
            walk(&parts.1, f);
            walk(&parts.2, f);
        }
        _ => {}
    }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(x) => unparen(x),
        other => other,
    }
}

fn int(e: &Expr) -> Option<i64> {
    match unparen(e) {
        Expr::Int(i) => Some(*i),
        Expr::Real(r) if r.is_finite() && *r < 1e15 => Some(r.ceil() as i64),
        _ => None,
    }
}

fn names(e: &Expr, set: &[&str]) -> bool {
    match unparen(e) {
        Expr::Attr(a) => set
            .iter()
            .any(|n| a.name.eq_ignore_ascii_case(n.as_bytes())),
        _ => false,
    }
}

/// `RemoteWallClockTime`, or `time() - JobCurrentStartDate` (or
/// `CurrentTime - …`).
fn measures_run(e: &Expr) -> bool {
    match unparen(e) {
        Expr::Binary(BinOp::Sub, sides) => names(&sides.1, RUN_STARTS),
        other => names(other, RUN_CLOCKS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classad::parse_ad;

    fn runtime(ad: &str) -> Option<i64> {
        expected(&parse_ad(ad.as_bytes()).unwrap(), 1_000_000)
    }

    #[test]
    fn condor_q_projects_every_attribute_read() {
        let args = crate::condor::queue::QueueQuery {
            schedd: "s",
            pool: None,
            constraint: "true",
            extra_attributes: &[],
        }
        .args();
        let projected = &args[args.iter().position(|a| a == "-attributes").unwrap() + 1];
        for a in attributes() {
            assert!(projected.split(',').any(|p| p == a), "{a}: {projected}");
        }
    }

    #[test]
    fn the_startds_view_reads_the_same_attributes_in_order() {
        assert_eq!(
            target_expr(),
            "ifThenElse(TARGET.AllowedJobDuration isnt undefined, TARGET.AllowedJobDuration, ifThenElse(TARGET.MaxJobRuntime isnt undefined, TARGET.MaxJobRuntime, ifThenElse(TARGET.JobDuration isnt undefined, TARGET.JobDuration, ifThenElse(TARGET.MaxRuntime isnt undefined, TARGET.MaxRuntime, ifThenElse(TARGET.MaxWallTimeMins isnt undefined, TARGET.MaxWallTimeMins * 60, 0)))))"
        );
        crate::classad::parse_expr(target_expr().as_bytes()).unwrap();
    }

    #[test]
    fn stated_durations_are_read_in_order() {
        assert_eq!(runtime("[AllowedJobDuration = 3600]"), Some(3600));
        assert_eq!(runtime("[MaxJobRuntime = 2 * 3600]"), Some(7200));
        assert_eq!(runtime("[JobDuration = 90.5]"), Some(91));
        assert_eq!(runtime("[MaxWallTimeMins = 45]"), Some(2700));
        assert_eq!(
            runtime("[AllowedJobDuration = 600; MaxWallTimeMins = 45]"),
            Some(600)
        );
        assert_eq!(runtime("[RequestCpus = 1]"), None);
        assert_eq!(runtime("[MaxJobRuntime = \"long\"]"), None);
        assert_eq!(runtime("[MaxJobRuntime = -5]"), None);
        assert_eq!(runtime("[MaxJobRuntime = undefined]"), None);
    }

    #[test]
    fn periodic_remove_limits_on_run_time_count() {
        assert_eq!(
            runtime("[PeriodicRemove = (JobStatus == 2) && (time() - JobCurrentStartDate > 7200)]"),
            Some(7200)
        );
        assert_eq!(
            runtime("[PeriodicHold = RemoteWallClockTime >= 1800 || NumJobStarts > 3]"),
            Some(1800)
        );
        assert_eq!(
            runtime("[PeriodicRemove = 5400 < (CurrentTime - EnteredCurrentStatus)]"),
            Some(5400)
        );
        assert_eq!(
            runtime(
                "[PeriodicRemove = RemoteWallClockTime > 9000; PeriodicHold = ActivationDuration > 3000]"
            ),
            Some(3000)
        );
        // Limits on something else are not run times.
        assert_eq!(runtime("[PeriodicRemove = NumJobStarts > 10]"), None);
        assert_eq!(runtime("[PeriodicRemove = ImageSize > 1000000]"), None);
    }
}
