//! What the master's view means for our nodes. Pure.
//!
//! - A node whose Mesos agent runs tasks is busy: its idle clock restarts
//!   (`busy`), and it is neither drained nor terminated (`holds`).
//! - An agent known only from before a master fail-over has its tasks
//!   unlisted: held as if busy until it registers again.
//! - When the master cannot be read, every node's Mesos work is unknown:
//!   nothing is retired for idleness (`holds` says why).
//! - With `mesos.required`, a node whose condor side joined but whose
//!   agent never registered within `timers.boot_timeout` of its launch
//!   failed to boot (`boot_failures`). Only an unclaimed node is failed
//!   that way: a failed boot is terminated, and condor work on it is not
//!   killed for Mesos' sake.

use std::collections::BTreeMap;

use super::MesosView;
use crate::config::Config;
use crate::lifecycle::{Node, State, Transition};

/// Why a node must keep running for Mesos, by node id.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Holds {
    /// The master was read: these nodes have Mesos work.
    #[default]
    None,
    Nodes(BTreeMap<String, String>),
    /// The master could not be read: any node may have Mesos work.
    All(String),
}

impl Holds {
    pub fn reason(&self, node: &str) -> Option<String> {
        match self {
            Holds::None => None,
            Holds::Nodes(m) => m.get(node).cloned(),
            Holds::All(why) => Some(format!("the Mesos master could not be read ({why})")),
        }
    }
}

pub fn holds(view: &MesosView) -> Holds {
    let Some(agents) = view.agents.known() else {
        let why = view
            .agents
            .unknown()
            .map(|u| u.to_string())
            .unwrap_or_default();
        return Holds::All(why);
    };
    let mut out = BTreeMap::new();
    for a in agents {
        let Some(node) = &a.node else { continue };
        let why = if !a.registered {
            "its Mesos agent has not registered again since a master fail-over".to_string()
        } else if a.tasks > 0 {
            format!("{} Mesos task(s) running on agent {}", a.tasks, a.id)
        } else {
            continue;
        };
        out.insert(node.clone(), why);
    }
    if out.is_empty() {
        Holds::None
    } else {
        Holds::Nodes(out)
    }
}

fn keep(n: &Node, now: i64, reason: String) -> Transition {
    Transition {
        node: n.id.clone(),
        from: n.state,
        to: n.state,
        at: now,
        reason,
        instance_id: None,
        startd: None,
        busy_at: Some(now),
    }
}

/// Joined nodes with Mesos work: seen busy now, so that `idle_timeout`
/// counts from when their Mesos work ended.
pub fn busy(nodes: &[Node], holds: &Holds, now: i64) -> Vec<Transition> {
    let Holds::Nodes(held) = holds else {
        return Vec::new();
    };
    nodes
        .iter()
        .filter(|n| matches!(n.state, State::Idle | State::Busy))
        .filter_map(|n| held.get(&n.id).map(|why| keep(n, now, why.clone())))
        .collect()
}

/// Unclaimed joined nodes whose Mesos agent never registered in time,
/// when Mesos is required.
pub fn boot_failures(
    config: &Config,
    nodes: &[Node],
    view: &MesosView,
    now: i64,
) -> Vec<Transition> {
    let (Some(m), Some(agents)) = (&config.mesos, view.by_node()) else {
        return Vec::new();
    };
    if !m.required {
        return Vec::new();
    }
    let limit = config.timers.boot_timeout.as_secs() as i64;
    nodes
        .iter()
        .filter(|n| n.state == State::Idle && now - n.created_at >= limit)
        .filter(|n| !agents.contains_key(n.id.as_str()))
        .map(|n| Transition {
            to: State::BootFailed,
            busy_at: None,
            ..keep(
                n,
                now,
                format!(
                    "its Mesos agent never registered with the master within timers.boot_timeout ({limit} s; mesos.required)"
                ),
            )
        })
        .collect()
}
