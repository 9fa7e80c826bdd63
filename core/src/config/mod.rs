//! The configuration file (`/etc/cloudburst/cloudburst.toml`): the model
//! here, its checks in `validate`. Errors name the file, line and column.
//!
//! Pure: `parse` takes the text; reading the file is the caller's. Units
//! are in the field names (`memory_mb`, `disk_gb`, `price_per_hour`), and
//! durations are written `90s`, `10m`, `2h`, `7d` (or plain seconds).

mod pilot;
mod providers;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;
use toml::Spanned;

pub use pilot::{
    cvmfs_revision_attr, has_cvmfs_attr, CvmfsConfig, MesosConfig, PilotConfig, StageoutConfig,
};
pub use providers::{Ec2Config, OpenstackConfig, ScriptConfig};
pub use validate::validate;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default)]
    pub condor: CondorConfig,
    #[serde(default)]
    pub timers: Timers,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub reconcile: ReconcileConfig,
    #[serde(default)]
    pub agent: AgentConfig,
    #[serde(default)]
    pub pilot: PilotConfig,
    /// Where the agent reads the Mesos side (`[mesos]`); none: condor only.
    pub mesos: Option<MesosSource>,
    #[serde(default)]
    pub sites: Vec<Site>,
    #[serde(default)]
    pub groups: Vec<Group>,
}

/// `[mesos]`: the Mesos master and frameworks the agent reads, so that
/// Mesos work waiting is demand and Mesos work running keeps its node.
/// The pilots' own Mesos agent is `[pilot.mesos]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MesosSource {
    /// The masters' HTTP addresses, e.g. `http://mesos-master:5050` or a
    /// list of them (their operator API, `POST /api/v1`). Tried in order
    /// each cycle: a standby redirects to the leader, and one that does
    /// not answer passes the call to the next.
    #[serde(deserialize_with = "one_or_more")]
    pub master: Vec<String>,
    /// Marathon's HTTP address (`GET /v2/queue`), if Marathon runs.
    pub marathon: Option<String>,
    /// Aurora's scheduler HTTP address (`POST /apibeta/...`), if Aurora runs.
    pub aurora: Option<String>,
    /// A node whose Mesos agent never registers is a failed boot.
    #[serde(default)]
    pub required: bool,
    /// A file holding `principal:secret` for HTTP basic authentication
    /// to the master and the frameworks (not readable by others).
    pub credentials: Option<PathBuf>,
    /// Each HTTP call's deadline.
    #[serde(default = "mesos_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn mesos_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The site's HTCondor pool, as cloudburst reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// This pool's name in cloud tags (`cloudburst:pool`): instances
    /// tagged with another pool are never touched.
    pub name: Spanned<String>,
    /// The central manager (`-pool`), when it is not the local config's
    /// `CONDOR_HOST`.
    pub collector: Option<String>,
    /// Schedds to query by name. Empty: the schedds the collector knows.
    pub schedds: Vec<String>,
    /// Which jobs are meant for the cloud (a ClassAd constraint on the
    /// job ad).
    pub cloud_job_constraint: Spanned<String>,
    /// Which slots are our cloud nodes.
    pub cloud_slot_constraint: Spanned<String>,
    /// Job attributes to fetch beyond the built-in projection (those the
    /// flavours' START expressions or the constraint refer to).
    pub job_attributes: Vec<String>,
    /// The schedd's `job_queue.log`, when it is readable on this host:
    /// new cloud jobs are then seen at once instead of at the next poll.
    pub job_log: Option<PathBuf>,
    /// How long a startd's ad must be missing from every successful
    /// reading (and the collector up) before its node counts as gone.
    #[serde(deserialize_with = "duration")]
    pub startd_missing_grace: Duration,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            name: Spanned::new(0..0, "cloudburst".to_string()),
            collector: None,
            schedds: Vec::new(),
            cloud_job_constraint: Spanned::new(0..0, DEFAULT_JOB_CONSTRAINT.to_string()),
            cloud_slot_constraint: Spanned::new(0..0, DEFAULT_SLOT_CONSTRAINT.to_string()),
            job_attributes: Vec::new(),
            job_log: None,
            startd_missing_grace: Duration::from_secs(300),
        }
    }
}

pub const DEFAULT_JOB_CONSTRAINT: &str = "WantCloud =?= true";
pub const DEFAULT_SLOT_CONSTRAINT: &str = "CloudNode =?= true";

/// How the condor tools are run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CondorConfig {
    /// Where `condor_q` and friends are; default: `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// Each tool is killed if it runs longer than this.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Jobs on a node being drained are protected by the pilot's
    /// retirement (our pilot grants it up to its hard stop); a busy node
    /// (past `max_lifetime`, or an admin's drain) is drained only if every
    /// running job keeps at least this much of it (0: never drain a busy
    /// node: it then runs to the pilot's hard stop).
    #[serde(deserialize_with = "duration")]
    pub min_retirement: Duration,
}

impl Default for CondorConfig {
    fn default() -> CondorConfig {
        CondorConfig {
            bin_dir: None,
            timeout: Duration::from_secs(60),
            min_retirement: Duration::from_secs(600),
        }
    }
}

/// How long things may take.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// Between cycles (a new cloud job in a watched job log wakes the
    /// agent sooner).
    #[serde(deserialize_with = "duration")]
    pub cycle: Duration,
    /// A node with no claims for this long, and not needed by waiting
    /// jobs, is drained.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// A node whose startd has not joined this long after launch is a
    /// boot failure (terminated).
    #[serde(deserialize_with = "duration")]
    pub boot_timeout: Duration,
    /// Nodes are drained at this age and replaced if still needed.
    #[serde(deserialize_with = "duration")]
    pub max_lifetime: Duration,
    /// After `max_lifetime`, jobs get this long to finish; past it the
    /// node is terminated even if busy (the pilot's retirement time must
    /// not exceed it).
    #[serde(deserialize_with = "duration")]
    pub drain_grace: Duration,
    /// A node whose terminate call succeeded but whose instance is still
    /// listed this long after is marked for the admin (`status`, the
    /// metrics); the call keeps being re-sent, with back-off, meanwhile.
    #[serde(deserialize_with = "duration")]
    pub terminate_timeout: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            cycle: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(600),
            boot_timeout: Duration::from_secs(900),
            max_lifetime: Duration::from_secs(7 * 86400),
            drain_grace: Duration::from_secs(2 * 86400),
            terminate_timeout: Duration::from_secs(3600),
        }
    }
}

/// What may exist and what may change in one cycle.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Nodes across all sites (every state but gone).
    pub max_nodes: u32,
    /// The sum of the hourly prices of all live nodes.
    pub max_cost_per_hour: f64,
    /// Spend since the start of the calendar month (UTC); no launch that
    /// would take the month past it within the next hour.
    pub max_cost_per_month: f64,
    pub launches_per_cycle: u32,
    /// The share of the current shortfall launched in one cycle (ramp).
    pub ramp: f64,
    pub removals_per_cycle: u32,
    /// At most this share of running nodes is drained in one cycle.
    pub removal_share: f64,
    /// Back-off after a boot failure or a capacity/quota error at a
    /// site and flavour, doubling per failure up to `backoff_max`.
    #[serde(deserialize_with = "duration")]
    pub backoff_initial: Duration,
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_nodes: 20,
            max_cost_per_hour: 50.0,
            max_cost_per_month: 10_000.0,
            launches_per_cycle: 10,
            ramp: 0.5,
            removals_per_cycle: 10,
            removal_share: 0.25,
            backoff_initial: Duration::from_secs(120),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// What to do with an instance tagged for this pool that the registry
/// does not know (after a lost registry, or a launch whose result was
/// never recorded and whose token did not find it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownInstances {
    /// Track it as a node; it retires like any other when idle.
    #[default]
    Adopt,
    /// Terminate it (its work, if any, is lost).
    Terminate,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    pub unknown_instances: UnknownInstances,
}

/// Where the agent keeps its state.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The registry database (created mode 0600).
    pub registry: PathBuf,
    /// Where `/metrics` and the status page are served; `""` turns them
    /// off. Loopback unless the admin opens it.
    pub listen: String,
    /// The least severe events logged; `RUST_LOG` overrides it.
    pub log_level: LogLevel,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            registry: PathBuf::from("/var/lib/cloudburst/registry.db"),
            listen: "127.0.0.1:9754".into(),
            log_level: LogLevel::Info,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Ec2,
    Openstack,
    Script,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Ec2 => "ec2",
            Provider::Openstack => "openstack",
            Provider::Script => "script",
        }
    }
}

/// A cloud (or a region/project of one) that nodes are launched into.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: Spanned<String>,
    pub provider: Provider,
    /// Image (AMI id, Glance image name or id, or whatever the script
    /// takes).
    #[serde(default)]
    pub image: String,
    /// Higher first when flavours at several sites cost the same.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub max_nodes: Option<u32>,
    #[serde(default)]
    pub max_cores: Option<u32>,
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    #[serde(default)]
    pub max_gpus: Option<u32>,
    /// `OpSys`, `Arch`, `OpSysAndVer` and the HTCondor version the pilot
    /// image advertises (matched by jobs' Requirements).
    #[serde(default = "default_opsys")]
    pub opsys: String,
    #[serde(default = "default_arch")]
    pub arch: String,
    #[serde(default)]
    pub opsys_and_ver: Option<String>,
    #[serde(default = "default_condor_version")]
    pub condor_version: String,
    #[serde(default)]
    pub ec2: Option<Ec2Config>,
    #[serde(default)]
    pub openstack: Option<OpenstackConfig>,
    #[serde(default)]
    pub script: Option<ScriptConfig>,
    pub flavors: Vec<Flavor>,
}

fn default_opsys() -> String {
    "LINUX".into()
}
fn default_arch() -> String {
    "X86_64".into()
}
fn default_condor_version() -> String {
    "25.14.0".into()
}

/// An instance type at a site, and the slot its pilot advertises.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    pub name: Spanned<String>,
    pub cpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    #[serde(default)]
    pub gpus: u32,
    pub price_per_hour: f64,
    #[serde(default)]
    pub spot: bool,
    /// The pilot's START expression (default `true`).
    #[serde(default)]
    pub start: Option<Spanned<String>>,
    /// Extra machine attributes, as ClassAd expressions.
    #[serde(default)]
    pub attributes: BTreeMap<String, Spanned<String>>,
}

/// Jobs that get dedicated nodes (as ProActive's IaasPolicy gives a
/// token's holders their own nodes): nodes launched for the group only
/// start the group's jobs, and the group's demand is planned onto them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: Spanned<String>,
    /// Jobs carrying `CloudburstToken = "<token>"` belong to the group.
    #[serde(default)]
    pub token: Option<String>,
    /// Jobs whose `AcctGroup` is this belong to the group.
    #[serde(default)]
    pub accounting_group: Option<String>,
    /// Sites its nodes may use (default: all).
    #[serde(default)]
    pub sites: Vec<String>,
    #[serde(default)]
    pub max_nodes: Option<u32>,
}

impl Group {
    /// The job-side test: does a job belong to this group?
    pub fn job_constraint(&self) -> String {
        match (&self.token, &self.accounting_group) {
            (Some(t), _) => format!("CloudburstToken =?= {}", classad_string(t)),
            (None, Some(g)) => format!("AcctGroup =?= {}", classad_string(g)),
            (None, None) => "false".into(),
        }
    }

    /// The machine-side START clause of the group's nodes.
    pub fn start_clause(&self) -> String {
        match (&self.token, &self.accounting_group) {
            (Some(t), _) => format!("TARGET.CloudburstToken =?= {}", classad_string(t)),
            (None, Some(g)) => format!("TARGET.AcctGroup =?= {}", classad_string(g)),
            (None, None) => "false".into(),
        }
    }
}

/// A ClassAd string literal.
pub fn classad_string(s: &str) -> String {
    let mut out = Vec::new();
    crate::classad::unparse::unparse_string(
        s.as_bytes(),
        crate::classad::unparse::Style::New,
        &mut out,
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// `90`, `"90s"`, `"5m"`, `"2h"`, `"1d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 90s, 5m, 2h, 1d)"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use s, m, h or d)"
            ))
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// A string, or a non-empty list of them.
fn one_or_more<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        More(Vec<String>),
    }
    match Raw::deserialize(d) {
        Ok(Raw::One(s)) => Ok(vec![s]),
        Ok(Raw::More(v)) if !v.is_empty() => Ok(v),
        Ok(Raw::More(_)) => Err(serde::de::Error::custom("an empty list: name at least one")),
        Err(_) => Err(serde::de::Error::custom(
            "expected an address or a list of addresses",
        )),
    }
}

pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A configuration problem, located.
#[derive(Debug, Error, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

pub(crate) fn locate(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted name of the key whose line holds `offset` (`limits.max_nodes`),
/// so that a type error names the setting, not only its place.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let key = line.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let table = text[..start].lines().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    });
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// Where the setting `table.key` is written (its line's start), if it is.
fn offset_of_key(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if l.starts_with('[') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == table && l.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// Parses and validates a configuration file's text.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let at = |offset: usize, message: String| {
        let (line, column) = locate(text, offset);
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    };
    let config: Config = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim_end();
        match key_at(text, offset) {
            Some(key) => at(offset, format!("{key}: {message}")),
            None => at(offset, message.to_string()),
        }
    })?;
    validate(&config).map_err(|(offset, message)| {
        // Checks of plain values have no span: find the setting they name.
        let offset = match offset {
            0 => message
                .split([' ', ':'])
                .next()
                .and_then(|key| offset_of_key(text, key))
                .unwrap_or(0),
            o => o,
        };
        at(offset, message)
    })?;
    Ok(config)
}

impl Config {
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name.get_ref() == name)
    }

    pub fn flavor(&self, site: &str, flavor: &str) -> Option<&Flavor> {
        self.site(site)?
            .flavors
            .iter()
            .find(|f| f.name.get_ref() == flavor)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name.get_ref() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = parse("c.toml", "").unwrap();
        assert_eq!(
            c.pool.cloud_job_constraint.get_ref(),
            DEFAULT_JOB_CONSTRAINT
        );
        assert_eq!(c.condor.timeout, Duration::from_secs(60));
        assert!(c.pool.schedds.is_empty());
        assert!(c.sites.is_empty());
    }

    #[test]
    fn a_wrong_type_names_the_setting_and_its_place() {
        let e = parse(
            "c.toml",
            "[pool]\nname = \"p\"\n[limits]\nramp = 0.5\nmax_nodes = \"lots\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("c.toml:5:13: limits.max_nodes: invalid type"),
            "{e}"
        );
        let e = parse("c.toml", "[timers]\ncycle = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:2:9: timers.cycle: "), "{e}");
        // A value of the right type that makes no sense: its line.
        let e = parse("c.toml", "[pool]\nname = \"p\"\n[limits]\n\nramp = 7.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:5:1: limits.ramp = 7: must be"), "{e}");
        let e = parse("c.toml", "[condor]\ntimeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:2:1: condor.timeout must be more than 0"),
            "{e}"
        );
    }

    #[test]
    fn the_mesos_side_needs_the_pilots_agent_and_plain_addresses() {
        let e = parse("c.toml", "[mesos]\nmaster = \"http://m:5050\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:2:1: mesos.master: [mesos] is set but [pilot.mesos] is not"),
            "{e}"
        );
        let pilot = "[pilot.mesos]\nmaster = \"zk://z:2181/mesos\"\ncpus = 1\nmemory_mb = 512\n";
        for (bad, at) in [
            ("master = \"m:5050\"", "6:1: mesos.master"),
            (
                "master = \"http://m:5050\"\naurora = \"http://u:pw@a:8081\"",
                "7:1: mesos.aurora",
            ),
            (
                "master = \"http://m:5050\"\ntimeout = \"0s\"",
                "7:1: mesos.timeout must be more than 0",
            ),
            (
                "master = [\"http://m1:5050\", \"m2:5050\"]",
                "6:1: mesos.master = \"m2:5050\": must be an http://",
            ),
            ("master = []", "6:10: mesos.master: an empty list"),
            ("master = 5050", "6:10: mesos.master: expected an address"),
        ] {
            let e = parse("c.toml", &format!("{pilot}[mesos]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("c.toml:{at}")), "{e}");
        }
        let flavor = "[[sites]]\nname = \"s\"\nprovider = \"ec2\"\n[[sites.flavors]]\nname = \"tiny\"\ncpus = 1\nmemory_mb = 2048\ndisk_gb = 10\nprice_per_hour = 0.01\n";
        let e = parse("c.toml", &format!("{pilot}{flavor}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:9:8: flavor \"tiny\" (1 cpus, 2048 MB, 10 GB) is not larger than the [pilot.mesos] share (1 cpus, 512 MB, 0 GB)"),
            "{e}"
        );
        let ok = parse(
            "c.toml",
            &format!("{pilot}[mesos]\nmaster = \"http://m:5050\"\n"),
        )
        .unwrap();
        let m = ok.mesos.unwrap();
        assert_eq!((m.required, m.timeout), (false, Duration::from_secs(10)));
        assert_eq!(m.master, ["http://m:5050"]);
        let ha = parse(
            "c.toml",
            &format!("{pilot}[mesos]\nmaster = [\"http://m1:5050\", \"http://m2:5050\"]\n"),
        )
        .unwrap();
        assert_eq!(
            ha.mesos.unwrap().master,
            ["http://m1:5050", "http://m2:5050"]
        );
    }

    #[test]
    fn durations_read_as_an_admin_writes_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("m5").is_err());
    }

    #[test]
    fn group_clauses_quote_their_values() {
        let g = Group {
            name: Spanned::new(0..0, "g".into()),
            token: Some("a\"b".into()),
            accounting_group: None,
            sites: vec![],
            max_nodes: None,
        };
        assert_eq!(g.start_clause(), "TARGET.CloudburstToken =?= \"a\\\"b\"");
    }
}
