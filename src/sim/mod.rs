//! Simulation: the real cycle (reconcile, demand, planner, lifecycle,
//! registry) driving a simulated pool and cloud in virtual time, beside
//! baseline policies on identical copies of the same world.
//!
//! - the core's `world`, `workload`, `report`, `trace` (re-exported);
//! - `trace_file` — trace files opened from disk;
//! - `policy` — cloudburst and the baselines, and the driver (the real
//!   registry, in memory).

pub use cloudburst_core::sim::*;

pub mod policy;
pub mod trace_file;

use crate::config::Config;
use crate::cycle::{Agent, CycleError, NoPilot, Report};
use crate::demand::flavor_options;

/// The embedded site.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Virtual time at which simulations start (a Monday, 00:00 UTC).
pub const START: i64 = 1_796_169_600;

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

/// A comparison to run.
pub struct Setup {
    pub config: Config,
    pub jobs: Vec<trace::TraceJob>,
    pub cloud: CloudModel,
    pub seed: u64,
    pub local_cores: u64,
    pub policies: Vec<policy::Kind>,
}

/// Its result.
pub struct Comparison {
    pub outcomes: Vec<report::Outcome>,
    pub waits: Vec<(String, Vec<i64>)>,
    /// Cloud jobs that no flavour can run, or that run longer than a pilot
    /// lives (left out of every policy's waits and of the bound).
    pub unfittable: usize,
    pub events: u64,
    pub span: i64,
    /// Each baseline's parameters and their source, one line each.
    pub baselines: Vec<String>,
    /// What the baselines noted of their runs (annex leases), by policy.
    pub notes: Vec<(String, policy::Notes)>,
    /// Each policy's run: wall seconds and events handled.
    pub timing: Vec<(String, f64, u64)>,
}

impl Comparison {
    /// Each policy's run as `name 1.2 s (10000 events/s)`, comma-separated.
    pub fn timing_line(&self) -> String {
        self.timing
            .iter()
            .map(|(name, secs, events)| {
                format!(
                    "{name} {secs:.1} s ({:.0} events/s)",
                    *events as f64 / secs.max(1e-9)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs every policy on its own copy of the world, and the bound.
/// `progress(policy, fraction)` is told how far each run is.
pub fn compare(
    setup: &Setup,
    mut progress: impl FnMut(&str, f64),
) -> Result<Comparison, CycleError> {
    let options = flavor_options(&setup.config);
    let general: Vec<_> = options.iter().filter(|o| o.group.is_none()).collect();
    // A job runs in the cloud only if a flavour holds it and a pilot lives
    // long enough for it (its hard stop would kill a longer one, as our
    // pilots' does), and one stating a longer run time would never be
    // started by a pilot's START: the others are left out of every policy.
    let life =
        crate::pilot::hard_stop_minutes(&setup.config) as i64 * 60 - crate::pilot::START_MARGIN;
    let fits = |j: &trace::TraceJob| {
        j.runtime.max(j.requested.unwrap_or(0)) <= life
            && general
                .iter()
                .any(|o| o.capacity.cpus >= u64::from(j.cpus) && o.capacity.memory >= j.memory_mb)
    };
    let jobs: &[trace::TraceJob] = &setup.jobs;
    let unfittable = jobs.iter().filter(|j| j.cloud && !fits(j)).count();
    let span = jobs.last().map_or(0, |j| j.submit).max(1);
    let longest = jobs.iter().map(|j| j.runtime).max().unwrap_or(0);
    let horizon = START + span + longest + 6 * 3600;

    let cores_per_node = policy::baseline_flavor(&options).map_or(1, |o| o.capacity.cpus.max(1));
    let cloud_core_seconds: f64 = jobs
        .iter()
        .filter(|j| j.cloud && fits(j))
        .map(|j| j.cpus as f64 * j.runtime as f64)
        .sum();
    let mean_cores = cloud_core_seconds / span as f64;
    let baselines = policy::Baselines {
        static_nodes: ((mean_cores / cores_per_node as f64).ceil() as u32).max(1),
        // The longest lease: as long as cloudburst's pilots may live, so
        // that both can hold the same jobs.
        annex_cap: setup.config.timers.max_lifetime.as_secs() as i64,
        // condor_annex's documented default (-idle).
        annex_idle_shutdown: 15 * 60,
        // TARDIS's documented LinearController settings.
        cobald_low_utilisation: 0.90,
        cobald_high_allocation: 0.90,
        cobald_rate: 1.0,
        max_nodes: setup.config.limits.max_nodes,
    };

    let labels: Vec<String> = options.iter().map(|o| o.label()).collect();
    let mut outcomes = Vec::new();
    let mut waits = Vec::new();
    let mut events = 0;
    let mut notes = Vec::new();
    let mut timing = Vec::new();
    for &kind in &setup.policies {
        let world = World::new(options.clone(), setup.cloud.clone(), setup.seed, START);
        world.set_local_cores(setup.local_cores);
        for j in jobs {
            // Jobs no flavour can run stay out of every policy's numbers:
            // no policy can run them in the cloud.
            // Local jobs need local cores.
            let runs = if j.cloud {
                fits(j)
            } else {
                setup.local_cores > 0
            };
            if runs {
                world.submit_trace(START, j);
            }
        }
        let name = kind.name();
        let began = std::time::Instant::now();
        let noted = policy::run(kind, &world, &setup.config, &baselines, horizon, |now| {
            progress(
                name,
                ((now - START) as f64 / (horizon - START) as f64).min(1.0),
            )
        })?;
        notes.push((name.to_string(), noted));
        progress(name, 1.0);
        let score = world.score();
        events += score.events;
        timing.push((
            name.to_string(),
            began.elapsed().as_secs_f64(),
            score.events,
        ));
        waits.push((name.to_string(), score.waits.clone()));
        outcomes.push(report::outcome(
            name,
            &score,
            &labels,
            world.samples(),
            world.now(),
        ));
    }
    let boot = (setup.cloud.boot_secs.0 + setup.cloud.boot_secs.1) as f64 / 2.0;
    let cheapest = options
        .iter()
        .map(|o| o.price_per_hour / o.capacity.cpus.max(1) as f64)
        .fold(f64::MAX, f64::min);
    outcomes.push(report::clairvoyant(jobs, fits, boot, cheapest));
    Ok(Comparison {
        outcomes,
        waits,
        unfittable,
        events,
        span,
        baselines: baselines.describe(),
        notes,
        timing,
    })
}

/// The sweep of cloudburst's main knobs `simulate --sweep` runs: every
/// combination of these idle timeouts, cycle intervals and sized starts.
pub const SWEEP_IDLE_TIMEOUTS: [u64; 3] = [60, 300, 900];
pub const SWEEP_CYCLES: [u64; 3] = [30, 60, 120];

/// Runs cloudburst alone with each combination of the sweep's knobs on
/// `setup`'s jobs; `progress(label, done, of)` after each run.
pub fn sweep(
    setup: &Setup,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<Vec<report::SweepPoint>, CycleError> {
    let mut variants = Vec::new();
    for idle in SWEEP_IDLE_TIMEOUTS {
        for cycle in SWEEP_CYCLES {
            for sized in [true, false] {
                variants.push((idle, cycle, sized));
            }
        }
    }
    let mut out = Vec::new();
    for (k, &(idle, cycle, sized)) in variants.iter().enumerate() {
        let mut config = setup.config.clone();
        config.timers.idle_timeout = std::time::Duration::from_secs(idle);
        config.timers.cycle = std::time::Duration::from_secs(cycle);
        config.pilot.sized_start = sized;
        let one = Setup {
            config,
            jobs: setup.jobs.clone(),
            cloud: setup.cloud.clone(),
            seed: setup.seed,
            local_cores: setup.local_cores,
            policies: vec![policy::Kind::Cloudburst],
        };
        let r = compare(&one, |_, _| {})?;
        let o = &r.outcomes[0];
        let label = format!(
            "idle {}m, cycle {cycle}s, sized {}",
            idle / 60,
            if sized { "on" } else { "off" }
        );
        progress(&label, k + 1, variants.len());
        out.push(report::SweepPoint {
            label,
            paid_outside_boot: o.paid_core_hours - o.boot_core_hours,
            wait_p50: o.waits.p50,
            killed: o.jobs_killed,
        });
    }
    Ok(out)
}
