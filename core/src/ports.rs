//! The ports through which a cycle reaches the world: the pool, the
//! clouds, Mesos and the pilot's user-data. The agent implements them over
//! real processes and networks, the simulator over its world, the tests
//! over scripted fakes; the cycle cannot tell them apart.

use crate::cloud::{CloudError, Instance, Inventory, LaunchRequest};
use crate::condor::commands::{CommandError, Outcome};
use crate::condor::{PoolSnapshot, Startd};
use std::collections::BTreeMap;

use thiserror::Error;

use crate::lifecycle::{DrainCause, Node, Transition};
use crate::mesos::MesosView;
use crate::observed::Observed;
use crate::secret::Secret;

/// The condor side, as a cycle uses it.
pub trait CondorPort {
    fn snapshot(&mut self, now: i64) -> PoolSnapshot;
    fn drain(&mut self, startd: &Startd, reason: &str) -> Result<Vec<Outcome>, CommandError>;
    fn cancel_drain(&mut self, startd: &Startd) -> Vec<Outcome>;
}

/// The cloud side, as a cycle uses it.
pub trait CloudPort {
    fn inventory(&mut self, site: &str) -> Observed<Inventory>;
    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError>;
    fn terminate(&mut self, site: &str, instance_id: &str) -> Result<(), CloudError>;
}

/// The Mesos side, as a cycle uses it (`[mesos]` only): what was read
/// for this cycle, and the one call the agent makes to the master.
pub trait MesosPort {
    fn view(&self) -> &MesosView;
    /// No more offers of this agent's resources (its tasks go on).
    fn deactivate_agent(&mut self, agent: &str) -> Result<(), String>;
}

/// Renders a node's user-data (the pilot issue's renderer in the agent;
/// nothing in the simulator).
pub trait Pilot {
    fn user_data(&self, node: &Node) -> Result<Secret, String>;
}

/// A pilot with empty user-data (simulation).
pub struct NoPilot;

impl Pilot for NoPilot {
    fn user_data(&self, _: &Node) -> Result<Secret, String> {
        Ok(Secret::new(String::new()))
    }
}

/// A store that failed: its own error, kept whole for the log.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct StoreError(pub Box<dyn std::error::Error + Send + Sync>);

pub type StoreResult<T> = Result<T, StoreError>;

/// The registry as a cycle uses it: the nodes, the journal of calls to
/// the clouds and the pool (written before each call and after it), and
/// the back-off and pauses per site. The agent's is SQLite on disk, the
/// simulator's SQLite in memory.
pub trait Store {
    fn live_nodes(&mut self) -> StoreResult<Vec<Node>>;
    fn node(&mut self, id: &str) -> StoreResult<Option<Node>>;
    fn next_node_id(&mut self, pool: &str) -> StoreResult<String>;
    /// Journals a launch (the node as requested, with its idempotency
    /// token) before the cloud hears of it; the intent's id.
    fn record_launch(&mut self, node: &Node, detail: &str) -> StoreResult<i64>;
    fn adopt(&mut self, nodes: &[Node]) -> StoreResult<()>;
    fn apply(&mut self, transitions: &[Transition]) -> StoreResult<usize>;
    fn set_drain_cause(&mut self, node: &str, cause: Option<DrainCause>) -> StoreResult<()>;
    fn record_terminate_attempt(&mut self, node: &str, now: i64) -> StoreResult<()>;
    fn begin_intent(&mut self, node: &str, kind: &str, detail: &str, now: i64) -> StoreResult<i64>;
    fn finish_intent(&mut self, id: i64, outcome: &str, now: i64) -> StoreResult<()>;
    fn month_spend(&mut self, now: i64) -> StoreResult<f64>;
    /// Until when each (site, flavour) is backed off.
    fn backoff(&mut self) -> StoreResult<BTreeMap<(String, String), i64>>;
    /// A failed launch at a (site, flavour): its back-off doubles from
    /// `initial` up to `max`; the time it ends.
    fn fail(
        &mut self,
        site: &str,
        flavor: &str,
        now: i64,
        initial: i64,
        max: i64,
    ) -> StoreResult<i64>;
    fn succeed(&mut self, site: &str, flavor: &str) -> StoreResult<()>;
    fn pause_site(&mut self, site: &str, until: i64, reason: &str) -> StoreResult<()>;
    fn site_pauses(&mut self) -> StoreResult<BTreeMap<String, (i64, String)>>;
}
