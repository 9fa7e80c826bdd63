//! The policies a simulation compares, each driving its own copy of the
//! same world through the same ports:
//!
//! - `cloudburst` — the real cycle (reconcile, demand, planner, lifecycle,
//!   registry), woken by its interval and, as the job-log watch does, soon
//!   after a job arrives;
//! - `static` — N nodes for the whole run, N sized to the workload's mean
//!   load (what a site buys when it reserves capacity);
//! - `feedback` — COBalD's `LinearController` over TARDIS drones, with
//!   the settings TARDIS's documentation ships (`low_utilisation: 0.90`,
//!   `high_allocation: 0.90`, `rate: 1`, a `Limiter` of `minimum: 1`):
//!   once a second the demand, in cores, drops by one when the pool's
//!   utilisation is under 0.90, else rises by one when its allocation is
//!   over 0.90. The pool's figures are the mean over integrated drones of
//!   each drone's least (utilisation) and most (allocation) used resource,
//!   1.0 with none, and are refreshed once a minute (a drone's
//!   `AvailableState`); booting drones supply nothing. Both count cores
//!   only: TARDIS's default ratios also count memory, which on these
//!   flavours (4 GB a core against jobs asking 2) would hold utilisation
//!   under 0.5 and shrink the pool for ever; an admin sets them to cores. COBalD's
//!   `FactoryPool` adds a drone while the drones' demand is short of the
//!   target and releases the least-used drones beyond it: a booting one
//!   is cancelled, a running one drained (its jobs finish) and then shut
//!   down. It never reads the queue.
//! - `annex` — what a site admin does with HTCondor's annex: when cloud
//!   jobs wait and no lease is live, one burst of enough instances for the
//!   waiting cores, for a lease that covers the longest run time the
//!   waiting jobs state plus a boot (whole hours, at most `annex_cap`,
//!   the pilots' `max_lifetime`; a job that states none counts as the
//!   cap, and one stating more gets no burst); no second request
//!   while a lease is live; an instance idle for 15 minutes shuts down
//!   (`condor_annex -idle`'s default), and at the lease's end the
//!   instances end with it, killing what still runs there: the admin's
//!   choice was wrong for those jobs, and the report counts how often.
//!
//! The clairvoyant lower bound is computed, not simulated (`report`).

use crate::cloud::{LaunchRequest, TAG_NODE, TAG_POOL};
use crate::condor::Activity;
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

/// Knobs of the baselines, each with where it comes from (printed with
/// the comparison).
#[derive(Clone, Copy, Debug)]
pub struct Baselines {
    /// Nodes of the static pool.
    pub static_nodes: u32,
    /// The longest annex lease an admin asks for (also what a job that
    /// states no run time may need), seconds.
    pub annex_cap: i64,
    pub annex_idle_shutdown: i64,
    /// COBalD `LinearController` (TARDIS's documented settings).
    pub cobald_low_utilisation: f64,
    pub cobald_high_allocation: f64,
    /// Cores of demand per second.
    pub cobald_rate: f64,
    pub max_nodes: u32,
}

impl Baselines {
    /// One line per baseline: its parameters and their source.
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "static: {} nodes for the whole run (the workload's mean cloud load)",
                self.static_nodes
            ),
            format!(
                "feedback: COBalD LinearController low_utilisation {:.2}, high_allocation {:.2}, rate {} core/s, Limiter minimum 1 (TARDIS's documented settings)",
                self.cobald_low_utilisation, self.cobald_high_allocation, self.cobald_rate
            ),
            format!(
                "annex: a lease covering the waiting jobs' stated run times plus a boot, whole hours, at most {} h (timers.max_lifetime, as long as a pilot lives; also for a job stating none; no burst for a job stating more); idle shutdown {} min (condor_annex -idle default); no request while a lease is live",
                self.annex_cap / 3600,
                self.annex_idle_shutdown / 60
            ),
        ]
    }
}

/// What a baseline noted about its own run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Annex leases asked for, and those that ended with jobs running.
    pub leases: u64,
    pub leases_too_short: u64,
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
) -> Result<Notes, CycleError> {
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
        let mut follow_up = false;
        match kind {
            Kind::Cloudburst => {
                let report = agent.cycle(
                    &mut SimCondor(world.clone()),
                    &mut SimCloud(world.clone()),
                    &NoPilot,
                    now,
                )?;
                follow_up = report.wants_follow_up();
            }
            _ => controller.step(world, now),
        }
        tick(now);
        // A policy that scales to zero is done when its last node is gone;
        // one that keeps a floor (static, feedback) when its last job is.
        let scales_to_zero = matches!(kind, Kind::Cloudburst | Kind::Annex);
        let done = world.unfinished() == 0 && (world.alive() == 0 || !scales_to_zero);
        if done || now >= horizon {
            return Ok(controller.notes);
        }
        // The next wake-up: the interval, or (cloudburst, as the agent
        // does) a follow-up after idle drains, or (as with a watched job
        // log) 15 s after a job arrives.
        let mut next = last.max(now) + cycle;
        if follow_up {
            next = next.min(now + cycle.min(crate::cycle::FOLLOW_UP_SECS as i64));
        }
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
    /// COBalD's demand, in cores, and when the controller last ran.
    demand: f64,
    last_step: Option<i64>,
    /// Drones released by the factory (drained, then shut down).
    released: std::collections::HashSet<String>,
    /// The live lease: its end and the hard-stop kills before it began.
    lease: Option<(i64, u64)>,
    idle_since: std::collections::HashMap<String, i64>,
    notes: Notes,
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
            demand: 1.0,
            last_step: None,
            released: Default::default(),
            lease: None,
            idle_since: Default::default(),
            notes: Notes::default(),
        }
    }

    /// Launches `n` nodes of the baseline flavour; the ids the cloud gave.
    fn launch(&mut self, cloud: &mut SimCloud, n: u32) -> Vec<String> {
        let mut ids = Vec::new();
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
            if let Ok(i) = cloud.launch(&req) {
                ids.push(i.id);
            }
        }
        ids
    }

    fn step(&mut self, world: &World, now: i64) {
        let mut condor = SimCondor(world.clone());
        let mut cloud = SimCloud(world.clone());
        let alive = world.instances_alive();
        let pool = &world.pool();
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
            Kind::Feedback => self.cobald(world, now, &mut condor, &mut cloud, &alive, pool),
            Kind::Annex => {
                let waiting = world.waiting();
                // A lease ends with its instances: at its end (they stop
                // themselves, killing what runs), or once all shut down idle.
                if let Some((end, killed_before)) = self.lease {
                    if now >= end || alive.is_empty() {
                        if world.hard_stop_kills() > killed_before {
                            self.notes.leases_too_short += 1;
                        }
                        self.lease = None;
                    }
                }
                // What a lease must add to a job's stated run time: the
                // boot, and the margin the startd keeps before its end.
                let margin = BOOT_ALLOWANCE + crate::model::START_MARGIN;
                // A job stating more than the longest lease can never run
                // on one: the admin does not burst for it.
                let eligible: Vec<&(std::sync::Arc<crate::condor::job::JobShape>, usize)> = waiting
                    .iter()
                    .filter(|(shape, _)| {
                        shape
                            .runtime
                            .is_none_or(|r| r.saturating_add(margin) <= self.b.annex_cap)
                    })
                    .collect();
                if self.lease.is_none() && !eligible.is_empty() {
                    let cores: u64 = eligible
                        .iter()
                        .map(|(shape, n)| shape.request.cpus.unwrap_or(1) * *n as u64)
                        .sum();
                    let n = cores
                        .div_ceil(self.cores_per_node)
                        .min(u64::from(self.b.max_nodes)) as u32;
                    // The longest stated run time and the margin, in whole
                    // hours; a job that states none could run for the
                    // site's wallclock limit.
                    let lease = eligible
                        .iter()
                        .map(|(shape, _)| match shape.runtime {
                            Some(r) => (r.saturating_add(margin).saturating_add(3599) / 3600
                                * 3600)
                                .min(self.b.annex_cap),
                            None => self.b.annex_cap,
                        })
                        .max()
                        .unwrap_or(self.b.annex_cap);
                    let end = now + lease;
                    for id in self.launch(&mut cloud, n) {
                        world.set_hard_stop(&id, end);
                    }
                    self.lease = Some((end, world.hard_stop_kills()));
                    self.notes.leases += 1;
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
            }
        }
    }

    /// COBalD's `LinearController` and `FactoryPool` over TARDIS drones
    /// (see the module's notes).
    fn cobald(
        &mut self,
        _world: &World,
        now: i64,
        condor: &mut SimCondor,
        cloud: &mut SimCloud,
        alive: &[crate::cloud::Instance],
        pool: &crate::condor::Pool,
    ) {
        // Integrated drones: their utilisation and allocation, as
        // TARDIS's HTCondor adapter reads them with the ratio set to cores.
        let mut util = Vec::new();
        let mut alloc = Vec::new();
        for s in pool.startds.values() {
            let Some(i) = &s.instance_id else { continue };
            if self.released.contains(i) {
                continue;
            }
            let cpus = (s.total_cpus - s.free_cpus) / s.total_cpus.max(1.0);
            util.push(cpus);
            alloc.push(cpus);
        }
        let mean = |v: &[f64]| {
            if v.is_empty() {
                1.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let (utilisation, allocation) = (mean(&util), mean(&alloc));
        // Once a second, one core of demand; the figures it reads change
        // once a minute, so one cycle moves the demand one way.
        let seconds = now - self.last_step.unwrap_or(now - 1);
        self.last_step = Some(now);
        let change = self.b.cobald_rate * seconds.max(0) as f64;
        if utilisation < self.b.cobald_low_utilisation {
            self.demand -= change;
        } else if allocation > self.b.cobald_high_allocation {
            self.demand += change;
        }
        self.demand = self.demand.clamp(
            1.0,
            f64::from(self.b.max_nodes) * self.cores_per_node as f64,
        );

        // The factory: each drone's demand is its cores.
        let drone = self.cores_per_node as f64;
        let joined: std::collections::HashMap<&str, &crate::condor::Startd> = pool
            .startds
            .values()
            .filter_map(|s| Some((s.instance_id.as_deref()?, s)))
            .collect();
        let active: Vec<&crate::cloud::Instance> = alive
            .iter()
            .filter(|i| !self.released.contains(&i.id))
            .collect();
        let supply = active
            .iter()
            .filter(|i| joined.contains_key(i.id.as_str()))
            .count() as f64
            * drone;
        let children = active.len() as f64 * drone;
        if supply > self.demand {
            // Least used first (booting drones supply nothing).
            let mut hit: Vec<(f64, &crate::cloud::Instance)> = active
                .iter()
                .map(|i| {
                    let used = joined.get(i.id.as_str()).map_or(0.0, |s| {
                        drone * (s.total_cpus - s.free_cpus) / s.total_cpus.max(1.0)
                    });
                    (used, *i)
                })
                .collect();
            hit.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut excess = children - self.demand;
            for (_, i) in hit {
                if excess < drone {
                    break;
                }
                excess -= drone;
                self.released.insert(i.id.clone());
            }
        } else {
            let missing = ((self.demand - children) / drone).ceil().max(0.0) as u32;
            let room = self.b.max_nodes.saturating_sub(active.len() as u32);
            self.launch(cloud, missing.min(room));
        }
        // Released drones: a booting one is cancelled; a running one is
        // drained (its jobs finish), then shut down.
        for i in alive.iter().filter(|i| self.released.contains(&i.id)) {
            match joined.get(i.id.as_str()) {
                None => {
                    let _ = cloud.terminate(&self.site, &i.id);
                }
                Some(s)
                    if s.activity == Activity::Drained
                        || (s.claims == 0 && s.drain_reason.is_some()) =>
                {
                    let _ = cloud.terminate(&self.site, &i.id);
                }
                Some(s) if s.activity == Activity::Draining => {}
                Some(s) => {
                    let _ = condor.drain(s, "released by the factory");
                }
            }
        }
    }
}

/// What an admin adds to a lease for the instances to boot (the slowest
/// boot the simulated cloud draws).
const BOOT_ALLOWANCE: i64 = 240;
