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
