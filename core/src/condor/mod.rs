//! HTCondor, as cloudburst's core sees it: what the tools print, parsed
//! (the daemon's `condor::client` runs them).
//!
//! - `job`, `queue` — jobs from `condor_q -json`, one query per schedd.
//! - `pool` — cloud startds from their slot ads; the collector's age.
//! - `view` — what one cycle read from the pool.
//! - `presence` — debouncing a missing startd ad.
//! - `joblog` — the schedd's `job_queue.log`, parsed.
//! - `commands` — drain / cancel / off / token: arguments and results.
//! - `outcome` — answer or `Unknown`, from exit status and text.
//! - `runtime` — the run-time attributes a job may state.

pub mod commands;
pub mod job;
pub mod joblog;
pub mod outcome;
pub mod pool;
pub mod presence;
pub mod queue;
pub mod runtime;
pub mod view;

pub use job::{Job, JobId, JobStatus, Request};
pub use pool::{Activity, Collector, Pool, Startd};
pub use view::{PoolSnapshot, ScheddQueue};
