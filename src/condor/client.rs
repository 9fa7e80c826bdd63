//! The condor adapter: runs the tools (through a [`Runner`], live or a
//! replayed snapshot) and turns what they print into observations and
//! command outcomes. This is the only code that decides which condor
//! commands cloudburst runs; the closing note of the condor issue and
//! ARCHITECTURE.md list them.

use std::io::BufRead;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use super::commands::{self, CommandError, Outcome, Secret};
use super::job::{Job, JobReader};
use super::outcome::classify;
use super::pool::{self, Collector, Pool, Startd};
use super::queue::{read_jobs, QueueQuery};
use super::view::{PoolSnapshot, ScheddQueue};
use crate::config::Config;
use crate::observed::{Observed, Unknown};
use crate::ports::CondorPort;
use crate::process::{self, Finished, Invocation, RunError};

/// Runs one tool invocation, labelled for snapshots, handing its stdout to
/// `consume`. Live runs spawn the process; a replay reads a snapshot.
pub trait Runner: Sync {
    fn run(
        &self,
        label: &str,
        inv: &Invocation,
        consume: &mut dyn FnMut(&mut dyn BufRead),
    ) -> Result<Finished<()>, RunError>;
}

/// Runs the real tools.
pub struct Live;

impl Runner for Live {
    fn run(
        &self,
        _label: &str,
        inv: &Invocation,
        consume: &mut dyn FnMut(&mut dyn BufRead),
    ) -> Result<Finished<()>, RunError> {
        process::run(inv, |r| consume(r))
    }
}

/// Runs `inv` through `runner` and parses its stdout with `parse`.
fn query<T, E: std::fmt::Display>(
    runner: &dyn Runner,
    label: &str,
    inv: &Invocation,
    parse: impl FnOnce(&mut dyn BufRead) -> Result<T, E>,
) -> Observed<T> {
    let mut parse = Some(parse);
    let mut value = None;
    let run = runner.run(label, inv, &mut |r| {
        if let Some(p) = parse.take() {
            value = Some(p(r));
        }
    });
    let run = run.map(|f| Finished {
        status: f.status,
        stdout_head: f.stdout_head,
        stderr: f.stderr,
        elapsed: f.elapsed,
        // A runner that never called back read no output: an empty answer
        // is still subject to the status and refusal checks.
        value: value.unwrap_or_else(|| {
            (parse.take().expect("parse is taken only by the callback"))(&mut &b""[..])
        }),
    });
    let observed: Observed<T> = classify(run).into();
    if let Observed::Unknown(why) = &observed {
        // The cycle goes on, but a part of the pool is unknown to it (and
        // nothing that depends on that part is done): the admin should know.
        tracing::warn!(query = label, reason = %why, "cannot read the pool");
    }
    observed
}

/// The condor side of cloudburst.
pub struct Condor<'r> {
    runner: &'r dyn Runner,
    bin_dir: Option<PathBuf>,
    pool: Option<String>,
    timeout: Duration,
    schedds: Vec<String>,
    job_constraint: String,
    slot_constraint: String,
    job_attributes: Vec<String>,
    min_retirement: i64,
}

/// The jobs the queue query asks for: idle or running cloud jobs.
/// Running ones show where work is; idle ones are the demand.
pub fn queue_constraint(cloud_job_constraint: &str) -> String {
    format!("(JobStatus == 1 || JobStatus == 2) && ({cloud_job_constraint})")
}

impl<'r> Condor<'r> {
    pub fn new(config: &Config, runner: &'r dyn Runner) -> Condor<'r> {
        Condor {
            runner,
            bin_dir: config.condor.bin_dir.clone(),
            pool: config.pool.collector.clone(),
            timeout: config.condor.timeout,
            schedds: config.pool.schedds.clone(),
            job_constraint: queue_constraint(config.pool.cloud_job_constraint.get_ref()),
            slot_constraint: config.pool.cloud_slot_constraint.get_ref().clone(),
            job_attributes: config.pool.job_attributes.clone(),
            min_retirement: config.condor.min_retirement.as_secs() as i64,
        }
    }

    fn tool(&self, name: &str, args: Vec<String>) -> Invocation {
        Invocation::new(
            process::tool_path(self.bin_dir.as_deref(), name),
            self.timeout,
        )
        .args(args)
    }

    /// The schedds to ask: the configured ones, else the collector's.
    pub fn schedds(&self) -> Observed<Vec<String>> {
        if !self.schedds.is_empty() {
            return Observed::Known(self.schedds.clone());
        }
        let inv = self.tool(
            "condor_status",
            pool::schedd_query_args(self.pool.as_deref()),
        );
        match query(self.runner, "schedds", &inv, |r| pool::read_schedds(r)) {
            // A pool with no schedd ads has no queue we could read: that is
            // not an empty queue.
            Observed::Known(names) if names.is_empty() => Observed::Unknown(Unknown::Refused {
                message: "the collector lists no schedd".into(),
            }),
            other => other,
        }
    }

    /// One schedd's cloud jobs.
    pub fn queue(&self, schedd: &str, reader: &mut JobReader, now: i64) -> Observed<Vec<Job>> {
        if let Err(e) = commands::validate_name("schedd", schedd) {
            return Observed::Unknown(Unknown::NotStarted {
                detail: e.to_string(),
            });
        }
        let q = QueueQuery {
            schedd,
            pool: self.pool.as_deref(),
            constraint: &self.job_constraint,
            extra_attributes: &self.job_attributes,
        };
        let inv = self.tool("condor_q", q.args());
        query(self.runner, &format!("queue-{schedd}"), &inv, |r| {
            read_jobs(r, reader, now)
        })
    }

    /// Our cloud startds, from their slot ads.
    pub fn pool(&self) -> Observed<Pool> {
        let args = pool::slot_query_args(self.pool.as_deref(), &self.slot_constraint);
        query(
            self.runner,
            "pool",
            &self.tool("condor_status", args),
            |r| pool::read_pool(r),
        )
    }

    /// The collector's own ad (for its start time).
    pub fn collector(&self) -> Observed<Collector> {
        let args = pool::collector_query_args(self.pool.as_deref());
        query(
            self.runner,
            "collector",
            &self.tool("condor_status", args),
            |r| pool::read_collector(r),
        )
    }

    /// Reads everything: schedd list, then every schedd's queue, the slots
    /// and the collector, concurrently, each bounded by the tool timeout.
    pub fn snapshot(&self, now: i64) -> PoolSnapshot {
        let span = tracing::Span::current();
        thread::scope(|s| {
            let pool = s.spawn(|| span.in_scope(|| self.pool()));
            let collector = s.spawn(|| span.in_scope(|| self.collector()));
            let schedds = self.schedds();
            let mut reader = JobReader::new();
            let mut queues = Vec::new();
            if let Some(names) = schedds.known() {
                // Sequential: the reader shares identical job ads across
                // schedds, and schedds are few.
                for name in names {
                    queues.push(ScheddQueue {
                        schedd: name.clone(),
                        jobs: self.queue(name, &mut reader, now),
                    });
                }
            }
            PoolSnapshot {
                schedds,
                queues,
                pool: joined(pool, "pool"),
                collector: joined(collector, "collector"),
                distinct_job_ads: reader.distinct(),
            }
        })
    }
}

fn joined<T>(h: thread::ScopedJoinHandle<'_, Observed<T>>, what: &str) -> Observed<T> {
    h.join().unwrap_or_else(|_| {
        Observed::Unknown(Unknown::Failed {
            status: "internal error".into(),
            message: format!("reading the {what} panicked"),
        })
    })
}

impl Condor<'_> {
    fn command(&self, label: &str, tool: &str, args: Vec<String>) -> Outcome {
        let inv = self.tool(tool, args);
        let mut out = Vec::new();
        let run = self.runner.run(label, &inv, &mut |r| {
            let _ = r.read_to_end(&mut out);
        });
        match run {
            Ok(f) => commands::read_outcome(f.success(), &out, &f.stderr),
            Err(e) => Outcome::Failed {
                message: e.to_string(),
            },
        }
    }

    /// Drains a startd's slots, refusing (before any command) if that
    /// could kill running work. Idle nodes are drained with the startd-side
    /// idle check; busy ones only under a sufficient retirement time.
    pub fn drain(&self, startd: &Startd, reason: &str) -> Result<Vec<Outcome>, CommandError> {
        let mode = commands::drain_mode(startd, self.min_retirement)?;
        let mut outcomes = Vec::new();
        for slot in &startd.slots {
            let args = commands::drain_args(self.pool.as_deref(), slot, reason, mode)?;
            outcomes.push(self.command(&format!("drain-{slot}"), "condor_drain", args));
        }
        Ok(outcomes)
    }

    pub fn cancel_drain(&self, slot: &str) -> Result<Outcome, CommandError> {
        let args = commands::cancel_drain_args(self.pool.as_deref(), slot)?;
        Ok(self.command(&format!("cancel-{slot}"), "condor_drain", args))
    }

    /// `condor_off -peaceful -startd`, then `condor_off -master`: the
    /// startd stops once its jobs are done, then the pilot's master ends.
    pub fn retire(&self, daemon: &str) -> Result<(Outcome, Outcome), CommandError> {
        let off = commands::off_startd_args(self.pool.as_deref(), daemon)?;
        let first = self.command(&format!("off-startd-{daemon}"), "condor_off", off);
        let master = commands::off_master_args(self.pool.as_deref(), daemon)?;
        let second = self.command(&format!("off-master-{daemon}"), "condor_off", master);
        Ok((first, second))
    }

    /// Tells the collector to read its config again.
    pub fn reconfig_collector(&self) -> Outcome {
        let args = commands::reconfig_collector_args(self.pool.as_deref());
        self.command("reconfig-collector", "condor_reconfig", args)
    }

    /// Mints a pilot's IDTOKEN. Never recorded in a snapshot: it runs
    /// directly, and its stdout stays in memory.
    pub fn token(
        &self,
        identity: &str,
        lifetime_secs: u64,
        key: Option<&str>,
    ) -> Result<Secret, String> {
        let args = commands::token_args(identity, lifetime_secs, key).map_err(|e| e.to_string())?;
        let inv = self.tool("condor_token_create", args);
        let f = process::run_capture(&inv).map_err(|e| e.to_string())?;
        commands::read_token(f.success(), &f.value, &f.stderr)
    }
}

/// The agent's condor side is the cycle's condor port.
impl CondorPort for Condor<'_> {
    fn snapshot(&mut self, now: i64) -> PoolSnapshot {
        Condor::snapshot(self, now)
    }

    fn drain(&mut self, startd: &Startd, reason: &str) -> Result<Vec<Outcome>, CommandError> {
        Condor::drain(self, startd, reason)
    }

    fn cancel_drain(&mut self, startd: &Startd) -> Vec<Outcome> {
        startd
            .slots
            .iter()
            .map(|slot| {
                Condor::cancel_drain(self, slot).unwrap_or_else(|e| Outcome::Failed {
                    message: e.to_string(),
                })
            })
            .collect()
    }
}
