//! The node lifecycle: an explicit state machine, pure.
//!
//! ```text
//! requested -> booting -> idle <-> busy -> draining -> drained -> terminating -> gone
//!                 |          \______________/    |                   ^
//!                 +-> boot_failed ---------------|-------------------+
//!                    lost / preempted (from any live state) ---------+
//! ```
//!
//! `advance` reads what the cloud and the collector say about one node and
//! returns the transition to make, with its reason; the planner decides
//! the actions (drain, terminate) that move a node on. A node is declared
//! lost only when the cloud no longer lists its instance *and* the condor
//! side's debounce says its startd is gone: either alone is not enough.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cloud::{Instance, InstanceState};
use crate::condor::presence::Seen;
use crate::condor::{Activity, Startd};
use crate::config::Timers;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Launch intent journaled; the cloud call may or may not have happened.
    Requested,
    /// The instance exists; its startd has not joined yet.
    Booting,
    /// Joined, no claims.
    Idle,
    /// Joined, running work.
    Busy,
    /// Asked to drain: no new jobs, running ones finish.
    Draining,
    /// No work left; ready to terminate.
    Drained,
    /// Terminate requested.
    Terminating,
    Gone,
    /// No startd within the boot timeout.
    BootFailed,
    /// The instance vanished and the startd is gone.
    Lost,
    /// A spot instance taken back by the cloud.
    Preempted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Booting => "booting",
            State::Idle => "idle",
            State::Busy => "busy",
            State::Draining => "draining",
            State::Drained => "drained",
            State::Terminating => "terminating",
            State::Gone => "gone",
            State::BootFailed => "boot_failed",
            State::Lost => "lost",
            State::Preempted => "preempted",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        ALL.iter().copied().find(|x| x.name() == s)
    }

    /// Counts against limits and may cost money.
    pub fn is_live(self) -> bool {
        self != State::Gone
    }

    /// Has joined the pool and can run jobs now.
    pub fn is_joined(self) -> bool {
        matches!(self, State::Idle | State::Busy)
    }

    /// Capacity that is coming or available (counts as supply).
    pub fn is_supply(self) -> bool {
        matches!(
            self,
            State::Requested | State::Booting | State::Idle | State::Busy
        )
    }

    /// Needs an instance terminated before it can be gone.
    pub fn awaits_termination(self) -> bool {
        matches!(
            self,
            State::Drained | State::BootFailed | State::Lost | State::Preempted
        )
    }
}

pub const ALL: [State; 11] = [
    State::Requested,
    State::Booting,
    State::Idle,
    State::Busy,
    State::Draining,
    State::Drained,
    State::Terminating,
    State::Gone,
    State::BootFailed,
    State::Lost,
    State::Preempted,
];

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a node was drained: an idle drain may be cancelled if demand
/// returns; a lifetime drain may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainCause {
    Idle,
    Lifetime,
    Admin,
}

/// A node as the registry keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `<pool>-<sequence>`: also the `cloudburst:node` tag and the
    /// pilot's `CloudburstNodeId`.
    pub id: String,
    pub site: String,
    pub flavor: String,
    pub group: Option<String>,
    /// The idempotency token of its launch.
    pub token: String,
    pub instance_id: Option<String>,
    pub state: State,
    /// When it entered `state`.
    pub since: i64,
    pub created_at: i64,
    /// When it was last seen with a claim (or joined).
    pub last_busy: Option<i64>,
    /// The startd's daemon name, once joined.
    pub startd: Option<String>,
    pub drain_cause: Option<DrainCause>,
    /// When an admin asked for it to be drained (`cloudburst drain`). Kept
    /// apart from `drain_cause`: no transition clears it (see
    /// `carries_drain_cause`), so a request made while the node boots or
    /// works is acted on once it can be.
    #[serde(default)]
    pub admin_drain: Option<i64>,
    /// Terminate calls sent for it, and when the last one was: a node
    /// whose instance does not go away has it re-sent with back-off.
    #[serde(default)]
    pub terminate_attempts: u32,
    #[serde(default)]
    pub terminate_last: Option<i64>,
    pub price_per_hour: f64,
    pub spot: bool,
    /// When it became gone (for accounting).
    pub ended_at: Option<i64>,
}

/// What a transition to `to` keeps of why a node drains: the agent's own
/// cause only while the node is on its way out (a cancelled drain or a
/// node seen working again clears it). This is the one rule; the registry
/// applies it on disk and `apply` in memory. An admin's request
/// (`Node::admin_drain`) is never cleared by a transition: it outlives
/// booting, joining and every busy/idle refresh until the node is gone.
pub fn carries_drain_cause(to: State) -> bool {
    matches!(
        to,
        State::Draining | State::Drained | State::Terminating | State::Gone
    )
}

/// The end of a node's life as its pilot enforces it: the pilot powers
/// off at `max_lifetime + drain_grace` after boot whatever runs (`shutdown
/// -P`), so nothing may be planned to run past this.
pub fn hard_stop(n: &Node, timers: &Timers) -> i64 {
    n.created_at
        .saturating_add(timers.max_lifetime.as_secs() as i64)
        .saturating_add(timers.drain_grace.as_secs() as i64)
}

impl Node {
    /// A node whose launch is being asked for at `now`: nothing known of
    /// it yet but where, what and the launch's idempotency token.
    pub fn requested(id: &str, site: &str, flavor: &str, token: &str, now: i64) -> Node {
        Node {
            id: id.into(),
            site: site.into(),
            flavor: flavor.into(),
            group: None,
            token: token.into(),
            instance_id: None,
            state: State::Requested,
            since: now,
            created_at: now,
            last_busy: None,
            startd: None,
            drain_cause: None,
            admin_drain: None,
            terminate_attempts: 0,
            terminate_last: None,
            price_per_hour: 0.0,
            spot: false,
            ended_at: None,
        }
    }

    /// Idle since: its last claim, or when it joined.
    pub fn idle_for(&self, now: i64) -> i64 {
        now - self
            .last_busy
            .unwrap_or(self.since)
            .max(self.since.min(now))
    }
}

/// What the cloud says about a node's instance.
#[derive(Clone, Copy, Debug)]
pub enum CloudView<'a> {
    Listed(&'a Instance),
    /// The inventory was read and does not list it.
    NotListed,
    Unknown,
}

/// What the collector says about a node's startd.
#[derive(Clone, Copy, Debug)]
pub enum CondorView<'a> {
    Present(&'a Startd),
    /// Seen before, absent now, not yet past the debounce.
    Missing,
    /// Absent past the debounce (or never seen and not expected yet).
    Gone,
    NotYetSeen,
    Unknown,
}

impl<'a> CondorView<'a> {
    pub fn from(startd: Option<&'a Startd>, seen: Seen, pool_known: bool) -> CondorView<'a> {
        match (pool_known, startd, seen) {
            (false, _, _) => CondorView::Unknown,
            (true, Some(s), _) => CondorView::Present(s),
            (true, None, Seen::Gone { .. }) => CondorView::Gone,
            (true, None, Seen::Never) => CondorView::NotYetSeen,
            (true, None, _) => CondorView::Missing,
        }
    }
}

/// A state change with its reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub node: String,
    pub from: State,
    pub to: State,
    pub at: i64,
    pub reason: String,
    /// Facts learnt on the way (instance id, startd name, last claim).
    pub instance_id: Option<String>,
    pub startd: Option<String>,
    pub busy_at: Option<i64>,
}

fn to(node: &Node, state: State, now: i64, reason: impl Into<String>) -> Transition {
    Transition {
        node: node.id.clone(),
        from: node.state,
        to: state,
        at: now,
        reason: reason.into(),
        instance_id: None,
        startd: None,
        busy_at: None,
    }
}

/// Applies a transition to a node in memory, as the registry applies it
/// on disk.
pub fn apply(n: &mut Node, t: &Transition) {
    if n.id != t.node || n.state != t.from {
        return;
    }
    if t.to != n.state {
        n.since = t.at;
    }
    n.state = t.to;
    if let Some(i) = &t.instance_id {
        n.instance_id = Some(i.clone());
    }
    if let Some(s) = &t.startd {
        n.startd = Some(s.clone());
    }
    if let Some(b) = t.busy_at {
        n.last_busy = Some(b);
    }
    if t.to == State::Gone {
        n.ended_at = Some(t.at);
    }
    if !carries_drain_cause(t.to) {
        n.drain_cause = None;
    }
}

/// The state a joined startd's activity implies.
fn joined_state(s: &Startd) -> State {
    match s.activity {
        Activity::Idle => State::Idle,
        Activity::Busy => State::Busy,
        Activity::Draining => State::Draining,
        Activity::Drained => State::Drained,
    }
}

/// The transition this observation calls for, if any. Facts that change
/// no state (a busy node seen busy again) are returned as a transition to
/// the same state so that `last_busy` is kept current.
pub fn advance(
    node: &Node,
    cloud: CloudView<'_>,
    condor: CondorView<'_>,
    timers: &Timers,
    now: i64,
) -> Option<Transition> {
    use State::*;
    let reclaimed = matches!(cloud, CloudView::Listed(i) if i.state == InstanceState::Reclaimed);
    let instance_gone = match cloud {
        CloudView::NotListed => true,
        CloudView::Listed(i) => i.state == InstanceState::Terminated,
        CloudView::Unknown => false,
    };
    let startd_gone = matches!(condor, CondorView::Gone | CondorView::NotYetSeen);
    let age = now - node.created_at;

    if node.state == Gone {
        return None;
    }
    if node.state == Terminating {
        return instance_gone
            .then(|| to(node, Gone, now, "the cloud no longer lists the instance"));
    }
    if reclaimed && node.state != Preempted {
        return Some(to(
            node,
            Preempted,
            now,
            "the cloud reclaimed the spot instance",
        ));
    }
    if node.state.awaits_termination() && instance_gone {
        return Some(to(node, Gone, now, "the instance is gone"));
    }
    // Loss needs both sides: no instance, and no startd past the debounce.
    // A fresh instance may not be listed yet: booting nodes get the boot
    // timeout first.
    let listing_settled =
        node.state != Booting || now - node.since >= timers.boot_timeout.as_secs() as i64;
    if matches!(node.state, Booting | Idle | Busy | Draining)
        && instance_gone
        && startd_gone
        && listing_settled
    {
        return Some(to(
            node,
            Lost,
            now,
            "the instance vanished and its startd is gone",
        ));
    }

    match node.state {
        Requested => match cloud {
            CloudView::Listed(i) if i.is_alive() => {
                let mut t = to(node, Booting, now, format!("instance {} exists", i.id));
                t.instance_id = Some(i.id.clone());
                Some(t)
            }
            CloudView::NotListed if age >= timers.boot_timeout.as_secs() as i64 => Some(to(
                node,
                Gone,
                now,
                "no instance appeared for the launch within boot_timeout",
            )),
            _ => None,
        },
        Booting => match condor {
            CondorView::Present(s) => {
                let state = joined_state(s);
                let mut t = to(node, state, now, format!("startd {} joined", s.name));
                t.startd = Some(s.name.clone());
                t.busy_at = Some(now);
                Some(t)
            }
            _ if now - node.since >= timers.boot_timeout.as_secs() as i64
                && !matches!(condor, CondorView::Unknown) =>
            {
                Some(to(
                    node,
                    BootFailed,
                    now,
                    "no startd joined within boot_timeout",
                ))
            }
            _ => None,
        },
        Idle | Busy => match condor {
            CondorView::Present(s) => {
                let state = joined_state(s);
                let mut t = to(
                    node,
                    state,
                    now,
                    match (node.state, state) {
                        (a, b) if a == b => "still so",
                        (_, Busy) => "claimed",
                        (_, Idle) => "no claims left",
                        (_, Draining | Drained) => "the startd is draining",
                        _ => "observed",
                    },
                );
                if state == Busy {
                    t.busy_at = Some(now);
                }
                (state != node.state || state == Busy).then_some(t)
            }
            CondorView::Gone => Some(to(
                node,
                Drained,
                now,
                "its startd left the pool and has not come back",
            )),
            _ => None,
        },
        Draining => {
            let hard_end = hard_stop(node, timers);
            match condor {
                CondorView::Present(s) if s.activity == Activity::Drained && s.claims == 0 => {
                    Some(to(node, Drained, now, "drain complete, no claims"))
                }
                CondorView::Gone => Some(to(node, Drained, now, "its startd left the pool")),
                _ if now >= hard_end => Some(to(
                    node,
                    Drained,
                    now,
                    "past max_lifetime + drain_grace: jobs had their retirement time",
                )),
                _ => None,
            }
        }
        Drained | BootFailed | Lost | Preempted | Terminating | Gone => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condor::Startd;

    fn node(state: State) -> Node {
        Node {
            instance_id: Some("i-1".into()),
            state,
            price_per_hour: 0.1,
            ..Node::requested("p-1", "aws", "small", "t", 1000)
        }
    }

    fn instance(state: InstanceState) -> Instance {
        Instance {
            id: "i-1".into(),
            site: "aws".into(),
            flavor: "small".into(),
            state,
            pool: Some("p".into()),
            node_id: Some("p-1".into()),
            token: Some("t".into()),
            launched_at: 1000,
            spot: false,
        }
    }

    fn startd(activity: Activity, claims: u32) -> Startd {
        let mut s = crate::condor::pool::assemble(&[crate::classad::parse_ad(
            br#"[Name = "slot1@p-1@host"; SlotType = "Partitionable"; State = "Unclaimed"]"#,
        )
        .unwrap()])
        .unwrap()
        .startds
        .into_values()
        .next()
        .unwrap();
        s.activity = activity;
        s.claims = claims;
        s
    }

    fn step(
        n: &Node,
        cloud: CloudView<'_>,
        condor: CondorView<'_>,
        now: i64,
    ) -> Option<(State, String)> {
        advance(n, cloud, condor, &Timers::default(), now).map(|t| (t.to, t.reason))
    }

    #[test]
    fn a_node_boots_joins_works_and_drains() {
        let running = instance(InstanceState::Running);
        let listed = CloudView::Listed(&running);
        assert_eq!(
            step(
                &node(State::Requested),
                listed,
                CondorView::NotYetSeen,
                1010
            )
            .unwrap()
            .0,
            State::Booting
        );
        let idle = startd(Activity::Idle, 0);
        let (s, why) = step(
            &node(State::Booting),
            listed,
            CondorView::Present(&idle),
            1100,
        )
        .unwrap();
        assert_eq!((s, why.as_str()), (State::Idle, "startd p-1@host joined"));
        let busy = startd(Activity::Busy, 1);
        assert_eq!(
            step(&node(State::Idle), listed, CondorView::Present(&busy), 1200)
                .unwrap()
                .0,
            State::Busy
        );
        assert_eq!(
            step(&node(State::Busy), listed, CondorView::Present(&idle), 1300)
                .unwrap()
                .0,
            State::Idle
        );
        assert!(step(&node(State::Idle), listed, CondorView::Present(&idle), 1400).is_none());
        let drained = startd(Activity::Drained, 0);
        assert_eq!(
            step(
                &node(State::Draining),
                listed,
                CondorView::Present(&drained),
                1500
            )
            .unwrap()
            .0,
            State::Drained
        );
        // A draining node with work stays draining.
        let retiring = startd(Activity::Draining, 1);
        assert!(step(
            &node(State::Draining),
            listed,
            CondorView::Present(&retiring),
            1500
        )
        .is_none());
    }

    #[test]
    fn loss_needs_the_cloud_and_the_collector_to_agree() {
        let idle = startd(Activity::Idle, 0);
        // The cloud forgot it but the startd still reports: not lost.
        assert!(step(
            &node(State::Idle),
            CloudView::NotListed,
            CondorView::Present(&idle),
            2000
        )
        .is_none());
        // The startd is missing (not yet debounced): not lost.
        assert!(step(
            &node(State::Idle),
            CloudView::NotListed,
            CondorView::Missing,
            2000
        )
        .is_none());
        // Either side unknown: not lost. (A startd gone past the debounce
        // is unreachable: drained, to be terminated, but not "lost".)
        assert_eq!(
            step(
                &node(State::Idle),
                CloudView::Unknown,
                CondorView::Gone,
                2000
            )
            .unwrap()
            .0,
            State::Drained
        );
        assert!(step(
            &node(State::Idle),
            CloudView::NotListed,
            CondorView::Unknown,
            2000
        )
        .is_none());
        assert_eq!(
            step(
                &node(State::Idle),
                CloudView::NotListed,
                CondorView::Gone,
                2000
            )
            .unwrap()
            .0,
            State::Lost
        );
    }

    #[test]
    fn a_fresh_instance_missing_from_the_listing_is_not_lost_yet() {
        assert!(step(
            &node(State::Booting),
            CloudView::NotListed,
            CondorView::NotYetSeen,
            1010
        )
        .is_none());
        let t = Timers::default().boot_timeout.as_secs() as i64;
        assert_eq!(
            step(
                &node(State::Booting),
                CloudView::NotListed,
                CondorView::NotYetSeen,
                1000 + t
            )
            .unwrap()
            .0,
            State::Lost
        );
    }

    #[test]
    fn boot_failure_and_preemption() {
        let running = instance(InstanceState::Running);
        let t = Timers::default().boot_timeout.as_secs() as i64;
        assert!(step(
            &node(State::Booting),
            CloudView::Listed(&running),
            CondorView::NotYetSeen,
            1000 + t - 1
        )
        .is_none());
        assert_eq!(
            step(
                &node(State::Booting),
                CloudView::Listed(&running),
                CondorView::NotYetSeen,
                1000 + t
            )
            .unwrap()
            .0,
            State::BootFailed
        );
        // With the pool unreadable, no boot failure is declared.
        assert!(step(
            &node(State::Booting),
            CloudView::Listed(&running),
            CondorView::Unknown,
            1000 + t
        )
        .is_none());
        let reclaimed = instance(InstanceState::Reclaimed);
        let busy = startd(Activity::Busy, 1);
        assert_eq!(
            step(
                &node(State::Busy),
                CloudView::Listed(&reclaimed),
                CondorView::Present(&busy),
                2000
            )
            .unwrap()
            .0,
            State::Preempted
        );
    }

    #[test]
    fn a_startd_that_left_means_drained_and_termination_ends_in_gone() {
        let running = instance(InstanceState::Running);
        assert_eq!(
            step(
                &node(State::Idle),
                CloudView::Listed(&running),
                CondorView::Gone,
                2000
            )
            .unwrap()
            .0,
            State::Drained
        );
        let dead = instance(InstanceState::Terminated);
        assert_eq!(
            step(
                &node(State::Terminating),
                CloudView::Listed(&dead),
                CondorView::Gone,
                2000
            )
            .unwrap()
            .0,
            State::Gone
        );
        assert!(step(
            &node(State::Terminating),
            CloudView::Unknown,
            CondorView::Gone,
            2000
        )
        .is_none());
    }

    #[test]
    fn a_draining_node_is_released_after_lifetime_and_grace() {
        let t = Timers::default();
        let end = 1000 + (t.max_lifetime + t.drain_grace).as_secs() as i64;
        let running = instance(InstanceState::Running);
        let retiring = startd(Activity::Draining, 1);
        assert!(step(
            &node(State::Draining),
            CloudView::Listed(&running),
            CondorView::Present(&retiring),
            end - 1
        )
        .is_none());
        assert_eq!(
            step(
                &node(State::Draining),
                CloudView::Listed(&running),
                CondorView::Present(&retiring),
                end
            )
            .unwrap()
            .0,
            State::Drained
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in ALL {
            assert_eq!(State::parse(s.name()), Some(s));
        }
    }
}
