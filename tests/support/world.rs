//! The end-to-end world: a real EC2 API (moto) behind the fault proxy, the
//! condor stand-in's pool with one schedd, and `tests/standin/pool_world.py`
//! booting pilots from their user-data and running jobs. A test writes an
//! agent config that points at all of it, submits jobs, runs the real
//! binary and waits on the world's report (conditions with deadlines, never
//! fixed sleeps).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::faultproxy::FaultProxy;
use super::mesos::MesosStandIn;
use super::moto::Moto;
use super::standin::StandIn;

pub struct World {
    pub standin: StandIn,
    /// In front of moto (EC2 worlds only).
    pub proxy: Option<FaultProxy>,
    pub pool: String,
    /// The `[[sites]]` table of the agent's config.
    site: String,
    pub report_path: PathBuf,
    child: Child,
    next_cluster: std::cell::Cell<u64>,
}

/// A job to submit: what it asks for and how long it runs.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub cpus: u32,
    pub memory_mb: u64,
    pub seconds: f64,
    /// Carries the cloud marker (`WantCloud = true` and the CloudNode
    /// requirement of the captured cloud job) or not (the captured local
    /// job).
    pub cloud: bool,
}

impl Job {
    pub fn cloud(cpus: u32, memory_mb: u64, seconds: f64) -> Job {
        Job {
            cpus,
            memory_mb,
            seconds,
            cloud: true,
        }
    }
}

fn captured_jobs() -> Vec<Value> {
    let path = super::data_dir().join("condor/live/condor_q.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

impl World {
    /// `None` (and the test skipped) without moto or the Python stand-ins.
    pub fn start(name: &str) -> Option<World> {
        World::start_ec2(name, json!({}))
    }

    /// An EC2 world whose pilots' Mesos agents register with the Mesos
    /// stand-in, which also serves the apps the test runs
    /// ([`MesosStandIn::run_apps`]) as Marathon's queue.
    pub fn start_with_mesos(name: &str) -> Option<(World, MesosStandIn)> {
        let mesos = MesosStandIn::start(json!({
            "master": {"world": {"agents": [], "tasks": []}},
            "marathon": {"queue": []},
        }));
        mesos.run_apps(json!([]));
        let extra = json!({"mesos": {"state": mesos.state, "control": mesos.control()}});
        Some((World::start_ec2(name, extra)?, mesos))
    }

    fn start_ec2(name: &str, extra: Value) -> Option<World> {
        let moto = Moto::shared()?;
        let proxy = FaultProxy::start(moto.port);
        let site = format!(
            r#"[[sites]]
name = "aws"
provider = "ec2"
image = "ami-0123456789abcdef0"
[sites.ec2]
region = "us-east-1"
endpoint_url = "{}"
[[sites.flavors]]
name = "c5.large"
cpus = 2
memory_mb = 4096
disk_gb = 40
price_per_hour = 0.085
start = "TARGET.WantCloud =?= true"
[[sites.flavors]]
name = "m5.2xlarge"
cpus = 8
memory_mb = 32768
disk_gb = 100
price_per_hour = 0.384
start = "TARGET.WantCloud =?= true"
"#,
            proxy.url()
        );
        let mut cloud = json!({ "endpoint": format!("http://127.0.0.1:{}", moto.port) });
        for (k, v) in extra.as_object().unwrap() {
            cloud[k] = v.clone();
        }
        World::begin(name, cloud, site, Some(proxy))
    }

    /// A world whose cloud is the real Nova of `stack` (its flavours
    /// m1.small and m1.large; the agent authenticates with the `stack`
    /// entry of the `clouds.yaml` under the test's `$HOME`).
    pub fn start_openstack(name: &str, stack: &super::openstack_stack::Stack) -> Option<World> {
        let site = r#"[[sites]]
name = "stack"
provider = "openstack"
image = "cirros-pilot"
[sites.openstack]
cloud = "stack"
network = "none"
[[sites.flavors]]
name = "m1.small"
cpus = 1
memory_mb = 2048
disk_gb = 20
price_per_hour = 0.05
start = "TARGET.WantCloud =?= true"
[[sites.flavors]]
name = "m1.large"
cpus = 4
memory_mb = 8192
disk_gb = 40
price_per_hour = 0.2
start = "TARGET.WantCloud =?= true"
"#
        .to_string();
        let cloud = json!({
            "nova": stack.str("nova"),
            "keystone": stack.str("keystone"),
            "admin_password": stack.str("admin_password"),
        });
        World::begin(name, cloud, site, None)
    }

    fn begin(name: &str, cloud: Value, site: String, proxy: Option<FaultProxy>) -> Option<World> {
        let standin = StandIn::empty_pool()?;
        let python = super::python()?;
        let pool = format!("e2e-{name}");
        let dir = standin.dir.path().to_path_buf();
        let report_path = dir.join("world.json");
        let mut cfg = json!({
            "state": standin.state,
            "pool": pool,
            "central_manager": "cm.example.edu",
            "report": report_path,
            "dir": dir,
            "live": super::data_dir().join("condor/live"),
            "tick": 0.1,
            "boot_seconds": 0.5,
        });
        for (k, v) in cloud.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        let cfg_path = dir.join("world-config.json");
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let child = super::moto::spawn_tied(
            Command::new(python)
                .arg(super::repo().join("tests/standin/pool_world.py"))
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.join("world.log")).unwrap(),
                )),
        );
        let w = World {
            standin,
            proxy,
            pool,
            site,
            report_path,
            child,
            next_cluster: std::cell::Cell::new(100),
        };
        w.wait_until("the world's first tick", Duration::from_secs(60), |r| {
            r["ticks"].as_u64() > Some(0)
        });
        Some(w)
    }

    pub fn dir(&self) -> PathBuf {
        self.standin.dir.path().to_path_buf()
    }

    /// The agent config for this world: its one site (EC2 through the
    /// fault proxy, or the real Nova) with a small and a large flavour,
    /// short timers; `extra` is
    /// appended (more tables). Pilots start only cloud jobs, as the
    /// captured pilot did (`Start = TARGET.WantCloud is true`).
    pub fn agent_config(&self, extra: &str) -> PathBuf {
        let dir = self.dir();
        let text = format!(
            r#"# cloudburst end-to-end test config
[pool]
name = "{pool}"
[condor]
bin_dir = "{bin}"
timeout = "5s"
[timers]
cycle = "1s"
idle_timeout = "3s"
boot_timeout = "60s"
[limits]
max_nodes = 4
launches_per_cycle = 4
ramp = 1.0
removal_share = 1.0
backoff_initial = "2s"
backoff_max = "4s"
[agent]
registry = "{dir}/state/registry.db"
listen = "127.0.0.1:0"
[pilot]
central_manager = "cm.example.edu"
{site}
{extra}
"#,
            pool = self.pool,
            bin = self.standin.bin.display(),
            dir = dir.display(),
            site = self.site,
        );
        let path = dir.join("cloudburst.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Submits jobs to the stand-in's schedd (one cluster); their global
    /// job ids.
    pub fn submit(&self, jobs: &[Job]) -> Vec<String> {
        let captured = captured_jobs();
        let cloud_tpl = captured
            .iter()
            .find(|j| j["WantCloud"] == true && j["JobStatus"] == 1)
            .unwrap()
            .clone();
        let local_tpl = captured
            .iter()
            .find(|j| j["WantCloud"].is_null() && j["JobStatus"] == 1)
            .unwrap()
            .clone();
        let cluster = self.next_cluster.get();
        self.next_cluster.set(cluster + 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let ads: Vec<Value> = jobs
            .iter()
            .enumerate()
            .map(|(proc, j)| {
                let mut ad = if j.cloud {
                    cloud_tpl.clone()
                } else {
                    local_tpl.clone()
                };
                let id = format!("e2e@submit#{cluster}.{proc}#{now}");
                ad["ClusterId"] = json!(cluster);
                ad["ProcId"] = json!(proc);
                ad["GlobalJobId"] = json!(id);
                ad["JobStatus"] = json!(1);
                ad["RequestCpus"] = json!(j.cpus);
                ad["RequestMemory"] = json!(j.memory_mb);
                ad["QDate"] = json!(now);
                ad["EnteredCurrentStatus"] = json!(now);
                ad["E2EDuration"] = json!(j.seconds);
                ad
            })
            .collect();
        let ids = ads
            .iter()
            .map(|a| a["GlobalJobId"].as_str().unwrap().to_string())
            .collect();
        self.standin.edit_locked(|v| {
            let q = v["schedds"]["e2e@submit"]["jobs"].as_array_mut().unwrap();
            q.extend(ads);
        });
        ids
    }

    /// The jobs still in the queue.
    pub fn queue(&self) -> Vec<Value> {
        self.standin.edit_locked(|v| {
            v["schedds"]["e2e@submit"]["jobs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
    }

    pub fn report(&self) -> Value {
        std::fs::read(&self.report_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// Waits (polling the report) until `f` holds; panics with the last
    /// report and the world's log after `deadline`.
    pub fn wait_until(&self, what: &str, deadline: Duration, f: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let r = self.report();
            if f(&r) {
                return r;
            }
            if Instant::now() > until {
                let log = std::fs::read_to_string(self.dir().join("world.log")).unwrap_or_default();
                panic!("waited {deadline:?} for {what}; the world says {r:#}\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `completed` from a report as ids.
pub fn completed(r: &Value) -> Vec<String> {
    r["completed"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
