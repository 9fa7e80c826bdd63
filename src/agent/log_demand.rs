//! The schedd's `job_queue.log` as a source of demand between the
//! periodic `condor_q` readings: a new cloud job in the log is launched
//! for at once, without asking the schedd. `condor_q` stays the truth (the
//! next full cycle reads it) and the fallback: when the log cannot be read
//! or does not fit the last reading, the agent asks for a full cycle soon
//! instead.

use std::time::{Duration, Instant};

use crate::classad::{parse_expr, Expr};
use crate::condor::client::queue_constraint;
use crate::condor::job::JobReader;
use crate::condor::joblog_tail::JobLogTail;
use crate::condor::PoolSnapshot;
use crate::config::Config;

/// A burst of submits is one change: the log is read once it has been
/// quiet this long after a change...
pub const QUIET: Duration = Duration::from_millis(100);
/// ...or this long after the first change of a burst, whichever is first.
pub const AT_MOST: Duration = Duration::from_millis(500);

/// When to read the log: `QUIET` after the last change, at most `AT_MOST`
/// after the first unread one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debounce {
    due: Option<(Instant, Instant)>,
}

impl Debounce {
    /// The log changed at `t`.
    pub fn changed(&mut self, t: Instant) {
        let cap = self.due.map_or(t + AT_MOST, |(_, cap)| cap);
        self.due = Some(((t + QUIET).min(cap), cap));
    }

    /// When the log should be read, if it changed.
    pub fn due(&self) -> Option<Instant> {
        self.due.map(|(at, _)| at)
    }

    /// Whether it is time to read at `t` (and then forgets the changes).
    pub fn fire(&mut self, t: Instant) -> bool {
        match self.due {
            Some((at, _)) if t >= at => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

/// What reading the log found.
pub enum Found {
    /// No new idle cloud job.
    Nothing,
    /// New idle cloud jobs: the last reading with the log's queue in place
    /// of its schedd's.
    New { snapshot: PoolSnapshot, jobs: usize },
    /// The log cannot stand in for `condor_q` now (unreadable, a job it
    /// cannot read, no reading to fit it into): a full cycle should come.
    Fallback,
}

pub struct LogDemand {
    tail: JobLogTail,
    /// The cloud jobs `condor_q` is asked for, evaluated on the log's ads.
    constraint: Expr,
    /// Said once, when reading starts failing.
    failing: bool,
}

impl LogDemand {
    /// Follows the configured job log, if there is one.
    pub fn new(config: &Config) -> Option<LogDemand> {
        let path = config.pool.job_log.clone()?;
        let text = queue_constraint(config.pool.cloud_job_constraint.get_ref());
        match parse_expr(text.as_bytes()) {
            Ok(constraint) => Some(LogDemand {
                tail: JobLogTail::new(path),
                constraint,
                failing: false,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "pool.cloud_job_constraint cannot be read from the job log; polling only");
                None
            }
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.tail.path()
    }

    /// Reads what the log gained and compares it with `last`, the last
    /// full cycle's reading.
    pub fn poll(&mut self, last: Option<&PoolSnapshot>, now: i64) -> Found {
        let update = match self.tail.poll() {
            Ok(u) => u,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "cannot read the job log; condor_q only until it can be read");
                }
                self.failing = true;
                return Found::Fallback;
            }
        };
        if std::mem::take(&mut self.failing) {
            tracing::info!(path = %self.tail.path().display(), "the job log can be read again");
        }
        if update.touched.is_empty() {
            return Found::Nothing;
        }
        let Some(last) = last else {
            return Found::Fallback;
        };
        let log = self.tail.log();
        let schedd = log.job_ads().find_map(|(_, ad)| schedd_of(&ad));
        let jobs = match log.cloud_jobs(&self.constraint, &mut JobReader::new(), now) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "a job in the job log cannot be read; condor_q decides");
                return Found::Fallback;
            }
        };
        match last.with_log_queue(schedd.as_deref(), jobs) {
            Some((snapshot, jobs)) if jobs > 0 => Found::New { snapshot, jobs },
            Some(_) => Found::Nothing,
            None => Found::Fallback,
        }
    }
}

/// The schedd a job ad comes from: its `GlobalJobId` is
/// `<schedd>#<cluster>.<proc>#<qdate>`.
fn schedd_of(ad: &crate::classad::ClassAd) -> Option<String> {
    match ad.lookup("GlobalJobId")? {
        Expr::Str(s) => {
            let s = std::str::from_utf8(&s[..]).ok()?;
            s.split_once('#').map(|(schedd, _)| schedd.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_read_once_quiet_and_never_later_than_at_most() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        assert!(!d.fire(t0));
        d.changed(t0);
        assert_eq!(d.due(), Some(t0 + QUIET));
        // Changes keep coming every 60 ms: the read waits for quiet...
        for i in 1..20 {
            d.changed(t0 + Duration::from_millis(60 * i));
        }
        // ...but not past AT_MOST after the first change.
        assert_eq!(d.due(), Some(t0 + AT_MOST));
        assert!(!d.fire(t0 + AT_MOST - Duration::from_millis(1)));
        assert!(d.fire(t0 + AT_MOST));
        assert_eq!(d.due(), None);
        assert!(!d.fire(t0 + AT_MOST * 2));
    }

    #[test]
    fn the_schedd_comes_from_the_global_job_id() {
        let ad =
            crate::classad::parse_ad(br#"[GlobalJobId = "submit.example.org#12.3#1795300000"]"#)
                .unwrap();
        assert_eq!(schedd_of(&ad).as_deref(), Some("submit.example.org"));
        assert_eq!(schedd_of(&crate::classad::ClassAd::new()), None);
    }
}
