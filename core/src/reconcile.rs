//! Reconciliation, three ways: the registry (what we launched), the cloud
//! inventory (what carries our tags) and the collector (which startds
//! report). Pure: it returns the node transitions the observations call
//! for, the instances nobody knows (to adopt or terminate, by policy), and
//! notes. Run at start-up and every cycle, so a crash at any point is
//! repaired by the next reading rather than by memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::cloud::{Instance, InstanceState, Inventory};
use crate::condor::presence::{Presence, Seen};
use crate::config::{Config, UnknownInstances};
use crate::lifecycle::{advance, CloudView, CondorView, Node, State, Transition};
use crate::observed::Observed;
use crate::pairing::StartdIndex;

/// What reconciliation found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reconciled {
    pub transitions: Vec<Transition>,
    /// Tagged instances the registry does not know, to be adopted.
    pub adopt: Vec<Node>,
    /// Tagged instances the registry does not know, to be terminated.
    pub terminate: Vec<Instance>,
    pub notes: Vec<String>,
}

/// Instances indexed by every key a node may be known by.
struct Index<'a> {
    instances: HashMap<(&'a str, &'a str), &'a Instance>,
}

impl<'a> Index<'a> {
    fn new(inventories: &'a BTreeMap<String, Observed<Inventory>>) -> Index<'a> {
        let mut instances = HashMap::new();
        for (site, inv) in inventories {
            let Observed::Known(inv) = inv else { continue };
            for i in &inv.instances {
                instances.insert((site.as_str(), i.id.as_str()), i);
                if let Some(n) = &i.node_id {
                    instances.insert((site.as_str(), n.as_str()), i);
                }
                if let Some(t) = &i.token {
                    instances.insert((site.as_str(), t.as_str()), i);
                }
            }
        }
        Index { instances }
    }

    /// The instance of a node: by our node tag, its recorded instance id,
    /// or its launch token.
    fn instance(&self, n: &Node) -> Option<&'a Instance> {
        let site = n.site.as_str();
        self.instances
            .get(&(site, n.id.as_str()))
            .or_else(|| {
                n.instance_id
                    .as_deref()
                    .and_then(|i| self.instances.get(&(site, i)))
            })
            .or_else(|| self.instances.get(&(site, n.token.as_str())))
            .copied()
    }
}

fn seen(presence: &Presence, n: &Node) -> Seen {
    match presence.status(&n.id) {
        Seen::Never => n
            .instance_id
            .as_deref()
            .map_or(Seen::Never, |i| presence.status(i)),
        s => s,
    }
}

pub fn reconcile(
    config: &Config,
    nodes: &[Node],
    inventories: &BTreeMap<String, Observed<Inventory>>,
    startds: Option<&StartdIndex<'_>>,
    presence: &Presence,
    now: i64,
) -> Reconciled {
    let mut out = Reconciled::default();
    let index = Index::new(inventories);
    for n in nodes.iter().filter(|n| n.state.is_live()) {
        let cloud = match inventories.get(&n.site) {
            Some(Observed::Known(_)) => match index.instance(n) {
                Some(i) => CloudView::Listed(i),
                None => CloudView::NotListed,
            },
            _ => CloudView::Unknown,
        };
        let startd = startds.and_then(|s| s.of(n));
        let condor = CondorView::from(startd, seen(presence, n), startds.is_some());
        if let Some(t) = advance(n, cloud, condor, &config.timers, now) {
            out.transitions.push(t);
        }
    }

    // Tagged instances nobody knows.
    let known_ids: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let known_instances: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.instance_id.as_deref())
        .collect();
    let known_tokens: HashSet<&str> = nodes.iter().map(|n| n.token.as_str()).collect();
    for (site, inv) in inventories {
        let Observed::Known(inv) = inv else { continue };
        if inv.foreign > 0 {
            out.notes.push(format!(
                "site {site}: {} instances not ours share its quota ({} cores)",
                inv.foreign, inv.foreign_cores
            ));
        }
        for i in &inv.instances {
            if i.state == InstanceState::Terminated
                || i.pool.as_deref() != Some(config.pool.name.get_ref().as_str())
            {
                continue;
            }
            let known = i
                .node_id
                .as_deref()
                .is_some_and(|id| known_ids.contains(id))
                || known_instances.contains(i.id.as_str())
                || i.token.as_deref().is_some_and(|t| known_tokens.contains(t));
            if known {
                continue;
            }
            match config.reconcile.unknown_instances {
                UnknownInstances::Terminate => {
                    out.notes.push(format!(
                        "instance {} at {site} carries our tags but no node of ours: terminating (reconcile.unknown_instances = terminate)",
                        i.id
                    ));
                    out.terminate.push(i.clone());
                }
                UnknownInstances::Adopt => {
                    let id = i
                        .node_id
                        .clone()
                        .unwrap_or_else(|| format!("adopted-{}", i.id));
                    let price = config
                        .flavor(site, &i.flavor)
                        .map_or(0.0, |f| f.price_per_hour);
                    out.notes.push(format!(
                        "instance {} at {site} carries our tags but no node of ours: adopted as {id}",
                        i.id
                    ));
                    let token = i
                        .token
                        .clone()
                        .unwrap_or_else(|| format!("adopted-{}", i.id));
                    out.adopt.push(Node {
                        instance_id: Some(i.id.clone()),
                        state: State::Booting,
                        created_at: i.launched_at.min(now),
                        price_per_hour: price,
                        spot: i.spot,
                        ..Node::requested(&id, site, &i.flavor, &token, now)
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(policy: &str) -> Config {
        crate::config::parse(
            "c.toml",
            &format!(
                "[pool]\nname = \"p\"\n[reconcile]\nunknown_instances = \"{policy}\"\n[[sites]]\nname = \"aws\"\nprovider = \"ec2\"\n[[sites.flavors]]\nname = \"small\"\ncpus = 2\nmemory_mb = 4096\ndisk_gb = 20\nprice_per_hour = 0.1\n"
            ),
        )
        .unwrap()
    }

    fn instance(id: &str, node: Option<&str>, pool: &str) -> Instance {
        Instance {
            id: id.into(),
            site: "aws".into(),
            flavor: "small".into(),
            state: InstanceState::Running,
            pool: Some(pool.into()),
            node_id: node.map(String::from),
            token: None,
            launched_at: 50,
            spot: false,
        }
    }

    fn inventories(instances: Vec<Instance>) -> BTreeMap<String, Observed<Inventory>> {
        BTreeMap::from([(
            "aws".to_string(),
            Observed::Known(Inventory {
                instances,
                foreign: 0,
                foreign_cores: 0,
            }),
        )])
    }

    #[test]
    fn unknown_tagged_instances_are_adopted_or_terminated_by_policy() {
        let inv = inventories(vec![
            instance("i-ours", Some("p-7"), "p"),
            instance("i-other-pool", Some("q-1"), "q"),
        ]);
        let pool = crate::condor::Pool::default();
        let pool = Some(StartdIndex::new(&pool));
        let r = reconcile(
            &config("adopt"),
            &[],
            &inv,
            pool.as_ref(),
            &Presence::new(300),
            100,
        );
        assert_eq!(r.adopt.len(), 1);
        assert_eq!(r.adopt[0].id, "p-7");
        assert_eq!(r.adopt[0].state, State::Booting);
        let r = reconcile(
            &config("terminate"),
            &[],
            &inv,
            pool.as_ref(),
            &Presence::new(300),
            100,
        );
        assert_eq!(
            r.terminate
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>(),
            ["i-ours"]
        );
    }

    #[test]
    fn a_requested_node_found_by_its_token_moves_to_booting() {
        let mut i = instance("i-9", None, "p");
        i.token = Some("tok-9".into());
        let node = Node {
            price_per_hour: 0.1,
            ..Node::requested("p-9", "aws", "small", "tok-9", 90)
        };
        let r = reconcile(
            &config("adopt"),
            &[node],
            &inventories(vec![i]),
            Some(&StartdIndex::new(&crate::condor::Pool::default())),
            &Presence::new(300),
            100,
        );
        assert!(r.adopt.is_empty());
        assert_eq!(r.transitions[0].to, State::Booting);
        assert_eq!(r.transitions[0].instance_id.as_deref(), Some("i-9"));
    }
}
