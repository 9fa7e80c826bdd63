//! Step 1: nodes already decided for termination are terminated, whatever
//! else is known this cycle; only Mesos work that is not condor's to end
//! holds one back.

use crate::lifecycle::{Node, State};
use crate::mesos::supply::Holds;
use crate::mesos::MesosView;

use super::{Action, Inputs, Plan};

/// How many cycles a drained node waits for its Mesos agent to be
/// deactivated before it is terminated without.
const DEACTIVATION_CYCLES: i64 = 5;

/// A node whose terminate was accepted but whose instance is still
/// there has it re-sent, with back-off; past `terminate_timeout` it is
/// marked for the admin (it still counts against the limits: the cloud
/// still lists it).
pub(super) fn terminations(
    inputs: &Inputs<'_>,
    nodes: &[(usize, &Node)],
    mesos: Option<&MesosView>,
    holds: &Holds,
    plan: &mut Plan,
) {
    let timers = &inputs.config.timers;
    for (_, n) in nodes {
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
            if let Some(why) = termination_hold(n, holds) {
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
