//! cloudburst's pure core: what the agent decides, with no IO. The pool,
//! the clouds, Mesos and the registry are reached only through the traits
//! in [`ports`]; parsing, matching, demand, planning, the node lifecycle,
//! reconciliation and the simulator's world are functions of their inputs
//! (and of the time they are given). The daemon crate, `cloudburst`,
//! implements the ports over real processes, networks and SQLite.
//!
//! This crate's manifest has no tokio, reqwest, rusqlite, aws or
//! openstack dependency: the compiler keeps the boundary.

#![deny(unsafe_code)]

pub use cloudburst_classad as classad;

pub mod cloud;
pub mod condor;
pub mod config;
pub mod cycle;
pub mod decide;
pub mod demand;
pub mod exec;
#[cfg(test)]
mod fixtures;
pub mod lifecycle;
pub mod mesos;
pub mod model;
pub mod observed;
pub mod pairing;
pub mod pilot;
pub mod planner;
pub mod ports;
pub mod reconcile;
pub mod rng;
pub mod secret;
pub mod sim;
pub mod sizing;
