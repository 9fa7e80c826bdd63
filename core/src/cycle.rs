//! One cycle of the agent: observe → reconcile → demand → plan → act.
//!
//! The cycle talks to the world only through two ports, so the same code
//! drives the real pool and clouds (the agent), the simulated ones (the
//! simulator) and the property tests: `CondorPort` (snapshot, drain) and
//! `CloudPort` (inventory, launch, terminate). The registry is written
//! before and after every call: a launch is journaled with its idempotency
//! token before the cloud hears of it, so a crash between the two is found
//! again by the token at the next reconciliation.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use thiserror::Error;

use crate::cloud::{ErrorKind, Inventory, LaunchRequest, TAG_NODE, TAG_POOL};
use crate::condor::commands::Outcome;
use crate::condor::presence::Presence;
use crate::condor::{PoolSnapshot, Startd};
use crate::config::Config;
use crate::decide::{decide, Decision, Situation};
use crate::demand::{self, FlavorOption};
use crate::lifecycle::{DrainCause, Node, State, Transition};
use crate::mesos::{self, supply};
use crate::observed::Observed;
use crate::pairing::StartdIndex;
use crate::planner::{Action, Plan};
use crate::reconcile::reconcile;

pub use crate::ports::{CloudPort, CondorPort, MesosPort, NoPilot, Pilot, Store, StoreError};

#[derive(Debug, Error)]
pub enum CycleError {
    #[error(transparent)]
    Registry(#[from] StoreError),
    /// A test's fail point stopped the cycle (a simulated crash).
    #[error("interrupted at a fail point")]
    Interrupted,
}

/// What one action did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Done {
    pub action: Action,
    pub node: Option<String>,
    pub outcome: ActionOutcome,
}

/// How an action ended, as a kind the metrics and status count, with the
/// cloud's error class when a cloud call failed, and the text the journal
/// and the log keep.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionOutcome {
    pub effect: Effect,
    pub class: Option<ErrorKind>,
    text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The call was made and did what was asked (or found it done).
    Done,
    /// Nothing was attempted this cycle, and the text says why.
    Skipped,
    /// The call failed; it will be planned again if still wanted.
    Failed,
    /// The call may or may not have taken effect (a lost reply): the next
    /// reconciliation finds out by the idempotency token.
    Unknown,
}

impl ActionOutcome {
    pub fn done(text: impl Into<String>) -> ActionOutcome {
        ActionOutcome::new(Effect::Done, None, text)
    }
    pub fn skipped(text: impl Into<String>) -> ActionOutcome {
        ActionOutcome::new(Effect::Skipped, None, text)
    }
    pub fn failed(class: Option<ErrorKind>, text: impl Into<String>) -> ActionOutcome {
        ActionOutcome::new(Effect::Failed, class, text)
    }
    pub fn unknown(class: Option<ErrorKind>, text: impl Into<String>) -> ActionOutcome {
        ActionOutcome::new(Effect::Unknown, class, text)
    }
    fn new(effect: Effect, class: Option<ErrorKind>, text: impl Into<String>) -> ActionOutcome {
        ActionOutcome {
            effect,
            class,
            text: text.into(),
        }
    }
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The cloud error class of a failed or unknown call ("capacity").
    pub fn failure_class(&self) -> Option<String> {
        matches!(self.effect, Effect::Failed | Effect::Unknown)
            .then_some(self.class)
            .flatten()
            .map(|k| format!("{k:?}").to_lowercase())
    }
}

impl std::fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// In `status.json` an outcome is its text, as before it had a type.
impl Serialize for ActionOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The node an action was for (when it got that far), and its outcome.
type Acted = (Option<String>, ActionOutcome);

/// Everything a cycle saw and did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub now: i64,
    pub transitions: Vec<Transition>,
    pub notes: Vec<String>,
    pub plan: Plan,
    pub done: Vec<Done>,
    pub idle_jobs: u64,
    pub unmatched: Vec<(String, u64, String)>,
    /// The Mesos side, when `[mesos]` is configured.
    pub mesos: Option<mesos::Summary>,
}

/// How soon a cycle that drained idle nodes is followed by the next: the
/// startd of an unclaimed node is Drained at once and tells the collector
/// so, and waiting a whole interval to terminate it would pay for an
/// empty node that long.
pub const FOLLOW_UP_SECS: u64 = 15;

impl Report {
    /// Whether the next cycle should come after `FOLLOW_UP_SECS` rather
    /// than the interval: this one drained idle nodes, to terminate next.
    pub fn wants_follow_up(&self) -> bool {
        self.plan.actions.iter().any(|a| {
            matches!(
                a,
                Action::Drain {
                    cause: DrainCause::Idle,
                    ..
                }
            )
        })
    }
}

/// What a cycle does (see [`Agent::cycle_new_demand`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Full,
    NewDemand,
}

/// Stops a cycle after a number of steps (tests simulate a crash with it).
#[derive(Default)]
pub struct FailPoints {
    pub remaining: Option<u32>,
}

impl FailPoints {
    fn pass(&mut self) -> Result<(), CycleError> {
        match &mut self.remaining {
            Some(0) => Err(CycleError::Interrupted),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// The parts of the agent that live across cycles.
pub struct Agent<'a> {
    pub config: &'a Config,
    pub options: Vec<FlavorOption>,
    pub registry: &'a mut dyn Store,
    pub presence: Presence,
    /// Makes an idempotency token for a node id (random in the agent,
    /// seeded in simulation).
    pub tokens: Box<dyn FnMut(&str) -> String + 'a>,
    pub fail: FailPoints,
}

impl<'a> Agent<'a> {
    pub fn new(
        config: &'a Config,
        registry: &'a mut dyn Store,
        tokens: Box<dyn FnMut(&str) -> String + 'a>,
    ) -> Agent<'a> {
        Agent {
            config,
            options: demand::flavor_options(config),
            registry,
            presence: Presence::new(config.pool.startd_missing_grace.as_secs() as i64),
            tokens,
            fail: FailPoints::default(),
        }
    }

    /// Runs one cycle at `now` (with `[mesos]`, its side reads as unknown).
    pub fn cycle(
        &mut self,
        condor: &mut dyn CondorPort,
        cloud: &mut dyn CloudPort,
        pilot: &dyn Pilot,
        now: i64,
    ) -> Result<Report, CycleError> {
        self.cycle_with_mesos(condor, cloud, pilot, None, now)
    }

    /// Runs one cycle at `now` with the Mesos side.
    pub fn cycle_with_mesos(
        &mut self,
        condor: &mut dyn CondorPort,
        cloud: &mut dyn CloudPort,
        pilot: &dyn Pilot,
        mesos_port: Option<&mut dyn MesosPort>,
        now: i64,
    ) -> Result<Report, CycleError> {
        self.run(condor, cloud, pilot, mesos_port, now, Scope::Full)
    }

    /// Launches for new demand only, between full cycles: the queue is
    /// fresh (new jobs in the schedd's job log) but the slots and the
    /// clouds are the last full cycle's view, so nothing that view could
    /// make wrong is done: no reconciliation (a node that joined since
    /// must not look like a boot failure), no drain, no termination.
    pub fn cycle_new_demand(
        &mut self,
        condor: &mut dyn CondorPort,
        cloud: &mut dyn CloudPort,
        pilot: &dyn Pilot,
        now: i64,
    ) -> Result<Report, CycleError> {
        self.run(condor, cloud, pilot, None, now, Scope::NewDemand)
    }

    fn run(
        &mut self,
        condor: &mut dyn CondorPort,
        cloud: &mut dyn CloudPort,
        pilot: &dyn Pilot,
        mut mesos_port: Option<&mut dyn MesosPort>,
        now: i64,
        scope: Scope,
    ) -> Result<Report, CycleError> {
        let read = mesos_port.as_ref().map(|m| m.view().clone());
        let mut report = Report {
            now,
            ..Report::default()
        };
        // Observe.
        let snap = condor.snapshot(now);
        let mut inventories = BTreeMap::new();
        for site in &self.config.sites {
            let name = site.name.get_ref().clone();
            inventories.insert(name.clone(), cloud.inventory(&name));
        }
        // One pairing of nodes with startds for the whole cycle.
        let startds = snap.pool.known().map(StartdIndex::new);
        if scope == Scope::Full {
            self.reconcile(
                &snap,
                &inventories,
                startds.as_ref(),
                cloud,
                &mut report,
                now,
            )?;
        }
        // The Mesos side: busy nodes stay busy, agents that never came are
        // failed boots.
        let seen = mesos::seen(self.config, read.as_ref());
        let mesos = seen.as_deref();
        if let Some(view) = mesos.filter(|_| scope == Scope::Full) {
            let nodes = self.registry.live_nodes()?;
            let busy = supply::busy(&nodes, &supply::holds(view), now);
            self.registry.apply(&busy)?;
            let failed = supply::boot_failures(self.config, &nodes, view, now);
            self.registry.apply(&failed)?;
            for t in &failed {
                self.after_transition(t, &nodes, now)?;
            }
            report.transitions.extend(failed);
            report.mesos = Some(mesos::Summary::of(view));
        }

        // Demand and plan.
        let nodes = self.registry.live_nodes()?;
        let backoff = self.registry.backoff()?;
        let paused = self.registry.site_pauses()?;
        let cloud_known = inventories.values().all(Observed::is_known);
        let month_spend = self.registry.month_spend(now)?;
        let foreign: BTreeMap<String, (u32, u32)> = inventories
            .iter()
            .filter_map(|(site, inv)| {
                inv.known()
                    .map(|i| (site.clone(), (i.foreign, i.foreign_cores)))
            })
            .collect();
        let Decision { demand, plan } = decide(
            &Situation {
                now,
                config: self.config,
                options: &self.options,
                startds: startds.as_ref(),
                cloud_known,
                nodes: &nodes,
                month_spend,
                backoff: &backoff,
                foreign: &foreign,
                paused: &paused,
                mesos,
            },
            snap.queue_known().then(|| snap.jobs()),
        );
        if let Some(d) = &demand {
            report.idle_jobs = d.idle_jobs;
            report.unmatched = d
                .unmatched()
                .map(|s| {
                    (
                        s.examples
                            .first()
                            .map(|j| j.to_string())
                            .unwrap_or_default(),
                        s.idle,
                        s.unmatched.clone().unwrap_or_default(),
                    )
                })
                .collect();
        }

        // Act.
        let mut plan = plan;
        if scope == Scope::NewDemand {
            plan.actions.retain(|a| matches!(a, Action::Launch { .. }));
        }
        let mut failed_options: BTreeSet<(String, String)> = BTreeSet::new();
        for action in &plan.actions {
            self.fail.pass()?;
            let span = action_span(action, &nodes);
            let _entered = span.enter();
            let done = match action {
                Action::Launch { .. } => {
                    self.launch(action, cloud, pilot, &mut failed_options, now)?
                }
                Action::Drain {
                    node,
                    startd,
                    cause,
                    reason,
                } => self.drain(condor, &snap, node, startd, *cause, reason, now)?,
                Action::CancelDrain { node, startd, .. } => {
                    self.cancel_drain(condor, &snap, node, startd, now)?
                }
                Action::Terminate { node, .. } => self.terminate(cloud, &inventories, node, now)?,
                Action::DeactivateMesosAgent { node, agent, .. } => {
                    self.deactivate_agent(&mut mesos_port, node, agent, now)?
                }
            };
            if let Some(node) = &done.0 {
                span.record("node", node.as_str());
            }
            log_outcome(action, &done.1);
            report.done.push(Done {
                action: action.clone(),
                node: done.0,
                outcome: done.1,
            });
        }
        report.plan = plan;
        Ok(report)
    }

    /// Brings the registry in line with what the pool and the clouds
    /// show: the node lifecycle's observed transitions, adoption, and the
    /// termination of instances nobody knows (as configured).
    fn reconcile(
        &mut self,
        snap: &PoolSnapshot,
        inventories: &BTreeMap<String, Observed<Inventory>>,
        startds: Option<&StartdIndex>,
        cloud: &mut dyn CloudPort,
        report: &mut Report,
        now: i64,
    ) -> Result<(), CycleError> {
        let keys: Option<Vec<String>> = snap
            .pool
            .known()
            .map(|p| p.startds.values().map(|s| s.key().to_string()).collect());
        let collector_start = snap.collector.known().and_then(|c| c.start_time);
        self.presence.record(
            keys.as_ref().map(|k| k.iter().map(String::as_str)),
            collector_start,
            now,
        );

        // Reconcile.
        let nodes = self.registry.live_nodes()?;
        let rec = reconcile(
            self.config,
            &nodes,
            inventories,
            startds,
            &self.presence,
            now,
        );
        self.registry.apply(&rec.transitions)?;
        for t in &rec.transitions {
            self.after_transition(t, &nodes, now)?;
        }
        for t in rec.transitions.iter().filter(|t| t.to == State::Gone) {
            self.presence.forget(&t.node);
            if let Some(i) = nodes
                .iter()
                .find(|n| n.id == t.node)
                .and_then(|n| n.instance_id.as_deref())
            {
                self.presence.forget(i);
            }
        }
        if !rec.adopt.is_empty() {
            self.registry.adopt(&rec.adopt)?;
        }
        report.notes.extend(rec.notes);
        for i in &rec.terminate {
            self.fail.pass()?;
            let intent = self
                .registry
                .begin_intent(&i.id, "terminate-unknown", &i.site, now)?;
            let outcome = match cloud.terminate(&i.site, &i.id) {
                Ok(()) => ActionOutcome::done("terminated"),
                Err(e) => ActionOutcome::failed(Some(e.kind), format!("failed: {e}")),
            };
            let _span =
                tracing::info_span!("action", kind = "terminate-unknown", site = %i.site, instance = %i.id)
                    .entered();
            match outcome.effect {
                Effect::Done => tracing::info!(outcome = %outcome, "unknown instance terminated"),
                _ => tracing::warn!(outcome = %outcome, "cannot terminate an unknown instance"),
            }
            self.registry.finish_intent(intent, outcome.text(), now)?;
        }
        report.transitions = rec.transitions;

        Ok(())
    }

    fn deactivate_agent(
        &mut self,
        port: &mut Option<&mut dyn MesosPort>,
        node: &str,
        agent: &str,
        now: i64,
    ) -> Result<Acted, CycleError> {
        let Some(port) = port else {
            return Ok((
                Some(node.to_string()),
                ActionOutcome::skipped("skipped: no Mesos client"),
            ));
        };
        let intent = self
            .registry
            .begin_intent(node, "mesos-deactivate", agent, now)?;
        let outcome = match port.deactivate_agent(agent) {
            Ok(()) => ActionOutcome::done("deactivated"),
            Err(e) => ActionOutcome::failed(None, format!("failed: {e}")),
        };
        self.registry.finish_intent(intent, outcome.text(), now)?;
        Ok((Some(node.to_string()), outcome))
    }

    /// Book-keeping a transition implies: back-off after a boot failure,
    /// its end when a node joins.
    fn after_transition(
        &mut self,
        t: &Transition,
        nodes: &[Node],
        now: i64,
    ) -> Result<(), CycleError> {
        let Some(n) = nodes.iter().find(|n| n.id == t.node) else {
            return Ok(());
        };
        let l = &self.config.limits;
        match (t.from, t.to) {
            (State::Booting, State::Idle | State::Busy) => {
                self.registry.succeed(&n.site, &n.flavor)?
            }
            (_, State::BootFailed) => {
                self.registry.fail(
                    &n.site,
                    &n.flavor,
                    now,
                    l.backoff_initial.as_secs() as i64,
                    l.backoff_max.as_secs() as i64,
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    fn transition(&mut self, n: &Node, to: State, now: i64, reason: String) -> Transition {
        Transition {
            node: n.id.clone(),
            from: n.state,
            to,
            at: now,
            reason,
            instance_id: None,
            startd: None,
            busy_at: None,
        }
    }

    fn launch(
        &mut self,
        action: &Action,
        cloud: &mut dyn CloudPort,
        pilot: &dyn Pilot,
        failed: &mut BTreeSet<(String, String)>,
        now: i64,
    ) -> Result<Acted, CycleError> {
        let Action::Launch {
            site,
            flavor,
            group,
            spot,
            price_per_hour,
            ..
        } = action
        else {
            unreachable!("launch is called for launches");
        };
        if failed.contains(&(site.clone(), flavor.clone()))
            || failed.contains(&(site.clone(), String::new()))
        {
            return Ok((
                None,
                ActionOutcome::skipped("skipped: this site/flavour failed earlier in the cycle"),
            ));
        }
        let pool = self.config.pool.name.get_ref().clone();
        let id = self.registry.next_node_id(&pool)?;
        let token = (self.tokens)(&id);
        let node = Node {
            group: group.clone(),
            price_per_hour: *price_per_hour,
            spot: *spot,
            ..Node::requested(&id, site, flavor, &token, now)
        };
        let user_data = match pilot.user_data(&node) {
            Ok(u) => u,
            Err(e) => {
                return Ok((
                    None,
                    ActionOutcome::failed(None, format!("not launched: user-data: {e}")),
                ))
            }
        };
        let intent = self
            .registry
            .record_launch(&node, &format!("{site}/{flavor}"))?;
        self.fail.pass()?;
        let req = LaunchRequest {
            site: site.clone(),
            flavor: flavor.clone(),
            node_id: id.clone(),
            token,
            spot: *spot,
            tags: vec![(TAG_POOL.into(), pool), (TAG_NODE.into(), id.clone())],
            user_data,
        };
        let result = cloud.launch(&req);
        self.fail.pass()?;
        let outcome = match result {
            Ok(instance) => {
                let mut t = self.transition(
                    &node,
                    State::Booting,
                    now,
                    format!("launched as {}", instance.id),
                );
                t.instance_id = Some(instance.id.clone());
                self.registry.apply(&[t])?;
                ActionOutcome::done(format!("ok: {}", instance.id))
            }
            Err(e) if e.kind.is_definitive() => {
                let t = self.transition(&node, State::Gone, now, format!("launch failed: {e}"));
                self.registry.apply(&[t])?;
                failed.insert((site.clone(), flavor.clone()));
                if e.kind == crate::cloud::ErrorKind::Auth {
                    // Nothing at this site will work until an admin acts:
                    // pause it (a reload, or the pause running out, lifts it).
                    let until = now.saturating_add(self.config.limits.backoff_max.as_secs() as i64);
                    self.registry.pause_site(
                        site,
                        until,
                        &format!("credentials refused: {}", e.message),
                    )?;
                    failed.insert((site.clone(), String::new()));
                }
                if e.kind.backs_off() {
                    let l = &self.config.limits;
                    self.registry.fail(
                        site,
                        flavor,
                        now,
                        l.backoff_initial.as_secs() as i64,
                        l.backoff_max.as_secs() as i64,
                    )?;
                }
                ActionOutcome::failed(Some(e.kind), format!("failed: {e}"))
            }
            // The call may have taken effect: the node stays requested and
            // the next reconciliation finds its instance by the token.
            Err(e) => ActionOutcome::unknown(
                Some(e.kind),
                format!("outcome unknown (found by its token later): {e}"),
            ),
        };
        self.registry.finish_intent(intent, outcome.text(), now)?;
        Ok((Some(id), outcome))
    }

    /// The node and its startd in this snapshot, or why the action is
    /// skipped.
    #[allow(clippy::type_complexity)]
    fn target<'s>(
        &mut self,
        snap: &'s PoolSnapshot,
        node_id: &str,
        startd: &str,
    ) -> Result<Result<(Node, &'s Startd), Acted>, CycleError> {
        let Some(n) = self.registry.node(node_id)? else {
            return Ok(Err((
                None,
                ActionOutcome::skipped("node no longer in the registry"),
            )));
        };
        match snap.pool.known().and_then(|p| p.startds.get(startd)) {
            Some(s) => Ok(Ok((n, s))),
            None => Ok(Err((
                Some(n.id),
                ActionOutcome::skipped("startd not in this snapshot"),
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn drain(
        &mut self,
        condor: &mut dyn CondorPort,
        snap: &PoolSnapshot,
        node_id: &str,
        startd: &str,
        cause: DrainCause,
        reason: &str,
        now: i64,
    ) -> Result<Acted, CycleError> {
        let (n, s) = match self.target(snap, node_id, startd)? {
            Ok(found) => found,
            Err(skipped) => return Ok(skipped),
        };
        let intent = self.registry.begin_intent(node_id, "drain", reason, now)?;
        let outcome = match condor.drain(s, &format!("cloudburst: {reason}")) {
            Err(e) => ActionOutcome::failed(None, format!("not sent: {e}")),
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .all(|o| matches!(o, Outcome::Sent | Outcome::AlreadyDraining))
                {
                    let t = self.transition(&n, State::Draining, now, reason.to_string());
                    self.registry.apply(&[t])?;
                    self.registry.set_drain_cause(node_id, Some(cause))?;
                    ActionOutcome::done("draining")
                } else if outcomes.iter().any(|o| matches!(o, Outcome::Gone)) {
                    let t = self.transition(
                        &n,
                        State::Drained,
                        now,
                        "its startd was already gone".into(),
                    );
                    self.registry.apply(&[t])?;
                    ActionOutcome::done("already gone")
                } else {
                    joined(&outcomes)
                }
            }
        };
        self.registry.finish_intent(intent, outcome.text(), now)?;
        Ok((Some(n.id), outcome))
    }

    fn cancel_drain(
        &mut self,
        condor: &mut dyn CondorPort,
        snap: &PoolSnapshot,
        node_id: &str,
        startd: &str,
        now: i64,
    ) -> Result<Acted, CycleError> {
        let (n, s) = match self.target(snap, node_id, startd)? {
            Ok(found) => found,
            Err(skipped) => return Ok(skipped),
        };
        let intent = self
            .registry
            .begin_intent(node_id, "cancel-drain", "", now)?;
        let outcomes = condor.cancel_drain(s);
        let outcome = if outcomes.iter().all(|o| *o == Outcome::Sent) {
            let t = self.transition(
                &n,
                State::Idle,
                now,
                "drain cancelled: demand returned".into(),
            );
            self.registry.apply(&[t])?;
            ActionOutcome::done("cancelled")
        } else {
            joined(&outcomes)
        };
        self.registry.finish_intent(intent, outcome.text(), now)?;
        Ok((Some(n.id), outcome))
    }

    fn terminate(
        &mut self,
        cloud: &mut dyn CloudPort,
        inventories: &BTreeMap<String, Observed<Inventory>>,
        node_id: &str,
        now: i64,
    ) -> Result<Acted, CycleError> {
        let Some(n) = self.registry.node(node_id)? else {
            return Ok((
                None,
                ActionOutcome::skipped("node no longer in the registry"),
            ));
        };
        let instance = n.instance_id.clone().or_else(|| {
            inventories
                .get(&n.site)?
                .known()?
                .instances
                .iter()
                .find_map(|i| {
                    (i.token.as_deref() == Some(n.token.as_str())
                        || i.node_id.as_deref() == Some(n.id.as_str()))
                    .then(|| i.id.clone())
                })
        });
        let Some(instance) = instance else {
            let known = inventories.get(&n.site).is_some_and(Observed::is_known);
            if known {
                let t = self.transition(&n, State::Gone, now, "no instance exists for it".into());
                self.registry.apply(&[t])?;
                return Ok((
                    Some(n.id),
                    ActionOutcome::done("gone: it never had an instance"),
                ));
            }
            return Ok((
                Some(n.id),
                ActionOutcome::skipped("waiting: its instance is not known yet"),
            ));
        };
        let intent = self
            .registry
            .begin_intent(node_id, "terminate", &instance, now)?;
        self.fail.pass()?;
        self.registry.record_terminate_attempt(node_id, now)?;
        let outcome = match cloud.terminate(&n.site, &instance) {
            Ok(()) => {
                let mut t = self.transition(
                    &n,
                    State::Terminating,
                    now,
                    format!("terminate {instance} sent"),
                );
                t.instance_id = Some(instance.clone());
                self.registry.apply(&[t])?;
                ActionOutcome::done("terminating")
            }
            Err(e) => {
                ActionOutcome::failed(Some(e.kind), format!("failed (retried next cycle): {e}"))
            }
        };
        self.registry.finish_intent(intent, outcome.text(), now)?;
        Ok((Some(n.id), outcome))
    }
}

/// A condor command that did not do what was asked on every slot (the
/// startd refused, the node became busy): each slot's answer.
/// The span an action's events happen in: what it is and what it is for.
fn action_span(action: &Action, nodes: &[Node]) -> tracing::Span {
    let node = match action {
        Action::Launch { .. } => None,
        Action::Drain { node, .. }
        | Action::CancelDrain { node, .. }
        | Action::Terminate { node, .. }
        | Action::DeactivateMesosAgent { node, .. } => Some(node.as_str()),
    };
    let known = node.and_then(|id| nodes.iter().find(|n| n.id == id));
    let site = match action {
        Action::Launch { site, .. } => Some(site.as_str()),
        _ => known.map(|n| n.site.as_str()),
    };
    let instance = match action {
        Action::Terminate {
            instance_id: Some(i),
            ..
        } => Some(i.as_str()),
        _ => known.and_then(|n| n.instance_id.as_deref()),
    };
    let kind = action.kind();
    let span = tracing::info_span!("action", kind, node = tracing::field::Empty, site, instance);
    if let Some(node) = node {
        span.record("node", node);
    }
    span
}

/// One line per action: failures (and calls whose effect is unknown) at
/// warning level, for an admin filtering by priority.
fn log_outcome(action: &Action, outcome: &ActionOutcome) {
    let class = outcome.failure_class();
    match outcome.effect {
        Effect::Done | Effect::Skipped => tracing::info!(
            action = %action,
            reason = action.reason(),
            outcome = %outcome,
            "action"
        ),
        Effect::Failed | Effect::Unknown => tracing::warn!(
            action = %action,
            reason = action.reason(),
            outcome = %outcome,
            class,
            "action"
        ),
    }
}

fn joined(outcomes: &[Outcome]) -> ActionOutcome {
    ActionOutcome::failed(
        None,
        outcomes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )
}
