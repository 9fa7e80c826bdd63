//! The planner: a pure function of what was observed, what the registry
//! holds, the configuration and the time, returning actions with reasons.
//!
//! 1. Nodes waiting for termination are terminated (always safe).
//! 2. If the queue, the pool or the cloud could not be read, nothing else
//!    happens this cycle: an unreadable source is not an empty one.
//! 3. Idle demand, oldest first, is placed on supply that matches it:
//!    free room on joined nodes, then nodes booting or requested, then
//!    nodes drained for idleness (whose drain is cancelled), then new
//!    nodes of the flavour that serves it at the least cost per job (the
//!    smallest such node when several are within 10%).
//!    Several jobs share a node (partitionable slots) and later shapes
//!    fill the room left on nodes planned for earlier ones.
//! 4. New nodes launch at a share of the shortfall per cycle (ramp),
//!    within every limit, skipping site/flavours in back-off.
//! 5. Nodes unclaimed in this observation for `idle_timeout` that no demand
//!    placed work on, and idle nodes past `max_lifetime`, are drained, at
//!    most a capped number per cycle.
//!
//! With `[mesos]`, Mesos tasks waiting in a framework's queue are placed
//! after the condor demand (3), on what each node offers Mesos: the free
//! share of registered agents, the whole share of nodes booting or
//! planned, then new nodes of the cheapest flavour. A node with Mesos
//! work is neither drained (5) nor terminated once drained (1); while the
//! master cannot be read, no node is drained for idleness, and while a
//! framework cannot be read nothing is bought for Mesos.

//!
//! One module per step: `termination` (1), `placement` (3, with the one
//! flavour choice, `placement::choose_flavor`), `mesos_placement` (3b),
//! `limits` (4, and the totals every limit is checked on), `scale_down`
//! (5).

mod limits;
mod mesos_placement;
mod placement;
mod scale_down;
mod termination;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::config::Config;
use crate::demand::{Demand, FlavorOption};
use crate::lifecycle::DrainCause;
use crate::lifecycle::Node;
use crate::mesos::supply;
use crate::mesos::MesosView;
use crate::pairing::StartdIndex;

pub use termination::terminate_stuck;

/// Something to do, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Launch {
        site: String,
        flavor: String,
        group: Option<String>,
        spot: bool,
        price_per_hour: f64,
        reason: String,
    },
    Drain {
        node: String,
        startd: String,
        cause: DrainCause,
        reason: String,
    },
    CancelDrain {
        node: String,
        startd: String,
        reason: String,
    },
    Terminate {
        node: String,
        instance_id: Option<String>,
        reason: String,
    },
    /// Stop the master offering a drained node's Mesos agent, so that no
    /// task lands on it between this look and its termination.
    DeactivateMesosAgent {
        node: String,
        agent: String,
        reason: String,
    },
}

impl Action {
    /// What kind of action, as the log and the metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Launch { .. } => "launch",
            Action::Drain { .. } => "drain",
            Action::CancelDrain { .. } => "cancel-drain",
            Action::Terminate { .. } => "terminate",
            Action::DeactivateMesosAgent { .. } => "deactivate-mesos-agent",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Action::Launch { reason, .. }
            | Action::Drain { reason, .. }
            | Action::CancelDrain { reason, .. }
            | Action::Terminate { reason, .. }
            | Action::DeactivateMesosAgent { reason, .. } => reason,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Launch {
                site,
                flavor,
                group,
                reason,
                ..
            } => {
                write!(f, "launch  {site}/{flavor}")?;
                if let Some(g) = group {
                    write!(f, " for group {g}")?;
                }
                write!(f, ": {reason}")
            }
            Action::Drain { node, reason, .. } => write!(f, "drain   {node}: {reason}"),
            Action::CancelDrain { node, reason, .. } => write!(f, "undrain {node}: {reason}"),
            Action::Terminate { node, reason, .. } => write!(f, "terminate {node}: {reason}"),
            Action::DeactivateMesosAgent {
                node,
                agent,
                reason,
            } => write!(f, "deactivate Mesos agent {agent} of {node}: {reason}"),
        }
    }
}

/// What the planner sees.
pub struct Inputs<'a> {
    pub now: i64,
    pub config: &'a Config,
    pub options: &'a [FlavorOption],
    /// `None`: the queue could not be read.
    pub demand: Option<&'a Demand>,
    /// The pool's startds, paired with nodes (built once per cycle);
    /// `None`: the pool could not be read.
    pub startds: Option<&'a StartdIndex<'a>>,
    pub cloud_known: bool,
    /// The registry's nodes, after this cycle's observed transitions.
    pub nodes: &'a [Node],
    /// Spend since the start of the month.
    pub month_spend: f64,
    /// (site, flavor) → in back-off until.
    pub backoff: &'a BTreeMap<(String, String), i64>,
    /// Per site: instances and cores in the same project that are not ours
    /// (they use the site's capacity: `max_nodes`, `max_cores`).
    pub foreign: &'a BTreeMap<String, (u32, u32)>,
    /// Sites whose launches are paused (a refused credential): until, why.
    pub paused: &'a BTreeMap<String, (i64, String)>,
    /// The Mesos side, when `[mesos]` is configured (`None` then reads as
    /// unknown).
    pub mesos: Option<&'a MesosView>,
}

/// Nodes wanted of one option, and how many launch now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Want {
    pub option: String,
    pub jobs: u64,
    pub nodes: u64,
    pub launching: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Why something did not happen (limits, unknown sources, back-off).
    pub notes: Vec<String>,
    pub wants: Vec<Want>,
}

fn option_of(options: &[FlavorOption], n: &Node) -> Option<usize> {
    options
        .iter()
        .position(|o| o.site == n.site && o.flavor == n.flavor && o.group == n.group)
}

fn example(shape: &crate::demand::Shape) -> String {
    shape
        .examples
        .first()
        .map(|j| j.to_string())
        .unwrap_or_default()
}

pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let mut plan = Plan::default();
    let mut nodes: Vec<(usize, &Node)> = inputs.nodes.iter().enumerate().collect();
    nodes.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let seen = crate::mesos::seen(inputs.config, inputs.mesos);
    let mesos = seen.as_deref();
    let holds = mesos.map(supply::holds).unwrap_or_default();

    // 1. Termination of nodes already decided.
    termination::terminations(inputs, &nodes, mesos, &holds, &mut plan);

    // 2. Blind: no launch, no drain.
    let (Some(demand), Some(startds), true) = (inputs.demand, inputs.startds, inputs.cloud_known)
    else {
        for (known, what) in [
            (inputs.demand.is_some(), "the queue"),
            (inputs.startds.is_some(), "the pool"),
            (inputs.cloud_known, "the cloud inventory"),
        ] {
            if !known {
                plan.notes.push(format!(
                    "{what} could not be read: no launch and no drain this cycle"
                ));
            }
        }
        return plan;
    };

    // 3. Place demand, then Mesos tasks.
    let mut placement = placement::Placement::of_supply(inputs, &nodes, startds, mesos);
    placement.place_demand(inputs, demand, &mut plan.notes);
    if let Some(view) = mesos {
        mesos_placement::place_mesos(inputs, view, &mut placement, &mut plan.notes);
    }
    placement.cancel_drains(inputs, &mut plan.actions);

    // 4. Launch a share of the shortfall, within every limit.
    limits::launches(
        inputs,
        &placement.per_option,
        &placement.new_nodes,
        &mut plan,
    );

    // 5. Scale down idle nodes nothing was placed on.
    let used = placement.used_nodes();
    scale_down::drains(inputs, &nodes, startds, &used, &holds, &mut plan);
    plan
}

#[cfg(test)]
mod mesos_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::condor::job::JobReader;
    use crate::condor::Pool;
    use crate::demand::{compute, flavor_options};
    pub(crate) use crate::fixtures::{node, startd};
    use crate::lifecycle::State;

    pub(crate) const CONFIG: &str = r#"
[limits]
max_nodes = 10
ramp = 1.0
launches_per_cycle = 100
[[sites]]
name = "aws"
provider = "ec2"
[[sites.flavors]]
name = "small"
cpus = 2
memory_mb = 8192
disk_gb = 50
price_per_hour = 0.10
[[sites.flavors]]
name = "big"
cpus = 16
memory_mb = 65536
disk_gb = 200
price_per_hour = 0.64
"#;

    fn jobs(n: i64, cpus: u32, mem: u32) -> Vec<crate::condor::Job> {
        let mut r = JobReader::new();
        (0..n)
            .map(|i| {
                let t = format!(
                    "[ClusterId = {}; ProcId = {i}; JobStatus = 1; RequestCpus = {cpus}; RequestMemory = {mem}; RequestDisk = 1024; Requirements = TARGET.CloudNode =?= true]",
                    cpus * 1000 + mem
                );
                r.job(crate::classad::parse_ad(t.as_bytes()).unwrap(), 0).unwrap()
            })
            .collect()
    }

    fn run(config: &Config, jobs: &[crate::condor::Job], nodes: &[Node], pool: &Pool) -> Plan {
        run_with(config, jobs, nodes, pool, None)
    }

    pub(crate) fn run_with(
        config: &Config,
        jobs: &[crate::condor::Job],
        nodes: &[Node],
        pool: &Pool,
        mesos: Option<&MesosView>,
    ) -> Plan {
        let options = flavor_options(config);
        let demand = compute(jobs, &options, &config.groups, 0);
        let backoff = BTreeMap::new();
        let startds = StartdIndex::new(pool);
        plan(&Inputs {
            now: 100_000,
            config,
            options: &options,
            demand: Some(&demand),
            startds: Some(&startds),
            cloud_known: true,
            nodes,
            month_spend: 0.0,
            backoff: &backoff,
            foreign: &Default::default(),
            paused: &Default::default(),
            mesos,
        })
    }

    fn launches(p: &Plan) -> Vec<String> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Launch { flavor, .. } => Some(flavor.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn jobs_are_packed_onto_the_cheapest_flavour_per_job() {
        let mut c = crate::config::parse("c.toml", CONFIG).unwrap();
        // Packing is what a site gets without sized starts.
        c.pilot.sized_start = false;
        // 16 one-core jobs: 8 smalls cost 0.80/h, 1 big 0.64/h.
        let p = run(&c, &jobs(16, 1, 1024), &[], &Pool::default());
        assert_eq!(launches(&p), ["big"]);
        // 2 jobs: one small (0.10) beats a big.
        let p = run(&c, &jobs(2, 1, 1024), &[], &Pool::default());
        assert_eq!(launches(&p), ["small"]);
    }

    #[test]
    fn a_node_is_bought_for_a_job_of_its_size() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        // 16 one-core jobs: a big node would not start one (a small one
        // holds it), so smalls, each opened by one job and filled by the
        // next.
        let p = run(&c, &jobs(16, 1, 1024), &[], &Pool::default());
        assert_eq!(launches(&p), ["small"; 8]);
        // A job only a big node holds opens one.
        let p = run(&c, &jobs(1, 4, 1024), &[], &Pool::default());
        assert_eq!(launches(&p), ["big"]);
    }

    #[test]
    fn an_empty_node_is_left_for_a_job_of_its_size() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        let mut node = node("n1", State::Idle, None);
        node.flavor = "big".into();
        let mut s = startd("n1", 0);
        s.flavor = Some("big".into());
        (s.total_cpus, s.free_cpus) = (16.0, 16.0);
        (s.total_memory, s.free_memory) = (65536, 65536);
        let mut pool = Pool::default();
        pool.startds.insert(s.name.clone(), s);
        // One-core jobs do not open the empty big node: a small is bought.
        let p = run(&c, &jobs(1, 1, 1024), std::slice::from_ref(&node), &pool);
        assert_eq!(launches(&p), ["small"]);
        // A four-core job does.
        let p = run(&c, &jobs(1, 4, 1024), &[node], &pool);
        assert!(launches(&p).is_empty(), "{:?}", p.actions);
    }

    #[test]
    fn limits_and_ramp_hold() {
        let mut c = crate::config::parse("c.toml", CONFIG).unwrap();
        // The ramp's arithmetic on packed nodes.
        c.pilot.sized_start = false;
        let p = run(&c, &jobs(1000, 2, 8192), &[], &Pool::default());
        assert_eq!(launches(&p).len(), 10, "max_nodes");
        assert!(
            p.notes.iter().any(|n| n.contains("max_nodes")),
            "{:?}",
            p.notes
        );
        c.limits.ramp = 0.25;
        c.limits.max_nodes = 100;
        let p = run(&c, &jobs(40, 2, 8192), &[], &Pool::default());
        // 40 jobs of 2 cpus: 8 per big, 5 bigs wanted; 25% of 5, rounded up.
        assert_eq!(launches(&p).len(), 2, "{:?}", p.notes);
    }

    #[test]
    fn instances_that_are_not_ours_use_the_sites_capacity() {
        let mut c = crate::config::parse("c.toml", CONFIG).unwrap();
        c.sites[0].max_nodes = Some(3);
        let options = flavor_options(&c);
        let js = jobs(40, 2, 8192);
        let demand = compute(&js, &options, &c.groups, 0);
        let backoff = BTreeMap::new();
        let foreign = BTreeMap::from([("aws".to_string(), (2u32, 16u32))]);
        let out = plan(&Inputs {
            now: 0,
            config: &c,
            options: &options,
            demand: Some(&demand),
            startds: Some(&StartdIndex::new(&Pool::default())),
            cloud_known: true,
            nodes: &[],
            month_spend: 0.0,
            backoff: &backoff,
            foreign: &foreign,
            paused: &Default::default(),
            mesos: None,
        });
        assert_eq!(launches(&out).len(), 1, "{:?}", out.notes);
        assert!(
            out.notes
                .iter()
                .any(|n| n.contains("site aws max_nodes (3)")),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn unknown_sources_mean_no_launch_and_no_drain() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        let options = flavor_options(&c);
        let backoff = BTreeMap::new();
        let js = jobs(10, 1, 1024);
        let demand = compute(&js, &options, &c.groups, 0);
        let pool = Pool::default();
        let pool = StartdIndex::new(&pool);
        for (d, p, cloud) in [
            (None, Some(&pool), true),
            (Some(&demand), None, true),
            (Some(&demand), Some(&pool), false),
        ] {
            let out = plan(&Inputs {
                now: 0,
                config: &c,
                options: &options,
                demand: d,
                startds: p,
                cloud_known: cloud,
                nodes: &[],
                month_spend: 0.0,
                backoff: &backoff,
                foreign: &Default::default(),
                paused: &Default::default(),
                mesos: None,
            });
            assert!(out.actions.is_empty());
            assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
        }
    }

    #[test]
    fn a_busy_node_whose_jobs_would_not_retire_is_not_drained_at_its_lifetime() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        // Joined at 99,000; planned at 100,000: past a 900 s lifetime.
        let mut c2 = c.clone();
        c2.timers.max_lifetime = std::time::Duration::from_secs(900);
        let nodes = [node("old", State::Busy, None)];
        let mut pool = Pool::default();
        let mut s = startd("old", 1);
        s.retirement_time = Some(60);
        pool.startds.insert("old@cloud".into(), s.clone());
        let p = run(&c2, &[], &nodes, &pool);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("old is past max_lifetime but not drained")),
            "{:?}",
            p.notes
        );
        s.retirement_time = Some(3000);
        pool.startds.insert("old@cloud".into(), s);
        let p = run(&c2, &[], &nodes, &pool);
        assert!(
            matches!(
                p.actions.as_slice(),
                [Action::Drain {
                    cause: DrainCause::Lifetime,
                    ..
                }]
            ),
            "{:?}",
            p.actions
        );
    }

    #[test]
    fn an_admin_drain_is_planned_busy_or_idle_and_only_for_joined_nodes() {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        let admin = |id: &str, state: State| Node {
            admin_drain: Some(99_500),
            ..node(id, state, None)
        };
        let nodes = [
            admin("busy", State::Busy),
            admin("idle", State::Idle),
            admin("booting", State::Booting),
            node("other", State::Idle, None),
        ];
        let mut pool = Pool::default();
        for (id, claims) in [("busy", 1), ("idle", 0), ("other", 0)] {
            let mut s = startd(id, claims);
            // Its jobs retire for an hour (the default min_retirement is 10 m).
            s.retirement_time = Some(3600);
            pool.startds.insert(format!("{id}@cloud"), s);
        }
        let p = run(&c, &[], &nodes, &pool);
        let mut drained: Vec<(String, DrainCause)> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Drain { node, cause, .. } => Some((node.clone(), *cause)),
                _ => None,
            })
            .collect();
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            drained,
            [
                ("busy".to_string(), DrainCause::Admin),
                ("idle".to_string(), DrainCause::Admin)
            ],
            "{:?}",
            p.actions
        );
    }
}
