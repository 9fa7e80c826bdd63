//! `cloudburst bench reaction`: how long a newly submitted cloud job
//! waits for its pilot to be asked for, with the schedd's job log
//! followed and with `condor_q` polling alone, in one run.
//!
//! The world is the end-to-end tests' one: the release binary as a
//! daemon, a real EC2 API (moto) and the condor stand-in
//! (`tests/standin/condor_standin.py`, whose every output follows the
//! real HTCondor 25 captures). Each submit writes the job where both the
//! agent's sources see it: the stand-in's queue (what `condor_q` prints)
//! and the job log, as the real schedd's submit transaction of a cloud job
//! (`tests/data/condor/live/job_queue.log.1-after-submit`, cluster 2)
//! with a new cluster id. The time counted runs from the end of that
//! write to the agent's log line for the launch, which comes right after
//! `RunInstances` answered: it includes the call itself.
//!
//! Submits are spaced by a seeded random gap shorter than a cycle, the
//! same gaps in both modes, so a submit lands anywhere in the cycle (a
//! submit just after a cycle waits nearly a whole one for `condor_q`).
//! Every job asks for a whole node, so every submit is one launch.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::classad::stream::LongReader;
use crate::classad::unparse::write_json;
use crate::rng::Rng;

pub struct ReactionBench {
    /// Python with PyPI htcondor (the stand-in evaluates with classad2).
    pub python: PathBuf,
    /// moto's `moto_server`.
    pub moto: PathBuf,
    /// The condor stand-in script.
    pub standin: PathBuf,
    /// The captures (`condor/live/...` below it).
    pub fixtures: PathBuf,
    pub submits: usize,
    /// The agent's cycle (`timers.cycle`): how often `condor_q` runs.
    pub cycle: Duration,
    pub seed: u64,
    pub workdir: PathBuf,
}

/// The schedd of the captures, whose job log and queue the bench extends.
const SCHEDD: &str = "alice@vm";
/// The captured submit transaction's cluster.
const TEMPLATE_CLUSTER: i64 = 2;
/// What each job asks for: the whole of the one flavour.
const CPUS: u32 = 8;
const MEMORY_MB: u64 = 16_000;

/// The wrappers that make `dir/condor_*` run the stand-in on `state`.
pub fn write_standin_tools(
    dir: &Path,
    python: &Path,
    script: &Path,
    state: &Path,
    tools: &[&str],
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for tool in tools {
        let path = dir.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nCONDOR_STANDIN_STATE='{}' exec '{}' '{}' {tool} \"$@\"\n",
                state.display(),
                python.display(),
                script.display()
            ),
        )?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

pub fn run(cfg: &ReactionBench, mut out: impl Write) -> Result<()> {
    for (what, p) in [
        ("--python", &cfg.python),
        ("--moto", &cfg.moto),
        ("--standin", &cfg.standin),
    ] {
        if !p.exists() {
            bail!(
                "{what} {}: no such file (tests/run.sh installs it)",
                p.display()
            );
        }
    }
    if cfg.submits == 0 || cfg.cycle.is_zero() {
        bail!("--submits and --cycle must be more than 0");
    }
    let template = Template::read(&cfg.fixtures, SCHEDD)?;
    let _ = std::fs::remove_dir_all(&cfg.workdir);
    std::fs::create_dir_all(&cfg.workdir)
        .with_context(|| format!("creating {}", cfg.workdir.display()))?;
    let moto = Moto::start(&cfg.moto, &cfg.workdir)?;
    writeln!(
        out,
        "reaction: {} cloud submits per mode, agent cycle {} s (condor_q's interval), moto on 127.0.0.1:{}, condor stand-in",
        cfg.submits,
        cfg.cycle.as_secs_f64(),
        moto.port
    )?;
    let mut rows = Vec::new();
    for (mode, follow_log) in [("job log", true), ("condor_q polling", false)] {
        let dir = cfg.workdir.join(if follow_log { "log" } else { "poll" });
        let mut times = measure(cfg, &template, &moto, &dir, follow_log)
            .with_context(|| format!("{mode} (files in {})", dir.display()))?;
        times.sort_by(f64::total_cmp);
        let s = Summary::of(&times);
        writeln!(
            out,
            "reaction: {mode:<17} median {:>6.3} s  p99 {:>6.3} s  max {:>6.3} s  ({} launches)",
            s.median,
            s.p99,
            s.max,
            times.len()
        )?;
        rows.push((mode, s));
    }
    if let [(_, log), (_, poll)] = &rows[..] {
        writeln!(
            out,
            "reaction: the job log answers {:.1}x sooner at the median ({:.3} s against {:.3} s)",
            poll.median / log.median.max(1e-9),
            log.median,
            poll.median
        )?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Nearest-rank percentiles of sorted, non-empty `v`.
    pub fn of(v: &[f64]) -> Summary {
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            median: rank(0.5),
            p99: rank(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// One mode: a fresh pool, registry and agent; `submits` jobs, one at a
/// time; the seconds from each submit to its launch.
fn measure(
    cfg: &ReactionBench,
    template: &Template,
    moto: &Moto,
    dir: &Path,
    follow_log: bool,
) -> Result<Vec<f64>> {
    std::fs::create_dir_all(dir)?;
    let state = dir.join("pool.json");
    std::fs::write(&state, template.pool().to_string())?;
    write_standin_tools(
        &dir.join("bin"),
        &cfg.python,
        &cfg.standin,
        &state,
        &[
            "condor_q",
            "condor_status",
            "condor_drain",
            "condor_off",
            "condor_token_create",
        ],
    )?;
    let log = dir.join("job_queue.log");
    std::fs::write(&log, template.log_header())?;
    let pool = if follow_log {
        "bench-log"
    } else {
        "bench-poll"
    };
    let config = dir.join("cloudburst.toml");
    std::fs::write(
        &config,
        agent_config(pool, dir, moto.port, cfg.cycle, follow_log.then_some(&log)),
    )?;
    let mut agent = AgentProc::start(&config, dir)?;
    agent.wait_for("cycle done", Duration::from_secs(120))?;
    let mut rng = Rng::new(cfg.seed);
    let mut times = Vec::with_capacity(cfg.submits);
    for i in 0..cfg.submits {
        std::thread::sleep(cfg.cycle.mul_f64(rng.unit()));
        let cluster = 100 + i as i64;
        template.submit(&state, &log, cluster)?;
        let submitted = Instant::now();
        let at = agent
            .wait_for("kind=\"launch\"", Duration::from_secs(120))
            .with_context(|| format!("submit {} of {}", i + 1, cfg.submits))?;
        times.push(at.saturating_duration_since(submitted).as_secs_f64());
    }
    agent.stop();
    Ok(times)
}

fn agent_config(
    pool: &str,
    dir: &Path,
    port: u16,
    cycle: Duration,
    log: Option<&PathBuf>,
) -> String {
    let job_log = log.map_or(String::new(), |p| {
        format!("job_log = {:?}\n", p.display().to_string())
    });
    format!(
        r#"# cloudburst bench reaction
[pool]
name = "{pool}"
schedds = ["{SCHEDD}"]
{job_log}[condor]
bin_dir = {bin:?}
timeout = "20s"
[timers]
cycle = "{cycle_s}s"
boot_timeout = "2h"
max_lifetime = "4h"
[limits]
max_nodes = 1000
launches_per_cycle = 1000
ramp = 1.0
[agent]
registry = {registry:?}
listen = ""
[pilot]
central_manager = "cm.example.edu"
[[sites]]
name = "aws"
provider = "ec2"
image = "ami-0123456789abcdef0"
[sites.ec2]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{port}"
[[sites.flavors]]
name = "m5.2xlarge"
cpus = {CPUS}
memory_mb = 32768
disk_gb = 100
price_per_hour = 0.384
start = "TARGET.WantCloud =?= true"
"#,
        bin = dir.join("bin").display().to_string(),
        cycle_s = cycle.as_secs().max(1),
        registry = dir.join("registry.db").display().to_string(),
    )
}

/// The captured cloud job, as `condor_q -json` printed it and as the
/// schedd wrote its submit to the job log, to be submitted again as
/// another cluster of `schedd` (the e2e tests' job log uses it too).
pub struct Template {
    schedd: String,
    job: Value,
    /// The submit transaction's lines, `105` to `106`.
    transaction: Vec<String>,
    collector: Value,
}

impl Template {
    pub fn read(fixtures: &Path, schedd: &str) -> Result<Template> {
        let live = fixtures.join("condor/live");
        let read = |name: &str| {
            std::fs::read(live.join(name))
                .with_context(|| format!("reading {}", live.join(name).display()))
        };
        let jobs: Vec<Value> =
            serde_json::from_slice(&read("condor_q.json")?).context("condor/live/condor_q.json")?;
        // The capture's idle cloud job (a later submit of the same kind
        // as the log's cluster 2; condor_q was captured after it).
        let job = jobs
            .into_iter()
            .find(|j| j["WantCloud"] == true && j["JobStatus"] == 1)
            .ok_or_else(|| anyhow!("condor/live/condor_q.json has no idle cloud job"))?;
        let text = String::from_utf8(read("job_queue.log.1-after-submit")?)
            .context("condor/live/job_queue.log.1-after-submit is not text")?;
        let lines: Vec<&str> = text.lines().collect();
        let marker = format!("101 0{TEMPLATE_CLUSTER}.-1 ");
        let first = lines
            .iter()
            .position(|l| l.starts_with(&marker))
            .ok_or_else(|| {
                anyhow!("job_queue.log.1-after-submit: no submit of cluster {TEMPLATE_CLUSTER}")
            })?;
        let begin = lines[..first]
            .iter()
            .rposition(|l| l.trim_end() == "105")
            .ok_or_else(|| anyhow!("job_queue.log.1-after-submit: the submit has no 105"))?;
        let end = begin
            + lines[begin..]
                .iter()
                .position(|l| l.trim_end() == "106")
                .ok_or_else(|| anyhow!("job_queue.log.1-after-submit: the submit has no 106"))?;
        let transaction = lines[begin..=end].iter().map(|l| l.to_string()).collect();
        let collector_text = read("cli/status_collector_long.stdout")?;
        let ad = LongReader::new(&collector_text[..])
            .next()
            .ok_or_else(|| anyhow!("cli/status_collector_long.stdout holds no ad"))?
            .context("cli/status_collector_long.stdout")?;
        let mut json = Vec::new();
        write_json(&ad, &mut json);
        Ok(Template {
            schedd: schedd.to_string(),
            job,
            transaction,
            collector: serde_json::from_slice(&json)?,
        })
    }

    /// The stand-in's pool: the one schedd, empty, and the collector.
    fn pool(&self) -> Value {
        json!({
            "schedds": {&self.schedd: {
                "up": true,
                "machine": "vm",
                "address": "<127.0.0.1:33333?addrs=127.0.0.1-33333&alias=vm>",
                "jobs": []
            }},
            "startds": {},
            "collector": {"up": true},
            "other_ads": {"collector": self.collector},
        })
    }

    /// A new log's first lines: its header and the queue's ad.
    pub fn log_header(&self) -> String {
        "107 1 CreationTimestamp 1795312200\n101 0.0 Job Machine\n".to_string()
    }

    /// Cluster `cluster`'s one job, asking for a whole node: into the
    /// stand-in's queue (under its lock), then into the job log.
    fn submit(&self, state: &Path, log: &Path, cluster: i64) -> Result<()> {
        let now = crate::agent::now();
        let mut job = self.job.clone();
        job["ClusterId"] = json!(cluster);
        job["ProcId"] = json!(0);
        job["GlobalJobId"] = json!(format!("{}#{cluster}.0#{now}", self.schedd));
        job["JobStatus"] = json!(1);
        job["RequestCpus"] = json!(CPUS);
        job["RequestMemory"] = json!(MEMORY_MB);
        job["QDate"] = json!(now);
        job["EnteredCurrentStatus"] = json!(now);
        edit_locked(state, |pool| {
            if let Some(q) = pool["schedds"][&self.schedd]["jobs"].as_array_mut() {
                q.push(job);
            }
        })?;
        let text = self.transaction_for(cluster, now);
        let mut f = std::fs::OpenOptions::new().append(true).open(log)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        Ok(())
    }

    /// The captured submit with its cluster, schedd, times and request
    /// changed.
    pub fn transaction_for(&self, cluster: i64, now: i64) -> String {
        let c = TEMPLATE_CLUSTER;
        let mut out = String::new();
        for l in &self.transaction {
            let mut parts = l.splitn(4, ' ');
            let (op, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let rest: Vec<&str> = parts.collect();
            let key = if key == format!("0{c}.-1") {
                format!("0{cluster}.-1")
            } else if key == format!("{c}.-2") {
                format!("{cluster}.-2")
            } else if key == format!("{c}.0") {
                format!("{cluster}.0")
            } else {
                key.to_string()
            };
            let line = match (op, rest.as_slice()) {
                ("103", [name, _]) if *name == "NextClusterNum" => {
                    format!("103 {key} NextClusterNum {}", cluster + 1)
                }
                ("103", [name, _]) if *name == "GlobalJobId" => {
                    format!(
                        "103 {key} GlobalJobId \"{}#{cluster}.0#{now}\"",
                        self.schedd
                    )
                }
                ("103", [name, _]) if *name == "ClusterId" => {
                    format!("103 {key} ClusterId {cluster}")
                }
                ("103", [name, _]) if *name == "RequestCpus" => {
                    format!("103 {key} RequestCpus {CPUS}")
                }
                ("103", [name, _]) if *name == "RequestMemory" => {
                    format!("103 {key} RequestMemory {MEMORY_MB}")
                }
                ("103", [name, _]) if matches!(*name, "QDate" | "EnteredCurrentStatus") => {
                    format!("103 {key} {name} {now}")
                }
                (op, rest) if !rest.is_empty() => format!("{op} {key} {}", rest.join(" ")),
                (op, _) if key.is_empty() => op.to_string(),
                (op, _) => format!("{op} {key}"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// Edits the stand-in's pool model under the lock its tools take.
fn edit_locked(state: &Path, f: impl FnOnce(&mut Value)) -> Result<()> {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(state)?;
    // SAFETY: flock on a descriptor this function owns for its whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}", state.display());
    }
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    let mut v: Value = serde_json::from_slice(&text)?;
    f(&mut v);
    file.rewind()?;
    file.set_len(0)?;
    file.write_all(&serde_json::to_vec(&v)?)?;
    Ok(())
}

/// moto's server on a loopback port, ended with the bench.
struct Moto {
    port: u16,
    child: Child,
}

impl Moto {
    fn start(bin: &Path, dir: &Path) -> Result<Moto> {
        let port = free_port()?;
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("moto's stderr"))?;
        if let Err(seen) = wait_ready(stderr) {
            let _ = child.kill();
            let _ = std::fs::write(dir.join("moto.log"), &seen);
            bail!("moto_server ended before it was ready:\n{seen}");
        }
        Ok(Moto { port, child })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads moto_server's stderr until werkzeug says it is running (read,
/// never slept on), then drains the rest on a thread of its own; what it
/// said, when it ended first.
pub fn wait_ready(stderr: std::process::ChildStderr) -> std::result::Result<(), String> {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(l)) => {
                let ready = l.contains("Running on");
                seen.push(l);
                if ready {
                    std::thread::spawn(move || for _ in lines {});
                    return Ok(());
                }
            }
            _ => return Err(seen.join("\n")),
        }
    }
}

/// A loopback port below the ephemeral range (one taken from bind(0) and
/// let go can be handed to someone else before moto binds it).
fn free_port() -> Result<u16> {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let mut rng = Rng::new(u64::from(std::process::id()) ^ crate::agent::now() as u64);
    for _ in 0..1000 {
        let port = rng.range(20_000, i64::from(low.min(30_000))) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port below {low}")
}

/// The agent as a child: its log lines, each with when it was read.
struct AgentProc {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    log: std::fs::File,
}

impl AgentProc {
    fn start(config: &Path, dir: &Path) -> Result<AgentProc> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut child = Command::new(exe)
            .args(["agent", "--config"])
            .arg(config)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the agent")?;
        let err = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("the agent's stderr"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), l)).is_err() {
                    return;
                }
            }
        });
        Ok(AgentProc {
            child,
            lines: rx,
            log: std::fs::File::create(dir.join("agent.log"))?,
        })
    }

    /// When the next line containing `text` was read.
    fn wait_for(&mut self, text: &str, deadline: Duration) -> Result<Instant> {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let _ = writeln!(self.log, "{line}");
                    if line.contains(text) {
                        return Ok(at);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("no agent log line with {text:?} within {deadline:?} (see agent.log)")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    bail!("the agent ended ({status}) before a log line with {text:?} (see agent.log)")
                }
            }
        }
    }

    fn stop(&mut self) {
        // SAFETY: a signal to our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        for (_, line) in self.lines.try_iter() {
            let _ = writeln!(self.log, "{line}");
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(
            Summary::of(&v),
            Summary {
                median: 25.0,
                p99: 50.0,
                max: 50.0
            }
        );
        assert_eq!(Summary::of(&[2.0]).median, 2.0);
    }

    #[test]
    fn the_captured_submit_becomes_a_new_clusters_submit() {
        let t = Template::read(Path::new("tests/data"), "alice@vm").unwrap();
        let text = t.transaction_for(107, 1_800_000_000);
        assert!(text.starts_with("105"), "{text}");
        assert!(text.trim_end().ends_with("106"), "{text}");
        for want in [
            "101 0107.-1 Job Machine",
            "101 107.0 Job Machine",
            "103 107.0 GlobalJobId \"alice@vm#107.0#1800000000\"",
            "103 0107.-1 RequestCpus 8",
            "103 0107.-1 WantCloud true",
            "103 107.0 JobStatus 1",
            "103 0.0 NextClusterNum 108",
        ] {
            assert!(text.lines().any(|l| l == want), "{want} in\n{text}");
        }
        assert!(
            !text.contains(" 2.0 ") && !text.contains(" 02.-1 "),
            "{text}"
        );
        // The job log reader takes it as one idle cloud job of 8 cores.
        let mut log = crate::condor::joblog::JobLog::default();
        log.feed(format!("{}{text}", t.log_header()).as_bytes())
            .unwrap();
        let constraint = crate::classad::parse_expr(b"WantCloud =?= true").unwrap();
        let jobs = log
            .cloud_jobs(
                &constraint,
                &mut crate::condor::job::JobReader::new(),
                1_800_000_000,
            )
            .unwrap();
        assert_eq!(jobs.len(), 1);
    }
}
