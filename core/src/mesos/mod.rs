//! The Mesos side, for Airavata: Mesos work waiting in a framework's queue
//! is demand like idle condor jobs, and Mesos work running on a pilot's
//! Mesos agent keeps that node from retirement like a claimed slot.
//!
//! Three HTTP reads (`client.rs`), each parsed by a pure function:
//! - the master's operator API, `POST /api/v1` `{"type":"GET_STATE"}`
//!   (`master.rs`): the agents (ours carry the `cloudburst_node`
//!   attribute the pilot gives them) and the tasks on each;
//! - Marathon's launch queue, `GET /v2/queue` (`marathon.rs`);
//! - Aurora's pending tasks, `POST /apibeta/getTasksWithoutConfigs`
//!   (`aurora.rs`).
//!
//! A read that fails is `Unknown`, never empty: the planner then drains
//! nothing (a node may be running Mesos work it cannot see) and buys
//! nothing for Mesos. `supply.rs` turns the master's view into what the
//! node lifecycle needs: which nodes are busy with Mesos work, and which
//! never registered their agent.
//!
//! Mesos quantities travel in a [`Resources`] with the cpus in
//! thousandths (Mesos asks for fractions: `0.5`), memory and disk in MB.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::config::{Config, Flavor, MesosConfig};
use crate::model::Resources;
use crate::observed::{Observed, Unknown};

pub mod aurora;
pub mod constraint;
pub mod marathon;
pub mod master;
pub mod supply;

/// A framework's waiting tasks that ask for the same thing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unit {
    /// `marathon` or `aurora`.
    pub source: &'static str,
    /// The app or pod id (Marathon), `role/environment/name` (Aurora).
    pub name: String,
    /// Tasks left to launch.
    pub count: u64,
    /// One task's request: cpus in thousandths, memory and disk in MB.
    pub request: Resources,
    /// Held back by the framework's own back-off (its tasks keep
    /// failing): reported, not bought for, until the delay is over.
    pub delayed: bool,
    /// Where the framework lets its tasks run (`constraint.rs`).
    pub constraints: Vec<constraint::Constraint>,
}

impl Unit {
    /// At most this many of its tasks on one node, if its constraints say.
    pub fn per_host(&self) -> Option<u64> {
        constraint::per_host(&self.constraints)
    }
}

/// One agent as the master reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    /// Our node id (the `cloudburst_node` attribute), if it is ours.
    pub node: Option<String>,
    /// False: known from before a master fail-over and not registered
    /// again yet; its tasks are not listed, so it counts as busy.
    pub registered: bool,
    /// Tasks on it that have not ended.
    pub tasks: u64,
    /// The master offers its resources to frameworks (active, and not
    /// deactivated by us or an operator).
    pub offered: bool,
    /// What it could still offer: cpus in thousandths, memory/disk MB.
    pub free: Resources,
}

/// What one cycle read of the Mesos side.
#[derive(Clone, Debug, PartialEq)]
pub struct MesosView {
    pub agents: Observed<Vec<Agent>>,
    /// Every framework's waiting units; Unknown if any framework's read
    /// failed (a partial queue would look like less demand than there is).
    pub queue: Observed<Vec<Unit>>,
}

impl MesosView {
    /// Nothing could be read (the agent runs no Mesos client).
    pub fn unknown(why: &str) -> MesosView {
        let u = || Unknown::Unavailable {
            detail: why.to_string(),
        };
        MesosView {
            agents: Observed::Unknown(u()),
            queue: Observed::Unknown(u()),
        }
    }

    /// Our agents by node id.
    pub fn by_node(&self) -> Option<BTreeMap<&str, &Agent>> {
        self.agents.known().map(|agents| {
            agents
                .iter()
                .filter_map(|a| a.node.as_deref().map(|n| (n, a)))
                .collect()
        })
    }
}

/// What a cycle knows of the Mesos side: nothing without `[mesos]`; with
/// it, what was read, or Unknown when nothing was.
pub fn seen<'a>(config: &Config, read: Option<&'a MesosView>) -> Option<Cow<'a, MesosView>> {
    config.mesos.as_ref()?;
    Some(read.map_or_else(
        || Cow::Owned(MesosView::unknown("not read this cycle")),
        Cow::Borrowed,
    ))
}

/// Why a Mesos endpoint's answer could not be used.
#[derive(Debug, Error, PartialEq)]
pub enum MesosError {
    #[error("{endpoint}: not the documented JSON: {detail}")]
    Format {
        endpoint: &'static str,
        detail: String,
    },
    #[error("{endpoint}: {detail}")]
    Refused {
        endpoint: &'static str,
        detail: String,
    },
}

pub(crate) fn format_error(endpoint: &'static str, detail: impl ToString) -> MesosError {
    MesosError::Format {
        endpoint,
        detail: detail.to_string(),
    }
}

/// What a fresh pilot of this flavour offers Mesos: `[pilot.mesos]`'s
/// share, never more than the flavour has.
pub fn share(f: &Flavor, m: &MesosConfig) -> Resources {
    Resources {
        cpus: u64::from(m.cpus.min(f.cpus)) * 1000,
        memory: m.memory_mb.min(f.memory_mb),
        disk: m.disk_gb.unwrap_or(f.disk_gb).min(f.disk_gb) * 1024,
        gpus: 0,
    }
}

/// A Mesos scalar (fractional cpus, MB) in our units, rounded up so a
/// request is never under-counted.
pub(crate) fn thousandths(cpus: f64) -> u64 {
    if cpus.is_finite() && cpus > 0.0 {
        (cpus * 1000.0).ceil() as u64
    } else {
        0
    }
}

pub(crate) fn whole(mb: f64) -> u64 {
    if mb.is_finite() && mb > 0.0 {
        mb.ceil() as u64
    } else {
        0
    }
}

/// What `status` and the metrics show of the Mesos side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Why the master could not be read (none: it was).
    pub master_unknown: Option<String>,
    /// Why a framework's queue could not be read (none: all were).
    pub frameworks_unknown: Option<String>,
    /// Registered agents on our nodes, those with tasks, and their tasks.
    pub agents: u64,
    pub busy_agents: u64,
    pub tasks: u64,
    /// Tasks waiting for an offer, by framework.
    pub waiting: BTreeMap<String, u64>,
    /// Tasks in their framework's back-off, by framework.
    pub delayed: BTreeMap<String, u64>,
}

impl Summary {
    pub fn of(view: &MesosView) -> Summary {
        let mut s = Summary {
            master_unknown: view.agents.unknown().map(|u| u.to_string()),
            frameworks_unknown: view.queue.unknown().map(|u| u.to_string()),
            ..Summary::default()
        };
        for a in view.agents.known().into_iter().flatten() {
            if a.node.is_some() && a.registered {
                s.agents += 1;
                s.busy_agents += u64::from(a.tasks > 0);
                s.tasks += a.tasks;
            }
        }
        for u in view.queue.known().into_iter().flatten() {
            let into = if u.delayed {
                &mut s.delayed
            } else {
                &mut s.waiting
            };
            *into.entry(u.source.to_string()).or_default() += u.count;
        }
        s
    }
}
