//! cloudburst: lets an HTCondor site burst onto clouds.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants.

pub mod classad;
pub mod cli;
pub mod condor;
pub mod config;
pub mod observed;
pub mod process;
pub mod snapshot;
