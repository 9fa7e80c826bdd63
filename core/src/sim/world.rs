//! A simulated pool and cloud in virtual time, behind the same ports the
//! agent uses for the real ones (`cycle::CondorPort`, `cycle::CloudPort`).
//!
//! The pool runs a negotiation cycle (every 20 s when something changed):
//! idle cloud jobs, by shape, are matched to pilots with the ClassAd
//! engine (the job against the slot ad the flavour advertises) and packed
//! into their partitionable slots; jobs finish after their runtime. Jobs
//! not meant for the cloud run on the site's local cores. The cloud boots
//! instances after a drawn delay, may fail a boot, reclaim a spot instance
//! or refuse a launch for capacity. Faults can make any source unreadable.
//! The `Score` keeps what the invariants and the report need: money and
//! core-hours paid and used, waits, launches, jobs killed, drains of busy
//! nodes; `samples` the time series for the plots.
//!
//! Only live jobs are kept (completed ones become statistics), so a
//! million-job trace replays in bounded memory.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use crate::classad::Matcher;
use crate::cloud::{CloudError, ErrorKind, Instance, InstanceState, Inventory, LaunchRequest};
use crate::condor::commands::{CommandError, Outcome};
use crate::condor::job::{JobReader, JobShape};
use crate::condor::{
    Activity, Collector, Job, JobId, JobStatus, Pool, PoolSnapshot, ScheddQueue, Startd,
};
use crate::demand::FlavorOption;
use crate::model::Resources;
use crate::observed::{Observed, Unknown};
use crate::ports::{CloudPort, CondorPort};

pub use crate::rng::Rng;

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
    /// Share of launch calls that take effect but whose reply is lost (the
    /// caller sees a transient error).
    pub lost_reply: f64,
    /// Share of accepted terminate calls that do nothing (an instance
    /// stuck in shutting-down, a server in ERROR).
    pub terminate_ignored: f64,
}

impl Default for CloudModel {
    fn default() -> CloudModel {
        CloudModel {
            boot_secs: (90, 240),
            boot_failure: 0.0,
            capacity_error: 0.0,
            spot_reclaim_per_hour: 0.0,
            lost_reply: 0.0,
            terminate_ignored: 0.0,
        }
    }
}

/// Sources that cannot be read (for the Unknown-input tests).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub queue: bool,
    pub pool: bool,
    pub inventory: bool,
    /// Launch calls refused for their credentials.
    pub launch_auth: bool,
}

/// What happened, for the invariants and the report.
#[derive(Clone, Debug, Default)]
pub struct Score {
    /// Launch calls made, answered or refused.
    pub launch_calls: u64,
    pub launches: u64,
    pub terminations: u64,
    pub max_alive: u64,
    pub max_cost_per_hour: f64,
    /// Running jobs on an instance when it was terminated or reclaimed.
    pub jobs_killed_by_terminate: u64,
    pub jobs_killed_by_reclaim: u64,
    /// Running jobs on a pilot when it reached its own hard stop (it
    /// powers off, whatever runs: what an agent must never let happen).
    pub jobs_killed_by_hard_stop: u64,
    /// Drain requests for a startd busy in the snapshot the cycle saw
    /// (its jobs retire: a lifetime or an admin's drain).
    pub drains_of_busy: u64,
    /// Core-seconds of instances alive (paid), of those booting, and of
    /// cloud jobs running.
    pub paid_core_seconds: f64,
    pub boot_core_seconds: f64,
    /// Of the paid: joined nodes with no job, and free cores of nodes
    /// running some jobs (fragmentation).
    pub empty_core_seconds: f64,
    pub fragment_core_seconds: f64,
    /// The same per flavour option (index into the world's options):
    /// paid outside boot, empty, fragmented core-seconds.
    pub waste_by_option: Vec<OptionWaste>,
    pub used_core_seconds: f64,
    pub paid_cost: f64,
    /// Core-seconds of completed cloud jobs.
    pub job_core_seconds: f64,
    pub completed: u64,
    pub completed_local: u64,
    /// Seconds from submission to start, per completed cloud job.
    pub waits: Vec<i64>,
    /// Events handled: arrivals, starts, completions, launches, joins,
    /// terminations.
    pub events: u64,
}

/// Where one flavour's paid core-seconds outside boot went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OptionWaste {
    pub joined: f64,
    pub empty: f64,
    pub fragment: f64,
}

/// The world at a moment, for the plots.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub at: i64,
    pub idle_jobs: u64,
    pub running_jobs: u64,
    pub booting: u32,
    pub idle_nodes: u32,
    pub busy_nodes: u32,
    pub draining_nodes: u32,
    pub spend: f64,
}

struct SimJob {
    id: JobId,
    shape: Arc<JobShape>,
    request: Resources,
    runtime: i64,
    submitted_at: i64,
    started_at: Option<i64>,
    on: Option<String>,
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
    /// When the pilot powers itself off (`shutdown -P` at boot).
    hard_stop_at: Option<i64>,
    free: Resources,
    running: BTreeSet<u64>,
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

    fn joined(&self, now: i64) -> bool {
        self.state == InstanceState::Running && self.ready_at.is_some_and(|r| r <= now)
    }
}

/// A job waiting to be submitted.
struct Pending {
    at: i64,
    shape: Arc<JobShape>,
    runtime: i64,
    cloud: bool,
}

pub struct WorldState {
    pub now: i64,
    pub rng: Rng,
    pub options: Vec<FlavorOption>,
    pending: VecDeque<Pending>,
    /// Live cloud jobs by number.
    jobs: HashMap<u64, SimJob>,
    next_job: u64,
    /// Idle cloud jobs by shape, oldest first.
    idle: Vec<(Arc<JobShape>, VecDeque<u64>)>,
    idle_index: HashMap<*const JobShape, usize>,
    /// (end, job) of running cloud jobs.
    ends: BinaryHeap<Reverse<(i64, u64)>>,
    instances: BTreeMap<String, SimInstance>,
    next_instance: u64,
    /// The site's own cores, for jobs not meant for the cloud.
    pub local_cores: u64,
    local_free: u64,
    local_queue: VecDeque<(u64, i64)>,
    local_ends: BinaryHeap<Reverse<(i64, u64)>>,
    pub cloud: CloudModel,
    pub faults: Faults,
    pub score: Score,
    pub samples: Vec<Sample>,
    pub sample_every: i64,
    next_sample: i64,
    pub negotiation_interval: i64,
    changed: bool,
    last_busy: BTreeSet<String>,
    matches: HashMap<(*const JobShape, usize), bool>,
    matcher: Matcher,
    shapes: HashMap<(u32, u64, bool, Option<i64>), Arc<JobShape>>,
    reader: JobReader,
    /// The pilot's hard stop, seconds after launch (cloudburst's pilot:
    /// `max_lifetime + drain_grace`); `None`: pilots run until terminated.
    pub pilot_hard_stop: Option<i64>,
    /// `condor.min_retirement`: a busy node is drained only if its jobs
    /// keep at least this much retirement (as the adapter checks).
    pub min_retirement: i64,
    /// The pilots' sized starts (none: any job opens any node).
    pub sizes: crate::sizing::Sizes,
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
            pending: VecDeque::new(),
            jobs: HashMap::new(),
            next_job: 0,
            idle: Vec::new(),
            idle_index: HashMap::new(),
            ends: BinaryHeap::new(),
            instances: BTreeMap::new(),
            next_instance: 1,
            local_cores: 0,
            local_free: 0,
            local_queue: VecDeque::new(),
            local_ends: BinaryHeap::new(),
            cloud,
            faults: Faults::default(),
            score: Score::default(),
            samples: Vec::new(),
            sample_every: 600,
            next_sample: start,
            negotiation_interval: 20,
            changed: false,
            last_busy: BTreeSet::new(),
            matches: HashMap::new(),
            matcher: Matcher::new(start),
            shapes: HashMap::new(),
            reader: JobReader::new(),
            pilot_hard_stop: None,
            min_retirement: 600,
            sizes: crate::sizing::Sizes::default(),
        })))
    }

    /// Pilots that stop themselves as cloudburst's do, from the config:
    /// a hard stop at `max_lifetime + drain_grace` after boot, retirement
    /// up to it, the agent's `condor.min_retirement`, and sized starts.
    pub fn set_pilot(&self, config: &crate::config::Config) {
        let mut w = self.0.borrow_mut();
        w.sizes = crate::sizing::Sizes::of(&w.options, config.pilot.sized_start);
        w.pilot_hard_stop = Some(crate::pilot::hard_stop_minutes(config) as i64 * 60);
        w.min_retirement = config.condor.min_retirement.as_secs() as i64;
    }

    pub fn now(&self) -> i64 {
        self.0.borrow().now
    }

    /// The pilots as the collector lists them, without reading the queue
    /// (the baselines need no more, and a queue of 100,000 jobs read
    /// every cycle would be most of a year's replay).
    pub fn pool(&self) -> Pool {
        let mut w = self.0.borrow_mut();
        let now = w.now;
        w.pool_view(now)
    }

    /// The idle cloud jobs, one entry a shape: the shape and how many wait.
    pub fn waiting(&self) -> Vec<(Arc<JobShape>, usize)> {
        self.0
            .borrow()
            .idle
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(shape, q)| (Arc::clone(shape), q.len()))
            .collect()
    }

    /// Running jobs killed so far by an instance's hard stop.
    pub fn hard_stop_kills(&self) -> u64 {
        self.0.borrow().score.jobs_killed_by_hard_stop
    }

    /// Gives one instance a hard stop at `at` (a lease's end): it powers
    /// off then, killing what runs, and its startd starts only the jobs
    /// that state a run time ending before it.
    pub fn set_hard_stop(&self, instance_id: &str, at: i64) {
        if let Some(i) = self.0.borrow_mut().instances.get_mut(instance_id) {
            i.hard_stop_at = Some(at);
        }
    }

    /// Gives the site `cores` of its own for jobs not meant for the cloud.
    pub fn set_local_cores(&self, cores: u64) {
        let mut w = self.0.borrow_mut();
        w.local_cores = cores;
        w.local_free = cores;
    }

    /// Queues a job (its ad already read) to be submitted at `at`; jobs
    /// must be queued in time order.
    pub fn submit(&self, at: i64, job: Job, runtime: i64) {
        self.0.borrow_mut().pending.push_back(Pending {
            at,
            shape: job.shape,
            runtime,
            cloud: true,
        });
    }

    /// Queues a trace job at `start + submit`, with the ad a 25.x schedd
    /// would hold for it (one shared ad per distinct request).
    pub fn submit_trace(&self, start: i64, j: &super::trace::TraceJob) {
        let mut w = self.0.borrow_mut();
        let shape = w.shape_for(j.cpus, j.memory_mb, j.cloud, stated_runtime(j.requested));
        w.pending.push_back(Pending {
            at: start + j.submit,
            shape,
            runtime: j.runtime.max(1),
            cloud: j.cloud,
        });
    }

    /// Runs the world forward to `to`.
    pub fn advance(&self, to: i64) {
        self.0.borrow_mut().advance(to);
    }

    pub fn score(&self) -> Score {
        self.0.borrow().score.clone()
    }

    /// Jobs not yet completed (to be submitted, idle or running).
    pub fn unfinished(&self) -> usize {
        let w = self.0.borrow();
        w.pending.len() + w.jobs.len() + w.local_queue.len() + w.local_ends.len()
    }

    /// When the next job arrives, if any is left.
    pub fn next_arrival(&self) -> Option<i64> {
        self.0.borrow().pending.front().map(|p| p.at)
    }

    /// Instances the cloud still runs (and charges for).
    pub fn alive(&self) -> usize {
        self.0.borrow().alive()
    }

    pub fn set_faults(&self, f: Faults) {
        self.0.borrow_mut().faults = f;
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.0.borrow().samples.clone()
    }

    /// Sets how the cloud behaves from now on.
    pub fn set_cloud(&self, cloud: CloudModel) {
        self.0.borrow_mut().cloud = cloud;
    }

    /// Instances not terminated, as the cloud lists them.
    pub fn instances_alive(&self) -> Vec<Instance> {
        let w = self.0.borrow();
        w.instances
            .values()
            .filter(|i| i.state != InstanceState::Terminated)
            .map(SimInstance::view)
            .collect()
    }
}

/// The ad of a trace job, as a 25.x schedd writes it (Requirements as in
/// the live capture).
/// A trace's requested run time as the job's ad states it, rounded up to
/// the hour so that jobs still share shapes (a stated limit only grows).
fn stated_runtime(requested: Option<i64>) -> Option<i64> {
    requested.map(|r| r.max(1).saturating_add(3599) / 3600 * 3600)
}

fn trace_ad(cpus: u32, memory_mb: u64, cloud: bool, runtime: Option<i64>) -> String {
    let cloud_clause = if cloud {
        "((TARGET.CloudNode is true)) && "
    } else {
        ""
    };
    let stated = runtime.map_or(String::new(), |r| format!("MaxJobRuntime = {r}; "));
    format!(
        "[ClusterId = 1; ProcId = 0; JobStatus = 1; Owner = \"sim\"; WantCloud = {cloud}; {stated}\
         RequestCpus = {cpus}; RequestMemory = {memory_mb}; RequestDisk = 1048576; \
         FileSystemDomain = \"submit.example.org\"; \
         Requirements = {cloud_clause}(TARGET.Arch == \"X86_64\") && (TARGET.OpSys == \"LINUX\") && (versionGE(split(TARGET.CondorVersion)[1],\"25.12.0\") || (TARGET.Disk >= RequestDisk)) && (TARGET.Memory >= RequestMemory) && ((TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer))]"
    )
}

impl WorldState {
    fn shape_for(
        &mut self,
        cpus: u32,
        memory_mb: u64,
        cloud: bool,
        runtime: Option<i64>,
    ) -> Arc<JobShape> {
        if let Some(s) = self.shapes.get(&(cpus, memory_mb, cloud, runtime)) {
            return Arc::clone(s);
        }
        let ad = crate::classad::parse_ad(trace_ad(cpus, memory_mb, cloud, runtime).as_bytes())
            .expect("the trace ad template parses");
        let shape = self
            .reader
            .job(ad, self.now)
            .expect("the trace ad template is a job")
            .shape;
        self.shapes
            .insert((cpus, memory_mb, cloud, runtime), Arc::clone(&shape));
        shape
    }

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

    /// Charges for `[from, to)`: instances alive, booting, and the cores
    /// jobs use.
    fn charge(&mut self, from: i64, to: i64) {
        if to <= from {
            return;
        }
        let dt = (to - from) as f64;
        for i in self.instances.values() {
            if i.state == InstanceState::Terminated {
                continue;
            }
            let o = &self.options[i.option];
            let cores = o.capacity.cpus as f64;
            self.score.paid_core_seconds += cores * dt;
            self.score.paid_cost += o.price_per_hour * dt / 3600.0;
            if !i.joined(from) {
                self.score.boot_core_seconds += cores * dt;
            }
            let used = (o.capacity.cpus - i.free.cpus) as f64;
            self.score.used_core_seconds += used * dt;
            if i.joined(from) {
                if self.score.waste_by_option.len() < self.options.len() {
                    self.score
                        .waste_by_option
                        .resize(self.options.len(), OptionWaste::default());
                }
                let w = &mut self.score.waste_by_option[i.option];
                w.joined += cores * dt;
                if i.running.is_empty() {
                    self.score.empty_core_seconds += cores * dt;
                    w.empty += cores * dt;
                } else {
                    self.score.fragment_core_seconds += i.free.cpus as f64 * dt;
                    w.fragment += i.free.cpus as f64 * dt;
                }
            }
        }
    }

    fn sample(&mut self) {
        while self.next_sample <= self.now {
            let mut s = Sample {
                at: self.next_sample,
                spend: self.score.paid_cost,
                ..Sample::default()
            };
            s.idle_jobs = self.idle.iter().map(|(_, q)| q.len() as u64).sum();
            s.running_jobs = self.jobs.len() as u64 - s.idle_jobs;
            for i in self.instances.values() {
                match (
                    i.state,
                    i.joined(self.now),
                    i.draining,
                    i.running.is_empty(),
                ) {
                    (InstanceState::Terminated, ..) => {}
                    (_, false, ..) => s.booting += 1,
                    (_, true, true, _) => s.draining_nodes += 1,
                    (_, true, false, true) => s.idle_nodes += 1,
                    (_, true, false, false) => s.busy_nodes += 1,
                }
            }
            self.samples.push(s);
            self.next_sample += self.sample_every;
        }
    }

    fn advance(&mut self, to: i64) {
        while self.now < to {
            let step_end = (self.now + self.negotiation_interval).min(to);
            self.arrivals(step_end);
            self.completions(step_end);
            self.charge(self.now, step_end);
            self.now = step_end;
            self.reclaim_spot();
            self.hard_stops();
            let now = self.now;
            let mut joined = 0;
            for inst in self.instances.values_mut() {
                if inst.state == InstanceState::Pending && inst.ready_at.is_some_and(|r| r <= now) {
                    inst.state = InstanceState::Running;
                    joined += 1;
                }
            }
            if joined > 0 {
                self.score.events += joined;
                self.changed = true;
            }
            if self.changed {
                self.negotiate();
                self.changed = false;
            }
            self.run_local();
            self.sample();
            self.forget_terminated();
        }
    }

    /// The cloud stops listing terminated instances after an hour; so
    /// does the world, so that long runs stay small.
    fn forget_terminated(&mut self) {
        if self.now % 3600 >= self.negotiation_interval {
            return;
        }
        let now = self.now;
        self.instances.retain(|_, i| {
            !(i.state == InstanceState::Terminated && i.ended_at.is_some_and(|e| now - e >= 3600))
        });
    }

    fn arrivals(&mut self, until: i64) {
        while self.pending.front().is_some_and(|p| p.at <= until) {
            let p = self.pending.pop_front().expect("checked");
            self.score.events += 1;
            let id = self.next_job;
            self.next_job += 1;
            if !p.cloud {
                self.local_queue
                    .push_back((p.shape.request.cpus.unwrap_or(1), p.runtime));
                continue;
            }
            let request = Resources {
                cpus: p.shape.request.cpus.unwrap_or(1).max(1),
                memory: p.shape.request.memory.unwrap_or(128),
                disk: p.shape.request.disk.unwrap_or(0),
                gpus: p.shape.request.gpus.unwrap_or(0),
            };
            self.jobs.insert(
                id,
                SimJob {
                    id: JobId {
                        cluster: 1 + (id / 1000) as i64,
                        proc: (id % 1000) as i64,
                    },
                    shape: Arc::clone(&p.shape),
                    request,
                    runtime: p.runtime,
                    submitted_at: p.at,
                    started_at: None,
                    on: None,
                },
            );
            self.enqueue(id, &p.shape, false);
            self.changed = true;
        }
    }

    fn enqueue(&mut self, id: u64, shape: &Arc<JobShape>, front: bool) {
        let key = Arc::as_ptr(shape);
        let i = match self.idle_index.get(&key) {
            Some(&i) => i,
            None => {
                self.idle.push((Arc::clone(shape), VecDeque::new()));
                self.idle_index.insert(key, self.idle.len() - 1);
                self.idle.len() - 1
            }
        };
        if front {
            self.idle[i].1.push_front(id);
        } else {
            self.idle[i].1.push_back(id);
        }
    }

    fn completions(&mut self, until: i64) {
        while let Some(&Reverse((end, id))) = self.ends.peek() {
            if end > until {
                break;
            }
            self.ends.pop();
            // A job killed and requeued left a stale entry.
            let current = self
                .jobs
                .get(&id)
                .is_some_and(|j| j.started_at.is_some_and(|s| s + j.runtime == end));
            if current {
                self.finish(id);
            }
        }
        while let Some(&Reverse((end, cores))) = self.local_ends.peek() {
            if end > until {
                break;
            }
            self.local_ends.pop();
            self.local_free += cores;
            self.score.completed_local += 1;
            self.score.events += 1;
        }
    }

    fn run_local(&mut self) {
        while let Some(&(cores, runtime)) = self.local_queue.front() {
            if cores > self.local_free {
                break;
            }
            self.local_queue.pop_front();
            self.local_free -= cores;
            self.local_ends.push(Reverse((self.now + runtime, cores)));
        }
    }

    fn finish(&mut self, id: u64) {
        let Some(j) = self.jobs.remove(&id) else {
            return;
        };
        self.score.completed += 1;
        self.score.events += 1;
        self.score.job_core_seconds += (j.request.cpus as i64 * j.runtime) as f64;
        if let Some(s) = j.started_at {
            self.score.waits.push(s - j.submitted_at);
        }
        if let Some(inst) = j.on.and_then(|on| self.instances.get_mut(&on)) {
            inst.running.remove(&id);
            inst.free = Resources {
                cpus: inst.free.cpus + j.request.cpus,
                memory: inst.free.memory + j.request.memory,
                disk: inst.free.disk + j.request.disk,
                gpus: inst.free.gpus + j.request.gpus,
            };
        }
        self.changed = true;
    }

    /// Puts the jobs of a lost instance back in the queue.
    fn requeue(&mut self, ids: Vec<u64>) {
        for id in ids {
            let Some(j) = self.jobs.get_mut(&id) else {
                continue;
            };
            j.on = None;
            j.started_at = None;
            let shape = Arc::clone(&j.shape);
            self.enqueue(id, &shape, true);
        }
        self.changed = true;
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
                let running: Vec<u64> = {
                    let inst = self.instances.get_mut(&id).expect("listed");
                    inst.state = InstanceState::Reclaimed;
                    inst.ended_at = Some(self.now);
                    std::mem::take(&mut inst.running).into_iter().collect()
                };
                self.score.jobs_killed_by_reclaim += running.len() as u64;
                self.requeue(running);
            }
        }
    }

    /// Pilots at their hard stop power off: their running jobs are
    /// killed (and go back to the queue), the instance terminates itself.
    fn hard_stops(&mut self) {
        let now = self.now;
        let due: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.state != InstanceState::Terminated)
            .filter(|i| i.hard_stop_at.is_some_and(|t| t <= now))
            .map(|i| i.id.clone())
            .collect();
        for id in due {
            let running: Vec<u64> = {
                let inst = self.instances.get_mut(&id).expect("listed");
                inst.state = InstanceState::Terminated;
                inst.ended_at = Some(now);
                std::mem::take(&mut inst.running).into_iter().collect()
            };
            self.score.jobs_killed_by_hard_stop += running.len() as u64;
            self.score.events += 1;
            self.requeue(running);
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

    /// One negotiation cycle: idle jobs, shape by shape, onto joined
    /// pilots that are not draining, whose slot ad they match and that
    /// have room.
    fn negotiate(&mut self) {
        let now = self.now;
        let ready: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.joined(now) && !i.draining)
            .map(|i| i.id.clone())
            .collect();
        if ready.is_empty() {
            return;
        }
        for q in 0..self.idle.len() {
            if self.idle[q].1.is_empty() {
                continue;
            }
            let shape = Arc::clone(&self.idle[q].0);
            let req = request_of_shape(&shape);
            // HTCondor's default NEGOTIATOR_PRE_JOB_RANK (25.x) prefers
            // the slot with the fewest cores, then the least memory: a
            // partitionable slot left small by earlier jobs is filled
            // before an empty node is touched (best fit).
            let mut ready = ready.clone();
            ready.sort_by_key(|id| {
                let f = &self.instances[id].free;
                (f.cpus, f.memory)
            });
            for id in &ready {
                let (option, fit, hard_stop) = {
                    let inst = &self.instances[id];
                    (inst.option, inst.free.fits(&req), inst.hard_stop_at)
                };
                if fit == 0 || !self.matches(&shape, option) {
                    continue;
                }
                // The pilot's START: an empty node opens only for a job of
                // its size (crate::sizing), judged by how long it waited.
                let mut fit = fit as usize;
                if self.instances[id].running.is_empty() {
                    let jobs = &self.jobs;
                    let sizes = &self.sizes;
                    let waited = |job: &u64| now - jobs[job].submitted_at;
                    let may = self.idle[q]
                        .1
                        .iter()
                        .take(fit)
                        .take_while(|j| sizes.opens_after(option, &req, waited(j)))
                        .count();
                    if may == 0 {
                        continue;
                    }
                    fit = fit.min(may);
                }
                // The pilot's START: a job that states its run time starts
                // only if it can end before the hard stop.
                if let (Some(rt), Some(stop)) = (shape.runtime, hard_stop) {
                    if now.saturating_add(rt) > stop - crate::model::START_MARGIN {
                        continue;
                    }
                }
                let take = fit.min(self.idle[q].1.len());
                for _ in 0..take {
                    let job = self.idle[q].1.pop_front().expect("counted");
                    let inst = self.instances.get_mut(id).expect("ready");
                    inst.free = inst.free.minus(&req, 1);
                    inst.running.insert(job);
                    let j = self.jobs.get_mut(&job).expect("idle jobs are live");
                    j.started_at = Some(now);
                    j.on = Some(id.clone());
                    self.ends.push(Reverse((now + j.runtime, job)));
                    self.score.events += 1;
                }
                if self.idle[q].1.is_empty() {
                    break;
                }
            }
        }
    }

    /// The collector's view of the joined pilots (what `condor_status`
    /// shows); it also remembers which were busy, for `drains_of_busy`.
    fn pool_view(&mut self, now: i64) -> Pool {
        let mut pool = Pool::default();
        for i in self.instances.values() {
            if i.joined(now) {
                let s = self.startd(i);
                pool.startds.insert(s.name.clone(), s);
            }
        }
        self.last_busy = pool
            .startds
            .values()
            .filter(|s| s.claims > 0)
            .map(|s| s.name.clone())
            .collect();
        pool
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
            // As the real startd advertises it for our pilot: retirement
            // up to the hard stop less the margin, less the vacate time.
            retirement_time: Some(match i.hard_stop_at {
                Some(t) if claims > 0 => {
                    t - crate::pilot::RETIREMENT_MARGIN - crate::pilot::MAX_VACATE - self.now
                }
                _ => -crate::condor::pool::DEFAULT_MAX_VACATE,
            }),
            daemon_start: i.ready_at,
            last_heard: Some(self.now),
            identity: None,
        }
    }
}

fn request_of_shape(shape: &JobShape) -> Resources {
    Resources {
        cpus: shape.request.cpus.unwrap_or(1).max(1),
        memory: shape.request.memory.unwrap_or(128),
        disk: shape.request.disk.unwrap_or(0),
        gpus: shape.request.gpus.unwrap_or(0),
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
            let mut ids: Vec<&u64> = w.jobs.keys().collect();
            ids.sort();
            Observed::Known(
                ids.into_iter()
                    .map(|id| {
                        let j = &w.jobs[id];
                        Job {
                            id: j.id,
                            status: if j.started_at.is_some() {
                                JobStatus::Running
                            } else {
                                JobStatus::Idle
                            },
                            qdate: j.submitted_at,
                            entered_status: j.started_at.unwrap_or(j.submitted_at),
                            shape: Arc::clone(&j.shape),
                        }
                    })
                    .collect(),
            )
        };
        let pool = if w.faults.pool {
            w.last_busy.clear();
            Observed::Unknown(unknown("collector"))
        } else {
            Observed::Known(w.pool_view(now))
        };
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
        // As the adapter does: a node busy in the snapshot is drained only
        // when its jobs' retirement protects them; they then run on.
        let retire = startd.claims > 0;
        if retire {
            crate::condor::commands::drain_mode(startd, w.min_retirement)?;
        }
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
        if !retire && !inst.running.is_empty() {
            return Ok(vec![Outcome::BecameBusy {
                message: "Draining check expression is false".into(),
            }]);
        }
        inst.draining = true;
        Ok(vec![Outcome::Sent])
    }

    fn cancel_drain(&mut self, startd: &Startd) -> Vec<Outcome> {
        let mut w = self.0 .0.borrow_mut();
        let out = match startd
            .instance_id
            .as_ref()
            .and_then(|id| w.instances.get_mut(id))
        {
            Some(inst) if inst.state == InstanceState::Running => {
                inst.draining = false;
                vec![Outcome::Sent]
            }
            _ => vec![Outcome::Gone],
        };
        w.changed = true;
        out
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
        w.score.launch_calls += 1;
        if w.faults.launch_auth {
            return Err(CloudError {
                kind: ErrorKind::Auth,
                message: "simulated: AuthFailure: the credentials were refused".into(),
            });
        }
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
            hard_stop_at: w.pilot_hard_stop.map(|h| now + h),
            free: w.options[option].capacity,
            running: BTreeSet::new(),
            ended_at: None,
        };
        let out = inst.view();
        w.instances.insert(id, inst);
        let lost = w.rng.unit() < w.cloud.lost_reply;
        w.score.launches += 1;
        w.score.events += 1;
        let alive = w.alive() as u64;
        w.score.max_alive = w.score.max_alive.max(alive);
        let rate = w.cost_rate();
        w.score.max_cost_per_hour = w.score.max_cost_per_hour.max(rate);
        if lost {
            return Err(CloudError {
                kind: ErrorKind::Transient,
                message: "simulated: the reply was lost".into(),
            });
        }
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
        // A reclaimed spot instance is already on its way out: only a
        // running one can get stuck.
        let ignored = if inst.state == InstanceState::Reclaimed {
            0.0
        } else {
            w.cloud.terminate_ignored
        };
        if ignored > 0.0 && w.rng.unit() < ignored {
            // Accepted, and nothing happens.
            return Ok(());
        }
        let Some(inst) = w.instances.get_mut(instance_id) else {
            return Ok(());
        };
        inst.state = InstanceState::Terminated;
        inst.ended_at = Some(now);
        let running: Vec<u64> = std::mem::take(&mut inst.running).into_iter().collect();
        w.score.terminations += 1;
        w.score.events += 1;
        w.score.jobs_killed_by_terminate += running.len() as u64;
        w.requeue(running);
        Ok(())
    }
}
