//! The queue snapshot: one `condor_q` per schedd, its `-json` output
//! streamed through the ClassAd reader into jobs.
//!
//! Never `-global`: with a schedd down it prints "All queues are empty" and
//! exits 0 (captured in `q_schedd_down_global`), which is exactly the
//! misreading this module exists to prevent. Each schedd we expect is asked
//! by name, and a schedd that does not answer is `Unknown`, not empty.

use std::io::BufRead;

use thiserror::Error;

use super::job::{BadJob, Job, JobReader};
use crate::classad::stream::{JsonReader, StreamError};

/// What demand needs of each job; `condor_q -attributes` projects to these,
/// the run-time attributes (`runtime::attributes`) and the configured
/// extras. Requests are expressions that often refer to the usage
/// attributes, so those come too.
pub const JOB_ATTRIBUTES: &[&str] = &[
    "ClusterId",
    "ProcId",
    "JobStatus",
    "EnteredCurrentStatus",
    "QDate",
    "GlobalJobId",
    "Owner",
    "User",
    "AcctGroup",
    "AcctGroupUser",
    "AccountingGroup",
    "JobUniverse",
    "JobPrio",
    "WantCloud",
    "Requirements",
    "Rank",
    "RequestCpus",
    "RequestMemory",
    "RequestDisk",
    "RequestGPUs",
    "MemoryUsage",
    "ImageSize",
    "DiskUsage",
    "ExecutableSize",
    "FileSystemDomain",
    "UidDomain",
    "NumJobStarts",
    "RemoteHost",
    "ConcurrencyLimits",
    "CloudburstToken",
];

/// One schedd's query.
#[derive(Clone, Debug)]
pub struct QueueQuery<'a> {
    /// The schedd's `Name` as the collector knows it.
    pub schedd: &'a str,
    /// `-pool`, when the collector is not the local config's.
    pub pool: Option<&'a str>,
    /// A ClassAd constraint (already combined with the job states wanted).
    pub constraint: &'a str,
    /// Attributes beyond [`JOB_ATTRIBUTES`].
    pub extra_attributes: &'a [String],
}

impl QueueQuery<'_> {
    /// `condor_q`'s argument vector.
    pub fn args(&self) -> Vec<String> {
        // And what a job says of its run time.
        let mut attrs: Vec<&str> = JOB_ATTRIBUTES
            .iter()
            .copied()
            .chain(super::runtime::attributes())
            .collect();
        for a in self.extra_attributes {
            if !attrs.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                attrs.push(a);
            }
        }
        let mut args = Vec::with_capacity(12);
        if let Some(pool) = self.pool {
            args.extend(["-pool".to_string(), pool.to_string()]);
        }
        args.extend([
            "-name".to_string(),
            self.schedd.to_string(),
            "-allusers".to_string(),
            "-json".to_string(),
            "-attributes".to_string(),
            attrs.join(","),
            "-constraint".to_string(),
            self.constraint.to_string(),
        ]);
        args
    }
}

/// Why `condor_q`'s output could not be read as jobs.
#[derive(Debug, Error)]
pub enum QueueReadError {
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("{0}")]
    Job(#[from] BadJob),
}

/// Reads `-json` (or `-jsonl`) job ads as they stream in. No output at all
/// is an empty queue: that is how `condor_q` says "nothing matched".
pub fn read_jobs(
    out: &mut dyn BufRead,
    reader: &mut JobReader,
    now: i64,
) -> Result<Vec<Job>, QueueReadError> {
    let mut jobs = Vec::new();
    for ad in JsonReader::new(out) {
        jobs.push(reader.job(ad?, now)?);
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condor::job::JobStatus;

    #[test]
    fn the_query_names_the_schedd_and_never_asks_globally() {
        let extra = vec!["CloudburstGroup".to_string(), "owner".to_string()];
        let q = QueueQuery {
            schedd: "alice@vm",
            pool: Some("cm.example.org:9618"),
            constraint: "JobStatus == 1 && (WantCloud =?= true)",
            extra_attributes: &extra,
        };
        let args = q.args();
        assert_eq!(
            &args[..4],
            ["-pool", "cm.example.org:9618", "-name", "alice@vm"]
        );
        assert!(args.contains(&"-json".to_string()));
        assert!(!args.iter().any(|a| a == "-global"));
        let attrs = &args[args.iter().position(|a| a == "-attributes").unwrap() + 1];
        assert!(attrs.ends_with(",CloudburstGroup"), "{attrs}");
        assert_eq!(
            attrs.matches("Owner").count(),
            1,
            "no duplicate of a built-in"
        );
        assert_eq!(
            args.last().unwrap(),
            "JobStatus == 1 && (WantCloud =?= true)"
        );
    }

    #[test]
    fn no_output_is_an_empty_queue_and_garbage_is_an_error() {
        let mut r = JobReader::new();
        assert!(read_jobs(&mut &b""[..], &mut r, 0).unwrap().is_empty());
        let err = read_jobs(&mut &b"All queues are empty\n"[..], &mut r, 0).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn a_truncated_dump_is_an_error_not_a_shorter_queue() {
        let text = b"[\n{\n  \"ClusterId\": 1,\n  \"ProcId\": 0,\n  \"JobStatus\": 1\n}\n,\n{\n  \"ClusterId\": 2,\n";
        let mut r = JobReader::new();
        let err = read_jobs(&mut &text[..], &mut r, 0).unwrap_err();
        assert!(err.to_string().contains("inside a JSON object"), "{err}");
        let ok = b"[\n{\n  \"ClusterId\": 1,\n  \"ProcId\": 0,\n  \"JobStatus\": 5\n}\n]\n";
        let jobs = read_jobs(&mut &ok[..], &mut r, 0).unwrap();
        assert_eq!(jobs[0].status, JobStatus::Held);
    }
}
