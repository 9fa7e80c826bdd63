//! End to end: the release binary through whole burst cycles against a
//! real EC2 API (moto, behind the fault proxy), the condor stand-in and
//! the pilot world (`tests/standin/pool_world.py`), where pilots join only
//! if the user-data the agent sent makes a working startd. Waits are on
//! conditions (the world's report, the agent's log) with deadlines.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::agentproc::Agent;
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

/// GET over loopback: the body.
fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn status(cfg: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["status", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
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
    let m = get(&addr, "/metrics");
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
    let left: Vec<String> = world
        .queue()
        .iter()
        .map(|j| j["GlobalJobId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, [local[0].clone(), huge[0].clone()]);
    let text = status(&cfg);
    assert!(text.contains("DEMAND: 1 idle cloud jobs"), "{text}");
    eprintln!("e2e: status at the end:\n{text}");
    let m = get(&addr, "/metrics");
    assert!(
        !m.lines()
            .any(|l| l.starts_with("cloudburst_nodes{") && !l.ends_with(" 0")),
        "{m}"
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
/// first cycle after a start, or up to 1.2 s after the first or second
/// cycle's end), with waves of jobs submitted along the way; then one
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
    let (mut early, mut later) = (0, 0);
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
        if rng.below(2) == 0 {
            agent.wait_for("agent started");
            early += 1;
            std::thread::sleep(Duration::from_millis(rng.below(400)));
        } else {
            for _ in 0..1 + rng.below(2) {
                agent.wait_for("cycle done");
            }
            later += 1;
            std::thread::sleep(Duration::from_millis(rng.below(1200)));
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
        "kill9 campaign: seed {seed}, {points} kill -9 points ({early} inside the first cycle, {later} after 1-2 cycles); \
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
    let seen = world.report()["seen"].as_u64().unwrap();
    (cfg, seen, jobs)
}

fn agent_exit(cfg: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["agent", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
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
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    assert_eq!(
        r["seen"].as_u64().unwrap(),
        seen,
        "a node was launched again: {r:#}"
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
