//! cloudburst: lets an HTCondor site burst onto clouds.
//!
//! The daemon crate: the agent, the CLI, and the adapters that touch
//! processes, networks and disk. What it decides is in the pure core,
//! `cloudburst_core`, re-exported here module by module; ARCHITECTURE.md
//! has the map.

pub use cloudburst_core::{
    classad, config, cycle, decide, demand, exec, lifecycle, model, observed, pairing, pilot,
    planner, ports, reconcile, rng, secret, sizing,
};

pub mod agent;
pub mod cli;
pub mod cloud;
pub mod condor;
pub mod logging;
pub mod mesos;
pub mod process;
pub mod registry;
pub mod sim;
pub mod snapshot;
