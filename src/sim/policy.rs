//! The policies a simulation compares, each driving its own copy of the
//! same world through the same ports:
//!
//! - `cloudburst` — the real cycle (reconcile, demand, planner, lifecycle,
//!   registry), woken by its interval and, as the job-log watch does, soon
//!   after a job arrives;
//! - `static` — N nodes for the whole run, N sized to the workload's mean
//!   load (what a site buys when it reserves capacity);
//! - `feedback` — a utilisation controller in the style of COBalD/TARDIS:
//!   one node more when the nodes are over 90% used, one fewer (an idle
//!   one, drained) when under 50%; it never reads the queue;
//! - `annex` — fixed-lease bursts in the style of condor_annex: when jobs
//!   wait and no lease is active, enough nodes for the waiting cores for a
//!   fixed lease; nodes idle for 15 minutes shut down, and at the lease's
//!   end all are terminated, running jobs or not.
//!
//! The clairvoyant lower bound is computed, not simulated (`report`).

use crate::cloud::{LaunchRequest, TAG_NODE, TAG_POOL};
use crate::condor::{Activity, JobStatus};
use crate::config::Config;
use crate::cycle::{Agent, CloudPort, CondorPort, CycleError, NoPilot};
use crate::demand::FlavorOption;
use crate::registry::Registry;
use crate::secret::Secret;

use super::world::{SimCloud, SimCondor, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cloudburst,
    Static,
    Feedback,
    Annex,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Cloudburst, Kind::Static, Kind::Feedback, Kind::Annex];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Cloudburst => "cloudburst",
            Kind::Static => "static",
            Kind::Feedback => "feedback",
            Kind::Annex => "annex",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Knobs of the baselines.
#[derive(Clone, Copy, Debug)]
pub struct Baselines {
    /// Nodes of the static pool.
    pub static_nodes: u32,
    /// Lease of an annex burst, seconds.
    pub annex_lease: i64,
    pub annex_idle_shutdown: i64,
    pub max_nodes: u32,
}

/// The flavour the baselines buy: the general one that can run the
/// biggest jobs (most cores, then most memory), the cheapest of those.
pub fn baseline_flavor(options: &[FlavorOption]) -> Option<&FlavorOption> {
    options.iter().filter(|o| o.group.is_none()).max_by(|a, b| {
        a.capacity
            .cpus
            .cmp(&b.capacity.cpus)
            .then(a.capacity.memory.cmp(&b.capacity.memory))
            .then(b.price_per_hour.total_cmp(&a.price_per_hour))
    })
}

/// Runs one policy on `world` until every job is done and (for cloudburst)
/// every node gone, or until `horizon`. `tick` is called after each cycle
/// with the virtual time (for a progress bar).
pub fn run(
    kind: Kind,
    world: &World,
    config: &Config,
    baselines: &Baselines,
    horizon: i64,
    mut tick: impl FnMut(i64),
) -> Result<(), CycleError> {
    let cycle = config.timers.cycle.as_secs() as i64;
    let mut registry = Registry::in_memory().map_err(crate::ports::StoreError::from)?;
    let mut tokens = 0u64;
    let mut agent = Agent::new(
        config,
        &mut registry,
        Box::new(move |id: &str| {
            tokens += 1;
            format!("{id}-{tokens}")
        }),
    );
    // cloudburst's pilots stop themselves at their lifetime and grace; the
    // baselines' nodes live as their policy says.
    if kind == Kind::Cloudburst {
        world.set_pilot(config);
    }
    let mut controller = Controller::new(kind, baselines, world);
    let mut last = world.now();
    loop {
        let now = world.now();
        match kind {
            Kind::Cloudburst => {
                agent.cycle(
                    &mut SimCondor(world.clone()),
                    &mut SimCloud(world.clone()),
                    &NoPilot,
                    now,
                )?;
            }
            _ => controller.step(world, now),
        }
        tick(now);
        // A policy that scales to zero is done when its last node is gone;
        // one that keeps a floor (static, feedback) when its last job is.
        let scales_to_zero = matches!(kind, Kind::Cloudburst | Kind::Annex);
        let done = world.unfinished() == 0 && (world.alive() == 0 || !scales_to_zero);
        if done || now >= horizon {
            return Ok(());
        }
        // The next wake-up: the interval, or (cloudburst, as with a
        // watched job log) 15 s after a job arrives.
        let mut next = last.max(now) + cycle;
        if kind == Kind::Cloudburst {
            if let Some(a) = world.next_arrival() {
                if a < next {
                    next = next.min((a + 1).max(now + 15));
                }
            }
        }
        last = now;
        world.advance(next);
    }
}

/// The baselines' state.
struct Controller {
    kind: Kind,
    b: Baselines,
    site: String,
    flavor: String,
    cores_per_node: u64,
    launched: u64,
    target: u32,
    lease_end: Option<i64>,
    idle_since: std::collections::HashMap<String, i64>,
}

impl Controller {
    fn new(kind: Kind, b: &Baselines, world: &World) -> Controller {
        let w = world.0.borrow();
        let (site, flavor, cores) = baseline_flavor(&w.options)
            .map(|o| (o.site.clone(), o.flavor.clone(), o.capacity.cpus))
            .unwrap_or_default();
        Controller {
            kind,
            b: *b,
            site,
            flavor,
            cores_per_node: cores.max(1),
            launched: 0,
            target: 1,
            lease_end: None,
            idle_since: Default::default(),
        }
    }

    fn launch(&mut self, cloud: &mut SimCloud, n: u32) {
        for _ in 0..n {
            self.launched += 1;
            let id = format!("{}-{}", self.kind.name(), self.launched);
            let req = LaunchRequest {
                site: self.site.clone(),
                flavor: self.flavor.clone(),
                node_id: id.clone(),
                token: id.clone(),
                spot: false,
                tags: vec![
                    (TAG_POOL.into(), self.kind.name().into()),
                    (TAG_NODE.into(), id),
                ],
                user_data: Secret::new(String::new()),
            };
            let _ = cloud.launch(&req);
        }
    }

    fn step(&mut self, world: &World, now: i64) {
        let mut condor = SimCondor(world.clone());
        let mut cloud = SimCloud(world.clone());
        let alive = world.instances_alive();
        let snap = condor.snapshot(now);
        let Some(pool) = snap.pool.known() else {
            return;
        };
        // Every baseline gives up on an instance that has not joined in
        // 15 minutes (as TARDIS and condor_annex do with a boot timeout).
        let joined: std::collections::HashSet<&str> = pool
            .startds
            .values()
            .filter_map(|s| s.instance_id.as_deref())
            .collect();
        let mut alive = alive;
        alive.retain(|i| {
            let stuck = !joined.contains(i.id.as_str()) && now - i.launched_at >= 900;
            if stuck {
                let _ = cloud.terminate(&self.site, &i.id);
            }
            !stuck
        });
        match self.kind {
            Kind::Cloudburst => {}
            Kind::Static => {
                if self.launched == 0 {
                    let n = self.b.static_nodes;
                    self.launch(&mut cloud, n);
                }
                // A static pool replaces what the cloud takes away.
                let lost =
                    self.b.static_nodes as usize - alive.len().min(self.b.static_nodes as usize);
                self.launch(&mut cloud, lost as u32);
            }
            Kind::Feedback => {
                let total: f64 = pool.startds.values().map(|s| s.total_cpus).sum();
                let free: f64 = pool.startds.values().map(|s| s.free_cpus).sum();
                let booting = alive.len().saturating_sub(pool.startds.len());
                if total > 0.0 && booting == 0 {
                    let utilisation = (total - free) / total;
                    if utilisation > 0.9 {
                        self.target = (self.target + 1).min(self.b.max_nodes);
                    } else if utilisation < 0.5 {
                        self.target = self.target.saturating_sub(1).max(1);
                    }
                }
                let have = alive.len() as u32;
                if have < self.target {
                    self.launch(&mut cloud, self.target - have);
                } else if have > self.target {
                    // Remove idle nodes only (never running work).
                    let mut excess = have - self.target;
                    for s in pool.startds.values() {
                        if excess == 0 {
                            break;
                        }
                        if s.activity == Activity::Idle {
                            if let Some(i) = &s.instance_id {
                                let _ = cloud.terminate(&self.site, i);
                                excess -= 1;
                            }
                        }
                    }
                }
            }
            Kind::Annex => {
                let waiting_cores: u64 = snap
                    .jobs()
                    .filter(|j| j.status == JobStatus::Idle)
                    .map(|j| j.request().cpus.unwrap_or(1))
                    .sum();
                match self.lease_end {
                    Some(end) if now >= end => {
                        for i in &alive {
                            let _ = cloud.terminate(&self.site, &i.id);
                        }
                        self.lease_end = None;
                    }
                    None if waiting_cores > 0 => {
                        let n = waiting_cores
                            .div_ceil(self.cores_per_node)
                            .min(u64::from(self.b.max_nodes))
                            as u32;
                        self.launch(&mut cloud, n);
                        self.lease_end = Some(now + self.b.annex_lease);
                    }
                    _ => {}
                }
                // Annex nodes shut themselves down after idling.
                for s in pool.startds.values() {
                    let Some(i) = &s.instance_id else { continue };
                    if s.activity == Activity::Idle {
                        let since = *self.idle_since.entry(i.clone()).or_insert(now);
                        if now - since >= self.b.annex_idle_shutdown {
                            let _ = cloud.terminate(&self.site, i);
                        }
                    } else {
                        self.idle_since.remove(i);
                    }
                }
                if alive.is_empty() {
                    self.lease_end = None;
                }
            }
        }
    }
}
