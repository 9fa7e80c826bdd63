//! Which startd is which node's: the one rule, built once per reading of
//! the pool and used by reconciliation, the planner and `plan --snapshot`. A pilot advertises our node id
//! (`CloudburstNodeId`) and its instance id; a node is paired by its id
//! first, then by its instance id, then by the startd name recorded when
//! it was first paired (a pilot whose ads lack both attributes).

use std::collections::HashMap;

use crate::condor::{Pool, Startd};
use crate::lifecycle::Node;

pub struct StartdIndex<'a> {
    by_node: HashMap<&'a str, &'a Startd>,
    by_instance: HashMap<&'a str, &'a Startd>,
    by_name: HashMap<&'a str, &'a Startd>,
}

impl<'a> StartdIndex<'a> {
    pub fn new(pool: &'a Pool) -> StartdIndex<'a> {
        let mut index = StartdIndex {
            by_node: HashMap::new(),
            by_instance: HashMap::new(),
            by_name: HashMap::new(),
        };
        for s in pool.startds.values() {
            index.by_name.insert(s.name.as_str(), s);
            if let Some(n) = &s.node_id {
                index.by_node.insert(n.as_str(), s);
            }
            if let Some(i) = &s.instance_id {
                index.by_instance.insert(i.as_str(), s);
            }
        }
        index
    }

    /// The startd of `n` in this reading, if it has one.
    pub fn of(&self, n: &Node) -> Option<&'a Startd> {
        self.by_node
            .get(n.id.as_str())
            .or_else(|| {
                n.instance_id
                    .as_deref()
                    .and_then(|i| self.by_instance.get(i))
            })
            .or_else(|| n.startd.as_deref().and_then(|s| self.by_name.get(s)))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startd(name: &str, node: Option<&str>, instance: Option<&str>) -> Startd {
        let mut s = crate::fixtures::startd("x", 0);
        s.name = name.into();
        s.node_id = node.map(String::from);
        s.instance_id = instance.map(String::from);
        s
    }

    #[test]
    fn a_node_is_paired_by_id_then_instance_then_recorded_name() {
        let mut pool = Pool::default();
        for s in [
            startd("a@vm1", Some("n-1"), Some("i-1")),
            startd("b@vm2", None, Some("i-2")),
            startd("c@vm3", None, None),
            // Claims n-4's instance but names another node: the id wins.
            startd("d@vm4", Some("n-9"), Some("i-4")),
            startd("e@vm5", Some("n-4"), None),
        ] {
            pool.startds.insert(s.name.clone(), s);
        }
        let index = StartdIndex::new(&pool);
        let node = |id: &str, instance: Option<&str>, name: Option<&str>| {
            let mut n = crate::fixtures::node(id, crate::lifecycle::State::Idle, None);
            n.instance_id = instance.map(String::from);
            n.startd = name.map(String::from);
            n
        };
        let of = |n: &Node| index.of(n).map(|s| s.name.clone());
        assert_eq!(of(&node("n-1", None, None)).as_deref(), Some("a@vm1"));
        assert_eq!(
            of(&node("n-2", Some("i-2"), None)).as_deref(),
            Some("b@vm2")
        );
        assert_eq!(
            of(&node("n-3", None, Some("c@vm3"))).as_deref(),
            Some("c@vm3")
        );
        assert_eq!(
            of(&node("n-4", Some("i-4"), None)).as_deref(),
            Some("e@vm5")
        );
        assert_eq!(of(&node("n-5", Some("i-5"), Some("gone@vm"))), None);
        assert_eq!(
            StartdIndex::new(&Pool::default()).of(&node("n-1", None, None)),
            None
        );
    }
}
