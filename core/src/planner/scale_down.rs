//! Step 5: scale-down. Joined nodes unclaimed in this observation for
//! `idle_timeout` that no demand placed work on, and nodes past
//! `max_lifetime` (busy or not: running jobs retire), are drained, at most
//! a capped number per cycle; an admin's drain (`cloudburst drain`) is
//! outside the cap. Nothing is drained for idleness while the Mesos
//! master cannot be read, nor a node with Mesos work.

use crate::condor::commands::drain_mode;
use crate::condor::{Activity, Startd};
use crate::lifecycle::{DrainCause, Node, State};
use crate::mesos::supply::Holds;
use crate::pairing::StartdIndex;

use super::placement::past_lifetime;
use super::{Action, Inputs, Plan};

/// The drains of this cycle; `used` are the nodes demand placed work on.
pub(super) fn drains(
    inputs: &Inputs<'_>,
    nodes: &[(usize, &Node)],
    startds: &StartdIndex<'_>,
    used: &[usize],
    holds: &Holds,
    plan: &mut Plan,
) {
    let timers = &inputs.config.timers;
    let l = &inputs.config.limits;
    let mut candidates: Vec<(i64, &Node, DrainCause)> = Vec::new();
    if let Holds::All(why) = holds {
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
    for &(i, n) in nodes {
        if !matches!(n.state, State::Idle | State::Busy) || n.admin_drain.is_some() {
            continue;
        }
        let Some(s) = startds.of(n) else {
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
    for &(_, n) in nodes {
        if n.admin_drain.is_none() || !matches!(n.state, State::Idle | State::Busy) {
            continue;
        }
        let Some(s) = startds.of(n) else {
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
            startd: startds.of(n).map(|s| s.name.clone()).unwrap_or_default(),
            cause,
            reason,
        });
    }
}
