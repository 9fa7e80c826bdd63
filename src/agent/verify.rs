//! A registry that has never been compared with the clouds may be a
//! replacement for one that was lost (deleted, restored from an old
//! backup, moved aside because it was damaged). Its nodes' instances are
//! still running and still carry our tags; an agent that trusted the empty
//! registry would launch again beside them and, with
//! `reconcile.unknown_instances = "terminate"`, kill their jobs.
//!
//! So before its first cycle the agent reads every site's inventory: our
//! tagged instances that the registry does not know make it refuse to
//! start, unless the admin asked for them to be adopted
//! (`--rebuild-registry`). Once a registry has been checked it is marked
//! verified and the normal policy applies.

use std::collections::BTreeSet;

use crate::cloud::{Instance, InstanceState, Inventory};
use crate::lifecycle::Node;

/// Our tagged instances the registry has no node for (by node id or
/// instance id), leaving out the already terminated.
pub fn strangers<'a>(
    pool: &str,
    nodes: &[Node],
    inventories: impl IntoIterator<Item = &'a Inventory>,
) -> Vec<&'a Instance> {
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let instances: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.instance_id.as_deref())
        .collect();
    inventories
        .into_iter()
        .flat_map(|inv| &inv.instances)
        .filter(|i| i.pool.as_deref() == Some(pool))
        .filter(|i| i.state != InstanceState::Terminated)
        .filter(|i| {
            !instances.contains(i.id.as_str())
                && !i.node_id.as_deref().is_some_and(|n| ids.contains(n))
        })
        .collect()
}

/// The refusal, naming the registry, the instances and the way out.
pub fn refusal(registry: &str, pool: &str, found: &[&Instance]) -> String {
    let mut list: Vec<String> = found
        .iter()
        .take(10)
        .map(|i| format!("{} at {}", i.id, i.site))
        .collect();
    if found.len() > 10 {
        list.push(format!("and {} more", found.len() - 10));
    }
    format!(
        "registry {registry} has no record of {} running instance(s) tagged for pool {pool:?} ({}): \
         it was deleted or replaced while they ran. Refusing to start, so that nothing is \
         launched twice or terminated with work on it. Start once with --rebuild-registry to \
         adopt them from their cloud tags (they then retire like any other node).",
        found.len(),
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::State;

    fn inst(id: &str, pool: &str, node: Option<&str>, state: InstanceState) -> Instance {
        Instance {
            id: id.into(),
            site: "aws".into(),
            flavor: "c5.large".into(),
            state,
            pool: Some(pool.into()),
            node_id: node.map(String::from),
            token: None,
            launched_at: 0,
            spot: false,
        }
    }

    fn node(id: &str, instance: Option<&str>) -> Node {
        Node {
            instance_id: instance.map(String::from),
            state: State::Booting,
            price_per_hour: 0.1,
            ..Node::requested(id, "aws", "c5.large", "t", 0)
        }
    }

    #[test]
    fn only_our_live_unknown_instances_are_strangers() {
        let inv = Inventory {
            instances: vec![
                inst("i-1", "p", Some("p-000001"), InstanceState::Running),
                inst("i-2", "p", Some("p-000002"), InstanceState::Running),
                inst("i-3", "p", None, InstanceState::Pending),
                inst("i-4", "p", Some("p-000004"), InstanceState::Terminated),
                inst("i-5", "other", Some("x"), InstanceState::Running),
                inst("i-6", "p", Some("p-000009"), InstanceState::Running),
            ],
            foreign: 0,
            foreign_cores: 0,
        };
        // p-000001 known by id, i-6 known by instance id.
        let nodes = [node("p-000001", None), node("p-000007", Some("i-6"))];
        let s: Vec<&str> = strangers("p", &nodes, [&inv])
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(s, ["i-2", "i-3"]);
        let msg = refusal(
            "/var/lib/cloudburst/registry.db",
            "p",
            &strangers("p", &nodes, [&inv]),
        );
        assert!(msg.contains("registry /var/lib/cloudburst/registry.db has no record of 2"));
        assert!(msg.contains("i-2 at aws, i-3 at aws"));
        assert!(msg.contains("--rebuild-registry"));
    }
}
