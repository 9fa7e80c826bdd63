//! Workload traces for the simulator: the Standard Workload Format of the
//! Parallel Workloads Archive, `condor_history -json` / `-jsonl`, the
//! schedd's history file, and a simple CSV. Gzip-compressed files are read
//! as they are (`cloudburst::sim::trace_file` opens them). Errors name the
//! file and line.

use std::io::BufRead;

use thiserror::Error;

use crate::classad::stream::{JsonReader, LongReader};
use crate::classad::{ClassAd, Expr};
use crate::condor::job::eval_request;

/// One job of a trace, in seconds from the trace's first submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceJob {
    pub submit: i64,
    pub runtime: i64,
    pub cpus: u32,
    pub memory_mb: u64,
    /// Marked for the cloud (`WantCloud`, or drawn by `cloud_share`).
    pub cloud: bool,
    /// The run time the job asked for (SWF's requested time), seconds.
    pub requested: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub jobs: Vec<TraceJob>,
    /// Jobs left out (never ran, no runtime), for the report.
    pub skipped: usize,
    /// The first submission in the file's own clock (subtracted from all).
    pub origin: i64,
    pub source: String,
}

#[derive(Debug, Error)]
pub enum TraceError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Bad {
        file: String,
        line: usize,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Swf,
    /// `condor_history -json` or `-jsonl`.
    HistoryJson,
    /// The schedd's history file (`-long` ads, each closed by a `***` line).
    HistoryFile,
    Csv,
}

/// How jobs without a cloud marking (SWF, CSV without the column) are
/// marked: a deterministic share of them, by job number.
#[derive(Clone, Copy, Debug)]
pub struct Marking {
    pub cloud_share: f64,
    pub seed: u64,
}

fn marked(job_number: u64, m: Marking) -> bool {
    if m.cloud_share >= 1.0 {
        return true;
    }
    let mut r = super::world::Rng::new(m.seed ^ job_number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.unit() < m.cloud_share
}

/// Reads a trace from `r` (already decompressed); submissions are made
/// relative to the first. `file` names it in errors.
pub fn parse(
    r: Box<dyn BufRead>,
    file: &str,
    format: Format,
    marking: Marking,
) -> Result<Trace, TraceError> {
    let mut trace = match format {
        Format::Swf => read_swf(r, file, marking)?,
        Format::Csv => read_csv(r, file, marking)?,
        Format::HistoryJson => {
            let ads = JsonReader::new(r).enumerate().map(|(i, a)| (i + 1, a));
            from_ads(ads, file)?
        }
        Format::HistoryFile => read_history_file(r, file)?,
    };
    trace.source = file.to_string();
    trace.jobs.sort_by_key(|j| j.submit);
    if let Some(t0) = trace.jobs.first().map(|j| j.submit) {
        trace.origin = t0;
        for j in &mut trace.jobs {
            j.submit -= t0;
        }
    }
    Ok(trace)
}

fn bad(file: &str, line: usize, message: impl Into<String>) -> TraceError {
    TraceError::Bad {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

fn read_swf(r: Box<dyn BufRead>, file: &str, marking: Marking) -> Result<Trace, TraceError> {
    let mut trace = Trace::default();
    for (n, line) in r.lines().enumerate() {
        let line = line.map_err(|source| TraceError::Io {
            file: file.to_string(),
            source,
        })?;
        let t = line.trim();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
        let f: Vec<f64> = t
            .split_whitespace()
            .map(|x| x.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad(file, n + 1, "SWF fields must be numbers"))?;
        if f.len() < 18 {
            return Err(bad(
                file,
                n + 1,
                format!("{} SWF fields, expected 18", f.len()),
            ));
        }
        let (id, submit, run, alloc, used_kb, req_procs, req_time, req_kb) =
            (f[0], f[1], f[3], f[4], f[6], f[7], f[8], f[9]);
        if run <= 0.0 || submit < 0.0 {
            trace.skipped += 1;
            continue;
        }
        let cpus = if req_procs > 0.0 { req_procs } else { alloc }.max(1.0) as u32;
        // Memory is given per processor, in KB; unknown is 2 GB a core.
        let per_proc_kb = if req_kb > 0.0 { req_kb } else { used_kb };
        let memory_mb = if per_proc_kb > 0.0 {
            ((per_proc_kb / 1024.0).ceil() as u64).max(256) * u64::from(cpus)
        } else {
            2048 * u64::from(cpus)
        };
        trace.jobs.push(TraceJob {
            submit: submit as i64,
            runtime: run as i64,
            cpus,
            memory_mb,
            cloud: marked(id as u64, marking),
            requested: (req_time > 0.0 && req_time < 1e12).then_some(req_time as i64),
        });
    }
    Ok(trace)
}

fn read_csv(r: Box<dyn BufRead>, file: &str, marking: Marking) -> Result<Trace, TraceError> {
    let mut trace = Trace::default();
    let mut columns: Vec<String> = Vec::new();
    for (n, line) in r.lines().enumerate() {
        let line = line.map_err(|source| TraceError::Io {
            file: file.to_string(),
            source,
        })?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = t.split(',').map(str::trim).collect();
        if columns.is_empty() {
            columns = cells.iter().map(|c| c.to_ascii_lowercase()).collect();
            for need in ["submit", "runtime", "cpus", "memory_mb"] {
                if !columns.iter().any(|c| c == need) {
                    return Err(bad(
                        file,
                        n + 1,
                        format!("the header must name submit, runtime, cpus, memory_mb (and optionally cloud); {need} is missing"),
                    ));
                }
            }
            continue;
        }
        let get = |name: &str| -> Result<Option<&str>, TraceError> {
            Ok(columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| cells.get(i).copied()))
        };
        let num = |name: &str| -> Result<i64, TraceError> {
            get(name)?
                .and_then(|v| v.parse::<f64>().ok())
                .map(|v| v as i64)
                .ok_or_else(|| bad(file, n + 1, format!("{name} is not a number")))
        };
        let runtime = num("runtime")?;
        if runtime <= 0 {
            trace.skipped += 1;
            continue;
        }
        let cloud = match get("cloud")? {
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"),
            None => marked(trace.jobs.len() as u64, marking),
        };
        trace.jobs.push(TraceJob {
            submit: num("submit")?,
            runtime,
            cpus: num("cpus")?.max(1) as u32,
            memory_mb: num("memory_mb")?.max(1) as u64,
            cloud,
            requested: None,
        });
    }
    Ok(trace)
}

fn int(ad: &ClassAd, name: &str) -> Option<i64> {
    match ad.get(name.as_bytes())? {
        Expr::Int(i) => Some(*i),
        Expr::Real(r) => Some(*r as i64),
        _ => None,
    }
}

/// Completed jobs from history ads: submitted at QDate, ran for their wall
/// clock time, with their evaluated requests and cloud marking.
fn from_ads(
    ads: impl Iterator<Item = (usize, Result<ClassAd, crate::classad::stream::StreamError>)>,
    file: &str,
) -> Result<Trace, TraceError> {
    let mut trace = Trace::default();
    for (n, ad) in ads {
        let ad = ad.map_err(|e| bad(file, n, format!("history ad #{n}: {e}")))?;
        let Some(qdate) = int(&ad, "QDate") else {
            trace.skipped += 1;
            continue;
        };
        let runtime = int(&ad, "RemoteWallClockTime")
            .filter(|&r| r > 0)
            .or_else(|| {
                let end = int(&ad, "CompletionDate")?;
                let start = int(&ad, "JobCurrentStartDate").or_else(|| int(&ad, "JobStartDate"))?;
                (end > start).then_some(end - start)
            });
        let Some(runtime) = runtime else {
            trace.skipped += 1;
            continue;
        };
        let req = |name: &str| eval_request(&ad, name, qdate).ok().flatten();
        let requirements_cloud = ad
            .get(b"Requirements")
            .map(|r| crate::classad::unparse::to_text(r).contains("CloudNode"))
            .unwrap_or(false);
        trace.jobs.push(TraceJob {
            submit: qdate,
            runtime,
            cpus: req("RequestCpus").unwrap_or(1).max(1) as u32,
            memory_mb: req("RequestMemory").unwrap_or(128).max(1),
            cloud: matches!(ad.get(b"WantCloud"), Some(Expr::Bool(true))) || requirements_cloud,
            requested: crate::condor::runtime::expected(&ad, qdate),
        });
    }
    Ok(trace)
}

/// The schedd's history file: `-long` ads, each followed by a line
/// `*** Offset = ... ClusterId = ... CompletionDate = ...`.
fn read_history_file(r: Box<dyn BufRead>, file: &str) -> Result<Trace, TraceError> {
    let mut chunks: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut current = Vec::new();
    let mut start = 1;
    for (n, line) in r.lines().enumerate() {
        let line = line.map_err(|source| TraceError::Io {
            file: file.to_string(),
            source,
        })?;
        if line.starts_with("***") {
            chunks.push((start, std::mem::take(&mut current)));
            start = n + 2;
        } else {
            current.extend_from_slice(line.as_bytes());
            current.push(b'\n');
        }
    }
    if current.iter().any(|b| !b.is_ascii_whitespace()) {
        chunks.push((start, current));
    }
    let ads = chunks
        .into_iter()
        .filter_map(|(line, text)| LongReader::new(&text[..]).next().map(|r| (line, r)));
    from_ads(ads, file)
}
