//! A job as the planner sees it: identity, state and resource requests,
//! plus its ad for matchmaking.
//!
//! Requests are *evaluated* with the ClassAd engine, not read as text:
//! `RequestMemory` is often an expression on `MemoryUsage`. Jobs that
//! differ only in identity (cluster, proc, dates) share one ad, the way the
//! negotiator's autoclusters let 100,000 jobs cost a few hundred matches;
//! that sharing is also what keeps a large queue small in memory.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;
use thiserror::Error;

use crate::classad::ast::name_eq;
use crate::classad::matching::with_value;
use crate::classad::unparse::{unparse_into, Style};
use crate::classad::{ClassAd, Expr, Value};

/// `cluster.proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct JobId {
    pub cluster: i64,
    pub proc: i64,
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.cluster, self.proc)
    }
}

/// `JobStatus`, as HTCondor numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Idle = 1,
    Running = 2,
    Removed = 3,
    Completed = 4,
    Held = 5,
    TransferringOutput = 6,
    Suspended = 7,
}

impl JobStatus {
    pub fn from_code(code: i64) -> Option<JobStatus> {
        Some(match code {
            1 => JobStatus::Idle,
            2 => JobStatus::Running,
            3 => JobStatus::Removed,
            4 => JobStatus::Completed,
            5 => JobStatus::Held,
            6 => JobStatus::TransferringOutput,
            7 => JobStatus::Suspended,
            _ => return None,
        })
    }

    /// The letter `condor_q` shows.
    pub fn letter(self) -> char {
        match self {
            JobStatus::Idle => 'I',
            JobStatus::Running => 'R',
            JobStatus::Removed => 'X',
            JobStatus::Completed => 'C',
            JobStatus::Held => 'H',
            JobStatus::TransferringOutput => '>',
            JobStatus::Suspended => 'S',
        }
    }
}

/// What a job asks of a slot, evaluated in the job's own ad. `None` means
/// the request is undefined (the planner applies HTCondor's defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    pub cpus: Option<u64>,
    /// MiB
    pub memory: Option<u64>,
    /// KiB
    pub disk: Option<u64>,
    pub gpus: Option<u64>,
}

/// A job in a schedd's queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub status: JobStatus,
    pub qdate: i64,
    pub entered_status: i64,
    /// What it asks for, shared by every job that asks for the same thing.
    pub shape: Arc<JobShape>,
}

/// A job's ad without its identity attributes, and its evaluated requests:
/// one per distinct request, however many jobs share it.
#[derive(Debug, PartialEq)]
pub struct JobShape {
    pub ad: ClassAd,
    pub request: Request,
    /// Why a request could not be evaluated (the jobs cannot be planned
    /// for and are reported, not dropped).
    pub request_problem: Option<String>,
    /// How long its jobs say they run, in seconds (`runtime::expected`).
    pub runtime: Option<i64>,
}

impl Job {
    pub fn ad(&self) -> &ClassAd {
        &self.shape.ad
    }

    pub fn request(&self) -> Request {
        self.shape.request
    }

    pub fn request_problem(&self) -> Option<&str> {
        self.shape.request_problem.as_deref()
    }

    pub fn owner(&self) -> Option<String> {
        string_attr(&self.shape.ad, b"Owner")
    }
}

/// A job ad that lacks what every schedd sends.
#[derive(Debug, Error, PartialEq)]
#[error("job ad {which}: {attr} {problem}")]
pub struct BadJob {
    /// `3.0`, or `#5` (the fifth ad) when the id itself is missing.
    pub which: String,
    pub attr: &'static str,
    pub problem: String,
}

/// Attributes every job has, kept in `Job` fields rather than in the
/// shared ad (unless the ad's own expressions refer to them).
const IDENTITY: [&[u8]; 6] = [
    b"ClusterId",
    b"ProcId",
    b"JobStatus",
    b"QDate",
    b"EnteredCurrentStatus",
    b"GlobalJobId",
];

pub fn string_attr(ad: &ClassAd, name: &[u8]) -> Option<String> {
    match ad.get(name)? {
        Expr::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

fn int_attr(ad: &ClassAd, name: &'static str, which: &str) -> Result<Option<i64>, BadJob> {
    match ad.get(name.as_bytes()) {
        None | Some(Expr::Undefined) => Ok(None),
        Some(Expr::Int(i)) => Ok(Some(*i)),
        Some(other) => Err(BadJob {
            which: which.to_string(),
            attr: name,
            problem: format!(
                "is {}, not an integer",
                crate::classad::unparse::to_text(other)
            ),
        }),
    }
}

/// Evaluates a request attribute in the job's ad: a number (rounded up,
/// as the startd rounds a request), undefined, or a problem.
pub fn eval_request(ad: &ClassAd, name: &str, now: i64) -> Result<Option<u64>, String> {
    let Some(expr) = ad.get(name.as_bytes()) else {
        return Ok(None);
    };
    with_value(expr, Some(ad), None, now, |v| match v {
        Err(_) => Err(format!("{name} could not be evaluated")),
        Ok(Value::Undefined) => Ok(None),
        Ok(Value::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Ok(Value::Real(r)) if *r >= 0.0 && r.is_finite() => Ok(Some(r.ceil() as u64)),
        Ok(Value::Bool(b)) => Ok(Some(*b as u64)),
        Ok(other) => {
            let mut text = Vec::new();
            crate::classad::value::unparse_value_into(other, Style::New, &mut text);
            Err(format!(
                "{name} evaluates to {}, not a non-negative number",
                String::from_utf8_lossy(&text)
            ))
        }
    })
}

/// Builds jobs from ads, sharing one ad among jobs that differ only in
/// identity.
#[derive(Default)]
pub struct JobReader {
    /// Shapes by content.
    shapes: FxHashMap<u64, Vec<Arc<JobShape>>>,
    /// Shapes by the allocations of their expressions (the fast path).
    by_identity: FxHashMap<u64, Vec<Arc<JobShape>>>,
    key: Vec<u8>,
    count: usize,
}

impl JobReader {
    pub fn new() -> JobReader {
        JobReader::default()
    }

    /// Distinct job ads seen so far (after removing identity).
    pub fn distinct(&self) -> usize {
        self.shapes.values().map(Vec::len).sum()
    }

    pub fn job(&mut self, mut ad: ClassAd, now: i64) -> Result<Job, BadJob> {
        self.count += 1;
        let which = format!("#{}", self.count);
        let cluster = int_attr(&ad, "ClusterId", &which)?;
        let proc = int_attr(&ad, "ProcId", &which)?;
        let (Some(cluster), Some(proc)) = (cluster, proc) else {
            return Err(BadJob {
                which,
                attr: if cluster.is_none() {
                    "ClusterId"
                } else {
                    "ProcId"
                },
                problem: "is missing".into(),
            });
        };
        let id = JobId { cluster, proc };
        let which = id.to_string();
        let status = match int_attr(&ad, "JobStatus", &which)? {
            None => {
                return Err(BadJob {
                    which,
                    attr: "JobStatus",
                    problem: "is missing".into(),
                })
            }
            Some(code) => JobStatus::from_code(code).ok_or_else(|| BadJob {
                which: which.clone(),
                attr: "JobStatus",
                problem: format!("is {code}, not a job state (1 to 7)"),
            })?,
        };
        let qdate = int_attr(&ad, "QDate", &which)?.unwrap_or(0);
        let entered_status = int_attr(&ad, "EnteredCurrentStatus", &which)?.unwrap_or(qdate);

        strip_identity(&mut ad);
        Ok(Job {
            id,
            status,
            qdate,
            entered_status,
            shape: self.share(ad, now),
        })
    }

    /// The shared shape for this ad, evaluating its requests only the
    /// first time it is seen. (Requests that refer to identity keep those
    /// attributes in the ad, so sharing never changes a request.)
    fn share(&mut self, ad: ClassAd, now: i64) -> Arc<JobShape> {
        // Literals by value; other expressions by identity: the readers
        // share each distinct expression text in one allocation, so equal
        // Requirements are the same pointer. (Equal text in two
        // allocations only costs a second shape, never a wrong one.)
        self.key.clear();
        for (name, expr) in ad.iter() {
            self.key.extend_from_slice(name);
            self.key.push(b'=');
            if is_literal(expr) {
                unparse_into(expr, Style::New, &mut self.key);
            } else {
                self.key.push(b'@');
                let at = expr as *const Expr as usize;
                self.key.extend_from_slice(&at.to_le_bytes());
            }
            self.key.push(b'\n');
        }
        let mut h = FxHasher::default();
        self.key.hash(&mut h);
        let fast = h.finish();
        if let Some(same) = self
            .by_identity
            .get(&fast)
            .and_then(|b| b.iter().find(|s| same_shape(&s.ad, &ad)))
        {
            return Arc::clone(same);
        }
        // Not seen in this allocation: look it up by content (ads parsed
        // one by one share nothing). Only a shape's own allocations are
        // remembered by identity: the shape keeps them alive, so an
        // address in the fast map never belongs to another expression.
        self.key.clear();
        for (name, expr) in ad.iter() {
            self.key.extend_from_slice(name);
            self.key.push(b'=');
            unparse_into(expr, Style::New, &mut self.key);
            self.key.push(b'\n');
        }
        let mut h = FxHasher::default();
        self.key.hash(&mut h);
        let slow = h.finish();
        if let Some(same) = self
            .shapes
            .get(&slow)
            .and_then(|b| b.iter().find(|s| s.ad == ad))
        {
            return Arc::clone(same);
        }
        let mut problems = Vec::new();
        let mut req = |name: &str| {
            eval_request(&ad, name, now).unwrap_or_else(|p| {
                problems.push(p);
                None
            })
        };
        let request = Request {
            cpus: req("RequestCpus"),
            memory: req("RequestMemory"),
            disk: req("RequestDisk"),
            gpus: req("RequestGPUs"),
        };
        let request_problem = (!problems.is_empty()).then(|| problems.join("; "));
        let runtime = super::runtime::expected(&ad, now);
        let shared = Arc::new(JobShape {
            ad,
            request,
            request_problem,
            runtime,
        });
        self.shapes
            .entry(slow)
            .or_default()
            .push(Arc::clone(&shared));
        self.by_identity
            .entry(fast)
            .or_default()
            .push(Arc::clone(&shared));
        shared
    }
}

fn is_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Undefined
            | Expr::Error
            | Expr::Bool(_)
            | Expr::Int(_)
            | Expr::Real(_)
            | Expr::Str(_)
            | Expr::AbsTime(_)
            | Expr::RelTime(_)
    )
}

/// Same names, literals equal, other expressions the same allocation.
fn same_shape(a: &ClassAd, b: &ClassAd) -> bool {
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((na, ea), (nb, eb))| {
            na == nb
                && if is_literal(ea) {
                    ea == eb
                } else {
                    std::ptr::eq(ea, eb)
                }
        })
}

/// Removes identity attributes that no expression in the ad refers to.
fn strip_identity(ad: &mut ClassAd) {
    let mut referenced = [false; IDENTITY.len()];
    for (_, e) in ad.iter() {
        e.for_each_attr_ref(&mut |r| {
            for (i, id) in IDENTITY.iter().enumerate() {
                if name_eq(&r.name, id) {
                    referenced[i] = true;
                }
            }
        });
    }
    for (i, id) in IDENTITY.iter().enumerate() {
        if !referenced[i] {
            ad.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classad::parse_ad;

    fn job(text: &str) -> Result<Job, BadJob> {
        JobReader::new().job(parse_ad(text.as_bytes()).unwrap(), 1_000)
    }

    #[test]
    fn requests_are_evaluated_not_read_as_text() {
        let j = job(
            "[ClusterId = 7; ProcId = 1; JobStatus = 1; MemoryUsage = 1500;
              RequestMemory = ifThenElse(MemoryUsage =!= undefined, MemoryUsage, 2048);
              RequestCpus = 2; RequestDisk = 1024.5]",
        )
        .unwrap();
        assert_eq!(j.id.to_string(), "7.1");
        assert_eq!(j.status, JobStatus::Idle);
        assert_eq!(j.request().memory, Some(1500));
        assert_eq!(j.request().cpus, Some(2));
        assert_eq!(j.request().disk, Some(1025));
        assert_eq!(j.request().gpus, None);
        assert!(j.request_problem().is_none());
    }

    #[test]
    fn a_request_that_is_not_a_number_is_reported_with_the_job() {
        let j =
            job("[ClusterId = 1; ProcId = 0; JobStatus = 1; RequestMemory = \"lots\"]").unwrap();
        assert_eq!(j.request().memory, None);
        assert_eq!(
            j.request_problem(),
            Some("RequestMemory evaluates to \"lots\", not a non-negative number")
        );
    }

    #[test]
    fn ads_without_identity_or_state_are_errors_naming_the_attribute() {
        let e = job("[ProcId = 0; JobStatus = 1]").unwrap_err();
        assert_eq!(e.to_string(), "job ad #1: ClusterId is missing");
        let e = job("[ClusterId = 4; ProcId = 0; JobStatus = 9]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "job ad 4.0: JobStatus is 9, not a job state (1 to 7)"
        );
        let e = job("[ClusterId = \"x\"; ProcId = 0; JobStatus = 1]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "job ad #1: ClusterId is \"x\", not an integer"
        );
    }

    #[test]
    fn jobs_that_differ_only_in_identity_share_one_ad() {
        let mut r = JobReader::new();
        let a = r
            .job(
                parse_ad(b"[ClusterId = 1; ProcId = 0; JobStatus = 1; QDate = 5; Owner = \"a\"]")
                    .unwrap(),
                0,
            )
            .unwrap();
        let b = r
            .job(
                parse_ad(b"[ClusterId = 2; ProcId = 3; JobStatus = 2; QDate = 6; Owner = \"a\"]")
                    .unwrap(),
                0,
            )
            .unwrap();
        let c = r
            .job(
                parse_ad(b"[ClusterId = 2; ProcId = 4; JobStatus = 1; Owner = \"b\"]").unwrap(),
                0,
            )
            .unwrap();
        assert!(Arc::ptr_eq(&a.shape, &b.shape));
        assert!(!Arc::ptr_eq(&a.shape, &c.shape));
        assert_eq!(r.distinct(), 2);
        assert_eq!(a.owner().as_deref(), Some("a"));
        assert!(a.ad().get(b"ClusterId").is_none());
    }

    #[test]
    fn identity_that_an_expression_uses_stays_in_the_ad() {
        let j = job("[ClusterId = 3; ProcId = 0; JobStatus = 1; Rank = ProcId * 2]").unwrap();
        assert_eq!(j.ad().get(b"ProcId"), Some(&Expr::Int(0)));
        assert!(j.ad().get(b"ClusterId").is_none());
    }
}
