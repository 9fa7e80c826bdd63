//! Property tests of the decision core, through the real cycle (reconcile,
//! demand, planner, lifecycle, SQLite registry) driving the simulated pool
//! and cloud: random workloads, configurations, cloud failures, unreadable
//! sources and crashes at random steps.

use std::collections::BTreeMap;

use proptest::prelude::*;

use cloudburst::condor::job::JobReader;
use cloudburst::condor::{Job, Pool};
use cloudburst::config::Config;
use cloudburst::cycle::{Agent, CycleError};
use cloudburst::demand::{compute, flavor_options};
use cloudburst::lifecycle::{DrainCause, Node, State};
use cloudburst::pairing::StartdIndex;
use cloudburst::planner::{plan, Action, Inputs};
use cloudburst::registry::Registry;
use cloudburst::sim::{CloudModel, Faults, World};

fn config(max_nodes: u32, max_cost: f64, ramp: f64, removal_share: f64) -> Config {
    config_with(max_nodes, max_cost, ramp, removal_share, "2d")
}

fn config_with(
    max_nodes: u32,
    max_cost: f64,
    ramp: f64,
    removal_share: f64,
    max_lifetime: &str,
) -> Config {
    let text = format!(
        r#"
[pool]
name = "prop"
startd_missing_grace = "2m"
[timers]
cycle = "60s"
idle_timeout = "5m"
boot_timeout = "10m"
max_lifetime = "{max_lifetime}"
drain_grace = "1h"
[limits]
max_nodes = {max_nodes}
max_cost_per_hour = {max_cost}
ramp = {ramp}
removal_share = {removal_share}
launches_per_cycle = 5
removals_per_cycle = 3
backoff_initial = "2m"
backoff_max = "10m"
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
cpus = 8
memory_mb = 32768
disk_gb = 200
price_per_hour = 0.36
spot = true
[[sites]]
name = "jetstream"
provider = "openstack"
max_nodes = 2
[[sites.flavors]]
name = "m3.medium"
cpus = 8
memory_mb = 30720
disk_gb = 60
price_per_hour = 0.30
"#
    );
    cloudburst::config::parse("prop.toml", &text).unwrap()
}

/// A job as a 25.x schedd writes it (Requirements from the live capture).
fn job(r: &mut JobReader, cluster: i64, proc: i64, cpus: u32, mem: u32, cloud: bool) -> Job {
    job_stating(r, cluster, proc, cpus, mem, cloud, None)
}

/// The same, stating its run time (`MaxJobRuntime`) when given.
fn job_stating(
    r: &mut JobReader,
    cluster: i64,
    proc: i64,
    cpus: u32,
    mem: u32,
    cloud: bool,
    runtime: Option<i64>,
) -> Job {
    let stated = runtime.map_or(String::new(), |t| format!("MaxJobRuntime = {t};"));
    let text = format!(
        r#"[ClusterId = {cluster}; ProcId = {proc}; JobStatus = 1; QDate = {cluster}; Owner = "u"; {stated}
           WantCloud = {cloud}; RequestCpus = {cpus}; RequestMemory = {mem}; RequestDisk = 1048576;
           FileSystemDomain = "submit";
           Requirements = ((TARGET.CloudNode is true)) && (TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (versionGE(split(TARGET.CondorVersion)[1],"25.12.0") || (TARGET.Disk >= RequestDisk)) && (TARGET.Memory >= RequestMemory) && ((TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer))]"#
    );
    r.job(cloudburst::classad::parse_ad(text.as_bytes()).unwrap(), 0)
        .unwrap()
}

#[derive(Clone, Debug)]
struct Workload {
    /// (submit after seconds, cpus, memory MB, runtime seconds, count)
    batches: Vec<(i64, u32, u32, i64, u32)>,
}

fn workload() -> impl Strategy<Value = Workload> {
    prop::collection::vec(
        (
            0i64..7200,
            prop::sample::select(vec![1u32, 2, 4, 8, 16]),
            prop::sample::select(vec![512u32, 2048, 8000, 30000, 100_000]),
            60i64..5400,
            1u32..25,
        ),
        1..6,
    )
    .prop_map(|mut batches| {
        batches.sort_by_key(|b| b.0);
        Workload { batches }
    })
}

const START: i64 = 1_795_300_000;

/// Submits the workload; with `stated`, each job states its run time
/// (the longest it may take: its runtime rounded up to 10 minutes).
fn submit(world: &World, w: &Workload, stated: bool) -> u64 {
    let mut r = JobReader::new();
    let mut matchable = 0;
    for (i, &(at, cpus, mem, runtime, count)) in w.batches.iter().enumerate() {
        for p in 0..count {
            let limit = stated.then(|| (runtime + 599) / 600 * 600);
            let j = job_stating(&mut r, 100 + i as i64, p as i64, cpus, mem, true, limit);
            // Fits some flavour: 8 cpus and 32768 MB at most.
            if cpus <= 8 && mem <= 32768 {
                matchable += 1;
            }
            world.submit(START + at, j, runtime);
        }
    }
    matchable
}

#[derive(Clone, Debug)]
struct Trouble {
    boot_failure: f64,
    capacity_error: f64,
    spot_reclaim: f64,
    /// Cycles at which the agent crashes after this many steps.
    crashes: BTreeMap<u32, u32>,
    /// Crash in every cycle, after 1 to 6 steps (drawn from the seed).
    crash_always: bool,
    /// Cycles during which (queue, pool, inventory) cannot be read.
    blind: BTreeMap<u32, (bool, bool, bool)>,
    /// Launch replies lost (the launch took effect).
    lost_reply: f64,
    /// Accepted terminate calls that do nothing.
    terminate_ignored: f64,
    /// Cycles at which an admin drains the (k mod live)-th live node.
    admin_drains: BTreeMap<u32, usize>,
}

fn trouble() -> impl Strategy<Value = Trouble> {
    (
        prop::sample::select(vec![0.0, 0.1, 0.3]),
        prop::sample::select(vec![0.0, 0.2]),
        prop::sample::select(vec![0.0, 0.5]),
        prop::collection::btree_map(0u32..300, 0u32..8, 0..40),
        prop::collection::btree_map(
            0u32..300,
            (any::<bool>(), any::<bool>(), any::<bool>()),
            0..12,
        ),
        prop::bool::weighted(0.25),
        (
            prop::sample::select(vec![0.0, 0.2]),
            prop::sample::select(vec![0.0, 0.5]),
            prop::collection::btree_map(0u32..200, 0usize..8, 0..4),
        ),
    )
        .prop_map(
            |(
                boot_failure,
                capacity_error,
                spot_reclaim,
                crashes,
                blind,
                crash_always,
                (lost_reply, terminate_ignored, admin_drains),
            )| Trouble {
                boot_failure,
                capacity_error,
                spot_reclaim,
                crashes,
                crash_always,
                blind,
                lost_reply,
                terminate_ignored,
                admin_drains,
            },
        )
}

proptest! {
    // Failures are recorded in (and replayed from) the checked-in
    // tests/planner_props.proptest-regressions.
    #![proptest_config(ProptestConfig { cases: 120, max_shrink_iters: 200, .. ProptestConfig::default() })]

    /// Limits hold at every step, also across crashes and restarts; no
    /// running job is killed, by a termination or by a pilot reaching its
    /// hard stop (nodes are drained at their lifetime, busy or not, and
    /// jobs that state their run time go only where they can finish);
    /// an admin's drain is kept until the node is gone; every job that
    /// fits some flavour runs; lost launch replies make no second
    /// instance; terminates the cloud ignores are re-sent; and after the
    /// queue drains the pool converges to no instance at all.
    #[test]
    fn the_loop_is_bounded_safe_and_converges(
        w in workload(),
        t in trouble(),
        max_nodes in 1u32..8,
        max_cost in prop::sample::select(vec![0.35, 1.0, 100.0]),
        ramp in prop::sample::select(vec![0.3, 1.0]),
        max_lifetime in prop::sample::select(vec!["50m", "2h", "2d"]),
        seed in any::<u64>(),
    ) {
        let config = config_with(max_nodes, max_cost, ramp, 0.5, max_lifetime);
        let world = World::new(
            flavor_options(&config),
            CloudModel {
                boot_secs: (60, 300),
                boot_failure: t.boot_failure,
                capacity_error: t.capacity_error,
                spot_reclaim_per_hour: t.spot_reclaim,
                lost_reply: t.lost_reply,
                terminate_ignored: t.terminate_ignored,
            },
            seed,
            START,
        );
        world.set_pilot(&config);
        // Short lives need jobs that say how long they run, or the
        // negotiator could start one a node cannot finish.
        let matchable = submit(&world, &w, max_lifetime != "2d");
        let mut admin_drained: Vec<String> = Vec::new();
        let mut registry = Registry::in_memory().unwrap();
        let mut token_seq = 0u64;
        let until = START + 10 * 86400;
        let mut cycle = 0u32;
        while world.now() < until {
            let now = world.now();
            world.set_faults(match t.blind.get(&cycle) {
                Some(&(queue, pool, inventory)) => Faults { queue, pool, inventory, ..Faults::default() },
                None => Faults::default(),
            });
            // A fresh agent every cycle after a crash is what a restart
            // is: only the registry survives.
            let mut agent = Agent::new(&config, &mut registry, Box::new(|id: &str| {
                token_seq += 1;
                format!("{id}-{token_seq}")
            }));
            agent.fail.remaining = if t.crash_always {
                Some(1 + (cloudburst::sim::Rng::new(seed ^ u64::from(cycle)).next_u64() % 6) as u32)
            } else {
                t.crashes.get(&cycle).copied()
            };
            let result = agent.cycle(
                &mut cloudburst::sim::SimCondor(world.clone()),
                &mut cloudburst::sim::SimCloud(world.clone()),
                &cloudburst::cycle::NoPilot,
                now,
            );
            match result {
                Ok(_) | Err(CycleError::Interrupted) => {}
                Err(e) => panic!("cycle {cycle}: {e}"),
            }
            drop(agent);
            if let Some(&k) = t.admin_drains.get(&cycle) {
                let live = registry.live_nodes().unwrap();
                if !live.is_empty() {
                    let n = &live[k % live.len()];
                    if registry.request_admin_drain(&n.id, now).unwrap() {
                        admin_drained.push(n.id.clone());
                    }
                }
            }
            for id in &admin_drained {
                let n = registry.node(id).unwrap().unwrap();
                prop_assert!(n.admin_drain.is_some(), "cycle {cycle}: {id}'s admin drain was lost ({})", n.state);
            }
            let live = registry.nodes().unwrap().into_iter().filter(|n| n.state.is_live()).count();
            prop_assert!(world.alive() <= max_nodes as usize, "cycle {cycle}: {} instances, limit {max_nodes}", world.alive());
            prop_assert!(live <= max_nodes as usize, "cycle {cycle}: {live} live nodes");
            let score = world.score();
            prop_assert!(score.max_cost_per_hour <= max_cost + 1e-9, "cost {} > {max_cost}", score.max_cost_per_hour);
            prop_assert_eq!(score.jobs_killed_by_terminate, 0);
            prop_assert_eq!(score.jobs_killed_by_hard_stop, 0, "cycle {}: a pilot reached its hard stop with work", cycle);
            cycle += 1;
            let done = world.score().completed as u64 >= matchable;
            let all_gone = registry.nodes().unwrap().iter().all(|n| n.state == State::Gone);
            if done && world.alive() == 0 && all_gone && now > START + 7200 {
                break;
            }
            world.advance(now + 60);
        }
        let score = world.score();
        prop_assert!(score.completed >= matchable, "completed {} of {matchable}", score.completed);
        prop_assert_eq!(world.alive(), 0, "instances left after the queue drained");
        let nodes = registry.nodes().unwrap();
        prop_assert!(nodes.iter().all(|n| n.state == State::Gone), "{:?}", nodes.iter().map(|n| (&n.id, n.state)).collect::<Vec<_>>());
        // Every launch was journaled before the call.
        let intents = registry.intents().unwrap();
        prop_assert!(intents.iter().filter(|i| i.kind == "launch").count() as u64 >= score.launches);
    }

    /// Jobs that no flavour can run never cause a launch.
    #[test]
    fn unmatchable_jobs_never_launch(n in 1u32..50, mem in 40_000u32..1_000_000, seed in any::<u64>()) {
        let config = config(8, 100.0, 1.0, 0.5);
        let world = World::new(flavor_options(&config), CloudModel::default(), seed, START);
        let mut r = JobReader::new();
        for p in 0..n {
            world.submit(START, job(&mut r, 7, p as i64, 1, mem, true), 600);
        }
        let mut registry = Registry::in_memory().unwrap();
        let mut agent = Agent::new(&config, &mut registry, Box::new(|id: &str| id.to_string()));
        cloudburst::sim::run(&world, &mut agent, 60, START + 3600, false, |_, report| {
            // The jobs arrive after the first cycle.
            assert!(report.unmatched.len() <= 1);
            true
        }).unwrap();
        prop_assert_eq!(world.score().launches, 0);
    }
}

fn node(i: usize, state: State, flavor: &str, last_busy: Option<i64>) -> Node {
    Node {
        id: format!("prop-{i:06}"),
        site: "aws".into(),
        flavor: flavor.into(),
        group: None,
        token: format!("t{i}"),
        instance_id: Some(format!("i-{i}")),
        state,
        since: START,
        created_at: START,
        last_busy,
        startd: Some(format!("prop-{i:06}@i-{i}")),
        drain_cause: (state == State::Draining).then_some(DrainCause::Idle),
        admin_drain: None,
        terminate_attempts: 0,
        terminate_last: None,
        price_per_hour: 0.1,
        spot: false,
        ended_at: None,
    }
}

fn states() -> impl Strategy<Value = Vec<(State, bool, i64)>> {
    prop::collection::vec(
        (
            prop::sample::select(cloudburst::lifecycle::ALL.to_vec()),
            any::<bool>(),
            0i64..20_000,
        ),
        0..30,
    )
}

/// The pool as it would show these nodes: joined ones with their claims.
fn pool_of(nodes: &[Node], busy: &[bool]) -> Pool {
    let mut pool = Pool::default();
    for (n, &b) in nodes.iter().zip(busy) {
        if !n.state.is_joined() && n.state != State::Draining {
            continue;
        }
        let text = format!(
            r#"[Name = "slot1@{}"; SlotType = "Partitionable"; State = "Unclaimed"; Activity = "Idle";
                Cpus = {}; TotalSlotCpus = 2; Memory = 8192; TotalSlotMemory = 8192; Disk = 52428800;
                NumDynamicSlots = {}; CloudburstNodeId = "{}"; CloudInstanceID = "{}"]"#,
            n.startd.as_deref().unwrap(),
            if b { 0 } else { 2 },
            b as i32,
            n.id,
            n.instance_id.as_deref().unwrap()
        );
        let ad = cloudburst::classad::parse_ad(text.as_bytes()).unwrap();
        for (k, v) in cloudburst::condor::pool::assemble(&[ad]).unwrap().startds {
            pool.startds.insert(k, v);
        }
    }
    pool
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// With the queue, the pool or the cloud unreadable, the only actions
    /// are terminations of nodes already waiting for one.
    #[test]
    fn blind_cycles_only_finish_what_was_decided(
        s in states(),
        which in 0usize..3,
        jobs in 0i64..40,
    ) {
        let config = config(10, 100.0, 1.0, 0.5);
        let options = flavor_options(&config);
        let nodes: Vec<Node> = s.iter().enumerate().map(|(i, (st, _, busy_ago))| node(i, *st, "small", Some(START + 30_000 - busy_ago))).collect();
        let busy: Vec<bool> = s.iter().map(|x| x.1).collect();
        let pool = pool_of(&nodes, &busy);
        let mut r = JobReader::new();
        let js: Vec<Job> = (0..jobs).map(|p| job(&mut r, 1, p, 1, 1024, true)).collect();
        let demand = compute(&js, &options, &config.groups, START);
        let backoff = BTreeMap::new();
        let startds = StartdIndex::new(&pool);
        let out = plan(&Inputs {
            now: START + 30_000,
            config: &config,
            options: &options,
            demand: (which != 0).then_some(&demand),
            startds: (which != 1).then_some(&startds),
            cloud_known: which != 2,
            nodes: &nodes,
            month_spend: 0.0,
            backoff: &backoff,
            foreign: &Default::default(),
            paused: &Default::default(),
            mesos: None,
        });
        for a in &out.actions {
            match a {
                Action::Terminate { node, .. } => {
                    let n = nodes.iter().find(|n| &n.id == node).unwrap();
                    prop_assert!(n.state.awaits_termination() || n.state == State::Terminating, "{a}");
                }
                other => prop_assert!(false, "blind cycle planned {other}"),
            }
        }
    }

    /// The same inputs give the same plan, whatever order the registry
    /// returns nodes in; and no node claimed in the observation is drained.
    #[test]
    fn plans_are_deterministic_and_never_drain_claimed_nodes(
        s in states(),
        jobs in 0i64..60,
        cpus in prop::sample::select(vec![1u32, 2, 4]),
        rotate in 0usize..30,
    ) {
        let config = config(12, 100.0, 0.5, 0.5);
        let options = flavor_options(&config);
        let nodes: Vec<Node> = s.iter().enumerate().map(|(i, (st, _, busy_ago))| node(i, *st, "small", Some(START + 30_000 - busy_ago))).collect();
        let busy: Vec<bool> = s.iter().map(|x| x.1).collect();
        let pool = pool_of(&nodes, &busy);
        let mut r = JobReader::new();
        let js: Vec<Job> = (0..jobs).map(|p| job(&mut r, 1, p, cpus, 1024, true)).collect();
        let demand = compute(&js, &options, &config.groups, START);
        let backoff = BTreeMap::new();
        let startds = StartdIndex::new(&pool);
        let inputs = |nodes: &[Node]| {
            plan(&Inputs {
                now: START + 30_000,
                config: &config,
                options: &options,
                demand: Some(&demand),
                startds: Some(&startds),
                cloud_known: true,
                nodes,
                month_spend: 0.0,
                backoff: &backoff,
                foreign: &Default::default(),
                paused: &Default::default(),
                mesos: None,
            })
        };
        let first = inputs(&nodes);
        prop_assert_eq!(&first, &inputs(&nodes));
        let mut rotated = nodes.clone();
        if !rotated.is_empty() {
            let k = rotate % rotated.len();
            rotated.rotate_left(k);
        }
        prop_assert_eq!(&first, &inputs(&rotated));
        for a in &first.actions {
            if let Action::Drain { node, .. } = a {
                let i = nodes.iter().position(|n| &n.id == node).unwrap();
                prop_assert!(!busy[i], "drained {node}, claimed in this observation");
            }
        }
        let live = nodes.iter().filter(|n| n.state.is_live()).count();
        let launches = first.actions.iter().filter(|a| matches!(a, Action::Launch { .. })).count();
        prop_assert!(live + launches <= 12 || launches == 0);
    }
}
