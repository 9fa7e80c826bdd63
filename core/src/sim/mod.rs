//! The simulator's pure parts: the simulated pool and cloud behind the
//! cycle's ports, the built-in workload, trace parsing, and the report.
//!
//! - `world` — the pool and cloud, behind the agent's ports;
//! - `trace`, `workload` — jobs from a trace, or the built-in generator;
//! - `report` — outcomes, the clairvoyant bound, the table and the page.

pub mod report;
pub mod trace;
pub mod workload;
pub mod world;

pub use world::{CloudModel, Faults, Rng, Score, SimCloud, SimCondor, World};
