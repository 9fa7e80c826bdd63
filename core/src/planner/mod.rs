//! The planner: a pure function of what was observed, what the registry
//! holds, the configuration and the time, returning actions with reasons.
//!
//! 1. Nodes waiting for termination are terminated (always safe).
//! 2. If the queue, the pool or the cloud could not be read, nothing else
//!    happens this cycle: an unreadable source is not an empty one.
//! 3. Idle demand, oldest first, is placed on supply that matches it:
//!    free room on joined nodes, then nodes booting or requested, then
//!    nodes drained for idleness (whose drain is cancelled), then new
//!    nodes of the flavour that serves it at the least cost per job (the
//!    smallest such node when several are within 10%).
//!    Several jobs share a node (partitionable slots) and later shapes
//!    fill the room left on nodes planned for earlier ones.
//! 4. New nodes launch at a share of the shortfall per cycle (ramp),
//!    within every limit, skipping site/flavours in back-off.
//! 5. Nodes unclaimed in this observation for `idle_timeout` that no demand
//!    placed work on, and idle nodes past `max_lifetime`, are drained, at
//!    most a capped number per cycle.
//!
//! With `[mesos]`, Mesos tasks waiting in a framework's queue are placed
//! after the condor demand (3), on what each node offers Mesos: the free
//! share of registered agents, the whole share of nodes booting or
//! planned, then new nodes of the cheapest flavour. A node with Mesos
//! work is neither drained (5) nor terminated once drained (1); while the
//! master cannot be read, no node is drained for idleness, and while a
//! framework cannot be read nothing is bought for Mesos.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::condor::commands::drain_mode;
use crate::condor::{Activity, Pool, Startd};
use crate::config::Config;
use crate::demand::{Demand, FlavorOption};
use crate::lifecycle::{DrainCause, Node, State};
use crate::mesos::constraint::{Admission, PilotAttributes};
use crate::mesos::supply::{self, Holds};
use crate::mesos::MesosView;
use crate::model::Resources;
use crate::observed::Observed;
use crate::pairing::StartdIndex;

/// How many cycles a drained node waits for its Mesos agent to be
/// deactivated before it is terminated without.
const DEACTIVATION_CYCLES: i64 = 5;

/// Something to do, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Launch {
        site: String,
        flavor: String,
        group: Option<String>,
        spot: bool,
        price_per_hour: f64,
        reason: String,
    },
    Drain {
        node: String,
        startd: String,
        cause: DrainCause,
        reason: String,
    },
    CancelDrain {
        node: String,
        startd: String,
        reason: String,
    },
    Terminate {
        node: String,
        instance_id: Option<String>,
        reason: String,
    },
    /// Stop the master offering a drained node's Mesos agent, so that no
    /// task lands on it between this look and its termination.
    DeactivateMesosAgent {
        node: String,
        agent: String,
        reason: String,
    },
}

impl Action {
    pub fn reason(&self) -> &str {
        match self {
            Action::Launch { reason, .. }
            | Action::Drain { reason, .. }
            | Action::CancelDrain { reason, .. }
            | Action::Terminate { reason, .. }
            | Action::DeactivateMesosAgent { reason, .. } => reason,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Launch {
                site,
                flavor,
                group,
                reason,
                ..
            } => {
                write!(f, "launch  {site}/{flavor}")?;
                if let Some(g) = group {
                    write!(f, " for group {g}")?;
                }
                write!(f, ": {reason}")
            }
            Action::Drain { node, reason, .. } => write!(f, "drain   {node}: {reason}"),
            Action::CancelDrain { node, reason, .. } => write!(f, "undrain {node}: {reason}"),
            Action::Terminate { node, reason, .. } => write!(f, "terminate {node}: {reason}"),
            Action::DeactivateMesosAgent {
                node,
                agent,
                reason,
            } => write!(f, "deactivate Mesos agent {agent} of {node}: {reason}"),
        }
    }
}

/// What the planner sees.
pub struct Inputs<'a> {
    pub now: i64,
    pub config: &'a Config,
    pub options: &'a [FlavorOption],
    /// `None`: the queue could not be read.
    pub demand: Option<&'a Demand>,
    /// `None`: the pool could not be read.
    pub pool: Option<&'a Pool>,
    pub cloud_known: bool,
    /// The registry's nodes, after this cycle's observed transitions.
    pub nodes: &'a [Node],
    /// Spend since the start of the month.
    pub month_spend: f64,
    /// (site, flavor) → in back-off until.
    pub backoff: &'a BTreeMap<(String, String), i64>,
    /// Per site: instances and cores in the same project that are not ours
    /// (they use the site's capacity: `max_nodes`, `max_cores`).
    pub foreign: &'a BTreeMap<String, (u32, u32)>,
    /// Sites whose launches are paused (a refused credential): until, why.
    pub paused: &'a BTreeMap<String, (i64, String)>,
    /// The Mesos side, when `[mesos]` is configured (`None` then reads as
    /// unknown).
    pub mesos: Option<&'a MesosView>,
}

/// Nodes wanted of one option, and how many launch now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Want {
    pub option: String,
    pub jobs: u64,
    pub nodes: u64,
    pub launching: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Why something did not happen (limits, unknown sources, back-off).
    pub notes: Vec<String>,
    pub wants: Vec<Want>,
}

/// A place jobs could go: an existing node or a planned one.
struct Room {
    option: usize,
    free: Resources,
    node: Option<usize>,
    /// The last moment a job placed here can still be running: the
    /// pilot's hard stop less the retirement margin and vacate time.
    life_end: i64,
    /// Demand placed jobs here this cycle.
    used: bool,
    /// What it can still offer Mesos (cpus in thousandths, MB).
    mesos_free: Resources,
}

fn option_of(options: &[FlavorOption], n: &Node) -> Option<usize> {
    options
        .iter()
        .position(|o| o.site == n.site && o.flavor == n.flavor && o.group == n.group)
}

/// The startd of each node (`pairing` has the rule).
fn startds_by_node<'a>(pool: &'a Pool, nodes: &[Node]) -> HashMap<String, &'a Startd> {
    let index = StartdIndex::new(Some(pool));
    nodes
        .iter()
        .filter_map(|n| index.of(n).map(|s| (n.id.clone(), s)))
        .collect()
}

fn free_of(s: &Startd) -> Resources {
    Resources {
        cpus: s.free_cpus.max(0.0) as u64,
        memory: s.free_memory.max(0) as u64,
        disk: s.free_disk.max(0) as u64,
        gpus: s.free_gpus.max(0) as u64,
    }
}

struct Totals {
    nodes: u32,
    cost: f64,
    by_site: HashMap<String, (u32, u64, u64, u64)>,
    by_group: HashMap<String, u32>,
}

fn totals(
    nodes: &[Node],
    options: &[FlavorOption],
    foreign: &BTreeMap<String, (u32, u32)>,
) -> Totals {
    let mut t = Totals {
        nodes: 0,
        cost: 0.0,
        by_site: HashMap::new(),
        by_group: HashMap::new(),
    };
    for (site, &(n, cores)) in foreign {
        let s = t.by_site.entry(site.clone()).or_default();
        s.0 += n;
        s.1 += u64::from(cores);
    }
    for n in nodes.iter().filter(|n| n.state.is_live()) {
        let cap = option_of(options, n)
            .map(|i| options[i].capacity)
            .unwrap_or_default();
        add(&mut t, &n.site, n.group.as_deref(), &cap, n.price_per_hour);
    }
    t
}

fn add(t: &mut Totals, site: &str, group: Option<&str>, cap: &Resources, price: f64) {
    t.nodes += 1;
    t.cost += price;
    let s = t.by_site.entry(site.to_string()).or_default();
    s.0 += 1;
    s.1 += cap.cpus;
    s.2 += cap.memory;
    s.3 += cap.gpus;
    if let Some(g) = group {
        *t.by_group.entry(g.to_string()).or_default() += 1;
    }
}

/// Places up to `count` requests on `rooms` in order, drawing on the
/// resources `side` picks (condor's or Mesos'), at most `cap(fits)` on
/// one room; returns how many found no room.
fn fill<'r>(
    rooms: impl Iterator<Item = &'r mut Room>,
    count: u64,
    req: &Resources,
    side: impl Fn(&mut Room) -> &mut Resources,
    cap: impl Fn(u64) -> u64,
) -> u64 {
    let mut left = count;
    for r in rooms {
        if left == 0 {
            break;
        }
        let free = side(r);
        let take = cap(free.fits(req)).min(left);
        if take > 0 {
            *free = free.minus(req, take);
            r.used = true;
            left -= take;
        }
    }
    left
}

/// Books `left` requests on new nodes of option `o`, `fit` to a node:
/// the nodes wanted, and the room each leaves (`room(take)`) for later
/// demand to fill.
fn book_new_nodes(
    per_option: &mut BTreeMap<usize, (u64, u64)>,
    new_rooms_order: &mut Vec<usize>,
    rooms: &mut Vec<Room>,
    o: usize,
    left: u64,
    fit: u64,
    room: impl Fn(u64) -> Room,
) {
    let count = left.div_ceil(fit);
    let e = per_option.entry(o).or_default();
    e.0 += left;
    e.1 += count;
    for k in 0..count {
        rooms.push(room(fit.min(left - k * fit)));
        new_rooms_order.push(o);
    }
}

fn in_backoff(inputs: &Inputs<'_>, o: usize) -> bool {
    let o = &inputs.options[o];
    let paused = inputs
        .paused
        .get(&o.site)
        .is_some_and(|(until, _)| *until > inputs.now);
    paused
        || inputs
            .backoff
            .get(&(o.site.clone(), o.flavor.clone()))
            .is_some_and(|&until| until > inputs.now)
}

/// Seconds of a node's life that no job can use: the retirement margin
/// and vacate time before the pilot's hard stop.
const END_MARGIN: i64 = crate::model::START_MARGIN;

/// The last moment a job on `n` can be running.
fn life_end(n: &Node, timers: &crate::config::Timers) -> i64 {
    crate::lifecycle::hard_stop(n, timers).saturating_sub(END_MARGIN)
}

/// The same for a node launched now.
fn new_life_end(inputs: &Inputs<'_>) -> i64 {
    let t = &inputs.config.timers;
    inputs
        .now
        .saturating_add(t.max_lifetime.as_secs() as i64)
        .saturating_add(t.drain_grace.as_secs() as i64)
        .saturating_sub(END_MARGIN)
}

/// A node at or past `max_lifetime`: it is drained, not given work.
fn past_lifetime(n: &Node, inputs: &Inputs<'_>) -> bool {
    inputs.now.saturating_sub(n.created_at) >= inputs.config.timers.max_lifetime.as_secs() as i64
}

/// Back-off between terminate calls for a node whose instance is still
/// listed: one cycle, doubling, at most an hour.
fn terminate_due(n: &Node, inputs: &Inputs<'_>) -> bool {
    let Some(last) = n.terminate_last else {
        return true;
    };
    let cycle = inputs.config.timers.cycle.as_secs().max(1) as i64;
    let wait = cycle
        .saturating_mul(1i64 << n.terminate_attempts.saturating_sub(1).min(12))
        .min(3600);
    inputs.now.saturating_sub(last) >= wait
}

/// A node whose terminate was accepted but whose instance outlived
/// `timers.terminate_timeout`: the admin must look.
pub fn terminate_stuck(n: &Node, now: i64, timers: &crate::config::Timers) -> bool {
    n.state == State::Terminating
        && now.saturating_sub(n.since) >= timers.terminate_timeout.as_secs() as i64
}

/// The options no limit rules out yet, else all of them (step 4 then
/// says which limit holds the launches back).
fn prefer_within_limits(inputs: &Inputs<'_>, existing: &Totals, usable: Vec<usize>) -> Vec<usize> {
    let within: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&o| blocked_by(inputs, existing, &inputs.options[o]).is_none())
        .collect();
    if within.is_empty() {
        usable
    } else {
        within
    }
}

/// 3b. Mesos tasks waiting in the frameworks' queues, placed on what the
/// nodes offer Mesos after the condor demand took its room.
#[allow(clippy::too_many_arguments)]
fn place_mesos(
    inputs: &Inputs<'_>,
    view: &MesosView,
    rooms: &mut Vec<Room>,
    cancellable: &mut Vec<(usize, usize)>,
    undrain: &mut Vec<usize>,
    per_option: &mut BTreeMap<usize, (u64, u64)>,
    new_rooms_order: &mut Vec<usize>,
    existing: &Totals,
    notes: &mut Vec<String>,
) {
    let options = inputs.options;
    let queue = match &view.queue {
        Observed::Known(q) => q,
        Observed::Unknown(why) => {
            notes.push(format!(
                "the Mesos frameworks could not be read ({why}): nothing is launched for Mesos this cycle"
            ));
            return;
        }
    };
    // What each pilot's agent carries, for the frameworks' constraints.
    let agents = view.by_node().unwrap_or_default();
    let no_extra = BTreeMap::new();
    let extra = inputs
        .config
        .pilot
        .mesos
        .as_ref()
        .map_or(&no_extra, |m| &m.attributes);
    let attributes = |o: usize, node: Option<usize>| {
        let node = node.map(|i| &inputs.nodes[i]);
        PilotAttributes {
            site: &options[o].site,
            flavor: &options[o].flavor,
            node: node.map(|n| n.id.as_str()),
            hostname: node
                .and_then(|n| agents.get(n.id.as_str()))
                .filter(|a| a.registered)
                .map(|a| a.hostname.as_str()),
            extra,
        }
    };
    for unit in queue.iter().filter(|u| !u.delayed) {
        let req = unit.request;
        let admission = Admission::new(&unit.constraints);
        // How many of its tasks a node offering `free` takes.
        let cap = |n: u64| unit.per_host().map_or(n, |k| n.min(k));
        let per_node = |free: &Resources| cap(free.fits(&req));
        let mut left = fill(
            rooms
                .iter_mut()
                .filter(|r| admission.admits(&attributes(r.option, r.node))),
            unit.count,
            &req,
            |r| &mut r.mesos_free,
            cap,
        );
        while left > 0 {
            let Some(pos) = cancellable.iter().position(|&(i, o)| {
                per_node(&options[o].mesos_share) > 0 && admission.admits(&attributes(o, Some(i)))
            }) else {
                break;
            };
            let (i, o) = cancellable.remove(pos);
            undrain.push(i);
            let take = per_node(&options[o].mesos_share).min(left);
            left -= take;
            rooms.push(Room {
                option: o,
                free: options[o].capacity,
                node: Some(i),
                life_end: life_end(&inputs.nodes[i], &inputs.config.timers),
                used: true,
                mesos_free: options[o].mesos_share.minus(&req, take),
            });
        }
        if left == 0 {
            continue;
        }
        // New nodes: general-pool flavours whose share fits a task, the
        // cheapest node first (every flavour offers Mesos the same share).
        let fitting: Vec<usize> = (0..options.len())
            .filter(|&o| options[o].group.is_none())
            .filter(|&o| !in_backoff(inputs, o))
            .filter(|&o| per_node(&options[o].mesos_share) > 0)
            .collect();
        let usable: Vec<usize> = fitting
            .iter()
            .copied()
            .filter(|&o| admission.admits(&attributes(o, None)))
            .collect();
        if let (Some(&o), true) = (fitting.first(), usable.is_empty()) {
            let why = admission
                .refusal(&attributes(o, None))
                .map_or_else(String::new, ToString::to_string);
            notes.push(format!(
                "{left} Mesos tasks of {} {} wait: no pilot we could boot meets their constraint {why}",
                unit.source, unit.name
            ));
            continue;
        }
        let best = prefer_within_limits(inputs, existing, usable)
            .into_iter()
            .min_by(|&a, &b| {
                let (oa, ob) = (&options[a], &options[b]);
                oa.price_per_hour
                    .total_cmp(&ob.price_per_hour)
                    .then(ob.priority.cmp(&oa.priority))
                    .then(oa.label().cmp(&ob.label()))
            });
        let Some(o) = best else {
            notes.push(format!(
                "{left} Mesos tasks of {} {} wait: no flavour out of back-off offers one task's {} cpu, {} MB, {} MB disk in its [pilot.mesos] share",
                unit.source,
                unit.name,
                req.cpus as f64 / 1000.0,
                req.memory,
                req.disk
            ));
            continue;
        };
        let fit = per_node(&options[o].mesos_share);
        book_new_nodes(per_option, new_rooms_order, rooms, o, left, fit, |take| {
            Room {
                option: o,
                free: options[o].capacity,
                node: None,
                life_end: new_life_end(inputs),
                used: true,
                mesos_free: options[o].mesos_share.minus(&req, take),
            }
        });
    }
}

fn example(shape: &crate::demand::Shape) -> String {
    shape
        .examples
        .first()
        .map(|j| j.to_string())
        .unwrap_or_default()
}

/// Which limit, if any, a launch of `o` would break.
fn blocked_by(inputs: &Inputs<'_>, t: &Totals, o: &FlavorOption) -> Option<String> {
    let l = &inputs.config.limits;
    if t.nodes + 1 > l.max_nodes {
        return Some(format!("limits.max_nodes ({}) reached", l.max_nodes));
    }
    if t.cost + o.price_per_hour > l.max_cost_per_hour + 1e-9 {
        return Some(format!(
            "limits.max_cost_per_hour ({:.2}) would be exceeded",
            l.max_cost_per_hour
        ));
    }
    if inputs.month_spend + t.cost + o.price_per_hour > l.max_cost_per_month + 1e-9 {
        return Some(format!(
            "limits.max_cost_per_month ({:.2}) would be exceeded within the hour",
            l.max_cost_per_month
        ));
    }
    let site = inputs.config.site(&o.site)?;
    let (n, cpus, mem, gpus) = t.by_site.get(&o.site).copied().unwrap_or_default();
    let checks = [
        ("max_nodes", site.max_nodes.map(u64::from), u64::from(n) + 1),
        (
            "max_cores",
            site.max_cores.map(u64::from),
            cpus + o.capacity.cpus,
        ),
        ("max_memory_mb", site.max_memory_mb, mem + o.capacity.memory),
        (
            "max_gpus",
            site.max_gpus.map(u64::from),
            gpus + o.capacity.gpus,
        ),
    ];
    for (what, limit, would) in checks {
        if let Some(limit) = limit {
            if would > limit {
                return Some(format!("site {} {what} ({limit}) reached", o.site));
            }
        }
    }
    if let Some(g) = &o.group {
        let max = inputs.config.group(g).and_then(|g| g.max_nodes);
        let have = t.by_group.get(g).copied().unwrap_or(0);
        if let Some(max) = max {
            if have + 1 > max {
                return Some(format!("group {g} max_nodes ({max}) reached"));
            }
        }
    }
    None
}

/// Why a node decided for termination must wait for Mesos: a drained
/// node while its Mesos work is running or unknown; a failed boot only
/// while the master lists work on it. Instances already lost or
/// reclaimed have nothing left to protect.
fn termination_hold(n: &Node, holds: &Holds) -> Option<String> {
    match (n.state, holds) {
        (State::Drained, _) | (State::BootFailed, Holds::Nodes(_)) => holds.reason(&n.id),
        _ => None,
    }
}

/// The agent of a node about to be terminated that the master still
/// offers to frameworks: it is deactivated first, and the node is
/// terminated at a later look that shows no task on it. Instances already
/// lost or reclaimed are not waited for, and neither is a master that
/// does not deactivate (before Mesos 1.9, or refusing us) for
/// `DEACTIVATION_CYCLES` cycles: the node then goes without it.
fn offered_agent(inputs: &Inputs<'_>, n: &Node, mesos: Option<&MesosView>) -> Option<String> {
    if !matches!(n.state, State::Drained | State::BootFailed) {
        return None;
    }
    let patience = DEACTIVATION_CYCLES * inputs.config.timers.cycle.as_secs() as i64;
    if inputs.now - n.since >= patience {
        return None;
    }
    let agents = mesos?.by_node()?;
    let a = agents.get(n.id.as_str())?;
    (a.registered && a.offered).then(|| a.id.clone())
}

pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let mut plan = Plan::default();
    let options = inputs.options;
    let mut nodes: Vec<(usize, &Node)> = inputs.nodes.iter().enumerate().collect();
    nodes.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let seen = crate::mesos::seen(inputs.config, inputs.mesos);
    let mesos = seen.as_deref();
    let holds = mesos.map(supply::holds).unwrap_or_default();

    // 1. Termination of nodes already decided: safe whatever else is known
    //    (but Mesos work is not condor's to end). A node whose terminate
    //    was accepted but whose instance is still there has it re-sent,
    //    with back-off; past `terminate_timeout` it is marked for the admin
    //    (it still counts against the limits: the cloud still lists it).
    let timers = &inputs.config.timers;
    for (_, n) in &nodes {
        if n.state == State::Terminating {
            if terminate_stuck(n, inputs.now, timers) {
                plan.notes.push(format!(
                    "{} is stuck terminating: its instance {} is still listed {} s after the first terminate ({} sent); look at it in the cloud's console",
                    n.id,
                    n.instance_id.as_deref().unwrap_or("?"),
                    inputs.now.saturating_sub(n.since),
                    n.terminate_attempts
                ));
            }
            if terminate_due(n, inputs) {
                plan.actions.push(Action::Terminate {
                    node: n.id.clone(),
                    instance_id: n.instance_id.clone(),
                    reason: format!(
                        "re-sent: the instance is still listed {} s after terminate (attempt {})",
                        inputs.now.saturating_sub(n.since),
                        n.terminate_attempts + 1
                    ),
                });
            }
            continue;
        }
        if n.state.awaits_termination() {
            if let Some(why) = termination_hold(n, &holds) {
                plan.notes
                    .push(format!("{} is not terminated: {why}", n.id));
                continue;
            }
            if let Some(agent) = offered_agent(inputs, n, mesos) {
                plan.actions.push(Action::DeactivateMesosAgent {
                    node: n.id.clone(),
                    agent,
                    reason: format!(
                        "{} and about to be terminated: no Mesos task may land on it now",
                        n.state
                    ),
                });
                continue;
            }
            plan.actions.push(Action::Terminate {
                node: n.id.clone(),
                instance_id: n.instance_id.clone(),
                reason: format!("{} since {}", n.state, n.since),
            });
        }
    }

    // 2. Blind: no launch, no drain.
    let (Some(demand), Some(pool), true) = (inputs.demand, inputs.pool, inputs.cloud_known) else {
        for (known, what) in [
            (inputs.demand.is_some(), "the queue"),
            (inputs.pool.is_some(), "the pool"),
            (inputs.cloud_known, "the cloud inventory"),
        ] {
            if !known {
                plan.notes.push(format!(
                    "{what} could not be read: no launch and no drain this cycle"
                ));
            }
        }
        return plan;
    };

    let startds = startds_by_node(pool, inputs.nodes);
    let agents = mesos.and_then(MesosView::by_node).unwrap_or_default();
    let mesos_free = |n: &Node, o: usize| match agents.get(n.id.as_str()) {
        Some(a) if a.registered => a.free,
        Some(_) => Resources::default(),
        None => options[o].mesos_share,
    };
    let mut rooms: Vec<Room> = Vec::new();
    let mut cancellable: Vec<(usize, usize)> = Vec::new(); // (node index, option)
    for &(i, n) in &nodes {
        let Some(o) = option_of(options, n) else {
            continue;
        };
        // Nodes on their way out take no work: an admin asked, or they
        // reached their lifetime (demand buys their replacements).
        if n.admin_drain.is_some() || past_lifetime(n, inputs) {
            continue;
        }
        let free = match n.state {
            State::Requested | State::Booting => options[o].capacity,
            State::Idle | State::Busy => match startds.get(&n.id) {
                Some(s) if s.activity == Activity::Idle || s.activity == Activity::Busy => {
                    free_of(s)
                }
                _ => continue,
            },
            State::Draining if n.drain_cause == Some(DrainCause::Idle) => {
                cancellable.push((i, o));
                continue;
            }
            _ => continue,
        };
        rooms.push(Room {
            option: o,
            free,
            node: Some(i),
            life_end: life_end(n, timers),
            used: false,
            mesos_free: mesos_free(n, o),
        });
    }
    // Joined nodes first, then booting, then requested: work goes where it
    // can start soonest.
    let rank = |r: &Room| match r.node.map(|i| inputs.nodes[i].state) {
        Some(State::Idle | State::Busy) => 0,
        Some(State::Booting) => 1,
        _ => 2,
    };
    rooms.sort_by_key(rank);

    // 3. Place demand.
    let existing = totals(inputs.nodes, options, inputs.foreign);
    let mut per_option: BTreeMap<usize, (u64, u64)> = BTreeMap::new(); // jobs, new nodes
    let mut new_rooms_order: Vec<usize> = Vec::new();
    let mut undrain: Vec<usize> = Vec::new();
    for shape in &demand.shapes {
        if shape.options.is_empty() {
            continue;
        }
        let req = shape.request;
        // A job that states its run time goes only where it can finish
        // before the pilot's hard stop.
        let runtime = shape.shape.runtime.unwrap_or(0);
        let finishes_by = inputs.now.saturating_add(runtime);
        // Which nodes a stated run time keeps these jobs off, for the
        // notes (the scan is skipped for the many shapes that state none).
        let kept_off: Vec<&str> = match shape.shape.runtime {
            Some(_) => rooms
                .iter()
                .filter(|r| shape.options.contains(&r.option) && r.life_end < finishes_by)
                .filter(|r| r.free.fits(&req) > 0)
                .filter_map(|r| r.node.map(|i| inputs.nodes[i].id.as_str()))
                .collect(),
            None => Vec::new(),
        };
        if !kept_off.is_empty() {
            plan.notes.push(format!(
                "{} idle jobs (e.g. {}) kept off {}: their stated run time ({runtime} s) outlives the node's remaining life",
                shape.idle,
                example(shape),
                kept_off.join(", ")
            ));
        }
        let mut left = fill(
            rooms
                .iter_mut()
                .filter(|r| shape.options.contains(&r.option) && r.life_end >= finishes_by),
            shape.idle,
            &req,
            |r| &mut r.free,
            |n| n,
        );
        // Nodes drained for idleness come back before anything new is
        // bought.
        while left > 0 {
            let Some(pos) = cancellable.iter().position(|&(i, o)| {
                shape.options.contains(&o) && life_end(&inputs.nodes[i], timers) >= finishes_by
            }) else {
                break;
            };
            let (i, o) = cancellable.remove(pos);
            undrain.push(i);
            let cap = options[o].capacity;
            let take = cap.fits(&req).min(left);
            left -= take;
            rooms.push(Room {
                option: o,
                free: cap.minus(&req, take),
                node: Some(i),
                life_end: life_end(&inputs.nodes[i], timers),
                used: true,
                mesos_free: options[o].mesos_share,
            });
        }
        if left == 0 {
            continue;
        }
        if new_life_end(inputs) < finishes_by {
            plan.notes.push(format!(
                "{left} idle jobs (e.g. {}) wait: their stated run time ({runtime} s) is longer than a new node lives (timers.max_lifetime + timers.drain_grace, less {END_MARGIN} s to retire and vacate)",
                example(shape)
            ));
            continue;
        }
        // New nodes: the least cost per job, then the higher site priority,
        // then the least room wasted, then the name (determinism). Options
        // a limit already rules out (a flavour over the hourly budget, a
        // full site) give way to the next best.
        let usable: Vec<usize> = shape
            .options
            .iter()
            .copied()
            .filter(|&o| !in_backoff(inputs, o))
            .filter(|&o| options[o].capacity.fits(&req) > 0)
            .collect();
        let candidates = prefer_within_limits(inputs, &existing, usable);
        // The cheapest per job, then, among those within 10% of it, the
        // smallest node: a node lives as long as its longest job, so a
        // big node left with one long job wastes the most. Then the site
        // priority, then the name (determinism).
        let per_job = |o: &FlavorOption| o.price_per_hour / o.capacity.fits(&req).min(left) as f64;
        let cheapest = candidates
            .iter()
            .map(|&o| per_job(&options[o]))
            .fold(f64::INFINITY, f64::min);
        let best = candidates
            .into_iter()
            .filter(|&o| per_job(&options[o]) <= cheapest * 1.1)
            .min_by(|&a, &b| {
                let (oa, ob) = (&options[a], &options[b]);
                oa.capacity
                    .cpus
                    .cmp(&ob.capacity.cpus)
                    .then(ob.priority.cmp(&oa.priority))
                    .then(per_job(oa).total_cmp(&per_job(ob)))
                    .then(oa.label().cmp(&ob.label()))
            });
        let Some(o) = best else {
            plan.notes.push(format!(
                "{} idle jobs (e.g. {}) wait: every flavour that fits them is in back-off or at a paused site",
                left,
                example(shape)
            ));
            continue;
        };
        let fit = options[o].capacity.fits(&req);
        book_new_nodes(
            &mut per_option,
            &mut new_rooms_order,
            &mut rooms,
            o,
            left,
            fit,
            |take| Room {
                option: o,
                free: options[o].capacity.minus(&req, take),
                node: None,
                life_end: new_life_end(inputs),
                used: true,
                mesos_free: options[o].mesos_share,
            },
        );
    }
    if let Some(view) = mesos {
        place_mesos(
            inputs,
            view,
            &mut rooms,
            &mut cancellable,
            &mut undrain,
            &mut per_option,
            &mut new_rooms_order,
            &existing,
            &mut plan.notes,
        );
    }
    for i in undrain {
        let n = &inputs.nodes[i];
        plan.actions.push(Action::CancelDrain {
            node: n.id.clone(),
            startd: n.startd.clone().unwrap_or_default(),
            reason: "idle jobs it can run are waiting again".into(),
        });
    }

    // 4. Launch a share of the shortfall, within every limit.
    let wanted = new_rooms_order.len() as u64;
    let l = &inputs.config.limits;
    let allowed = ((wanted as f64 * l.ramp).ceil() as u64).min(l.launches_per_cycle as u64);
    let mut t = totals(inputs.nodes, options, inputs.foreign);
    let mut launched: BTreeMap<usize, u64> = BTreeMap::new();
    let mut blocked: Vec<String> = Vec::new();
    for &o in &new_rooms_order {
        if launched.values().sum::<u64>() >= allowed {
            break;
        }
        let opt = &options[o];
        if let Some(why) = blocked_by(inputs, &t, opt) {
            if !blocked.contains(&why) {
                blocked.push(why);
            }
            continue;
        }
        add(
            &mut t,
            &opt.site,
            opt.group.as_deref(),
            &opt.capacity,
            opt.price_per_hour,
        );
        *launched.entry(o).or_default() += 1;
    }
    for (&o, &(jobs, count)) in &per_option {
        let n = launched.get(&o).copied().unwrap_or(0);
        let opt = &options[o];
        plan.wants.push(Want {
            option: opt.label(),
            jobs,
            nodes: count,
            launching: n,
        });
        for _ in 0..n {
            plan.actions.push(Action::Launch {
                site: opt.site.clone(),
                flavor: opt.flavor.clone(),
                group: opt.group.clone(),
                spot: opt.spot,
                price_per_hour: opt.price_per_hour,
                reason: format!(
                    "{jobs} idle jobs or Mesos tasks need {count} x {}; launching {n} this cycle",
                    opt.label()
                ),
            });
        }
    }
    if wanted > allowed {
        plan.notes.push(format!(
            "ramp: {allowed} of {wanted} wanted nodes this cycle (limits.ramp {}, limits.launches_per_cycle {})",
            l.ramp, l.launches_per_cycle
        ));
    }
    for b in blocked {
        plan.notes.push(format!("launches held back: {b}"));
    }

    // 5. Scale down idle nodes nothing was placed on.
    let used: Vec<usize> = rooms
        .iter()
        .filter(|r| r.used)
        .filter_map(|r| r.node)
        .collect();
    let mut candidates: Vec<(i64, &Node, DrainCause)> = Vec::new();
    if let Holds::All(why) = &holds {
        plan.notes.push(format!(
            "the Mesos master could not be read ({why}): no node is drained for idleness"
        ));
    }
    let min_retirement = inputs.config.condor.min_retirement.as_secs() as i64;
    // Whether condor can drain it now without evicting a job (the adapter
    // checks again with the same rule), else why not.
    let drainable = |s: &Startd| -> Result<(), String> {
        drain_mode(s, min_retirement)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for &(i, n) in &nodes {
        if !matches!(n.state, State::Idle | State::Busy) || n.admin_drain.is_some() {
            continue;
        }
        let Some(s) = startds.get(&n.id) else {
            continue;
        };
        if !matches!(s.activity, Activity::Idle | Activity::Busy) {
            continue;
        }
        // At its lifetime a node is drained busy or not: no new job
        // starts, running ones retire, and it is replaced if still needed.
        if past_lifetime(n, inputs) {
            match drainable(s) {
                Ok(()) => candidates.push((i64::MAX, n, DrainCause::Lifetime)),
                Err(why) => plan.notes.push(format!(
                    "{} is past max_lifetime but not drained: {why}; it runs until the pilot's hard stop",
                    n.id
                )),
            }
            continue;
        }
        // Idle drains: unclaimed in *this* observation, nothing placed on
        // it, no Mesos work.
        if n.state != State::Idle || used.contains(&i) || holds.reason(&n.id).is_some() {
            continue;
        }
        if s.activity != Activity::Idle || s.claims > 0 {
            continue;
        }
        let idle_for = n.idle_for(inputs.now);
        if idle_for >= timers.idle_timeout.as_secs() as i64 {
            candidates.push((idle_for, n, DrainCause::Idle));
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    let joined = inputs.nodes.iter().filter(|n| n.state.is_joined()).count();
    let cap = (l.removals_per_cycle as usize)
        .min(((joined as f64 * l.removal_share).floor() as usize).max(1));
    if candidates.len() > cap {
        plan.notes.push(format!(
            "removals capped: {cap} of {} nodes drained this cycle",
            candidates.len()
        ));
    }
    // Nodes an admin asked to drain (`cloudburst drain`): graceful, busy
    // or not (running jobs retire), and outside the removal cap, which
    // guards against the agent's own mistakes, not the admin's decisions.
    // A node still booting is drained once it has joined.
    for &(_, n) in &nodes {
        if n.admin_drain.is_none() || !matches!(n.state, State::Idle | State::Busy) {
            continue;
        }
        let Some(s) = startds.get(&n.id) else {
            continue;
        };
        match drainable(s) {
            Ok(()) => plan.actions.push(Action::Drain {
                node: n.id.clone(),
                startd: s.name.clone(),
                cause: DrainCause::Admin,
                reason: "an admin asked for it (cloudburst drain)".into(),
            }),
            Err(why) => plan
                .notes
                .push(format!("{}: the admin's drain waits: {why}", n.id)),
        }
    }
    for (idle_for, n, cause) in candidates.into_iter().take(cap) {
        let reason = match cause {
            DrainCause::Lifetime => format!(
                "older than max_lifetime ({} s): running jobs retire, no new job starts",
                timers.max_lifetime.as_secs()
            ),
            _ => format!(
                "unclaimed for {idle_for} s (idle_timeout {} s) and no waiting job can use it",
                timers.idle_timeout.as_secs()
            ),
        };
        plan.actions.push(Action::Drain {
            node: n.id.clone(),
            startd: startds
                .get(&n.id)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            cause,
            reason,
        });
    }
    plan
}

#[cfg(test)]
mod mesos_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::condor::job::JobReader;
    use crate::demand::{compute, flavor_options};

    pub(crate) const CONFIG: &str = r#"
[limits]
max_nodes = 10
ramp = 1.0
launches_per_cycle = 100
[[sites]]
name = "aws"
provider = "ec2"
[[sites.flavors]]
name = "small"
cpus = 2
memory_mb = 8192
disk_gb = 50
price_per_hour = 0.10
[[sites.flavors]]
name = "big"
cpus = 16
memory_mb = 65536
disk_gb = 200
price_per_hour = 0.64
"#;

    fn jobs(n: i64, cpus: u32, mem: u32) -> Vec<crate::condor::Job> {
        let mut r = JobReader::new();
        (0..n)
            .map(|i| {
                let t = format!(
                    "[ClusterId = {}; ProcId = {i}; JobStatus = 1; RequestCpus = {cpus}; RequestMemory = {mem}; RequestDisk = 1024; Requirements = TARGET.CloudNode =?= true]",
                    cpus * 1000 + mem
                );
                r.job(crate::classad::parse_ad(t.as_bytes()).unwrap(), 0).unwrap()
            })
            .collect()
    }

    fn run(config: &Config, jobs: &[crate::condor::Job], nodes: &[Node], pool: &Pool) -> Plan {
        run_with(config, jobs, nodes, pool, None)
    }

    pub(crate) fn run_with(
        config: &Config,
        jobs: &[crate::condor::Job],
        nodes: &[Node],
        pool: &Pool,
        mesos: Option<&MesosView>,
    ) -> Plan {
        let options = flavor_options(config);
        let demand = compute(jobs, &options, &config.groups, 0);
        let backoff = BTreeMap::new();
        plan(&Inputs {
            now: 100_000,
            config,
            options: &options,
            demand: Some(&demand),
            pool: Some(pool),
            cloud_known: true,
            nodes,
            month_spend: 0.0,
            backoff: &backoff,
            foreign: &Default::default(),
            paused: &Default::default(),
            mesos,
        })
    }

    /// A node of the small flavour, joined at 99,000, last busy at 99,990.
    pub(crate) fn node(id: &str, state: State, cause: Option<DrainCause>) -> Node {
        Node {
            id: id.into(),
            site: "aws".into(),
            flavor: "small".into(),
            group: None,
            token: format!("t-{id}"),
            instance_id: Some(format!("i-{id}")),
            state,
            since: 99_000,
            created_at: 99_000,
            last_busy: Some(99_990),
            startd: Some(format!("{id}@cloud")),
            drain_cause: cause,
            admin_drain: None,
            terminate_attempts: 0,
            terminate_last: None,
            price_per_hour: 0.1,
            spot: false,
            ended_at: None,
        }
    }

    /// Its startd, with `claims` claims.
    pub(crate) fn startd(id: &str, claims: u32) -> Startd {
        Startd {
            name: format!("{id}@cloud"),
            slots: vec![format!("slot1@{id}@cloud")],
            machine: None,
            node_id: Some(id.into()),
            instance_id: None,
            site: Some("aws".into()),
            provider: Some("ec2".into()),
            flavor: Some("small".into()),
            activity: if claims > 0 {
                Activity::Busy
            } else {
                Activity::Idle
            },
            claims,
            total_cpus: 2.0,
            free_cpus: if claims > 0 { 0.0 } else { 2.0 },
            total_memory: 8192,
            free_memory: 8192,
            free_disk: 1 << 20,
            free_gpus: 0,
            drain_reason: None,
            retirement_time: None,
            daemon_start: None,
            last_heard: None,
            identity: None,
        }
    }

    fn launches(p: &Plan) -> Vec<String> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Launch { flavor, .. } => Some(flavor.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn jobs_are_packed_onto_the_cheapest_flavour_per_job() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        // 16 one-core jobs: 8 smalls cost 0.80/h, 1 big 0.64/h.
        let p = run(&c, &jobs(16, 1, 1024), &[], &Pool::default());
        assert_eq!(launches(&p), ["big"]);
        // 2 jobs: one small (0.10) beats a big.
        let p = run(&c, &jobs(2, 1, 1024), &[], &Pool::default());
        assert_eq!(launches(&p), ["small"]);
    }

    #[test]
    fn limits_and_ramp_hold() {
        let mut c = crate::config::parse("c.toml", CONFIG).unwrap();
        let p = run(&c, &jobs(1000, 2, 8192), &[], &Pool::default());
        assert_eq!(launches(&p).len(), 10, "max_nodes");
        assert!(
            p.notes.iter().any(|n| n.contains("max_nodes")),
            "{:?}",
            p.notes
        );
        c.limits.ramp = 0.25;
        c.limits.max_nodes = 100;
        let p = run(&c, &jobs(40, 2, 8192), &[], &Pool::default());
        // 40 jobs of 2 cpus: 8 per big, 5 bigs wanted; 25% of 5, rounded up.
        assert_eq!(launches(&p).len(), 2, "{:?}", p.notes);
    }

    #[test]
    fn instances_that_are_not_ours_use_the_sites_capacity() {
        let mut c = crate::config::parse("c.toml", CONFIG).unwrap();
        c.sites[0].max_nodes = Some(3);
        let options = flavor_options(&c);
        let js = jobs(40, 2, 8192);
        let demand = compute(&js, &options, &c.groups, 0);
        let backoff = BTreeMap::new();
        let foreign = BTreeMap::from([("aws".to_string(), (2u32, 16u32))]);
        let out = plan(&Inputs {
            now: 0,
            config: &c,
            options: &options,
            demand: Some(&demand),
            pool: Some(&Pool::default()),
            cloud_known: true,
            nodes: &[],
            month_spend: 0.0,
            backoff: &backoff,
            foreign: &foreign,
            paused: &Default::default(),
            mesos: None,
        });
        assert_eq!(launches(&out).len(), 1, "{:?}", out.notes);
        assert!(
            out.notes
                .iter()
                .any(|n| n.contains("site aws max_nodes (3)")),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn unknown_sources_mean_no_launch_and_no_drain() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        let options = flavor_options(&c);
        let backoff = BTreeMap::new();
        let js = jobs(10, 1, 1024);
        let demand = compute(&js, &options, &c.groups, 0);
        let pool = Pool::default();
        for (d, p, cloud) in [
            (None, Some(&pool), true),
            (Some(&demand), None, true),
            (Some(&demand), Some(&pool), false),
        ] {
            let out = plan(&Inputs {
                now: 0,
                config: &c,
                options: &options,
                demand: d,
                pool: p,
                cloud_known: cloud,
                nodes: &[],
                month_spend: 0.0,
                backoff: &backoff,
                foreign: &Default::default(),
                paused: &Default::default(),
                mesos: None,
            });
            assert!(out.actions.is_empty());
            assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
        }
    }

    #[test]
    fn a_busy_node_whose_jobs_would_not_retire_is_not_drained_at_its_lifetime() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        // Joined at 99,000; planned at 100,000: past a 900 s lifetime.
        let mut c2 = c.clone();
        c2.timers.max_lifetime = std::time::Duration::from_secs(900);
        let nodes = [node("old", State::Busy, None)];
        let mut pool = Pool::default();
        let mut s = startd("old", 1);
        s.retirement_time = Some(60);
        pool.startds.insert("old@cloud".into(), s.clone());
        let p = run(&c2, &[], &nodes, &pool);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("old is past max_lifetime but not drained")),
            "{:?}",
            p.notes
        );
        s.retirement_time = Some(3000);
        pool.startds.insert("old@cloud".into(), s);
        let p = run(&c2, &[], &nodes, &pool);
        assert!(
            matches!(
                p.actions.as_slice(),
                [Action::Drain {
                    cause: DrainCause::Lifetime,
                    ..
                }]
            ),
            "{:?}",
            p.actions
        );
    }

    #[test]
    fn an_admin_drain_is_planned_busy_or_idle_and_only_for_joined_nodes() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        let admin = |id: &str, state: State| Node {
            admin_drain: Some(99_500),
            ..node(id, state, None)
        };
        let nodes = [
            admin("busy", State::Busy),
            admin("idle", State::Idle),
            admin("booting", State::Booting),
            node("other", State::Idle, None),
        ];
        let mut pool = Pool::default();
        for (id, claims) in [("busy", 1), ("idle", 0), ("other", 0)] {
            let mut s = startd(id, claims);
            // Its jobs retire for an hour (the default min_retirement is 10 m).
            s.retirement_time = Some(3600);
            pool.startds.insert(format!("{id}@cloud"), s);
        }
        let p = run(&c, &[], &nodes, &pool);
        let mut drained: Vec<(String, DrainCause)> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Drain { node, cause, .. } => Some((node.clone(), *cause)),
                _ => None,
            })
            .collect();
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            drained,
            [
                ("busy".to_string(), DrainCause::Admin),
                ("idle".to_string(), DrainCause::Admin)
            ],
            "{:?}",
            p.actions
        );
    }
}
