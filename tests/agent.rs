//! The agent as a process: the real binary with a real config file, the
//! condor stand-in (tests/standin/) and a script-provider cloud
//! (tests/standin/fake_cloud.py). Synchronised on the agent's own log
//! lines, never on sleeps.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::agentproc::{http_get, Agent};
use support::standin::StandIn;

fn write_config(dir: &Path, s: &StandIn, cycle: &str, extra: &str) -> PathBuf {
    let cloud = support::repo().join("tests/standin/fake_cloud.py");
    let state = dir.join("cloud.json");
    let text = format!(
        r#"
[pool]
name = "agenttest"
[condor]
bin_dir = "{bin}"
timeout = "20s"
[timers]
cycle = "{cycle}"
[agent]
registry = "{dir}/state/registry.db"
listen = "127.0.0.1:0"
[pilot]
central_manager = "cm.example.edu"
[[sites]]
name = "lab"
provider = "script"
image = "pilot"
[sites.script]
launch = ["python3", "{cloud}", "{state}"]
list = ["python3", "{cloud}", "{state}"]
terminate = ["python3", "{cloud}", "{state}"]
[[sites.flavors]]
name = "m1.large"
cpus = 4
memory_mb = 8192
disk_gb = 40
price_per_hour = 0.2
{extra}
"#,
        bin = s.bin.display(),
        dir = dir.display(),
        cloud = cloud.display(),
        state = state.display(),
    );
    let path = dir.join("cloudburst.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn cloud_instances(dir: &Path) -> Vec<serde_json::Value> {
    let v: serde_json::Value = std::fs::read(dir.join("cloud.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    v["instances"].as_array().cloned().unwrap_or_default()
}

/// Runs `agent --once` with stderr going to a file, as systemd gives it
/// the journal stream (`JOURNAL_STREAM` names the file when `journal`);
/// returns the lines written.
fn once_into_file(cfg: &Path, dir: &Path, journal: bool, env: &[(&str, &str)]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let path = dir.join("stderr.log");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudburst"));
    cmd.args(["agent", "--once", "--config"])
        .arg(cfg)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stderr(file);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(status.success(), "{text}");
    text.lines().map(str::to_string).collect()
}

#[test]
fn under_journald_each_line_carries_its_priority_and_a_failed_query_is_a_warning() {
    let Some(s) = StandIn::new() else { return };
    s.fault("condor_q", "fail");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &s, "60s", "");

    let lines = once_into_file(&cfg, dir.path(), true, &[]);
    let all = lines.join("\n");
    // journald reads `<N>` off the stream: every line has one, and no
    // timestamp of its own (the journal keeps one).
    assert!(!lines.is_empty());
    for l in &lines {
        let p = l.strip_prefix('<').and_then(|r| r.split_once('>'));
        assert!(
            matches!(p, Some((n, rest)) if n.len() == 1 && rest.starts_with("level=")),
            "a line without its priority: {l}"
        );
    }
    // `journalctl -p warning` shows the failed condor_q, with what failed.
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("<4>")).collect();
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("msg=\"cannot read the pool\"") && l.contains("query=\"queue")),
        "{all}"
    );
    assert!(warnings.iter().all(|l| l.contains("level=warn")), "{all}");
    // The cycle's span names it on each of its lines.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>level=info msg=\"cycle done\" cycle=1 ms=")),
        "{all}"
    );
    assert!(!all.contains("eyJ"), "a token in the log:\n{all}");

    // On a terminal or a file (no journal stream): a timestamp instead.
    let lines = once_into_file(&cfg, dir.path(), false, &[]);
    assert!(lines.iter().all(|l| l.starts_with("ts=20")), "{lines:#?}");

    // The config's level, and RUST_LOG over it.
    let quiet = write_config(dir.path(), &s, "60s", "");
    let text = std::fs::read_to_string(&quiet).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nlog_level = \"warn\"",
    );
    std::fs::write(&quiet, text).unwrap();
    let lines = once_into_file(&quiet, dir.path(), true, &[]);
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.starts_with("<4>")),
        "{lines:#?}"
    );
    let lines = once_into_file(&quiet, dir.path(), true, &[("RUST_LOG", "info")]);
    assert!(lines.iter().any(|l| l.contains("cycle done")), "{lines:#?}");
}

#[test]
fn one_cycle_launches_for_the_idle_cloud_job_and_status_shows_it() {
    let Some(s) = StandIn::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &s, "60s", "");
    let out = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["agent", "--once", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("msg=\"cycle done\""), "{log}");
    // The capture has one idle job with WantCloud = true: one launch.
    let inst = cloud_instances(dir.path());
    assert_eq!(inst.len(), 1, "{log}");
    assert!(
        inst[0]["user_data_bytes"].as_u64().unwrap() > 1000,
        "the pilot's user-data was sent"
    );
    // The token the stand-in minted never reaches the log.
    assert!(!log.contains("eyJ"), "a token in the log:\n{log}");

    let st = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(text.contains("cloudburst status: pool agenttest"), "{text}");
    assert!(
        text.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["lab", "script", "1", "4", "0.20"]
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().take(2).collect::<Vec<_>>() == ["booting", "1"]),
        "{text}"
    );
    assert!(text.contains("DEMAND: 1 idle cloud jobs"), "{text}");
    assert!(text.contains("SPEND:"), "{text}");
    eprintln!("agent: status after one cycle:\n{text}");
    let js = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["status", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&js.stdout).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 1);
    let nodes = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["nodes", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&nodes.stdout);
    let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[2], row[3]),
        ("agenttest-000001", "lab", "m1.large", "booting"),
        "{text}"
    );
    assert_eq!(row[6], "fc-0001");

    // An admin's drain request is recorded for the next cycle; an unknown
    // node is a clear error.
    let drain = |node: &str| {
        Command::new(env!("CARGO_BIN_EXE_cloudburst"))
            .args(["drain", "--config"])
            .arg(&cfg)
            .arg(node)
            .output()
            .unwrap()
    };
    let ok = drain("agenttest-000001");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("will be drained at the agent's next cycle")
    );
    let bad = drain("nope");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no node \"nope\""));
}

#[test]
fn a_second_agent_on_the_same_registry_is_refused() {
    let Some(s) = StandIn::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &s, "1h", "");
    let mut first = Agent::start(&cfg);
    first.wait_for("cycle done");
    let second = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["agent", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another cloudburst agent holds"), "{err}");
    // The first is unharmed and stops cleanly on SIGTERM.
    first.signal(libc::SIGTERM);
    first.wait_for("stopping");
    let status = first.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // Stopping left the node running (it is reconciled at the next start).
    assert!(cloud_instances(dir.path())
        .iter()
        .all(|i| i["state"] == "running"));
}

#[test]
fn reload_rejects_a_bad_config_and_applies_a_good_one() {
    let Some(s) = StandIn::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &s, "1h", "");
    let mut agent = Agent::start(&cfg);
    agent.wait_for("cycle done");

    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good.replace("cpus = 4", "cpus = 0")).unwrap();
    agent.signal(libc::SIGHUP);
    let l = agent.wait_for("new config rejected");
    assert!(l.contains("must be more than 0"), "{l}");

    std::fs::write(
        &cfg,
        good.replace("price_per_hour = 0.2", "price_per_hour = 0.25"),
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for("config reloaded");

    agent.signal(libc::SIGINT);
    agent.wait_for("stopping");
    assert!(agent.child.wait().unwrap().success());
}

#[test]
fn a_missing_config_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(["agent", "--config", "/nonexistent/cloudburst.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/cloudburst.toml"));
}

#[test]
fn metrics_and_the_status_page_are_served_on_loopback() {
    let Some(s) = StandIn::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &s, "2s", "");
    let mut agent = Agent::start(&cfg);
    let l = agent.wait_for("serving /metrics");
    let addr = l
        .split("addr=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    agent.wait_for("cycle done");
    agent.wait_for("cycle done");

    let (st, m) = http_get(&addr, "/metrics");
    assert!(st.contains("200"), "{st}");
    for want in [
        "cloudburst_nodes{site=\"lab\",state=\"booting\"} 1",
        "cloudburst_launches_total{site=\"lab\",flavor=\"m1.large\"} 1",
        "cloudburst_idle_cloud_jobs 1",
        "cloudburst_cycles_total 2",
        "# TYPE cloudburst_boot_to_join_seconds histogram",
        "cloudburst_cost_per_hour 0.2",
    ] {
        assert!(m.contains(want), "no {want:?} in:\n{m}");
    }
    let (st, html) = http_get(&addr, "/");
    assert!(st.contains("200"));
    assert!(
        html.contains("<svg") && html.matches("<polyline").count() == 3,
        "{html}"
    );
    assert!(html.contains("cloudburst status: pool agenttest"));
    let (st, _) = http_get(&addr, "/secret");
    assert!(st.contains("404"));
    std::fs::write(dir.path().join("status.html"), &html).unwrap();
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}
