//! The schedd's `job_queue.log`, read incrementally. Pure: bytes in,
//! committed job state out; the file, its rotation and the watching are in
//! `joblog_tail`.
//!
//! The format, as `src/condor_utils/classad_log.cpp` writes it and the real
//! captures in `tests/data/condor/live/job_queue.log.*` show, is one
//! operation a line:
//!
//! | op  | line                                   |
//! |-----|----------------------------------------|
//! | 101 | `101 KEY MyType TargetType` new ad     |
//! | 102 | `102 KEY` destroy ad                   |
//! | 103 | `103 KEY Name value` set (old syntax)  |
//! | 104 | `104 KEY Name` delete attribute        |
//! | 105 | begin transaction                      |
//! | 106 | end transaction (text may follow)      |
//! | 107 | `107 SEQ CreationTimestamp T`: header  |
//!
//! Operations between 105 and 106 take effect together at 106; outside a
//! transaction they take effect at once. Keys: `0.0` is the queue header,
//! `0<cluster>.-1` a cluster ad (the leading zero is how the schedd writes
//! it), `<cluster>.-2` a cluster's private ad, `0.<n>` an owner record,
//! `<cluster>.<proc>` a job, whose ad inherits every attribute of its
//! cluster ad that it does not set itself.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};
use thiserror::Error;

use super::job::{BadJob, Job, JobId, JobReader};
use crate::classad::ast::Name;
use crate::classad::stream::parse_old_value;
use crate::classad::{ClassAd, Expr};

/// What a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Cluster(i64),
    Job(JobId),
    /// The header, owner records, cluster-private ads: kept, not used.
    Other(i64, i64),
}

impl Key {
    /// `0.0`, `0.2`, `042.-1`, `42.-2`, `42.7`.
    pub fn parse(text: &[u8]) -> Option<Key> {
        let s = std::str::from_utf8(text).ok()?;
        let (c, p) = s.split_once('.')?;
        let cluster: i64 = c.parse().ok()?;
        let proc: i64 = p.parse().ok()?;
        Some(match (cluster, proc) {
            (c, -1) if c > 0 && s.starts_with('0') => Key::Cluster(c),
            (c, p) if c > 0 && p >= 0 => Key::Job(JobId {
                cluster: c,
                proc: p,
            }),
            (c, p) => Key::Other(c, p),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    New(Key),
    Destroy(Key),
    Set(Key, Name, Expr),
    Delete(Key, Name),
}

/// A line that could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LogError {
    #[error("job_queue.log line {line}: {message}")]
    Malformed { line: usize, message: String },
}

/// The committed state of a job queue log, fed in arbitrary chunks.
#[derive(Debug, Default)]
pub struct JobLog {
    clusters: FxHashMap<i64, ClassAd>,
    jobs: BTreeMap<JobId, ClassAd>,
    others: FxHashSet<Key>,
    /// Inside 105..106: operations waiting for the 106.
    pending: Option<Vec<Op>>,
    /// Bytes of a line whose newline has not arrived yet.
    partial: Vec<u8>,
    line: usize,
    sequence: Option<i64>,
    created: Option<i64>,
    /// Bytes consumed, complete lines only.
    consumed: u64,
    failed: Option<LogError>,
}

/// Jobs touched by a chunk: their committed ads changed, appeared or went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// A new log began (a 107 header after the first line): everything
    /// before it was dropped, and every job counts as changed.
    pub reset: bool,
    pub jobs: FxHashSet<JobId>,
    /// Clusters whose ads changed (every job in them may have changed).
    pub clusters: FxHashSet<i64>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.reset && self.jobs.is_empty() && self.clusters.is_empty()
    }
}

fn malformed(line: usize, message: impl Into<String>) -> LogError {
    LogError::Malformed {
        line,
        message: message.into(),
    }
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = s.trim_ascii_start();
    match s.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

impl JobLog {
    pub fn new() -> JobLog {
        JobLog::default()
    }

    /// The log's sequence number (its 107 header), once read.
    pub fn sequence(&self) -> Option<i64> {
        self.sequence
    }

    pub fn created(&self) -> Option<i64> {
        self.created
    }

    /// Bytes consumed as complete lines; a partial last line is held back.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Whether a transaction has begun and not yet ended.
    pub fn in_transaction(&self) -> bool {
        self.pending.is_some()
    }

    /// Feeds the next bytes of the file. After an error the log stays
    /// failed (its state is no longer the schedd's) until rebuilt.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Changes, LogError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut changes = Changes::default();
        let mut rest = bytes;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(nl);
            rest = &tail[1..];
            let line_owned;
            let line: &[u8] = if self.partial.is_empty() {
                head
            } else {
                self.partial.extend_from_slice(head);
                line_owned = std::mem::take(&mut self.partial);
                &line_owned
            };
            self.line += 1;
            self.consumed += line.len() as u64 + 1;
            if let Err(e) = self.line_op(line, &mut changes) {
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
        self.partial.extend_from_slice(rest);
        Ok(changes)
    }

    fn line_op(&mut self, line: &[u8], changes: &mut Changes) -> Result<(), LogError> {
        let n = self.line;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            return Ok(());
        }
        let (code, rest) = split_word(line);
        let op = match code {
            b"105" => {
                if self.pending.is_some() {
                    return Err(malformed(n, "a transaction begins inside another"));
                }
                self.pending = Some(Vec::new());
                return Ok(());
            }
            b"106" => {
                let ops = self
                    .pending
                    .take()
                    .ok_or_else(|| malformed(n, "a transaction ends that never began"))?;
                for op in ops {
                    self.apply(op, changes);
                }
                return Ok(());
            }
            b"107" => {
                let (seq, rest) = split_word(rest);
                let seq: i64 = std::str::from_utf8(seq)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| malformed(n, "107 without a sequence number"))?;
                if n != 1 {
                    // The schedd starts every log with its header; one
                    // later on means a new log was written over this one.
                    // What follows is the whole new state.
                    self.clusters.clear();
                    self.jobs.clear();
                    self.others.clear();
                    self.pending = None;
                    changes.reset = true;
                    changes.jobs.clear();
                    changes.clusters.clear();
                }
                let (label, ts) = split_word(rest);
                if label == b"CreationTimestamp" {
                    self.created = std::str::from_utf8(ts.trim_ascii())
                        .ok()
                        .and_then(|s| s.parse().ok());
                }
                self.sequence = Some(seq);
                return Ok(());
            }
            b"101" | b"102" | b"103" | b"104" => {
                let (key_text, rest) = split_word(rest);
                let key = Key::parse(key_text).ok_or_else(|| {
                    malformed(
                        n,
                        format!("bad key {:?}", String::from_utf8_lossy(key_text)),
                    )
                })?;
                match code {
                    b"101" => Op::New(key),
                    b"102" => Op::Destroy(key),
                    b"104" => {
                        let (name, _) = split_word(rest);
                        if name.is_empty() {
                            return Err(malformed(n, "104 without an attribute name"));
                        }
                        Op::Delete(key, Name::from(name))
                    }
                    _ => {
                        let (name, value) = split_word(rest);
                        if name.is_empty() {
                            return Err(malformed(n, "103 without an attribute name"));
                        }
                        let expr = parse_old_value(value).map_err(|(_, message)| {
                            malformed(
                                n,
                                format!("attribute {}: {message}", String::from_utf8_lossy(name)),
                            )
                        })?;
                        Op::Set(key, Name::from(name), expr)
                    }
                }
            }
            other => {
                return Err(malformed(
                    n,
                    format!("unknown operation {:?}", String::from_utf8_lossy(other)),
                ))
            }
        };
        match &mut self.pending {
            Some(ops) => ops.push(op),
            None => self.apply(op, changes),
        }
        Ok(())
    }

    fn apply(&mut self, op: Op, changes: &mut Changes) {
        let key = match &op {
            Op::New(k) | Op::Destroy(k) | Op::Set(k, ..) | Op::Delete(k, _) => *k,
        };
        match key {
            Key::Cluster(c) => changes.clusters.insert(c),
            Key::Job(id) => changes.jobs.insert(id),
            Key::Other(..) => false,
        };
        match op {
            Op::New(Key::Cluster(c)) => {
                self.clusters.insert(c, ClassAd::new());
            }
            Op::New(Key::Job(id)) => {
                self.jobs.insert(id, ClassAd::new());
            }
            Op::New(k) => {
                self.others.insert(k);
            }
            Op::Destroy(Key::Cluster(c)) => {
                self.clusters.remove(&c);
            }
            Op::Destroy(Key::Job(id)) => {
                self.jobs.remove(&id);
            }
            Op::Destroy(k) => {
                self.others.remove(&k);
            }
            // As the schedd does: setting or deleting in an ad that does
            // not exist changes nothing.
            Op::Set(k, name, expr) => {
                if let Some(ad) = self.ad_mut(k) {
                    ad.insert(name, expr);
                }
            }
            Op::Delete(k, name) => {
                if let Some(ad) = self.ad_mut(k) {
                    ad.remove(&name);
                }
            }
        }
    }

    fn ad_mut(&mut self, k: Key) -> Option<&mut ClassAd> {
        match k {
            Key::Cluster(c) => self.clusters.get_mut(&c),
            Key::Job(id) => self.jobs.get_mut(&id),
            Key::Other(..) => None,
        }
    }

    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// A job's full ad: its cluster's attributes overlaid with its own.
    pub fn job_ad(&self, id: JobId) -> Option<ClassAd> {
        let own = self.jobs.get(&id)?;
        let mut ad = self.clusters.get(&id.cluster).cloned().unwrap_or_default();
        ad.update(own);
        if ad.get(b"ProcId").is_none() {
            ad.insert(&b"ProcId"[..], Expr::Int(id.proc));
        }
        if ad.get(b"ClusterId").is_none() {
            ad.insert(&b"ClusterId"[..], Expr::Int(id.cluster));
        }
        Some(ad)
    }

    /// Every job, in id order, with its full ad.
    pub fn job_ads(&self) -> impl Iterator<Item = (JobId, ClassAd)> + '_ {
        self.jobs
            .keys()
            .filter_map(|&id| self.job_ad(id).map(|ad| (id, ad)))
    }

    /// The jobs that `condor_q` would return for the agent's query: idle or
    /// running, and accepted by the cloud-job constraint (evaluated with
    /// the job as MY, as the schedd evaluates a constraint).
    pub fn cloud_jobs(
        &self,
        constraint: &Expr,
        reader: &mut JobReader,
        now: i64,
    ) -> Result<Vec<Job>, BadJob> {
        let mut jobs = Vec::new();
        for (_, ad) in self.job_ads() {
            let wanted =
                crate::classad::matching::with_value(constraint, Some(&ad), None, now, |v| {
                    matches!(v, Ok(crate::classad::Value::Bool(true)))
                });
            if !wanted {
                continue;
            }
            let job = reader.job(ad, now)?;
            if matches!(
                job.status,
                super::job::JobStatus::Idle | super::job::JobStatus::Running
            ) {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// The jobs a set of changes touched (a changed cluster touches all of
    /// its jobs; a reset, every job); jobs that no longer exist are left
    /// out.
    pub fn touched(&self, changes: &Changes) -> Vec<JobId> {
        if changes.reset {
            return self.jobs.keys().copied().collect();
        }
        let mut ids: Vec<JobId> = changes
            .jobs
            .iter()
            .copied()
            .filter(|id| self.jobs.contains_key(id))
            .collect();
        for &c in &changes.clusters {
            let range = JobId {
                cluster: c,
                proc: 0,
            }..JobId {
                cluster: c,
                proc: i64::MAX,
            };
            ids.extend(self.jobs.range(range).map(|(id, _)| *id));
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classad::unparse::to_text;

    const SYNTHETIC: &str = "107 3 CreationTimestamp 1700000000
101 0.0 Job Machine
103 0.0 NextClusterNum 43
101 042.-1 Job Machine
103 042.-1 ClusterId 42
103 042.-1 RequestMemory 8192
103 042.-1 WantCloud true
105
101 42.0 Job Machine
103 42.0 ProcId 0
103 42.0 JobStatus 1
101 42.1 Job Machine
103 42.1 ProcId 1
103 42.1 JobStatus 1
103 42.1 RequestMemory 16384
106
";

    fn attr(log: &JobLog, id: (i64, i64), name: &str) -> Option<String> {
        let ad = log.job_ad(JobId {
            cluster: id.0,
            proc: id.1,
        })?;
        ad.lookup(name).map(to_text)
    }

    #[test]
    fn keys_read_as_the_schedd_writes_them() {
        assert_eq!(Key::parse(b"042.-1"), Some(Key::Cluster(42)));
        assert_eq!(
            Key::parse(b"42.7"),
            Some(Key::Job(JobId {
                cluster: 42,
                proc: 7
            }))
        );
        assert_eq!(Key::parse(b"42.-2"), Some(Key::Other(42, -2)));
        assert_eq!(Key::parse(b"0.0"), Some(Key::Other(0, 0)));
        assert_eq!(Key::parse(b"0.2"), Some(Key::Other(0, 2)));
        assert_eq!(Key::parse(b"x.1"), None);
    }

    #[test]
    fn procs_inherit_from_their_cluster_and_override_it() {
        let mut log = JobLog::new();
        log.feed(SYNTHETIC.as_bytes()).unwrap();
        assert_eq!(log.sequence(), Some(3));
        assert_eq!(log.job_count(), 2);
        assert_eq!(
            attr(&log, (42, 0), "RequestMemory").as_deref(),
            Some("8192")
        );
        assert_eq!(
            attr(&log, (42, 1), "RequestMemory").as_deref(),
            Some("16384")
        );
        assert_eq!(attr(&log, (42, 1), "WantCloud").as_deref(), Some("true"));
    }

    #[test]
    fn a_transaction_takes_effect_only_when_it_ends() {
        let mut log = JobLog::new();
        let (before, after) = SYNTHETIC.split_at(SYNTHETIC.find("106\n").unwrap());
        let changes = log.feed(before.as_bytes()).unwrap();
        assert!(changes.jobs.is_empty());
        assert_eq!(log.job_count(), 0);
        assert!(log.in_transaction());
        let changes = log.feed(after.as_bytes()).unwrap();
        assert_eq!(changes.jobs.len(), 2);
        assert_eq!(log.job_count(), 2);
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_state() {
        let mut whole = JobLog::new();
        whole.feed(SYNTHETIC.as_bytes()).unwrap();
        let want: Vec<_> = whole.job_ads().collect();
        for cut in 0..SYNTHETIC.len() {
            let mut log = JobLog::new();
            log.feed(&SYNTHETIC.as_bytes()[..cut]).unwrap();
            log.feed(&SYNTHETIC.as_bytes()[cut..]).unwrap();
            assert_eq!(log.job_ads().collect::<Vec<_>>(), want, "cut at {cut}");
        }
    }

    #[test]
    fn a_partial_last_line_waits_for_its_newline() {
        let mut log = JobLog::new();
        log.feed(b"107 1 CreationTimestamp 5\n101 01.-1 Job Machine\n101 1.0 Job Machine\n103 1.0 JobStatus 1\n103 1.0 RequestMemory 20")
            .unwrap();
        assert_eq!(attr(&log, (1, 0), "RequestMemory"), None);
        let held_back = "103 1.0 RequestMemory 20".len() as u64;
        assert_eq!(
            log.consumed(),
            b"107 1 CreationTimestamp 5\n101 01.-1 Job Machine\n101 1.0 Job Machine\n103 1.0 JobStatus 1\n".len() as u64
        );
        assert!(held_back > 0);
        log.feed(b"48\n").unwrap();
        assert_eq!(attr(&log, (1, 0), "RequestMemory").as_deref(), Some("2048"));
    }

    #[test]
    fn removal_and_deletion() {
        let mut log = JobLog::new();
        log.feed(SYNTHETIC.as_bytes()).unwrap();
        let c = log
            .feed(b"105\n104 42.1 RequestMemory\n102 42.0\n106 #comment\n")
            .unwrap();
        assert_eq!(log.job_count(), 1);
        assert_eq!(
            attr(&log, (42, 1), "RequestMemory").as_deref(),
            Some("8192")
        );
        let touched = log.touched(&c);
        assert_eq!(
            touched,
            [JobId {
                cluster: 42,
                proc: 1
            }]
        );
    }

    #[test]
    fn a_second_header_starts_a_new_log() {
        let mut log = JobLog::new();
        log.feed(SYNTHETIC.as_bytes()).unwrap();
        let c = log
            .feed(b"107 4 CreationTimestamp 1700000500\n101 7.0 Job Machine\n")
            .unwrap();
        assert!(c.reset);
        assert_eq!(log.sequence(), Some(4));
        assert_eq!(
            log.touched(&c),
            [JobId {
                cluster: 7,
                proc: 0
            }]
        );
    }

    #[test]
    fn after_a_malformed_line_the_log_stays_failed() {
        let mut log = JobLog::new();
        assert!(log.feed(b"999\n").is_err());
        assert!(log.feed(SYNTHETIC.as_bytes()).is_err());
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let mut log = JobLog::new();
        let e = log
            .feed(b"107 1 CreationTimestamp 5\n103 1.0 X (1 +\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("job_queue.log line 2: attribute X:"),
            "{e}"
        );
        let e = JobLog::new().feed(b"999 1.0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "job_queue.log line 1: unknown operation \"999\""
        );
        let e = JobLog::new().feed(b"106\n").unwrap_err();
        assert!(e.to_string().contains("never began"));
    }
}
