//! Step 3: idle demand, oldest first, placed on supply that matches it:
//! free room on joined nodes, then nodes booting or requested, then nodes
//! drained for idleness (whose drain is cancelled), then new nodes of the
//! flavour `choose_flavor` picks. Every place a job can go, existing or
//! planned, is a `Room` in one `Placement`; later shapes (and the Mesos
//! tasks, `mesos_placement`) fill the room left by earlier ones.

use std::collections::BTreeMap;

use crate::condor::{Activity, Startd};
use crate::demand::{Demand, FlavorOption, Shape};
use crate::lifecycle::{DrainCause, Node, State};
use crate::mesos::MesosView;
use crate::model::Resources;
use crate::pairing::StartdIndex;
use crate::sizing::Sizes;

use super::limits::{in_backoff, prefer_within_limits, totals, within_limits, Totals};
use super::{example, option_of, Action, Inputs};

/// A place jobs could go: an existing node or a planned one.
pub(super) struct Room {
    pub option: usize,
    pub free: Resources,
    pub node: Option<usize>,
    /// The last moment a job placed here can still be running: the
    /// pilot's hard stop less the retirement margin and vacate time.
    pub life_end: i64,
    /// Demand placed jobs here this cycle.
    pub used: bool,
    /// No condor job runs or is placed here: only a job of its size
    /// opens it (`crate::sizing`).
    pub empty: bool,
    /// What it can still offer Mesos (cpus in thousandths, MB).
    pub mesos_free: Resources,
}

/// Where this cycle's demand went.
pub(super) struct Placement {
    /// Existing nodes that take work, joined first, then booting, then
    /// requested (work goes where it can start soonest), then the nodes
    /// booked as the demand is placed.
    pub rooms: Vec<Room>,
    /// Nodes drained for idleness that demand may bring back: (node
    /// index, option).
    pub cancellable: Vec<(usize, usize)>,
    /// The ones brought back, whose drain is cancelled.
    pub undrain: Vec<usize>,
    /// Per option: the jobs placed on new nodes, and how many new nodes.
    pub per_option: BTreeMap<usize, (u64, u64)>,
    /// The option of each new node, in the order booked (launch order).
    pub new_nodes: Vec<usize>,
    /// What the live nodes add up to before any launch.
    pub existing: Totals,
    /// Which jobs may open an empty node of each option.
    pub sizes: Sizes,
}

fn free_of(s: &Startd) -> Resources {
    Resources {
        cpus: s.free_cpus.max(0.0) as u64,
        memory: s.free_memory.max(0) as u64,
        disk: s.free_disk.max(0) as u64,
        gpus: s.free_gpus.max(0) as u64,
    }
}

/// Places up to `count` requests on `rooms` in order, drawing on the
/// resources `side` picks (condor's or Mesos'), at most `cap(fits)` on
/// one room; returns how many found no room. `condor`: the requests are
/// condor jobs, which leave the rooms they take no longer empty.
pub(super) fn fill<'r>(
    rooms: impl Iterator<Item = &'r mut Room>,
    count: u64,
    req: &Resources,
    side: impl Fn(&mut Room) -> &mut Resources,
    cap: impl Fn(u64) -> u64,
    condor: bool,
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
            r.empty &= !condor;
            left -= take;
        }
    }
    left
}

/// Seconds of a node's life that no job can use: the retirement margin
/// and vacate time before the pilot's hard stop.
const END_MARGIN: i64 = crate::model::START_MARGIN;

/// The last moment a job on `n` can be running.
pub(super) fn life_end(n: &Node, timers: &crate::config::Timers) -> i64 {
    crate::lifecycle::hard_stop(n, timers).saturating_sub(END_MARGIN)
}

/// The same for a node launched now.
pub(super) fn new_life_end(inputs: &Inputs<'_>) -> i64 {
    let t = &inputs.config.timers;
    inputs
        .now
        .saturating_add(t.max_lifetime.as_secs() as i64)
        .saturating_add(t.drain_grace.as_secs() as i64)
        .saturating_sub(END_MARGIN)
}

/// A node at or past `max_lifetime`: it is drained, not given work.
pub(super) fn past_lifetime(n: &Node, inputs: &Inputs<'_>) -> bool {
    inputs.now.saturating_sub(n.created_at) >= inputs.config.timers.max_lifetime.as_secs() as i64
}

impl Placement {
    /// The rooms existing nodes offer. Nodes on their way out take no
    /// work: an admin asked, or they reached their lifetime (demand buys
    /// their replacements).
    pub(super) fn of_supply(
        inputs: &Inputs<'_>,
        nodes: &[(usize, &Node)],
        startds: &StartdIndex<'_>,
        mesos: Option<&MesosView>,
    ) -> Placement {
        let options = inputs.options;
        let agents = mesos.and_then(MesosView::by_node).unwrap_or_default();
        let mesos_free = |n: &Node, o: usize| match agents.get(n.id.as_str()) {
            Some(a) if a.registered => a.free,
            Some(_) => Resources::default(),
            None => options[o].mesos_share,
        };
        let mut rooms: Vec<Room> = Vec::new();
        let mut cancellable: Vec<(usize, usize)> = Vec::new();
        for &(i, n) in nodes {
            let Some(o) = option_of(options, n) else {
                continue;
            };
            if n.admin_drain.is_some() || past_lifetime(n, inputs) {
                continue;
            }
            let (free, empty) = match n.state {
                State::Requested | State::Booting => (options[o].capacity, true),
                State::Idle | State::Busy => match startds.of(n) {
                    Some(s) if s.activity == Activity::Idle || s.activity == Activity::Busy => {
                        (free_of(s), s.claims == 0)
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
                life_end: life_end(n, &inputs.config.timers),
                used: false,
                empty,
                mesos_free: mesos_free(n, o),
            });
        }
        let rank = |r: &Room| match r.node.map(|i| inputs.nodes[i].state) {
            Some(State::Idle | State::Busy) => 0,
            Some(State::Booting) => 1,
            _ => 2,
        };
        rooms.sort_by_key(rank);
        Placement {
            rooms,
            cancellable,
            undrain: Vec::new(),
            per_option: BTreeMap::new(),
            new_nodes: Vec::new(),
            existing: totals(inputs.nodes, options, inputs.foreign),
            sizes: Sizes::of(options, inputs.config.pilot.sized_start),
        }
    }

    /// Books `left` requests on new nodes of option `o`, `fit` to a node:
    /// the nodes wanted, and the room each leaves (`room(take)`) for later
    /// demand to fill.
    pub(super) fn book_new_nodes(
        &mut self,
        o: usize,
        left: u64,
        fit: u64,
        room: impl Fn(u64) -> Room,
    ) {
        let count = left.div_ceil(fit);
        let e = self.per_option.entry(o).or_default();
        e.0 += left;
        e.1 += count;
        for k in 0..count {
            self.rooms.push(room(fit.min(left - k * fit)));
            self.new_nodes.push(o);
        }
    }

    /// Brings back the first node drained for idleness that `wanted`
    /// accepts: its drain is cancelled and its room (`room`) added.
    pub(super) fn bring_back(
        &mut self,
        wanted: impl Fn(usize, usize) -> bool,
        room: impl FnOnce(usize, usize) -> Room,
    ) -> bool {
        let Some(pos) = self.cancellable.iter().position(|&(i, o)| wanted(i, o)) else {
            return false;
        };
        let (i, o) = self.cancellable.remove(pos);
        self.undrain.push(i);
        self.rooms.push(room(i, o));
        true
    }

    /// The existing nodes demand placed work on this cycle.
    pub(super) fn used_nodes(&self) -> Vec<usize> {
        self.rooms
            .iter()
            .filter(|r| r.used)
            .filter_map(|r| r.node)
            .collect()
    }

    /// The drains cancelled for nodes demand brought back.
    pub(super) fn cancel_drains(&self, inputs: &Inputs<'_>, actions: &mut Vec<Action>) {
        for &i in &self.undrain {
            let n = &inputs.nodes[i];
            actions.push(Action::CancelDrain {
                node: n.id.clone(),
                startd: n.startd.clone().unwrap_or_default(),
                reason: "idle jobs it can run are waiting again".into(),
            });
        }
    }

    /// Places each shape of `demand`, oldest first.
    pub(super) fn place_demand(
        &mut self,
        inputs: &Inputs<'_>,
        demand: &Demand,
        notes: &mut Vec<String>,
    ) {
        for shape in demand.shapes.iter().filter(|s| !s.options.is_empty()) {
            self.place_shape(inputs, shape, notes);
        }
    }

    fn place_shape(&mut self, inputs: &Inputs<'_>, shape: &Shape, notes: &mut Vec<String>) {
        let options = inputs.options;
        let timers = &inputs.config.timers;
        let req = shape.request;
        // A job that states its run time goes only where it can finish
        // before the pilot's hard stop.
        let runtime = shape.shape.runtime.unwrap_or(0);
        let finishes_by = inputs.now.saturating_add(runtime);
        // Which nodes a stated run time keeps these jobs off, for the
        // notes (the scan is skipped for the many shapes that state none).
        let kept_off: Vec<&str> = match shape.shape.runtime {
            Some(_) => self
                .rooms
                .iter()
                .filter(|r| shape.options.contains(&r.option) && r.life_end < finishes_by)
                .filter(|r| r.free.fits(&req) > 0)
                .filter_map(|r| r.node.map(|i| inputs.nodes[i].id.as_str()))
                .collect(),
            None => Vec::new(),
        };
        if !kept_off.is_empty() {
            notes.push(format!(
                "{} idle jobs (e.g. {}) kept off {}: their stated run time ({runtime} s) outlives the node's remaining life",
                shape.idle,
                example(shape),
                kept_off.join(", ")
            ));
        }
        // Which options' empty nodes these jobs may open (crate::sizing):
        // those no smaller flavour anywhere holds them in, or, once they
        // have waited, those no smaller flavour at the same site does. A
        // shape that cannot buy a flavour it opens at once now (its
        // Requirements pin it to a site, or that flavour's site is full
        // or in back-off) buys by the second rule and starts after the
        // wait.
        let waited = inputs.now.saturating_sub(shape.oldest);
        let buyable_at_once = shape.options.iter().any(|&o| {
            self.sizes.opens_at_once(o, &req)
                && options[o].capacity.fits(&req) > 0
                && !in_backoff(inputs, o)
                && within_limits(inputs, &self.existing, o)
        });
        let opens: Vec<bool> = (0..options.len())
            .map(|o| {
                self.sizes.opens_after(o, &req, waited)
                    || (!buyable_at_once && self.sizes.opens(o, &req))
            })
            .collect();
        let mut left = fill(
            self.rooms
                .iter_mut()
                .filter(|r| shape.options.contains(&r.option) && r.life_end >= finishes_by)
                .filter(|r| !r.empty || opens[r.option]),
            shape.idle,
            &req,
            |r| &mut r.free,
            |n| n,
            true,
        );
        // Nodes drained for idleness come back before anything new is
        // bought.
        while left > 0 {
            let wanted = |i: usize, o: usize| {
                shape.options.contains(&o)
                    && opens[o]
                    && life_end(&inputs.nodes[i], timers) >= finishes_by
            };
            let mut took = 0;
            let room = |i: usize, o: usize| {
                let cap = options[o].capacity;
                took = cap.fits(&req).min(left);
                Room {
                    option: o,
                    free: cap.minus(&req, took),
                    node: Some(i),
                    life_end: life_end(&inputs.nodes[i], timers),
                    used: true,
                    empty: false,
                    mesos_free: options[o].mesos_share,
                }
            };
            if !self.bring_back(wanted, room) {
                break;
            }
            left -= took;
        }
        if left == 0 {
            return;
        }
        if new_life_end(inputs) < finishes_by {
            notes.push(format!(
                "{left} idle jobs (e.g. {}) wait: their stated run time ({runtime} s) is longer than a new node lives (timers.max_lifetime + timers.drain_grace, less {END_MARGIN} s to retire and vacate)",
                example(shape)
            ));
            return;
        }
        // New nodes only of flavours these jobs can open.
        let openable: Vec<usize> = shape
            .options
            .iter()
            .copied()
            .filter(|&o| opens[o])
            .collect();
        if openable.is_empty() {
            notes.push(format!(
                "{left} idle jobs (e.g. {}) wait for room beside other jobs: every flavour their Requirements allow has a smaller one at its site that holds them, so an empty node does not start them (pilot.sized_start)",
                example(shape)
            ));
            return;
        }
        let Some(o) = choose_flavor(inputs, &self.existing, &openable, &req, left) else {
            notes.push(format!(
                "{} idle jobs (e.g. {}) wait: every flavour that fits them is in back-off or at a paused site",
                left,
                example(shape)
            ));
            return;
        };
        let fit = options[o].capacity.fits(&req);
        self.book_new_nodes(o, left, fit, |take| Room {
            option: o,
            free: options[o].capacity.minus(&req, take),
            node: None,
            life_end: new_life_end(inputs),
            used: true,
            empty: false,
            mesos_free: options[o].mesos_share,
        });
    }
}

/// The flavour new nodes for `left` jobs of request `req` are bought of,
/// among the shape's `candidates`: out of back-off and fitting one job;
/// those a limit already rules out (a flavour over the hourly budget, a
/// full site) give way to the next best. Then the cheapest per job and,
/// among those within 10% of it, the smallest node: a node lives as long
/// as its longest job, so a big node left with one long job wastes the
/// most. Then the site priority, then the cost per job, then the name
/// (determinism).
pub(super) fn choose_flavor(
    inputs: &Inputs<'_>,
    existing: &Totals,
    candidates: &[usize],
    req: &Resources,
    left: u64,
) -> Option<usize> {
    let options = inputs.options;
    let usable: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&o| !in_backoff(inputs, o))
        .filter(|&o| options[o].capacity.fits(req) > 0)
        .collect();
    let candidates = prefer_within_limits(inputs, existing, usable);
    // With sized starts a new node starts one job of these, and smaller
    // jobs fill it later: it is priced as one job's.
    let per_node = if inputs.config.pilot.sized_start {
        1
    } else {
        left
    };
    let per_job = |o: &FlavorOption| o.price_per_hour / o.capacity.fits(req).min(per_node) as f64;
    let cheapest = candidates
        .iter()
        .map(|&o| per_job(&options[o]))
        .fold(f64::INFINITY, f64::min);
    candidates
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
        })
}
