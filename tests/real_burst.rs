//! Whole burst cycles with the real HTCondor in the loop
//! (`support::burst_world`): the release binary against a real pool and a
//! real EC2 API, where every instance it launches becomes a real pilot
//! from the user-data it sent. What the stand-in world can only imitate:
//! the real negotiator's matches, the real startd's retirement and the
//! real schedd's history (`NumJobStarts`, `LastVacateTime`) say whether a
//! job was ever evicted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::agentproc::{cli, node_states, Agent};
use support::burst_world::{BurstWorld, Knobs};

const LONG: Duration = Duration::from_secs(240);

/// The cloud slots the collector lists: node id → (identity, method).
fn cloud_slots(world: &BurstWorld) -> BTreeMap<String, (String, String)> {
    world
        .rows(
            "condor_status",
            &[
                "-constraint",
                "CloudNode =?= true",
                "-af:t",
                "CloudburstNodeId",
                "AuthenticatedIdentity",
                "AuthenticationMethod",
            ],
        )
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
        .collect()
}

fn queue_len(world: &BurstWorld) -> usize {
    world
        .rows("condor_q", &["-allusers", "-af", "ClusterId"])
        .len()
}

/// `(ProcId, JobStatus, NumJobStarts, LastVacateTime, LastRemoteHost)` of
/// a cluster's jobs, from the real schedd's history.
fn history(world: &BurstWorld, cluster: &str) -> Vec<Vec<String>> {
    let mut rows = world.rows(
        "condor_history",
        &[
            "-constraint",
            &format!("ClusterId == {cluster}"),
            "-af:t",
            "ProcId",
            "JobStatus",
            "NumJobStarts",
            "LastVacateTime",
            "LastRemoteHost",
        ],
    );
    rows.sort();
    rows
}

/// Every job of `cluster` completed once and was never vacated.
fn assert_done_once(world: &BurstWorld, cluster: &str, n: usize) -> Vec<Vec<String>> {
    let h = history(world, cluster);
    assert_eq!(h.len(), n, "{h:?}");
    for r in &h {
        assert_eq!(
            (r[1].as_str(), r[2].as_str(), r[3].as_str()),
            ("4", "1", "undefined"),
            "completed once, never vacated: {r:?}"
        );
    }
    h
}

/// Idle cloud jobs → launches → real pilots join with their own tokens →
/// the real negotiator runs the jobs on them → the queue drains → the
/// agent drains and turns off the idle pilots → terminated: every job
/// done once, none evicted, no instance left.
#[test]
fn a_whole_burst_cycle_on_the_real_pool_runs_every_job_once_and_leaves_nothing() {
    let Some(world) = BurstWorld::start_with_ce_route("burst") else {
        return;
    };
    let cfg = world.agent_config(Knobs::default());
    let cluster = world.submit_cloud(3, 6);
    // A grid job through the HTCondor-CE's route, and a local job.
    let routed = world.submit_routed(6);
    let local = world.submit_local(2);
    let ad = world.rows(
        "condor_q",
        &[
            &routed,
            "-af:t",
            "WantCloud",
            "CloudburstRoute",
            "unparse(Requirements)",
        ],
    );
    // The route's `SET Requirements (TARGET.CloudNode =?= True)`, whole
    // (HTCondor 25 unparses `=?=` as `is`).
    assert_eq!(
        ad[0],
        ["true", "Cloud", "(TARGET.CloudNode is true)"],
        "the routed job's ad"
    );
    let mut agent = Agent::start(&cfg);
    let mut slots = BTreeMap::new();
    world
        .pool
        .wait_for("every cloud job to complete", LONG, |_| {
            slots.extend(cloud_slots(&world));
            queue_len(&world) == 0
        });
    world.pool.wait_for("zero instances", LONG, |_| {
        let l = world.launched();
        !l.booted.is_empty() && l.alive.is_empty()
    });
    let l = world.launched();
    assert!(l.refused.is_empty(), "{:?}", l.refused);
    assert_eq!(l.powered_off.len(), l.booted.len(), "{l:?}");
    let mut h = assert_done_once(&world, &cluster, 3);
    h.extend(assert_done_once(&world, &routed, 1));
    let nodes: BTreeSet<&String> = l.booted.values().collect();
    let on_site = assert_done_once(&world, &local, 1);
    assert!(
        !nodes.iter().any(|n| on_site[0][4].contains(n.as_str())),
        "the local job ran on the site's startd: {on_site:?}"
    );
    for r in &h {
        assert!(
            nodes.iter().any(|n| r[4].contains(n.as_str())),
            "ran on a pilot: {r:?} (pilots {nodes:?})"
        );
    }
    // Each pilot joined with a token of its own, for its own node.
    assert!(
        slots.len() >= 2,
        "4 one-core jobs on 2-core pilots: {slots:?}"
    );
    assert_eq!(
        slots.keys().collect::<BTreeSet<_>>(),
        nodes,
        "every pilot booted joined"
    );
    for (node, (identity, method)) in &slots {
        assert_eq!(
            identity,
            &format!("cloudburst-pilot-{node}@cloudburst.test")
        );
        assert_eq!(method, "IDTOKENS");
    }
    let identities: BTreeSet<&String> = slots.values().map(|(i, _)| i).collect();
    assert_eq!(identities.len(), slots.len(), "distinct identities");
    eprintln!(
        "real pool: burst cycle: {} cloud jobs (one through the CE route) done once each on pilots (0 evicted), the local job on the site's startd, {} pilots joined by IDTOKENS as {:?}, {} instances left",
        h.len(),
        slots.len(),
        identities,
        l.alive.len()
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// Faults of the real pool's own daemons during a burst: the collector
/// restarted while the pilots work (for a while it knows none of them;
/// none is declared gone, drained or terminated, no job is evicted), then
/// the schedd stopped while the pilots are idle (the queue is unknown: no
/// scale-down however long they idle), and scale-down once it is back.
#[test]
fn a_restarted_collector_and_a_stopped_schedd_retire_nothing_on_the_real_pool() {
    let Some(world) = BurstWorld::start("faults") else {
        return;
    };
    let cfg = world.agent_config(Knobs {
        idle_timeout: "12s",
        missing_grace: "10s",
        ..Knobs::default()
    });
    let cluster = world.submit_cloud(2, 30);
    let mut agent = Agent::start(&cfg);
    world.pool.wait_for("both jobs to run", LONG, |_| {
        world
            .rows("condor_q", &["-allusers", "-af", "JobStatus"])
            .iter()
            .filter(|r| r[0] == "2")
            .count()
            == 2
    });
    agent.wait_for_nodes_in(&cfg, "busy", LONG);
    let before = node_states(&cfg);

    // The collector restarts: down (the agent's readings fail), then up
    // knowing no pilot until each sends its next update.
    let answers = |p: &support::condor_pool::Pool| {
        p.run("condor_status", &["-collector", "-af", "Name"])
            .status
            .success()
    };
    let out = world.pool.run("condor_off", &["-collector"]);
    assert!(out.status.success(), "{}", support::condor_pool::text(&out));
    world
        .pool
        .wait_for("the collector to stop", LONG, |p| !answers(p));
    let out = world.pool.run("condor_on", &["-collector"]);
    assert!(out.status.success(), "{}", support::condor_pool::text(&out));
    world
        .pool
        .wait_for("the collector to come back", LONG, answers);
    let slots_after_restart = cloud_slots(&world).len();
    let acted = agent.actions_over_cycles(12);
    assert!(
        acted.is_empty(),
        "acted on a restarted collector: {acted:?}"
    );
    assert_eq!(
        node_states(&cfg),
        before,
        "a collector restart changed the nodes"
    );
    assert!(
        !cloud_slots(&world).is_empty(),
        "the pilots advertise again"
    );

    // The jobs end; at once the schedd is stopped: idle pilots, unknown
    // queue.
    world
        .pool
        .wait_for("the jobs to complete", LONG, |_| queue_len(&world) == 0);
    let out = world.pool.run("condor_off", &["-schedd"]);
    assert!(out.status.success(), "{}", support::condor_pool::text(&out));
    world.pool.wait_for("the schedd to stop", LONG, |p| {
        !p.run("condor_q", &["-af", "ClusterId"]).status.success()
    });
    let alive = world.next_look().alive;
    assert!(!alive.is_empty());
    // Longer than idle_timeout (12 s at one cycle a second).
    let acted = agent.actions_over_cycles(20);
    let retiring: Vec<&String> = acted
        .iter()
        .filter(|l| l.contains("drain") || l.contains("terminate") || l.contains("retire"))
        .collect();
    assert!(
        retiring.is_empty(),
        "retired nodes while the queue was unknown: {retiring:?}"
    );
    assert_eq!(world.next_look().alive, alive, "no instance ended");

    let out = world.pool.run("condor_on", &["-schedd"]);
    assert!(out.status.success(), "{}", support::condor_pool::text(&out));
    world
        .pool
        .wait_for("zero instances after recovery", LONG, |_| {
            world.launched().alive.is_empty()
        });
    assert_done_once(&world, &cluster, 2);
    eprintln!(
        "real pool: collector restarted ({slots_after_restart} cloud slots listed when it first answered) and schedd off: no action, 2 jobs done once each, 0 instances left"
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// An admin drains a busy pilot (`cloudburst drain`): the real startd
/// retires its job to completion and takes no new one; a job submitted
/// meanwhile gets a pilot of its own; both pilots end.
#[test]
fn a_job_submitted_while_a_busy_pilot_drains_gets_a_pilot_of_its_own() {
    let Some(world) = BurstWorld::start("drain") else {
        return;
    };
    let cfg = world.agent_config(Knobs::default());
    let first = world.submit_cloud(1, 25);
    let mut agent = Agent::start(&cfg);
    let busy = agent.wait_for_nodes_in(&cfg, "busy", LONG).remove(0);
    let out = cli(&["drain", &busy], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let draining = |w: &BurstWorld| {
        w.rows(
            "condor_status",
            &[
                "-constraint",
                &format!("CloudburstNodeId == \"{busy}\" && SlotType == \"Partitionable\""),
                "-af",
                "Draining",
            ],
        )
        .iter()
        .any(|r| r[0] == "true")
    };
    world
        .pool
        .wait_for("the real startd to drain", LONG, |_| draining(&world));
    let second = world.submit_cloud(1, 2);
    world
        .pool
        .wait_for("both jobs to complete", LONG, |_| queue_len(&world) == 0);
    world.pool.wait_for("zero instances", LONG, |_| {
        let l = world.launched();
        l.booted.len() >= 2 && l.alive.is_empty()
    });
    let h1 = assert_done_once(&world, &first, 1);
    let h2 = assert_done_once(&world, &second, 1);
    assert!(h1[0][4].contains(&busy), "{h1:?}");
    assert!(
        !h2[0][4].contains(&busy),
        "the job submitted during the drain ran on another pilot: {h2:?}"
    );
    eprintln!(
        "real pool: an admin's drain of busy {busy}: its job done once (never vacated), the job submitted meanwhile ran on {}, {} pilots, 0 instances left",
        h2[0][4],
        world.launched().booted.len()
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// With `pool.job_log` on the real schedd's `job_queue.log` and a cycle
/// of ten minutes, a submitted cloud job is launched for at once: the
/// agent read the real log's new job (and launched from it, without a
/// condor_q), not its timer.
#[test]
fn the_real_schedds_job_log_wakes_the_agent_for_a_new_cloud_job() {
    let Some(world) = BurstWorld::start("joblog") else {
        return;
    };
    let cfg = world.agent_config(Knobs {
        cycle: "600s",
        follow_job_log: true,
        ..Knobs::default()
    });
    let mut agent = Agent::start(&cfg);
    agent.wait_for("cycle done");
    let cluster = world.submit_cloud(1, 1);
    // Within the helper's deadline (60 s), far inside the 600 s timer.
    let launch = agent
        .wait_for_within("launch", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no launch after the submit:\n{}", agent.tail(40)));
    assert!(launch.contains("msg=\"action\""), "{launch}");
    // Launched from the log itself, between condor_q readings.
    assert!(launch.contains("from=\"job log\""), "{launch}");
    world
        .pool
        .wait_for("the job to complete", LONG, |_| queue_len(&world) == 0);
    assert_done_once(&world, &cluster, 1);
    eprintln!("real pool: job log: a job appended to the real job_queue.log woke the agent (cycle 600 s): {launch}");
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}
