//! The registry is the cycle's store.

use std::collections::BTreeMap;

use super::{Registry, RegistryError};
use crate::lifecycle::{DrainCause, Node, Transition};
use crate::ports::{Store, StoreError, StoreResult};

impl From<RegistryError> for StoreError {
    fn from(e: RegistryError) -> StoreError {
        StoreError(Box::new(e))
    }
}

impl Store for Registry {
    fn live_nodes(&mut self) -> StoreResult<Vec<Node>> {
        Ok(Registry::live_nodes(self)?)
    }
    fn node(&mut self, id: &str) -> StoreResult<Option<Node>> {
        Ok(Registry::node(self, id)?)
    }
    fn next_node_id(&mut self, pool: &str) -> StoreResult<String> {
        Ok(Registry::next_node_id(self, pool)?)
    }
    fn record_launch(&mut self, node: &Node, detail: &str) -> StoreResult<i64> {
        Ok(Registry::record_launch(self, node, detail)?)
    }
    fn adopt(&mut self, nodes: &[Node]) -> StoreResult<()> {
        Ok(Registry::adopt(self, nodes)?)
    }
    fn apply(&mut self, transitions: &[Transition]) -> StoreResult<usize> {
        Ok(Registry::apply(self, transitions)?)
    }
    fn set_drain_cause(&mut self, node: &str, cause: Option<DrainCause>) -> StoreResult<()> {
        Ok(Registry::set_drain_cause(self, node, cause)?)
    }
    fn record_terminate_attempt(&mut self, node: &str, now: i64) -> StoreResult<()> {
        Ok(Registry::record_terminate_attempt(self, node, now)?)
    }
    fn begin_intent(&mut self, node: &str, kind: &str, detail: &str, now: i64) -> StoreResult<i64> {
        Ok(Registry::begin_intent(self, node, kind, detail, now)?)
    }
    fn finish_intent(&mut self, id: i64, outcome: &str, now: i64) -> StoreResult<()> {
        Ok(Registry::finish_intent(self, id, outcome, now)?)
    }
    fn month_spend(&mut self, now: i64) -> StoreResult<f64> {
        Ok(Registry::month_spend(self, now)?)
    }
    fn backoff(&mut self) -> StoreResult<BTreeMap<(String, String), i64>> {
        Ok(Registry::backoff(self)?)
    }
    fn fail(
        &mut self,
        site: &str,
        flavor: &str,
        now: i64,
        initial: i64,
        max: i64,
    ) -> StoreResult<i64> {
        Ok(Registry::fail(self, site, flavor, now, initial, max)?)
    }
    fn succeed(&mut self, site: &str, flavor: &str) -> StoreResult<()> {
        Ok(Registry::succeed(self, site, flavor)?)
    }
    fn pause_site(&mut self, site: &str, until: i64, reason: &str) -> StoreResult<()> {
        Ok(Registry::pause_site(self, site, until, reason)?)
    }
    fn site_pauses(&mut self) -> StoreResult<BTreeMap<String, (i64, String)>> {
        Ok(Registry::site_pauses(self)?)
    }
}
