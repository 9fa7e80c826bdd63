//! cloudburst: lets an HTCondor site burst onto clouds.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants.

pub mod classad;
pub mod cli;
