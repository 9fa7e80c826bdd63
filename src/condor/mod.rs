//! HTCondor, as the agent reaches it: the core's parsers and types
//! (`cloudburst_core::condor`), and the two adapters that touch the
//! system:
//!
//! - `client` — runs the tools (the only place that decides which condor
//!   commands cloudburst runs);
//! - `joblog_tail` — follows the schedd's `job_queue.log` on disk.

pub use cloudburst_core::condor::*;

pub mod client;
pub mod joblog_tail;

pub use client::{Condor, Live, Runner};
