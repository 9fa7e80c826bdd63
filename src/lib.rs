//! cloudburst: lets an HTCondor site burst onto clouds.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants.

pub mod agent;
pub use cloudburst_classad as classad;
pub mod cli;
pub mod cloud;
pub mod condor;
pub mod config;
pub mod cycle;
pub mod demand;
pub mod lifecycle;
pub mod mesos;
pub mod model;
pub mod observed;
pub mod pilot;
pub mod planner;
pub mod ports;
pub mod process;
pub mod reconcile;
pub mod registry;
pub mod rng;
pub mod secret;
pub mod sim;
pub mod snapshot;
