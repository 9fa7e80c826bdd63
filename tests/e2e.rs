//! End to end: the release binary through whole burst cycles against a
//! real EC2 API (moto, behind the fault proxy), the condor stand-in and
//! the pilot world (`tests/standin/pool_world.py`), where pilots join only
//! if the user-data the agent sent makes a working startd. Waits are on
//! conditions (the world's report, the agent's log) with deadlines.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::agentproc::{cli, http_get, node_states, Agent};
use support::mesos::MesosStandIn;
use support::world::{completed, Job, World};

const LONG: Duration = Duration::from_secs(120);

fn metrics_addr(agent: &mut Agent) -> String {
    let l = agent.wait_for("serving /metrics");
    l.split("addr=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

fn status(cfg: &std::path::Path) -> String {
    let out = cli(&["status"], cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn types(r: &Value) -> Vec<String> {
    let mut t: Vec<String> = r["types"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    t.sort();
    t
}

#[test]
fn a_whole_burst_cycle_from_idle_jobs_to_zero_instances() {
    let Some(world) = World::start("cycle") else {
        return;
    };
    let cfg = world.agent_config("");
    let small = world.submit(&[
        Job::cloud(1, 1024, 3.0),
        Job::cloud(1, 1024, 3.0),
        Job::cloud(1, 1024, 3.0),
    ]);
    let big = world.submit(&[Job::cloud(6, 24000, 3.0)]);
    // No marker: a local job. A cloud job no flavour can hold (1 TiB).
    let local = world.submit(&[Job {
        cloud: false,
        ..Job::cloud(1, 1024, 1.0)
    }]);
    let huge = world.submit(&[Job::cloud(1, 1 << 20, 1.0)]);

    let mut agent = Agent::start(&cfg);
    let addr = metrics_addr(&mut agent);
    let r = world.wait_until("a pilot to join", LONG, |r| {
        r["joined"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert!(r["refused"].as_object().unwrap().is_empty(), "{r:#}");
    let mut want: Vec<String> = small.iter().chain(&big).cloned().collect();
    want.sort();
    let r = world.wait_until("every fitting job to complete", LONG, |r| {
        let mut c = completed(r);
        c.sort();
        c == want
    });
    // Along the way: the agent launched for both shapes and reports it.
    let t = types(&r);
    assert!(
        t.iter().any(|t| t == "m5.2xlarge"),
        "the 6-core job needs the large flavour: {t:?}"
    );
    assert!(t.len() <= 4, "{t:?}");
    let m = http_get(&addr, "/metrics").1;
    assert!(
        metric(
            &m,
            "cloudburst_launches_total{site=\"aws\",flavor=\"m5.2xlarge\"}"
        ) >= 1.0,
        "{m}"
    );
    assert!(metric(&m, "cloudburst_cycles_total") >= 2.0, "{m}");
    assert_eq!(
        metric(&m, "cloudburst_idle_cloud_jobs"),
        1.0,
        "only the 1 TiB job waits:\n{m}"
    );
    assert_eq!(metric(&m, "cloudburst_unmatched_jobs"), 1.0, "{m}");

    // The queue drained: idle timeout → drain → terminate → zero.
    let r = world.wait_until("every instance to be terminated", LONG, |r| {
        r["live"] == 0 && r["running"] == 0
    });
    let seen = r["seen"].as_u64().unwrap();
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    assert!(r["max_live"].as_u64().unwrap() <= 4, "{r:#}");
    // The unmatched and the local job cause nothing, cycle after cycle.
    agent.catch_up();
    for _ in 0..3 {
        agent.wait_for("cycle done");
    }
    let r = world.report();
    assert_eq!(
        r["seen"].as_u64().unwrap(),
        seen,
        "a launch after the queue drained: {r:#}"
    );
    agent.catch_up();
    assert!(agent.seen.len() > 20, "{}", agent.tail(20));
    agent.assert_no_secrets();
    let left: Vec<String> = world
        .queue()
        .iter()
        .map(|j| j["GlobalJobId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [local[0].clone(), huge[0].clone()]);
    let text = status(&cfg);
    assert!(text.contains("DEMAND: 1 idle cloud jobs"), "{text}");
    eprintln!("e2e: status at the end:\n{text}");
    let m = http_get(&addr, "/metrics").1;
    assert!(
        !m.lines()
            .any(|l| l.starts_with("cloudburst_nodes{") && !l.ends_with(" 0")),
        "{m}"
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// An admin drains a busy node (`cloudburst drain`): its job retires and
/// completes (the pilot's retirement, as the stand-in now grants it from
/// the rendered config), a job submitted meanwhile runs on a new node, and
/// the drained node is terminated. The request outlives the cycles that
/// see the node busy (issue 18).
#[test]
fn an_admins_drain_of_a_busy_node_lets_its_job_finish_then_ends_it() {
    let Some(world) = World::start("admindrain") else {
        return;
    };
    let cfg = world.agent_config("");
    let long = world.submit(&[Job::cloud(1, 1024, 20.0)]);
    let mut agent = Agent::start(&cfg);
    world.wait_until("the job to run", LONG, |r| r["running"] == 1);
    // The agent sees it busy at its next look.
    let busy = agent.wait_for_nodes_in(&cfg, "busy", LONG);
    assert_eq!(busy.len(), 1, "{busy:?}");
    let id = busy[0].clone();
    let out = cli(&["drain", &id], &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.wait_for("cycle done");
    agent.wait_for("cycle done");
    let second = world.submit(&[Job::cloud(1, 1024, 2.0)]);
    let mut want: Vec<String> = long.iter().chain(&second).cloned().collect();
    want.sort();
    let r = world.wait_until(
        "both jobs to complete and every instance to end",
        LONG,
        |r| {
            let mut c = completed(r);
            c.sort();
            c == want && r["live"] == 0
        },
    );
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    assert!(
        r["seen"].as_u64().unwrap() >= 2,
        "the second job needed a node of its own: {r:#}"
    );
    let registry = world.dir().join("state/registry.db");
    let mut reg = cloudburst::registry::Registry::open(&registry).unwrap();
    // The agent learns the instance is gone at its next looks.
    let started = std::time::Instant::now();
    let mut n = reg.node(&id).unwrap().unwrap();
    while n.state != cloudburst::lifecycle::State::Gone {
        assert!(started.elapsed() < LONG, "{id} stays {}", n.state);
        agent.wait_for("cycle done");
        n = reg.node(&id).unwrap().unwrap();
    }
    assert!(n.admin_drain.is_some());
    let path: Vec<String> = reg
        .events(Some(&id))
        .unwrap()
        .into_iter()
        .map(|e| e.to)
        .collect();
    assert!(
        path.windows(2)
            .any(|w| w[0] == "busy" && w[1] == "draining"),
        "drained while busy: {path:?}"
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// A small seeded generator (splitmix64): the campaign is reproducible
/// from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Intents begun and never finished: the agent died in the middle of
/// that cloud or condor call.
fn open_intents(registry: &std::path::Path) -> Vec<(i64, String)> {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(registry, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut q) = c.prepare("SELECT id, kind FROM intents WHERE finished_at IS NULL") else {
        return Vec::new();
    };
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `kill -9` at seeded random points spread over whole cycles (inside the
/// first cycle after a start, up to 1.2 s after the first or second
/// cycle's end, or 0-30 ms after a cloud or condor call was journaled),
/// with waves of jobs submitted along the way; then one
/// agent runs to the end. The full campaign:
///
///     CLOUDBURST_KILL9_POINTS=100 CLOUDBURST_KILL9_SEED=1 \
///       cargo test --release --test e2e kill9 -- --nocapture
///
/// (tests/run.sh runs 12 points).
#[test]
fn kill9_at_random_points_leaks_nothing_and_kills_no_job() {
    let points = env_or("CLOUDBURST_KILL9_POINTS", 12);
    let seed = env_or("CLOUDBURST_KILL9_SEED", 1);
    let Some(world) = World::start(&format!("kill9-{seed}")) else {
        return;
    };
    let cfg = world.agent_config("");
    let registry = world.dir().join("state/registry.db");
    let mut rng = Rng(seed);
    let mut submitted = Vec::new();
    let mut in_flight: std::collections::BTreeMap<String, u32> = Default::default();
    let mut interrupted = std::collections::BTreeSet::new();
    let (mut early, mut later, mut mid_call) = (0, 0, 0);
    for point in 0..points {
        if point % 6 == 0 {
            let jobs: Vec<Job> = (0..1 + rng.below(4))
                .map(|_| {
                    let secs = 1.0 + rng.below(40) as f64 / 10.0;
                    match rng.below(4) {
                        0 => Job::cloud(6, 20000, secs),
                        _ => Job::cloud(1 + rng.below(2) as u32, 1000 + 500 * rng.below(4), secs),
                    }
                })
                .collect();
            submitted.extend(world.submit(&jobs));
        }
        let mut agent = Agent::start(&cfg);
        match rng.below(3) {
            0 => {
                agent.wait_for("agent started");
                early += 1;
                std::thread::sleep(Duration::from_millis(rng.below(400)));
            }
            1 => {
                for _ in 0..1 + rng.below(2) {
                    agent.wait_for("cycle done");
                }
                later += 1;
                std::thread::sleep(Duration::from_millis(rng.below(1200)));
            }
            _ => {
                // The most dangerous window: a cloud or condor call
                // journaled and not yet answered (the registry is read
                // beside the running agent, as WAL allows).
                agent.wait_for("agent started");
                let delay = rng.below(30);
                let deadline = std::time::Instant::now() + Duration::from_secs(3);
                while std::time::Instant::now() < deadline
                    && open_intents(&registry)
                        .iter()
                        .all(|(id, _)| interrupted.contains(id))
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                mid_call += 1;
                std::thread::sleep(Duration::from_millis(delay));
            }
        }
        agent.kill9();
        for (id, kind) in open_intents(&registry) {
            if interrupted.insert(id) {
                *in_flight.entry(kind).or_default() += 1;
            }
        }
        let r = world.report();
        assert_eq!(
            r["killed"].as_array().map_or(0, |a| a.len()),
            0,
            "seed {seed} point {point}: {r:#}"
        );
        assert!(
            r["max_live"].as_u64().unwrap_or(0) <= 4,
            "seed {seed} point {point}: {r:#}"
        );
    }
    // One agent to the end: every job done, every instance gone.
    let mut agent = Agent::start(&cfg);
    let mut want = submitted.clone();
    want.sort();
    world.wait_until(
        "every job to complete after the campaign",
        Duration::from_secs(240),
        |r| {
            let mut c = completed(r);
            c.sort();
            c.dedup();
            c == want
        },
    );
    let r = world.wait_until(
        "zero instances after the campaign",
        Duration::from_secs(120),
        |r| r["live"] == 0,
    );
    agent.catch_up();
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
    let killed = r["killed"].as_array().unwrap().len();
    let max_live = r["max_live"].as_u64().unwrap();
    let refused = r["refused"].as_object().unwrap().len();
    eprintln!(
        "kill9 campaign: seed {seed}, {points} kill -9 points ({early} inside the first cycle, {later} after 1-2 cycles, \
         {mid_call} as a journaled call began); \
         killed with a call in flight: {in_flight:?}; instances launched {}, most live at once {max_live} (limit 4), \
         jobs completed {}/{}, jobs killed {killed}, instances left {} (leaked), pilots refused {refused}",
        r["seen"], completed(&r).len(), submitted.len(), r["live"]
    );
    assert_eq!(killed, 0);
    assert!(max_live <= 4);
    assert_eq!(refused, 0);
    assert_eq!(
        completed(&r).len(),
        submitted.len(),
        "a job ran twice or never"
    );
}

/// Runs jobs until some nodes are busy, then stops the agent (SIGTERM:
/// the nodes keep running); returns the config, the world's instance
/// count and the jobs.
fn busy_then_stopped(world: &World) -> (std::path::PathBuf, u64, Vec<String>) {
    let cfg = world.agent_config("");
    let jobs = world.submit(&[
        Job::cloud(2, 2000, 6.0),
        Job::cloud(2, 2000, 6.0),
        Job::cloud(6, 20000, 6.0),
    ]);
    let mut agent = Agent::start(&cfg);
    world.wait_until("jobs running on cloud nodes", LONG, |r| {
        r["running"].as_u64() >= Some(2)
    });
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
    assert!(agent.child.wait().unwrap().success());
    agent.catch_up();
    // The world reads the cloud a tick at a time: wait until it has seen
    // every instance the agent launched before it stopped, or a launch in
    // its last cycle would look like a second launch after the rebuild.
    let launched = agent
        .seen
        .iter()
        .filter(|l| l.contains("msg=\"action\"") && l.contains("action=\"launch"))
        .count() as u64;
    let r = world.wait_until("the world to see every launch", LONG, |r| {
        r["seen"].as_u64() >= Some(launched)
    });
    let seen = r["seen"].as_u64().unwrap();
    assert_eq!(seen, launched, "{r:#}\n{}", agent.tail(60));
    (cfg, seen, jobs)
}

fn agent_exit(cfg: &std::path::Path) -> (Option<i32>, String) {
    let out = cli(&["agent"], cfg);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// After the refusal, `--rebuild-registry` adopts the running nodes: every
/// job completes on them, none is killed, nothing is launched twice, and
/// they retire to zero.
fn rebuild_converges(world: &World, cfg: &std::path::Path, seen: u64, jobs: &[String]) {
    let mut agent = Agent::start_with(cfg, &["--rebuild-registry"]);
    agent.wait_for("adopting instances from their tags");
    let mut want = jobs.to_vec();
    want.sort();
    world.wait_until("the jobs to complete on the adopted nodes", LONG, |r| {
        let mut c = completed(r);
        c.sort();
        c == want
    });
    let r = world.wait_until("zero instances", LONG, |r| r["live"] == 0);
    agent.catch_up();
    let said: Vec<&String> = agent
        .seen
        .iter()
        .filter(|l| ["action", "note", "adopt"].iter().any(|w| l.contains(w)))
        .collect();
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}\n{said:#?}");
    assert_eq!(
        r["seen"].as_u64().unwrap(),
        seen,
        "a node was launched again: {r:#}\nthe rebuilt agent said: {said:#?}"
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

#[test]
fn a_deleted_registry_is_refused_then_rebuilt_from_the_tags() {
    let Some(world) = World::start("deleted") else {
        return;
    };
    let (cfg, seen, jobs) = busy_then_stopped(&world);
    let state = world.dir().join("state");
    for f in ["registry.db", "registry.db-wal", "registry.db-shm"] {
        let _ = std::fs::remove_file(state.join(f));
    }
    let (code, err) = agent_exit(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("has no record of") && err.contains("--rebuild-registry"),
        "{err}"
    );
    assert!(
        err.contains(&format!("tagged for pool \"{}\"", world.pool)),
        "{err}"
    );
    // The refusal touched nothing, and refuses again on the next try.
    let r = world.report();
    assert_eq!(r["seen"].as_u64().unwrap(), seen);
    assert!(r["live"].as_u64().unwrap() >= 2, "{r:#}");
    assert_eq!(agent_exit(&cfg).0, Some(1));
    rebuild_converges(&world, &cfg, seen, &jobs);
}

#[test]
fn a_corrupted_registry_is_refused_then_moved_aside_and_rebuilt() {
    let Some(world) = World::start("corrupt") else {
        return;
    };
    let (cfg, seen, jobs) = busy_then_stopped(&world);
    let state = world.dir().join("state");
    let db = state.join("registry.db");
    // The first half of the file overwritten with noise, as a failing
    // disk or a bad restore might leave it.
    let mut bytes = std::fs::read(&db).unwrap();
    let half = bytes.len() / 2;
    for (i, b) in bytes[..half].iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let (code, err) = agent_exit(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is damaged") && err.contains("--rebuild-registry"),
        "{err}"
    );
    assert_eq!(world.report()["seen"].as_u64().unwrap(), seen);
    rebuild_converges(&world, &cfg, seen, &jobs);
    let aside = std::fs::read_dir(&state)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("registry.db.damaged-")
        })
        .count();
    assert!(aside > 0, "the damaged file was kept for the admin");
}

/// Runs `jobs` to completion and every node to zero, with a deadline.
fn to_completion(world: &World, jobs: &[String], deadline: Duration) -> Value {
    let mut want = jobs.to_vec();
    want.sort();
    world.wait_until("every job to complete", deadline, |r| {
        let mut c = completed(r);
        c.sort();
        c == want
    });
    world.wait_until("zero instances", deadline, |r| {
        r["live"] == 0 && r["running"] == 0
    })
}

#[test]
fn cloud_chaos_twenty_percent_of_calls_failing_still_converges_within_limits() {
    use support::faultproxy::Fault;
    let Some(world) = World::start("chaos") else {
        return;
    };
    let seed = env_or("CLOUDBURST_CHAOS_SEED", 7);
    let f = |name: &str, fault: Fault| (name.to_string(), fault);
    world.proxy.as_ref().unwrap().chaos(
        seed,
        20,
        vec![
            f("throttled", Fault::ec2(503, "RequestLimitExceeded")),
            f(
                "RunInstances:capacity",
                Fault::ec2(500, "InsufficientInstanceCapacity"),
            ),
            f("internal error", Fault::ec2(500, "InternalError")),
            f("unavailable", Fault::ec2(503, "Unavailable")),
            f("connection dropped", Fault::Drop),
            f("reply lost", Fault::LoseReply),
            f(
                "timeout (2 s, then dropped)",
                Fault::Hang(Duration::from_secs(2)),
            ),
            f("slow (0.8 s)", Fault::Slow(Duration::from_millis(800))),
        ],
    );
    let cfg = world.agent_config("");
    let mut jobs = world.submit(&[
        Job::cloud(1, 1000, 2.0),
        Job::cloud(2, 3000, 3.0),
        Job::cloud(6, 20000, 2.0),
        Job::cloud(1, 1000, 4.0),
        Job::cloud(2, 2000, 2.0),
    ]);
    let mut agent = Agent::start(&cfg);
    world.wait_until("a first wave to finish", LONG, |r| completed(r).len() >= 3);
    jobs.extend(world.submit(&[Job::cloud(2, 3000, 2.0), Job::cloud(6, 20000, 2.0)]));
    let r = to_completion(&world, &jobs, Duration::from_secs(240));
    let proxy = world.proxy.as_ref().unwrap();
    let calls = proxy.log().len();
    let injected = proxy.injected();
    let faults: u32 = injected.values().sum();
    eprintln!(
        "chaos: seed {seed}: {calls} EC2 calls, {faults} faults injected {injected:?}; \
         instances launched {}, most live at once {} (limit 4), jobs killed {}",
        r["seen"],
        r["max_live"],
        r["killed"].as_array().unwrap().len()
    );
    assert!(faults >= 5, "the chaos must bite: {injected:?}");
    assert!(r["max_live"].as_u64().unwrap() <= 4, "{r:#}");
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// The nodes' states, as `cloudburst nodes --json` lists them.
#[test]
fn blind_condor_cycles_drain_and_terminate_nothing_and_recovery_resumes() {
    let Some(world) = World::start("blind") else {
        return;
    };
    let cfg = world.agent_config("");
    let jobs = world.submit(&[Job::cloud(2, 2000, 2.0), Job::cloud(2, 2000, 2.0)]);
    let mut agent = Agent::start(&cfg);
    world.wait_until("the jobs to start", LONG, |r| {
        r["running"].as_u64() >= Some(1)
    });
    // A collector restart while the nodes work: the fresh collector knows
    // no startd for a while; nothing is lost, drained or terminated.
    agent.actions_over_cycles(2);
    let before = node_states(&cfg);
    assert!(before.iter().any(|(_, s)| s == "busy"), "{before:?}");
    world
        .standin
        .edit_locked(|v| v["collector"]["fresh"] = true.into());
    let acted = agent.actions_over_cycles(3);
    assert!(
        acted.is_empty(),
        "acted on a restarted collector: {acted:?}"
    );
    assert_eq!(
        node_states(&cfg),
        before,
        "a collector restart changed the nodes"
    );
    world
        .standin
        .edit_locked(|v| v["collector"]["fresh"] = false.into());
    world.wait_until("the jobs to finish", LONG, |r| {
        completed(r).len() == jobs.len()
    });
    let live = world.report()["live"].as_u64().unwrap();
    assert!(live >= 1);
    // Now the nodes are idle and past idle_timeout within a few cycles:
    // while either tool fails, hangs or prints garbage, they stay.
    for (tool, mode) in [
        ("condor_status", "fail"),
        ("condor_q", "garbage"),
        ("condor_status", "garbage"),
        ("condor_q", "hang"),
        ("condor_status", "truncate"),
        ("condor_q", "fail"),
    ] {
        world
            .standin
            .edit_locked(|v| v["faults"] = serde_json::json!({ tool: { "mode": mode } }));
        let acted = agent.actions_over_cycles(2);
        assert!(acted.is_empty(), "{tool} {mode}: acted blind: {acted:?}");
        let r = world.report();
        assert_eq!(r["live"].as_u64().unwrap(), live, "{tool} {mode}: {r:#}");
    }
    // The tools answer again: the idle nodes retire.
    world
        .standin
        .edit_locked(|v| v["faults"] = serde_json::json!({}));
    let r = world.wait_until("zero instances after recovery", LONG, |r| r["live"] == 0);
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

#[test]
fn a_config_file_change_is_rejected_when_invalid_and_applied_when_valid() {
    let Some(world) = World::start("reload") else {
        return;
    };
    let cfg = world.agent_config("");
    let good = std::fs::read_to_string(&cfg).unwrap();
    let mut agent = Agent::start(&cfg);
    agent.wait_for("cycle done");
    // Invalid: rejected, and the agent keeps cycling on the old config.
    std::fs::write(&cfg, good.replace("max_nodes = 4", "max_nodes = \"lots\"")).unwrap();
    let l = agent.wait_for("new config rejected");
    assert!(
        l.contains("cloudburst.toml:") && l.contains("max_nodes"),
        "{l}"
    );
    agent.wait_for("cycle done");
    // What only a restart may change is refused.
    std::fs::write(
        &cfg,
        good.replace(&format!("name = \"{}\"", world.pool), "name = \"other\""),
    )
    .unwrap();
    let l = agent.wait_for("new config rejected");
    assert!(l.contains("cannot change while the agent runs"), "{l}");
    // Valid: applied without a restart (one node at a time from now on).
    // Written as an editor might: emptied first, then filled; only the
    // settled file is read (an empty file would parse as the defaults).
    std::fs::write(&cfg, "").unwrap();
    std::fs::write(&cfg, good.replace("max_nodes = 4", "max_nodes = 1")).unwrap();
    let l = agent.wait_for("config ");
    assert!(l.contains("config reloaded"), "{l}");
    let pid = agent.child.id();
    let jobs = world.submit(&[
        Job::cloud(2, 3000, 1.0),
        Job::cloud(2, 3000, 1.0),
        Job::cloud(2, 3000, 1.0),
    ]);
    // Reading the file is not a change: no reload after this one (the
    // agent once re-read its config in a loop, woken by its own reads).
    agent.catch_up();
    let from = agent.seen.len();
    for _ in 0..3 {
        agent.wait_for("cycle done");
    }
    let again = agent.seen[from..]
        .iter()
        .filter(|l| l.contains("config reloaded"))
        .count();
    assert_eq!(again, 0, "{}", agent.tail(40));
    let r = to_completion(&world, &jobs, Duration::from_secs(180));
    assert_eq!(r["max_live"], 1, "the new limit holds: {r:#}");
    assert_eq!(agent.child.id(), pid);
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "still the same process"
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

/// The agent's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[test]
fn endless_output_and_hostile_machine_names_break_nothing() {
    let Some(world) = World::start("hostile") else {
        return;
    };
    let cfg = world.agent_config("");
    let jobs = world.submit(&[Job::cloud(2, 2000, 4.0), Job::cloud(2, 2000, 4.0)]);
    let mut agent = Agent::start(&cfg);
    world.wait_until("the jobs to start", LONG, |r| {
        r["running"].as_u64() >= Some(1)
    });
    let before = peak_rss_mib(agent.child.id());
    // condor_status floods well-formed ads until the deadline kills it:
    // an unknown cycle, memory stays bounded.
    world.standin.edit_locked(|v| {
        v["faults"] = serde_json::json!({"condor_status": {"mode": "flood", "count": 1}})
    });
    let acted = agent.actions_over_cycles(2);
    assert!(acted.is_empty(), "acted on a flood: {acted:?}");
    let after = peak_rss_mib(agent.child.id());
    eprintln!("hostile: agent peak RSS {before} MiB before the flood, {after} MiB after");
    assert!(after < 512, "peak RSS {after} MiB after the flood");
    let r = world.wait_until("the jobs to finish", LONG, |r| {
        completed(r).len() == jobs.len()
    });
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    // Pilots advertise hostile names (a compromised node can say
    // anything): no command ever carries them; the agent keeps running.
    let hostile = "-pool evil.example;$(touch /tmp/cloudburst-pwned)";
    let originals = world.standin.edit_locked(|v| {
        let mut names = Vec::new();
        for (_, s) in v["startds"].as_object_mut().unwrap() {
            for slot in s["slots"].as_array_mut().unwrap() {
                names.push((slot["Name"].clone(), slot["Machine"].clone()));
                slot["Name"] = format!("slot1@{hostile}").into();
                slot["Machine"] = hostile.into();
            }
        }
        names
    });
    assert!(!originals.is_empty());
    let acted = agent.actions_over_cycles(6);
    let log = world.standin.log();
    assert!(
        !log.iter().flatten().any(|a| a.contains("evil")),
        "a hostile name reached a command: {log:?}"
    );
    assert!(agent.child.try_wait().unwrap().is_none(), "the agent died");
    assert!(
        acted.iter().any(|l| l.contains("refusing to use slot")),
        "the refusal is logged: {acted:?}"
    );
    assert!(!std::path::Path::new("/tmp/cloudburst-pwned").exists());
    // Honest names again: the nodes retire.
    world.standin.edit_locked(|v| {
        let mut it = originals.into_iter();
        for (_, s) in v["startds"].as_object_mut().unwrap() {
            for slot in s["slots"].as_array_mut().unwrap() {
                let (n, m) = it.next().unwrap();
                slot["Name"] = n;
                slot["Machine"] = m;
            }
        }
    });
    let r = world.wait_until("zero instances", LONG, |r| r["live"] == 0);
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}

#[test]
fn absurd_config_values_are_refused_naming_file_line_and_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (setting, want) in [
        (
            "[timers]\ncycle = \"0s\"",
            "3:1: timers.cycle must be more than 0",
        ),
        (
            "[timers]\nidle_timeout = \"9999999999999999d\"",
            "3:16: timers.idle_timeout: \"9999999999999999d\" is too long",
        ),
        (
            "[limits]\nramp = 7.0",
            "3:1: limits.ramp = 7: must be more than 0",
        ),
        (
            "[limits]\nmax_nodes = -1",
            "3:13: limits.max_nodes: invalid value: integer `-1`",
        ),
        (
            "[limits]\nmax_cost_per_hour = nan",
            "3:1: limits.max_cost_per_hour = NaN: must be a non-negative amount",
        ),
        (
            "[condor]\ntimeout = \"0s\"",
            "3:1: condor.timeout must be more than 0",
        ),
    ] {
        let path = dir.path().join("absurd.toml");
        // Line 1 names the pool; the setting's table and value follow.
        std::fs::write(&path, format!("# absurd\n{setting}\n")).unwrap();
        let out = cli(&["check-config"], &path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{setting}: {err}");
        assert!(
            err.contains(&format!("absurd.toml:{want}")),
            "{setting}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The world's agent config with a 1-cpu, 1 GB Mesos share on every
/// pilot and the stand-in as master and Marathon.
fn mesos_config(world: &World, mesos: &MesosStandIn, required: bool) -> std::path::PathBuf {
    world.agent_config(&format!(
        r#"[pilot.mesos]
master = "zk://zk.example.edu:2181/mesos"
cpus = 1
memory_mb = 1024
[mesos]
master = "{url}"
marathon = "{url}"
required = {required}
timeout = "2s"
"#,
        url = mesos.url()
    ))
}

/// Airavata's Mesos side on the same pilots: Marathon tasks waiting are
/// demand, the pilot's Mesos agent registers from its user-data, and a
/// node running Mesos tasks outlives condor's idle timeout until they end.
#[test]
fn mesos_tasks_buy_a_shared_node_and_keep_it_until_they_end() {
    let Some((world, mesos)) = World::start_with_mesos("mesos") else {
        return;
    };
    let cfg = mesos_config(&world, &mesos, true);
    // Two tasks of half a cpu fill one pilot's Mesos share; the condor job
    // fits in the rest of the same c5.large. They run past idle_timeout (3 s).
    mesos.run_apps(serde_json::json!([
        {"id": "/airavata/ensemble", "instances": 2, "cpus": 0.5, "mem": 256, "seconds": 12}
    ]));
    let job = world.submit(&[Job::cloud(1, 1024, 2.0)]);
    let mut agent = Agent::start(&cfg);
    let addr = metrics_addr(&mut agent);
    let r = world.wait_until("both Mesos tasks to run", LONG, |r| r["mesos_running"] == 2);
    assert_eq!(r["mesos_agents"], 1, "{r:#}");
    world.wait_until("the condor job to complete", LONG, |r| completed(r) == job);

    // The condor side is idle now; two cycles later the node is still
    // there, reported busy with Mesos work.
    agent.catch_up();
    agent.wait_for("cycle done");
    agent.wait_for("cycle done");
    let st = status(&cfg);
    assert!(
        st.contains("MESOS: 1 agents on our nodes, 1 busy with 2 tasks"),
        "{st}"
    );
    let m = http_get(&addr, "/metrics").1;
    assert_eq!(metric(&m, "cloudburst_mesos_tasks"), 2.0, "{m}");
    assert_eq!(
        metric(&m, "cloudburst_mesos_up{part=\"master\"}"),
        1.0,
        "{m}"
    );

    // The tasks end; only then is the node retired.
    let r = world.wait_until("the Mesos tasks to finish", LONG, |r| {
        r["mesos_completed"] == 2
    });
    assert_eq!(r["live"], 1, "the node outlived idle_timeout: {r:#}");
    let r = world.wait_until("the node to be retired", LONG, |r| r["live"] == 0);
    assert_eq!(r["mesos_killed"].as_array().unwrap().len(), 0, "{r:#}");
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    assert_eq!(
        types(&r),
        ["c5.large"],
        "one node served condor and Mesos: {r:#}"
    );
    // Its agent stopped taking offers before the instance was terminated.
    agent.catch_up();
    let log = agent.tail(usize::MAX);
    let at = |what: &str| {
        log.lines()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in\n{log}"))
    };
    let deactivated = at("deactivate Mesos agent E2E-S0");
    assert!(log
        .lines()
        .nth(deactivated)
        .unwrap()
        .contains("outcome=\"deactivated\""));
    assert!(deactivated < at("action=\"terminate"), "{log}");
}

/// A Mesos master that cannot be read while a node is idle past
/// idle_timeout: nothing is drained (any node may be running Mesos work),
/// `status` and `/metrics` say so, and the node retires once it answers.
#[test]
fn an_unreadable_mesos_master_retires_nothing_until_it_answers() {
    let Some((world, mesos)) = World::start_with_mesos("mesos-blind") else {
        return;
    };
    let cfg = mesos_config(&world, &mesos, false);
    mesos.control_world(serde_json::json!({"apps": [], "master_fault": "500"}));
    let job = world.submit(&[Job::cloud(1, 1024, 1.0)]);
    let mut agent = Agent::start(&cfg);
    let addr = metrics_addr(&mut agent);
    // Condor's demand is known: the node is bought and the job runs.
    world.wait_until("the condor job to complete", LONG, |r| completed(r) == job);
    agent.catch_up();
    // Past idle_timeout (3 s) by several cycles: still there.
    for _ in 0..6 {
        agent.wait_for("cycle done");
    }
    let r = world.report();
    assert_eq!(r["live"], 1, "{r:#}");
    let st = status(&cfg);
    assert!(st.contains("MESOS: master UNREADABLE"), "{st}");
    assert!(st.contains("HTTP 500"), "{st}");
    let m = http_get(&addr, "/metrics").1;
    assert_eq!(
        metric(&m, "cloudburst_mesos_up{part=\"master\"}"),
        0.0,
        "{m}"
    );
    assert!(
        !agent.tail(200).contains("action=\"drain"),
        "{}",
        agent.tail(200)
    );

    // The master answers again: the idle node retires.
    mesos.control_world(serde_json::json!({"apps": []}));
    let r = world.wait_until("the node to be retired", LONG, |r| r["live"] == 0);
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
}

/// The job log as a source of demand, against the stand-in: with a cycle
/// of ten minutes, a cloud job written to `job_queue.log` (the real
/// schedd's submit transaction of a cloud job, as a new cluster) is
/// launched for at once by the launch-only cycle (`from="job log"`):
/// `condor_q` ran for the first cycle only, and the launch is the only
/// action. A burst of three submits is read once and launches for all
/// three, without asking the schedd.
#[test]
fn a_cloud_job_in_the_job_log_is_launched_for_without_condor_q() {
    let Some(world) = World::start("joblog") else {
        return;
    };
    let template =
        cloudburst::cli::bench_reaction::Template::read(&support::data_dir(), "e2e@submit")
            .unwrap();
    let log = world.dir().join("job_queue.log");
    std::fs::write(&log, template.log_header()).unwrap();
    let cfg = world.agent_config("");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[condor]\n",
        &format!("job_log = {:?}\n[condor]\n", log.display().to_string()),
    );
    let text = text.replace("cycle = \"1s\"", "cycle = \"10m\"");
    std::fs::write(&cfg, text).unwrap();

    let mut agent = Agent::start(&cfg);
    agent.wait_for("cycle done");
    let queries = |w: &World| {
        w.standin
            .log()
            .iter()
            .filter(|c| c.first().map(String::as_str) == Some("condor_q"))
            .count()
    };
    let before = queries(&world);
    assert!(before > 0, "the first cycle read the queue");
    let append = |cluster: i64| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(
            template
                .transaction_for(cluster, cloudburst::agent::now())
                .as_bytes(),
        )
        .unwrap();
    };
    append(300);
    let line = agent.wait_for("kind=\"launch\"");
    assert!(line.contains("from=\"job log\""), "{line}");
    agent.wait_for("launched for the job log");
    // A burst: three jobs in quick succession, one read.
    for cluster in 301..304 {
        append(cluster);
    }
    for _ in 0..3 {
        let line = agent.wait_for("kind=\"launch\"");
        assert!(line.contains("from=\"job log\""), "{line}");
    }
    let done = agent.wait_for("launched for the job log");
    assert!(done.contains("actions=3"), "{done}");
    assert_eq!(queries(&world), before, "no condor_q between cycles");
    let others: Vec<&String> = agent
        .seen
        .iter()
        .filter(|l| l.contains("msg=\"action\"") && !l.contains("kind=\"launch\""))
        .collect();
    assert!(others.is_empty(), "only launches: {others:?}");
}
