//! Debouncing "the startd's ad is missing". A negative observation is
//! weak: after a collector restart, startds come back over a few update
//! intervals (captured in `status_after_collector_restart`); an update can
//! be lost. So a startd counts as gone only after it has been absent from
//! every *successful* pool reading for a grace period, and never while the
//! collector itself is younger than that period. Pure; time is passed in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What we can say about a startd we have seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "seen", rename_all = "snake_case")]
pub enum Seen {
    Present,
    /// Absent since `since`, but not for long enough to act on.
    Missing {
        since: i64,
    },
    /// Absent from every reading for the grace period.
    Gone {
        since: i64,
    },
    /// Never seen.
    Never,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Sighting {
    last_seen: i64,
    missing_since: Option<i64>,
}

/// Startd presence across cycles, keyed by [`super::pool::Startd::key`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    grace: i64,
    /// When the pool was last read successfully: absence is measured up to
    /// the last reading, not up to the wall clock.
    last_reading: Option<i64>,
    seen: BTreeMap<String, Sighting>,
}

impl Presence {
    pub fn new(grace_secs: i64) -> Presence {
        Presence {
            grace: grace_secs,
            last_reading: None,
            seen: BTreeMap::new(),
        }
    }

    /// Records one pool reading. `present` is `None` when the pool could
    /// not be read: that says nothing about anyone. `collector_start` is
    /// `None` when unknown, which counts as young.
    pub fn record<'a>(
        &mut self,
        present: Option<impl IntoIterator<Item = &'a str>>,
        collector_start: Option<i64>,
        now: i64,
    ) {
        let Some(present) = present else { return };
        self.last_reading = Some(now);
        let mut here = std::collections::BTreeSet::new();
        for key in present {
            here.insert(key);
            let s = self.seen.entry(key.to_string()).or_default();
            s.last_seen = now;
            s.missing_since = None;
        }
        let collector_settled = collector_start.is_some_and(|t| now - t >= self.grace);
        if !collector_settled {
            return;
        }
        for (key, s) in self.seen.iter_mut() {
            if !here.contains(key.as_str()) && s.missing_since.is_none() {
                s.missing_since = Some(now);
            }
        }
    }

    /// As of the last successful reading.
    pub fn status(&self, key: &str) -> Seen {
        let now = self.last_reading.unwrap_or(i64::MIN);
        match self.seen.get(key) {
            None => Seen::Never,
            Some(Sighting {
                missing_since: None,
                ..
            }) => Seen::Present,
            Some(Sighting {
                missing_since: Some(since),
                ..
            }) if now - since >= self.grace => Seen::Gone { since: *since },
            Some(Sighting {
                missing_since: Some(since),
                ..
            }) => Seen::Missing { since: *since },
        }
    }

    /// Stops tracking a startd (its node is gone for good).
    pub fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.seen.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: i64 = 300;

    fn read(p: &mut Presence, keys: &[&str], collector_start: Option<i64>, now: i64) {
        p.record(Some(keys.iter().copied()), collector_start, now);
    }

    #[test]
    fn absence_becomes_gone_only_after_the_grace_period() {
        let mut p = Presence::new(GRACE);
        read(&mut p, &["a", "b"], Some(0), 1000);
        read(&mut p, &["a"], Some(0), 1060);
        assert_eq!(p.status("b"), Seen::Missing { since: 1060 });
        read(&mut p, &["a"], Some(0), 1359);
        assert_eq!(p.status("b"), Seen::Missing { since: 1060 });
        read(&mut p, &["a"], Some(0), 1360);
        assert_eq!(p.status("b"), Seen::Gone { since: 1060 });
        assert_eq!(p.status("a"), Seen::Present);
        assert_eq!(p.status("zzz"), Seen::Never);
    }

    #[test]
    fn coming_back_clears_the_absence() {
        let mut p = Presence::new(GRACE);
        read(&mut p, &["a"], Some(0), 1000);
        read(&mut p, &[], Some(0), 1100);
        read(&mut p, &["a"], Some(0), 1200);
        read(&mut p, &[], Some(0), 1300);
        read(&mut p, &[], Some(0), 1550);
        assert_eq!(p.status("a"), Seen::Missing { since: 1300 });
    }

    #[test]
    fn an_unreadable_pool_says_nothing() {
        let mut p = Presence::new(GRACE);
        read(&mut p, &["a"], Some(0), 1000);
        read(&mut p, &[], Some(0), 1100);
        // Unreadable for a long time: the absence is not measured by it.
        p.record(None::<Vec<&str>>, Some(0), 5000);
        assert_eq!(p.status("a"), Seen::Missing { since: 1100 });
    }

    #[test]
    fn a_young_or_unknown_collector_is_not_evidence_of_loss() {
        let mut p = Presence::new(GRACE);
        read(&mut p, &["a", "b"], Some(0), 1000);
        // The collector restarted at 1500: empty readings until it settles.
        read(&mut p, &[], Some(1500), 1510);
        read(&mut p, &[], None, 1790);
        assert_eq!(p.status("a"), Seen::Present);
        read(&mut p, &["a"], Some(1500), 1800);
        assert_eq!(p.status("b"), Seen::Missing { since: 1800 });
        read(&mut p, &["a"], Some(1500), 2100);
        assert_eq!(p.status("b"), Seen::Gone { since: 1800 });
    }
}
