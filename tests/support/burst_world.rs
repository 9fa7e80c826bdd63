//! The real pool in the loop: a real HTCondor pool (`condor_pool.rs`:
//! collector, negotiator, schedd with the site's `condor-config/`
//! snippets, a local startd for on-site jobs), a real EC2 API (moto) the
//! agent launches on, and a launcher that makes each running instance a
//! real pilot: a `condor_master` + `condor_startd` started from the
//! `#cloud-config` the agent sent as the instance's user-data (its condor
//! config and token as cloud-init would write them, adapted only as
//! `condor_pool::pilot_adaptations` lists), turned off when the instance
//! stops or is terminated, as a powered-off VM is.
//!
//! The launcher reads EC2 directly (never through the agent), polling
//! every 200 ms, and records what it saw; a test waits on the real pool
//! (`condor_q`, `condor_status`, `condor_history`) and on that record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::condor_pool::{Pilot, PilotHost, Pool, Release};
use super::moto::Moto;

/// What the launcher has seen of the cloud.
#[derive(Clone, Debug, Default)]
pub struct Launched {
    /// Instance id → the node it booted as.
    pub booted: BTreeMap<String, String>,
    /// Instance id → why it never became a pilot.
    pub refused: BTreeMap<String, String>,
    /// Instances whose pilot was turned off because EC2 stopped or
    /// terminated them.
    pub powered_off: BTreeSet<String>,
    /// Instances alive (pending or running) in EC2 at the last look.
    pub alive: BTreeSet<String>,
    /// Looks taken at EC2 so far (a test waits for one after an action).
    pub looks: u64,
    pub errors: Vec<String>,
}

/// The agent's timers for a test.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    pub cycle: &'static str,
    /// Nodes idle this long retire.
    pub idle_timeout: &'static str,
    /// A startd missing this long from a settled collector is gone.
    pub missing_grace: &'static str,
    /// `pool.job_log` = the real schedd's `job_queue.log`.
    pub follow_job_log: bool,
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            cycle: "1s",
            idle_timeout: "5s",
            missing_grace: "60s",
            follow_job_log: false,
        }
    }
}

pub struct BurstWorld {
    pub pool: Pool,
    /// The agent's pool name (the EC2 tag the launcher looks for).
    pub name: String,
    pub moto_port: u16,
    pub launched: Arc<Mutex<Launched>>,
    stop: Arc<AtomicBool>,
    keep: Arc<AtomicBool>,
    launcher: Option<std::thread::JoinHandle<()>>,
    submitted: std::cell::Cell<u32>,
}

impl BurstWorld {
    /// `None` (the test skipped) without HTCondor, moto or the Python with
    /// PyYAML the launcher reads user-data with.
    pub fn start(name: &str) -> Option<BurstWorld> {
        BurstWorld::start_inner(name, false)
    }

    /// A world whose schedd also applies the HTCondor-CE's cloud route
    /// (see [`BurstWorld::submit_routed`]).
    pub fn start_with_ce_route(name: &str) -> Option<BurstWorld> {
        BurstWorld::start_inner(name, true)
    }

    fn start_inner(name: &str, ce_route: bool) -> Option<BurstWorld> {
        let release: Release = super::condor_pool::release()?;
        let moto = Moto::shared()?;
        let python = super::python()?;
        let repo = super::repo();
        let route = route_as_transform(name);
        let mut config_d = vec![
            repo.join("condor-config/50-cloudburst-central-manager.conf"),
            repo.join("condor-config/50-cloudburst-schedd.conf"),
        ];
        if ce_route {
            config_d.push(route.path().to_path_buf());
        }
        let pool = Pool::start(
            &release,
            name,
            "TRUST_DOMAIN = cloudburst.test\n",
            &config_d,
        );
        let launched = Arc::new(Mutex::new(Launched::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let keep = Arc::new(AtomicBool::new(false));
        let tag = format!("real-{name}");
        let launcher = {
            let (host, launched, stop, keep, tag) = (
                pool.pilot_host(),
                launched.clone(),
                stop.clone(),
                keep.clone(),
                tag.clone(),
            );
            let port = moto.port;
            std::thread::spawn(move || launch_loop(host, python, port, &tag, launched, stop, keep))
        };
        Some(BurstWorld {
            pool,
            name: tag,
            moto_port: moto.port,
            launched,
            stop,
            keep,
            launcher: Some(launcher),
            submitted: std::cell::Cell::new(0),
        })
    }

    /// The agent's config for this world: the real pool's collector and
    /// tools, one EC2 site on moto with a 2-core flavour, the timers of
    /// `knobs`.
    pub fn agent_config(&self, knobs: Knobs) -> PathBuf {
        let Knobs {
            cycle,
            idle_timeout,
            missing_grace,
            follow_job_log,
        } = knobs;
        let job_log = if follow_job_log {
            format!(
                "job_log = \"{}\"\n",
                self.pool
                    .dir
                    .path()
                    .join("local/spool/job_queue.log")
                    .display()
            )
        } else {
            String::new()
        };
        let dir = self.pool.dir.path().join("agent");
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            r#"# cloudburst against the real pool (tests/support/burst_world.rs)
[pool]
name = "{name}"
collector = "127.0.0.1:{port}"
startd_missing_grace = "{missing_grace}"
{job_log}[condor]
bin_dir = "{bin}"
timeout = "30s"
[timers]
cycle = "{cycle}"
idle_timeout = "{idle_timeout}"
boot_timeout = "120s"
[limits]
max_nodes = 3
launches_per_cycle = 3
ramp = 1.0
removal_share = 1.0
backoff_initial = "2s"
backoff_max = "4s"
[agent]
registry = "{dir}/registry.db"
listen = "127.0.0.1:0"
[pilot]
central_manager = "127.0.0.1:{port}"
trust_domain = "cloudburst.test"
[[sites]]
name = "aws"
provider = "ec2"
image = "ami-0123456789abcdef0"
[sites.ec2]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{moto}"
[[sites.flavors]]
name = "c5.large"
cpus = 2
memory_mb = 2048
disk_gb = 20
price_per_hour = 0.085
"#,
            name = self.name,
            port = self.pool.port,
            bin = self.pool.tool_dir().display(),
            dir = dir.display(),
            moto = self.moto_port,
        );
        let path = dir.join("cloudburst.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Submits `n` real cloud jobs (`/bin/sleep seconds`, `+WantCloud`,
    /// one core) to the real schedd; their cluster id.
    pub fn submit_cloud(&self, n: u32, seconds: u32) -> String {
        let k = self.submitted.get() + 1;
        self.submitted.set(k);
        let file = self.pool.write(
            &format!("cloud-{k}.sub"),
            &format!(
                "executable = /bin/sleep\narguments = {seconds}\n+WantCloud = true\n\
                 request_cpus = 1\nrequest_memory = 256\nshould_transfer_files = YES\n\
                 log = cloud-{k}.log\nqueue {n}\n"
            ),
        );
        self.submitted_cluster(&file)
    }

    /// Submits a job as a grid user of the HTCondor-CE would
    /// (`+queue = "cloud"`); the CE's route
    /// (`jobmanager/htcondor-ce/50-cloudburst-route.conf`) is applied to
    /// it by this schedd's own transform engine (the job router's routes
    /// and the schedd's `JOB_TRANSFORM`s are one language; the job router
    /// itself is not in the test build). Its cluster.
    pub fn submit_routed(&self, seconds: u32) -> String {
        let k = self.submitted.get() + 1;
        self.submitted.set(k);
        let file = self.pool.write(
            &format!("routed-{k}.sub"),
            &format!(
                "executable = /bin/sleep\narguments = {seconds}\n+queue = \"cloud\"\n\
                 request_cpus = 1\nrequest_memory = 256\nshould_transfer_files = YES\nqueue 1\n"
            ),
        );
        self.submitted_cluster(&file)
    }

    /// Submits a local job (no cloud marker): the site's own startd runs
    /// it, and the agent buys nothing for it.
    pub fn submit_local(&self, seconds: u32) -> String {
        let k = self.submitted.get() + 1;
        self.submitted.set(k);
        let file = self.pool.write(
            &format!("local-{k}.sub"),
            &format!(
                "executable = /bin/sleep\narguments = {seconds}\nrequest_cpus = 1\n\
                 request_memory = 64\nshould_transfer_files = YES\nqueue 1\n"
            ),
        );
        self.submitted_cluster(&file)
    }

    fn submitted_cluster(&self, file: &std::path::Path) -> String {
        let out = self.pool.run("condor_submit", &[file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", super::condor_pool::text(&out));
        String::from_utf8_lossy(&out.stdout)
            .split("cluster ")
            .nth(1)
            .and_then(|t| t.split('.').next())
            .expect("condor_submit names the cluster")
            .to_string()
    }

    pub fn launched(&self) -> Launched {
        self.launched.lock().unwrap().clone()
    }

    /// Waits until the launcher has looked at EC2 again (so what it
    /// reports is at least as new as now).
    pub fn next_look(&self) -> Launched {
        let from = self.launched().looks;
        self.pool
            .wait_for("the launcher's next look", Duration::from_secs(60), |_| {
                self.launched().looks > from + 1
            });
        self.launched()
    }

    /// A tool's `-af:t` rows, split at tabs.
    pub fn rows(&self, tool: &str, args: &[&str]) -> Vec<Vec<String>> {
        let out = self.pool.run(tool, args);
        assert!(
            out.status.success(),
            "{tool}: {}",
            super::condor_pool::text(&out)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

impl Drop for BurstWorld {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep.store(true, Ordering::SeqCst);
            eprintln!("the launcher saw {:#?}", self.launched());
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.launcher.take() {
            let _ = t.join();
        }
    }
}

/// The shipped CE routes as schedd transforms that run before the schedd
/// snippet's own (`support::ce_routes_as_schedd_transforms`).
fn route_as_transform(name: &str) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(
        super::repo().join("jobmanager/htcondor-ce/50-cloudburst-route.conf"),
    )
    .unwrap();
    let mut f = tempfile::Builder::new()
        .prefix(&format!("60-cloudburst-route-{name}-"))
        .suffix(".conf")
        .tempfile()
        .unwrap();
    use std::io::Write;
    f.write_all(super::ce_routes_as_schedd_transforms(&text).as_bytes())
        .unwrap();
    f
}

/// The launcher: each look, boots the running instances not yet booted
/// and turns off the pilots of instances that are gone.
fn launch_loop(
    host: PilotHost,
    python: PathBuf,
    port: u16,
    tag: &str,
    launched: Arc<Mutex<Launched>>,
    stop: Arc<AtomicBool>,
    keep: Arc<AtomicBool>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ec2 = super::moto::ec2_client(port);
    let mut pilots: BTreeMap<String, Pilot> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        match rt.block_on(instances(&ec2, tag)) {
            Ok(seen) => {
                let mut alive = BTreeSet::new();
                for (id, state, node) in &seen {
                    let gone = matches!(
                        state.as_str(),
                        "stopping" | "stopped" | "shutting-down" | "terminated"
                    );
                    if !gone {
                        alive.insert(id.clone());
                    }
                    if gone {
                        if let Some(p) = pilots.remove(id) {
                            drop(p);
                            launched.lock().unwrap().powered_off.insert(id.clone());
                        }
                        continue;
                    }
                    let known = {
                        let l = launched.lock().unwrap();
                        l.booted.contains_key(id) || l.refused.contains_key(id)
                    };
                    if state != "running" || known {
                        continue;
                    }
                    match rt
                        .block_on(user_data(&ec2, id))
                        .and_then(|text| boot(&host, &python, id, node.as_deref(), &text))
                    {
                        Ok(p) => {
                            launched
                                .lock()
                                .unwrap()
                                .booted
                                .insert(id.clone(), p.node_id.clone());
                            pilots.insert(id.clone(), p);
                        }
                        Err(why) => {
                            launched.lock().unwrap().refused.insert(id.clone(), why);
                        }
                    }
                }
                let mut l = launched.lock().unwrap();
                l.alive = alive;
                l.looks += 1;
            }
            Err(e) => {
                let mut l = launched.lock().unwrap();
                l.errors.push(e);
                l.looks += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let keep = keep.load(Ordering::SeqCst);
    for (_, mut p) in pilots {
        p.keep_logs = keep;
        drop(p);
    }
}

/// This pool's instances: (id, state, node tag).
async fn instances(
    ec2: &aws_sdk_ec2::Client,
    tag: &str,
) -> Result<Vec<(String, String, Option<String>)>, String> {
    let out = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:cloudburst:pool")
                .values(tag)
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("DescribeInstances: {e:?}"))?;
    let mut v = Vec::new();
    for r in out.reservations() {
        for i in r.instances() {
            let node = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("cloudburst:node"))
                .and_then(|t| t.value().map(str::to_string));
            v.push((
                i.instance_id().unwrap_or_default().to_string(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                node,
            ));
        }
    }
    Ok(v)
}

/// The instance's user-data as the text cloud-init reads (base64, maybe
/// gzip-compressed).
async fn user_data(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<String, String> {
    use base64::Engine;
    use std::io::Read;
    let out = ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(|e| format!("DescribeInstanceAttribute: {e:?}"))?;
    let b64 = out
        .user_data()
        .and_then(|v| v.value())
        .ok_or("no user-data")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("user-data is not base64: {e}"))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .map_err(|e| format!("gzip user-data: {e}"))?;
        return Ok(text);
    }
    String::from_utf8(raw).map_err(|e| format!("user-data is not UTF-8: {e}"))
}

/// Boots one instance as cloud-init would: the `#cloud-config` read by a
/// real YAML parser (PyYAML), the condor config and token taken from its
/// `write_files`, the hard stop from its `shutdown -P +MINUTES`.
fn boot(
    host: &PilotHost,
    python: &PathBuf,
    instance: &str,
    node_tag: Option<&str>,
    text: &str,
) -> Result<Pilot, String> {
    if !text.starts_with("#cloud-config") {
        return Err("the user-data is not a #cloud-config".into());
    }
    let doc = yaml_as_json(python, text)?;
    let file = |path: &str| -> Result<String, String> {
        doc["write_files"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["path"] == path))
            .and_then(|f| f["content"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("the user-data writes no {path}"))
    };
    let condor = file(cloudburst::pilot::CONDOR_CONFIG)?;
    let token = file(cloudburst::pilot::TOKEN_FILE)?;
    let minutes = doc["runcmd"]
        .as_array()
        .and_then(|cmds| {
            cmds.iter().find_map(|c| {
                let c = c.as_array()?;
                (c.first()? == "shutdown" && c.get(1)? == "-P")
                    .then(|| c.get(2)?.as_str()?.strip_prefix('+')?.parse::<u64>().ok())?
            })
        })
        .ok_or("the user-data's runcmd has no hard stop (shutdown -P +MINUTES)")?;
    let node = condor
        .lines()
        .find_map(|l| l.strip_prefix("CloudburstNodeId = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .ok_or("the condor config names no CloudburstNodeId")?;
    if node_tag.is_some_and(|t| t != node) {
        return Err(format!(
            "the instance is tagged node {node_tag:?} but its user-data is node {node}"
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Ok(host.start_pilot(&node, instance, &condor, &token, now + minutes * 60))
}

fn yaml_as_json(python: &PathBuf, text: &str) -> Result<Value, String> {
    use std::io::Write;
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin.read()), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "the #cloud-config is not YAML: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}
