//! The Mesos side through the planner and the node lifecycle, on the
//! planner tests' pool: waiting tasks buy nodes, Mesos work keeps them.

use super::tests::{run_with, CONFIG};
use super::{Action, Plan};
use crate::condor::Pool;
use crate::config::Config;
use crate::fixtures::{node, startd};
use crate::lifecycle::{DrainCause, Node, State};
use crate::mesos::constraint::Constraint;
use crate::mesos::supply::{boot_failures, busy, holds};
use crate::mesos::*;
use crate::model::Resources;
use crate::observed::{Observed, Unknown};

fn config(required: bool) -> Config {
    let text = format!(
        "{CONFIG}\n[pilot.mesos]\nmaster = \"zk://zk.example.edu:2181/mesos\"\ncpus = 1\nmemory_mb = 2048\n\n[mesos]\nmaster = \"http://127.0.0.1:5050\"\nmarathon = \"http://127.0.0.1:8080\"\nrequired = {required}\n"
    );
    crate::config::parse("c.toml", &text).unwrap()
}

fn unit(count: u64, millicpus: u64, memory: u64) -> Unit {
    Unit {
        source: "marathon",
        name: "/airavata/worker".into(),
        count,
        request: Resources {
            cpus: millicpus,
            memory,
            disk: 0,
            gpus: 0,
        },
        delayed: false,
        constraints: vec![],
    }
}

fn agent(node: &str, tasks: u64) -> Agent {
    Agent {
        id: format!("S-{node}"),
        hostname: format!("{node}.cloud"),
        node: Some(node.into()),
        registered: true,
        tasks,
        offered: false,
        free: Resources {
            cpus: if tasks > 0 { 0 } else { 1000 },
            memory: 2048,
            disk: 1024,
            gpus: 0,
        },
    }
}

fn view(agents: Vec<Agent>, queue: Vec<Unit>) -> MesosView {
    MesosView {
        agents: Observed::Known(agents),
        queue: Observed::Known(queue),
    }
}

fn unreadable() -> Unknown {
    Unknown::Failed {
        status: "unreachable".into(),
        message: "connection refused".into(),
    }
}

/// A master nobody can read, beside an empty framework queue.
fn blind_master() -> MesosView {
    MesosView {
        agents: Observed::Unknown(unreadable()),
        queue: Observed::Known(vec![]),
    }
}

/// One cycle with no condor jobs, seeing the Mesos side as `v`.
fn plan(c: &Config, nodes: &[Node], pool: &Pool, v: &MesosView) -> Plan {
    run_with(c, &[], nodes, pool, Some(v))
}

/// What the plan does of one kind (`launch`, `drain`, `terminate`), by
/// flavour for launches and by node otherwise.
fn acted(p: &Plan, kind: &str) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| serde_json::to_value(a).unwrap())
        .filter(|v| v["action"] == kind)
        .map(|v| {
            let key = if kind == "launch" { "flavor" } else { "node" };
            v[key].as_str().unwrap().to_string()
        })
        .collect()
}

fn launches(p: &Plan) -> Vec<String> {
    acted(p, "launch")
}

fn drains(p: &Plan) -> Vec<String> {
    acted(p, "drain")
}

fn terminations(p: &Plan) -> Vec<String> {
    acted(p, "terminate")
}

/// One idle joined node `n1`, unclaimed for 1,000 s.
fn idle_pool() -> (Vec<Node>, Pool) {
    let mut pool = Pool::default();
    pool.startds.insert("n1@cloud".into(), startd("n1", 0));
    let mut n = node("n1", State::Idle, None);
    n.last_busy = None;
    (vec![n], pool)
}

#[test]
fn waiting_tasks_buy_the_cheapest_nodes_their_share_fits() {
    let c = config(false);
    // 5 tasks of half a cpu: 2 per node's 1-cpu share, so 3 small nodes
    // (the big one offers Mesos the same share at six times the price).
    let v = view(vec![], vec![unit(5, 500, 512)]);
    let p = plan(&c, &[], &Pool::default(), &v);
    assert_eq!(launches(&p), ["small", "small", "small"], "{p:?}");
}

#[test]
fn a_task_per_host_takes_a_node_each_and_a_task_bigger_than_the_share_none() {
    let c = config(false);
    let mut u = unit(3, 100, 64);
    u.constraints = vec![Constraint::marathon("hostname", "UNIQUE", None)];
    let p = plan(&c, &[], &Pool::default(), &view(vec![], vec![u]));
    assert_eq!(launches(&p).len(), 3, "{p:?}");

    let p = plan(
        &c,
        &[],
        &Pool::default(),
        &view(vec![], vec![unit(1, 1500, 64)]),
    );
    assert!(launches(&p).is_empty(), "{p:?}");
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("1 Mesos tasks of marathon /airavata/worker wait")),
        "{:?}",
        p.notes
    );
}

#[test]
fn tasks_in_their_frameworks_back_off_buy_nothing() {
    let c = config(false);
    let mut u = unit(4, 500, 512);
    u.delayed = true;
    let p = plan(&c, &[], &Pool::default(), &view(vec![], vec![u]));
    assert!(launches(&p).is_empty(), "{p:?}");
}

#[test]
fn unreadable_frameworks_buy_nothing_for_mesos_and_drain_nothing_they_might_use() {
    let c = config(false);
    let (nodes, pool) = idle_pool();
    let v = MesosView {
        agents: Observed::Known(vec![agent("n1", 0)]),
        queue: Observed::Unknown(unreadable()),
    };
    let p = plan(&c, &nodes, &pool, &v);
    assert!(launches(&p).is_empty(), "{p:?}");
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("frameworks could not be read")),
        "{:?}",
        p.notes
    );
    // Readable and empty: the idle node is drained (the control).
    let p = plan(&c, &nodes, &pool, &view(vec![agent("n1", 0)], vec![]));
    assert_eq!(drains(&p), ["n1"], "{p:?}");
}

#[test]
fn free_share_on_a_registered_agent_is_used_before_buying() {
    let c = config(false);
    let (nodes, pool) = idle_pool();
    let v = view(vec![agent("n1", 0)], vec![unit(2, 500, 512)]);
    let p = plan(&c, &nodes, &pool, &v);
    assert!(launches(&p).is_empty(), "{p:?}");
    assert!(
        drains(&p).is_empty(),
        "a node that waiting tasks can use stays: {p:?}"
    );
}

#[test]
fn constraints_pick_the_flavour_and_tasks_no_pilot_meets_buy_nothing() {
    let c = config(false);
    let with = |cs: Vec<Constraint>| {
        let mut u = unit(2, 500, 512);
        u.constraints = cs;
        view(vec![], vec![u])
    };
    // Pinned to the big flavour: bought there, though small is cheaper.
    let big = with(vec![Constraint::marathon(
        "cloud_flavor",
        "LIKE",
        Some("b.g"),
    )]);
    let p = plan(&c, &[], &Pool::default(), &big);
    assert_eq!(launches(&p), ["big"], "{p:?}");
    // Kept off a site we do not burst to, or needing an attribute our
    // pilots lack: nothing bought (it would wait on every node), and why.
    for (rule, why) in [
        (
            ("cloud_site", "IS", "jetstream"),
            "cloud_site in [\"jetstream\"]",
        ),
        (("rack_id", "CLUSTER", "rack-1"), "rack_id in [\"rack-1\"]"),
        (("hostname", "LIKE", "login.*"), "hostname LIKE \"login.*\""),
    ] {
        let (field, op, value) = rule;
        let v = with(vec![Constraint::marathon(field, op, Some(value))]);
        let p = plan(&c, &[], &Pool::default(), &v);
        assert!(launches(&p).is_empty(), "{why}: {p:?}");
        let note = format!(
            "2 Mesos tasks of marathon /airavata/worker wait: no pilot we could boot meets their constraint {why}"
        );
        assert!(p.notes.contains(&note), "{note:?} in {:?}", p.notes);
    }
}

#[test]
fn a_task_pinned_to_a_host_goes_to_that_agent_or_nowhere() {
    let c = config(false);
    let (nodes, pool) = idle_pool();
    let pinned = |host: &str| {
        let mut u = unit(1, 500, 512);
        u.constraints = vec![Constraint::marathon("hostname", "CLUSTER", Some(host))];
        view(vec![agent("n1", 0)], vec![u])
    };
    // Our registered agent is that host: its share takes the task, and
    // the node is kept for it.
    let p = plan(&c, &nodes, &pool, &pinned("n1.cloud"));
    assert!(launches(&p).is_empty() && drains(&p).is_empty(), "{p:?}");
    // Another host: not ours, so nothing is bought and n1 retires.
    let p = plan(&c, &nodes, &pool, &pinned("hpc-login-1"));
    assert!(launches(&p).is_empty(), "{p:?}");
    assert_eq!(drains(&p), ["n1"], "{p:?}");
}

#[test]
fn a_node_running_mesos_tasks_is_never_drained_however_idle_condor_is() {
    let c = config(false);
    let (nodes, pool) = idle_pool();
    let p = plan(&c, &nodes, &pool, &view(vec![agent("n1", 1)], vec![]));
    assert!(drains(&p).is_empty(), "{p:?}");
    // Known only from before a master fail-over: its tasks are not listed.
    let mut recovered = agent("n1", 0);
    recovered.registered = false;
    let p = plan(&c, &nodes, &pool, &view(vec![recovered], vec![]));
    assert!(drains(&p).is_empty(), "{p:?}");
    // Without [mesos] the same node is drained.
    let plain = crate::config::parse("c.toml", CONFIG).unwrap();
    let p = run_with(&plain, &[], &nodes, &pool, None);
    assert_eq!(drains(&p), ["n1"], "{p:?}");
}

#[test]
fn an_unreadable_master_drains_nothing_and_says_so() {
    let c = config(false);
    let (nodes, pool) = idle_pool();
    for v in [
        Some(blind_master()),
        None, // configured but not read
    ] {
        let p = run_with(&c, &[], &nodes, &pool, v.as_ref());
        assert!(drains(&p).is_empty(), "{p:?}");
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("no node is drained for idleness")),
            "{:?}",
            p.notes
        );
    }
}

#[test]
fn a_drained_node_with_mesos_work_is_not_terminated_but_a_lost_one_is() {
    let c = config(false);
    let nodes = [
        node("drained", State::Drained, Some(DrainCause::Idle)),
        node("lost", State::Lost, None),
        node("failed", State::BootFailed, None),
    ];
    let v = view(vec![agent("drained", 2), agent("lost", 1)], vec![]);
    let p = plan(&c, &nodes, &Pool::default(), &v);
    assert_eq!(terminations(&p), ["failed", "lost"], "{p:?}");
    assert!(
        p.notes
            .iter()
            .any(|n| n.starts_with("drained is not terminated: 2 Mesos task(s)")),
        "{:?}",
        p.notes
    );

    // Master unreadable: a drained node may have Mesos work; a failed
    // boot is still ended.
    let v = blind_master();
    let p = plan(&c, &nodes, &Pool::default(), &v);
    assert_eq!(terminations(&p), ["failed", "lost"], "{p:?}");

    // Its tasks done: terminated.
    let p = plan(
        &c,
        &nodes,
        &Pool::default(),
        &view(vec![agent("drained", 0)], vec![]),
    );
    assert_eq!(terminations(&p), ["drained", "failed", "lost"], "{p:?}");
}

#[test]
fn mesos_work_restarts_the_idle_clock() {
    let nodes = [node("n1", State::Idle, None), node("n2", State::Idle, None)];
    let v = view(vec![agent("n1", 3), agent("n2", 0)], vec![]);
    let t = busy(&nodes, &holds(&v), 123_456);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(
        (t[0].node.as_str(), t[0].to, t[0].busy_at),
        ("n1", State::Idle, Some(123_456))
    );
}

#[test]
fn a_required_agent_that_never_registers_fails_the_boot_of_an_unclaimed_node() {
    let c = config(true);
    let late = 99_000 + c.timers.boot_timeout.as_secs() as i64;
    let nodes = [
        node("idle", State::Idle, None),
        node("busy", State::Busy, None),
        node("ok", State::Idle, None),
    ];
    let v = view(vec![agent("ok", 0)], vec![]);
    let t = boot_failures(&c, &nodes, &v, late);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(
        (t[0].node.as_str(), t[0].from, t[0].to),
        ("idle", State::Idle, State::BootFailed)
    );
    assert!(t[0].reason.contains("never registered"), "{}", t[0].reason);
    // Not yet past the boot timeout, not required, or master unreadable: no verdict.
    assert!(boot_failures(&c, &nodes, &v, late - 1).is_empty());
    assert!(boot_failures(&config(false), &nodes, &v, late).is_empty());
    let blind = blind_master();
    assert!(boot_failures(&c, &nodes, &blind, late).is_empty());
}

#[test]
fn an_offered_agent_is_deactivated_before_its_node_is_terminated() {
    let c = config(false);
    let mut drained = node("drained", State::Drained, Some(DrainCause::Idle));
    drained.since = 99_990; // drained a cycle ago
    let nodes = [drained];
    let mut offered = agent("drained", 0);
    offered.offered = true;
    let p = plan(&c, &nodes, &Pool::default(), &view(vec![offered], vec![]));
    assert!(terminations(&p).is_empty(), "{p:?}");
    assert!(
        matches!(&p.actions[..], [Action::DeactivateMesosAgent { node, agent, .. }] if node == "drained" && agent == "S-drained"),
        "{p:?}"
    );
    // Deactivated (the next look) and still without tasks: terminated.
    let p = plan(
        &c,
        &nodes,
        &Pool::default(),
        &view(vec![agent("drained", 0)], vec![]),
    );
    assert_eq!(terminations(&p), ["drained"], "{p:?}");
    // A master that never deactivates it (older than 1.9): after five
    // cycles the node goes without.
    let mut late = nodes[0].clone();
    late.since = 100_000 - 5 * c.timers.cycle.as_secs() as i64;
    let mut still = agent("drained", 0);
    still.offered = true;
    let p = plan(&c, &[late], &Pool::default(), &view(vec![still], vec![]));
    assert_eq!(terminations(&p), ["drained"], "{p:?}");
}
