//! HTCondor, as cloudburst sees it: the queue (which idle jobs want the
//! cloud), the collector (which cloud startds exist, idle or busy), and the
//! few commands that act on startds (drain, off, token).
//!
//! - `job`, `queue` — jobs from `condor_q -json`, one query per schedd.
//! - `pool` — cloud startds from their slot ads; the collector's age.
//! - `presence` — debouncing a missing startd ad.
//! - `joblog`, `joblog_tail` — the schedd's `job_queue.log`, followed.
//! - `commands` — drain / cancel / off / token: arguments and results.
//! - `outcome` — answer or `Unknown`, from exit status and text.
//! - `client` — the adapter that runs the tools (the only IO here besides
//!   `joblog_tail`).

pub mod client;
pub mod commands;
pub mod job;
pub mod joblog;
pub mod joblog_tail;
pub mod outcome;
pub mod pool;
pub mod presence;
pub mod queue;
pub mod runtime;

pub use client::{Condor, Live, PoolSnapshot, Runner, ScheddQueue};
pub use job::{Job, JobId, JobStatus, Request};
pub use pool::{Activity, Collector, Pool, Startd};
