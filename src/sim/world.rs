//! A simulated pool and cloud in virtual time, behind the same ports the
//! agent uses for the real ones (`cycle::CondorPort`, `cycle::CloudPort`).
//!
//! The pool runs a negotiation cycle: idle jobs are matched to pilots with
//! the ClassAd engine (the job against the slot ad the flavour advertises)
//! and packed into their partitionable slots; jobs finish after their
//! runtime. The cloud boots instances after a drawn delay, may fail a boot,
//! reclaim a spot instance or refuse a launch for capacity. Faults can make
//! any source unreadable. It also keeps the score the invariants are
//! checked against: instances alive, cost rate, jobs killed, drains of
//! nodes that were busy.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use crate::classad::Matcher;
use crate::cloud::{CloudError, ErrorKind, Instance, InstanceState, Inventory, LaunchRequest};
use crate::condor::commands::{CommandError, Outcome};
use crate::condor::job::JobShape;
use crate::condor::{Activity, Collector, Job, JobStatus, Pool, PoolSnapshot, ScheddQueue, Startd};
use crate::cycle::{CloudPort, CondorPort};
use crate::demand::{request_of, FlavorOption, Resources};
use crate::observed::{Observed, Unknown};

/// A small, fast, seedable generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// How the simulated cloud behaves.
#[derive(Clone, Debug)]
pub struct CloudModel {
    /// Seconds from launch to the startd joining.
    pub boot_secs: (i64, i64),
    /// Share of launches that never join.
    pub boot_failure: f64,
    /// Share of launch calls refused for capacity.
    pub capacity_error: f64,
    /// Spot reclaims per spot instance-hour.
    pub spot_reclaim_per_hour: f64,
}

impl Default for CloudModel {
    fn default() -> CloudModel {
        CloudModel {
            boot_secs: (90, 240),
            boot_failure: 0.0,
            capacity_error: 0.0,
            spot_reclaim_per_hour: 0.0,
        }
    }
}

/// Sources that cannot be read (for the Unknown-input tests).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub queue: bool,
    pub pool: bool,
    pub inventory: bool,
}

/// What happened, for the invariants and the report.
#[derive(Clone, Debug, Default)]
pub struct Score {
    pub launches: u64,
    pub terminations: u64,
    pub max_alive: u64,
    pub max_cost_per_hour: f64,
    /// Running jobs on an instance when it was terminated or reclaimed.
    pub jobs_killed_by_terminate: u64,
    pub jobs_killed_by_reclaim: u64,
    /// Drain requests for a startd busy in the snapshot the cycle saw.
    pub drains_of_busy: u64,
    pub paid_core_seconds: f64,
    pub paid_cost: f64,
    pub job_core_seconds: f64,
    pub completed: u64,
    /// Seconds from submission to start, per completed cloud job.
    pub waits: Vec<i64>,
}

pub struct SimJob {
    pub job: Job,
    pub request: Resources,
    pub runtime: i64,
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub on: Option<String>,
}

struct SimInstance {
    id: String,
    site: String,
    flavor: String,
    option: usize,
    token: String,
    node_id: String,
    pool: String,
    spot: bool,
    launched_at: i64,
    /// When its startd joins; `None`: it never will (boot failure).
    ready_at: Option<i64>,
    state: InstanceState,
    draining: bool,
    free: Resources,
    running: BTreeSet<usize>,
    ended_at: Option<i64>,
}

impl SimInstance {
    /// As the cloud's API lists it.
    fn view(&self) -> Instance {
        Instance {
            id: self.id.clone(),
            site: self.site.clone(),
            flavor: self.flavor.clone(),
            state: self.state,
            pool: Some(self.pool.clone()),
            node_id: Some(self.node_id.clone()),
            token: Some(self.token.clone()),
            launched_at: self.launched_at,
            spot: self.spot,
        }
    }
}

pub struct WorldState {
    pub now: i64,
    pub rng: Rng,
    pub options: Vec<FlavorOption>,
    pub jobs: Vec<SimJob>,
    /// Jobs not yet submitted: (time, job), in time order.
    pending: Vec<(i64, SimJob)>,
    instances: BTreeMap<String, SimInstance>,
    next_instance: u64,
    pub cloud: CloudModel,
    pub faults: Faults,
    pub score: Score,
    pub negotiation_interval: i64,
    last_busy: BTreeSet<String>,
    matches: HashMap<(*const JobShape, usize), bool>,
    matcher: Matcher,
}

/// The world, shared by its condor and cloud handles.
#[derive(Clone)]
pub struct World(pub Rc<RefCell<WorldState>>);

impl World {
    pub fn new(options: Vec<FlavorOption>, cloud: CloudModel, seed: u64, start: i64) -> World {
        World(Rc::new(RefCell::new(WorldState {
            now: start,
            rng: Rng::new(seed),
            options,
            jobs: Vec::new(),
            pending: Vec::new(),
            instances: BTreeMap::new(),
            next_instance: 1,
            cloud,
            faults: Faults::default(),
            score: Score::default(),
            negotiation_interval: 20,
            last_busy: BTreeSet::new(),
            matches: HashMap::new(),
            matcher: Matcher::new(start),
        })))
    }

    pub fn now(&self) -> i64 {
        self.0.borrow().now
    }

    /// Queues a job to be submitted at `at` (jobs must come in time order).
    pub fn submit(&self, at: i64, job: Job, runtime: i64) {
        let request = request_of(&job);
        let mut w = self.0.borrow_mut();
        w.pending.push((
            at,
            SimJob {
                job,
                request,
                runtime,
                submitted_at: at,
                started_at: None,
                on: None,
            },
        ));
    }

    /// Runs the world forward to `to`.
    pub fn advance(&self, to: i64) {
        self.0.borrow_mut().advance(to);
    }

    pub fn score(&self) -> Score {
        self.0.borrow().score.clone()
    }

    /// Jobs not yet completed (waiting to be submitted, idle or running).
    pub fn unfinished(&self) -> usize {
        let w = self.0.borrow();
        w.pending.len()
            + w.jobs
                .iter()
                .filter(|j| j.job.status != JobStatus::Completed)
                .count()
    }

    /// Instances the cloud still runs (and charges for).
    pub fn alive(&self) -> usize {
        self.0.borrow().alive()
    }

    pub fn set_faults(&self, f: Faults) {
        self.0.borrow_mut().faults = f;
    }
}

impl WorldState {
    fn alive(&self) -> usize {
        self.instances
            .values()
            .filter(|i| i.state != InstanceState::Terminated)
            .count()
    }

    fn cost_rate(&self) -> f64 {
        self.instances
            .values()
            .filter(|i| i.state != InstanceState::Terminated)
            .map(|i| self.options[i.option].price_per_hour)
            .sum()
    }

    fn charge(&mut self, from: i64, to: i64) {
        if to <= from {
            return;
        }
        let dt = (to - from) as f64;
        for i in self.instances.values() {
            if i.state != InstanceState::Terminated {
                let o = &self.options[i.option];
                self.score.paid_core_seconds += o.capacity.cpus as f64 * dt;
                self.score.paid_cost += o.price_per_hour * dt / 3600.0;
            }
        }
    }

    fn advance(&mut self, to: i64) {
        while self.now < to {
            let step_end = (self.now + self.negotiation_interval).min(to);
            // Submissions and completions up to step_end.
            while self.pending.first().is_some_and(|(at, _)| *at <= step_end) {
                let (_, j) = self.pending.remove(0);
                self.jobs.push(j);
            }
            let finished: Vec<usize> = self
                .jobs
                .iter()
                .enumerate()
                .filter(|(_, j)| {
                    j.job.status == JobStatus::Running
                        && j.started_at.is_some_and(|s| s + j.runtime <= step_end)
                })
                .map(|(i, _)| i)
                .collect();
            for i in finished {
                self.finish(i);
            }
            self.charge(self.now, step_end);
            self.now = step_end;
            self.reclaim_spot();
            for inst in self.instances.values_mut() {
                if inst.state == InstanceState::Pending
                    && inst.ready_at.is_some_and(|r| r <= self.now)
                {
                    inst.state = InstanceState::Running;
                }
            }
            self.negotiate();
        }
    }

    fn finish(&mut self, i: usize) {
        let j = &mut self.jobs[i];
        j.job.status = JobStatus::Completed;
        let on = j.on.take();
        let req = j.request;
        self.score.completed += 1;
        self.score.job_core_seconds += (req.cpus as i64 * j.runtime) as f64;
        if let Some(s) = j.started_at {
            self.score.waits.push(s - j.submitted_at);
        }
        if let Some(inst) = on.and_then(|id| self.instances.get_mut(&id)) {
            inst.running.remove(&i);
            inst.free = Resources {
                cpus: inst.free.cpus + req.cpus,
                memory: inst.free.memory + req.memory,
                disk: inst.free.disk + req.disk,
                gpus: inst.free.gpus + req.gpus,
            };
        }
    }

    fn requeue(&mut self, i: usize) {
        let j = &mut self.jobs[i];
        j.job.status = JobStatus::Idle;
        j.on = None;
        j.started_at = None;
    }

    fn reclaim_spot(&mut self) {
        let rate = self.cloud.spot_reclaim_per_hour * self.negotiation_interval as f64 / 3600.0;
        if rate <= 0.0 {
            return;
        }
        let ids: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.spot && i.state == InstanceState::Running)
            .map(|i| i.id.clone())
            .collect();
        for id in ids {
            if self.rng.unit() < rate {
                let running: Vec<usize> = {
                    let inst = self.instances.get_mut(&id).expect("listed");
                    inst.state = InstanceState::Reclaimed;
                    inst.ended_at = Some(self.now);
                    std::mem::take(&mut inst.running).into_iter().collect()
                };
                self.score.jobs_killed_by_reclaim += running.len() as u64;
                for j in running {
                    self.requeue(j);
                }
            }
        }
    }

    fn matches(&mut self, shape: &Arc<JobShape>, option: usize) -> bool {
        let key = (Arc::as_ptr(shape), option);
        if let Some(&m) = self.matches.get(&key) {
            return m;
        }
        let m = self
            .matcher
            .symmetric_match(&shape.ad, &self.options[option].ad);
        self.matches.insert(key, m);
        m
    }

    /// One negotiation cycle: idle jobs, oldest first, onto pilots with
    /// room whose slot ad they match.
    fn negotiate(&mut self) {
        let ready: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.state == InstanceState::Running && !i.draining && i.ready_at.is_some())
            .map(|i| i.id.clone())
            .collect();
        if ready.is_empty() {
            return;
        }
        for j in 0..self.jobs.len() {
            if self.jobs[j].job.status != JobStatus::Idle {
                continue;
            }
            let shape = Arc::clone(&self.jobs[j].job.shape);
            let req = self.jobs[j].request;
            for id in &ready {
                let (option, fits) = {
                    let inst = &self.instances[id];
                    (inst.option, inst.free.fits(&req) > 0)
                };
                if !fits || !self.matches(&shape, option) {
                    continue;
                }
                let inst = self.instances.get_mut(id).expect("ready");
                inst.free = inst.free.minus(&req, 1);
                inst.running.insert(j);
                let job = &mut self.jobs[j];
                job.job.status = JobStatus::Running;
                job.started_at = Some(self.now);
                job.on = Some(id.clone());
                break;
            }
        }
    }

    fn startd(&self, i: &SimInstance) -> Startd {
        let o = &self.options[i.option];
        let claims = i.running.len() as u32;
        let activity = match (i.draining, claims) {
            (true, 0) => Activity::Drained,
            (true, _) => Activity::Draining,
            (false, 0) => Activity::Idle,
            (false, _) => Activity::Busy,
        };
        let name = format!("{}@{}", i.node_id, i.id);
        Startd {
            name: name.clone(),
            slots: vec![format!("slot1@{name}")],
            machine: Some(i.id.clone()),
            node_id: Some(i.node_id.clone()),
            instance_id: Some(i.id.clone()),
            site: Some(i.site.clone()),
            provider: None,
            flavor: Some(i.flavor.clone()),
            activity,
            claims,
            total_cpus: o.capacity.cpus as f64,
            free_cpus: i.free.cpus as f64,
            total_memory: o.capacity.memory as i64,
            free_memory: i.free.memory as i64,
            free_disk: i.free.disk as i64,
            free_gpus: i.free.gpus as i64,
            drain_reason: None,
            retirement_time: Some(0),
            daemon_start: i.ready_at,
            last_heard: Some(self.now),
            identity: None,
        }
    }
}

/// The simulated condor tools.
pub struct SimCondor(pub World);
/// The simulated cloud.
pub struct SimCloud(pub World);

impl CondorPort for SimCondor {
    fn snapshot(&mut self, now: i64) -> PoolSnapshot {
        let mut w = self.0 .0.borrow_mut();
        let unknown = |what: &str| Unknown::Refused {
            message: format!("simulated fault: {what}"),
        };
        let jobs: Observed<Vec<Job>> = if w.faults.queue {
            Observed::Unknown(unknown("schedd"))
        } else {
            Observed::Known(
                w.jobs
                    .iter()
                    .filter(|j| matches!(j.job.status, JobStatus::Idle | JobStatus::Running))
                    .map(|j| j.job.clone())
                    .collect(),
            )
        };
        let pool = if w.faults.pool {
            Observed::Unknown(unknown("collector"))
        } else {
            let mut pool = Pool::default();
            for i in w.instances.values() {
                if i.state == InstanceState::Running && i.ready_at.is_some_and(|r| r <= now) {
                    let s = w.startd(i);
                    pool.startds.insert(s.name.clone(), s);
                }
            }
            Observed::Known(pool)
        };
        w.last_busy = pool
            .known()
            .map(|p| {
                p.startds
                    .values()
                    .filter(|s| s.claims > 0)
                    .map(|s| s.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let collector = if w.faults.pool {
            Observed::Unknown(unknown("collector"))
        } else {
            Observed::Known(Collector {
                name: Some("sim".into()),
                start_time: Some(i64::MIN / 2),
            })
        };
        PoolSnapshot {
            schedds: Observed::Known(vec!["sim".into()]),
            queues: vec![ScheddQueue {
                schedd: "sim".into(),
                jobs,
            }],
            pool,
            collector,
            distinct_job_ads: 0,
        }
    }

    fn drain(&mut self, startd: &Startd, _reason: &str) -> Result<Vec<Outcome>, CommandError> {
        let mut w = self.0 .0.borrow_mut();
        if w.last_busy.contains(&startd.name) {
            w.score.drains_of_busy += 1;
        }
        let Some(id) = startd.instance_id.clone() else {
            return Ok(vec![Outcome::Gone]);
        };
        let Some(inst) = w.instances.get_mut(&id) else {
            return Ok(vec![Outcome::Gone]);
        };
        if inst.state != InstanceState::Running {
            return Ok(vec![Outcome::Gone]);
        }
        // As the startd's -check does: refuse if a claim arrived since.
        if !inst.running.is_empty() {
            return Ok(vec![Outcome::BecameBusy {
                message: "Draining check expression is false".into(),
            }]);
        }
        inst.draining = true;
        Ok(vec![Outcome::Sent])
    }

    fn cancel_drain(&mut self, startd: &Startd) -> Vec<Outcome> {
        let mut w = self.0 .0.borrow_mut();
        match startd
            .instance_id
            .as_ref()
            .and_then(|id| w.instances.get_mut(id))
        {
            Some(inst) if inst.state == InstanceState::Running => {
                inst.draining = false;
                vec![Outcome::Sent]
            }
            _ => vec![Outcome::Gone],
        }
    }
}

impl CloudPort for SimCloud {
    fn inventory(&mut self, site: &str) -> Observed<Inventory> {
        let w = self.0 .0.borrow();
        if w.faults.inventory {
            return Observed::Unknown(Unknown::Refused {
                message: "simulated fault: cloud API".into(),
            });
        }
        let instances = w
            .instances
            .values()
            .filter(|i| i.site == site)
            // A terminated instance stays listed for a while, as on EC2.
            .filter(|i| i.ended_at.is_none_or(|e| w.now - e < 3600))
            .map(SimInstance::view)
            .collect();
        Observed::Known(Inventory {
            instances,
            foreign: 0,
            foreign_cores: 0,
        })
    }

    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        let mut w = self.0 .0.borrow_mut();
        // Idempotent on the token, as EC2's ClientToken is.
        if let Some(i) = w.instances.values().find(|i| i.token == req.token) {
            return Ok(i.view());
        }
        if w.rng.unit() < w.cloud.capacity_error {
            return Err(CloudError {
                kind: ErrorKind::Capacity,
                message: format!("simulated: no capacity for {}", req.flavor),
            });
        }
        let Some(option) = w
            .options
            .iter()
            .position(|o| o.site == req.site && o.flavor == req.flavor)
        else {
            return Err(CloudError {
                kind: ErrorKind::Invalid,
                message: format!("no flavour {} at {}", req.flavor, req.site),
            });
        };
        let id = format!("i-{:08x}", w.next_instance);
        w.next_instance += 1;
        let now = w.now;
        let (lo, hi) = w.cloud.boot_secs;
        let boot = w.rng.range(lo, hi);
        let fails = w.rng.unit() < w.cloud.boot_failure;
        let tag = |k: &str| {
            req.tags
                .iter()
                .find(|(t, _)| t == k)
                .map(|(_, v)| v.clone())
        };
        let inst = SimInstance {
            id: id.clone(),
            site: req.site.clone(),
            flavor: req.flavor.clone(),
            option,
            token: req.token.clone(),
            node_id: tag(crate::cloud::TAG_NODE).unwrap_or_default(),
            pool: tag(crate::cloud::TAG_POOL).unwrap_or_default(),
            spot: req.spot,
            launched_at: now,
            ready_at: (!fails).then_some(now + boot),
            state: InstanceState::Pending,
            draining: false,
            free: w.options[option].capacity,
            running: BTreeSet::new(),
            ended_at: None,
        };
        let out = inst.view();
        w.instances.insert(id, inst);
        w.score.launches += 1;
        let alive = w.alive() as u64;
        w.score.max_alive = w.score.max_alive.max(alive);
        let rate = w.cost_rate();
        w.score.max_cost_per_hour = w.score.max_cost_per_hour.max(rate);
        Ok(out)
    }

    fn terminate(&mut self, _site: &str, instance_id: &str) -> Result<(), CloudError> {
        let mut w = self.0 .0.borrow_mut();
        let now = w.now;
        let Some(inst) = w.instances.get_mut(instance_id) else {
            return Ok(());
        };
        if inst.state == InstanceState::Terminated {
            return Ok(());
        }
        inst.state = InstanceState::Terminated;
        inst.ended_at = Some(now);
        let running: Vec<usize> = std::mem::take(&mut inst.running).into_iter().collect();
        w.score.terminations += 1;
        w.score.jobs_killed_by_terminate += running.len() as u64;
        for j in running {
            w.requeue(j);
        }
        Ok(())
    }
}
