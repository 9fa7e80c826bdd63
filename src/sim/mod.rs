//! Simulation: the real cycle (reconcile, demand, planner, lifecycle,
//! registry) driving a simulated pool and cloud in virtual time.

pub mod world;

pub use world::{CloudModel, Faults, Rng, Score, SimCloud, SimCondor, World};

use crate::cycle::{Agent, CycleError, NoPilot, Report};

/// Runs cycles every `cycle` seconds until `until`, or until every job is
/// done and no instance is left (when `stop_when_done`). `each` sees every
/// report (and may stop the run by returning false).
pub fn run(
    world: &World,
    agent: &mut Agent<'_>,
    cycle: i64,
    until: i64,
    stop_when_done: bool,
    mut each: impl FnMut(&World, &Report) -> bool,
) -> Result<i64, CycleError> {
    let mut cycles = 0;
    while world.now() < until {
        let now = world.now();
        let report = agent.cycle(
            &mut SimCondor(world.clone()),
            &mut SimCloud(world.clone()),
            &NoPilot,
            now,
        )?;
        cycles += 1;
        if !each(world, &report) {
            break;
        }
        if stop_when_done && world.unfinished() == 0 && world.alive() == 0 {
            break;
        }
        world.advance(now + cycle);
    }
    Ok(cycles)
}
