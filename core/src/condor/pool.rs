//! The pool snapshot: our cloud startds, read from their *slot* ads.
//!
//! Two things the real pool taught shape this module
//! (`tests/data/condor/live/cli/README.md`):
//! - in 25.x `condor_status -startd` returns StartD *daemon* ads with no
//!   State or Activity; slot ads come from plain `condor_status`;
//! - a busy partitionable slot still says `Unclaimed`/`Idle` (with
//!   `Cpus = 0`, `ChildState = {"Claimed"}`, `NumDynamicSlots = 1`), so a
//!   node is idle only when it has no dynamic slots, never because its
//!   p-slot says so.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::Serialize;
use thiserror::Error;

use super::job::string_attr;
use crate::classad::stream::{JsonReader, StreamError};
use crate::classad::{ClassAd, Expr};
use crate::model::attrs;

/// What the pool side needs of each slot ad.
/// HTCondor's `MachineMaxVacateTime` when a slot does not say (its
/// default, `10 * 60`, is an expression, not a literal).
pub const DEFAULT_MAX_VACATE: i64 = 600;

pub const SLOT_ATTRIBUTES: &[&str] = &[
    "Name",
    "Machine",
    "SlotType",
    "State",
    "Activity",
    "Cpus",
    "Memory",
    "Disk",
    "GPUs",
    "TotalSlotCpus",
    "TotalSlotMemory",
    "TotalSlotDisk",
    "TotalSlotGPUs",
    "NumDynamicSlots",
    "ChildState",
    "Draining",
    "DrainReason",
    "MaxJobRetirementTime",
    "RetirementTimeRemaining",
    "MachineMaxVacateTime",
    "EnteredCurrentState",
    "DaemonStartTime",
    "LastHeardFrom",
    "MyCurrentTime",
    "AuthenticatedIdentity",
    attrs::CLOUD_NODE,
    attrs::CLOUD_SITE,
    attrs::CLOUD_PROVIDER,
    attrs::CLOUD_FLAVOR,
    attrs::CLOUD_INSTANCE_ID,
    attrs::NODE_ID,
];

/// `condor_status` arguments for our cloud slots. No `-startd` (daemon ads
/// in 25.x); the constraint selects the cloud-tagged slots.
pub fn slot_query_args(pool: Option<&str>, constraint: &str) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(p) = pool {
        args.extend(["-pool".to_string(), p.to_string()]);
    }
    args.extend([
        "-json".to_string(),
        "-attributes".to_string(),
        SLOT_ATTRIBUTES.join(","),
        "-constraint".to_string(),
        constraint.to_string(),
    ]);
    args
}

/// `condor_status` arguments for the collector's own ad.
pub fn collector_query_args(pool: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(p) = pool {
        args.extend(["-pool".to_string(), p.to_string()]);
    }
    args.extend(
        [
            "-collector",
            "-json",
            "-attributes",
            "Name,DaemonStartTime,StatsLifetime,StatsLastUpdateTime,MyCurrentTime",
        ]
        .map(String::from),
    );
    args
}

/// `condor_status` arguments for the schedds the collector knows.
pub fn schedd_query_args(pool: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(p) = pool {
        args.extend(["-pool".to_string(), p.to_string()]);
    }
    args.extend(["-schedd", "-json", "-attributes", "Name,Machine"].map(String::from));
    args
}

/// What a startd is doing, from all its slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// No claims, not draining.
    Idle,
    /// At least one claim.
    Busy,
    /// Draining, jobs still retiring.
    Draining,
    /// Drained: no claims left, accepting nothing.
    Drained,
}

/// One cloud startd, assembled from its slot ads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Startd {
    /// The daemon name (`cloudpilot@vm`): what `condor_off -name` takes.
    pub name: String,
    /// Partitionable and static slot names (`slot1@cloudpilot@vm`): what
    /// `condor_drain` takes.
    pub slots: Vec<String>,
    pub machine: Option<String>,
    pub node_id: Option<String>,
    pub instance_id: Option<String>,
    pub site: Option<String>,
    pub provider: Option<String>,
    pub flavor: Option<String>,
    pub activity: Activity,
    /// Claims (dynamic slots, or claimed static slots).
    pub claims: u32,
    pub total_cpus: f64,
    pub free_cpus: f64,
    /// MiB
    pub total_memory: i64,
    pub free_memory: i64,
    /// KiB
    pub free_disk: i64,
    pub free_gpus: i64,
    pub drain_reason: Option<String>,
    /// Seconds of retirement its least protected running job has before a
    /// drain would start evicting it: the startd's own
    /// `RetirementTimeRemaining` of each claimed slot, less the vacate time
    /// (`MachineMaxVacateTime`, 600 s unless a literal says otherwise),
    /// since the real startd starts the eviction that long before the
    /// retirement ends (seen on 25.14: "Evicting job with 99s of retirement
    /// time remaining in order to accommodate this job's max vacate time of
    /// 600s"). Without that attribute, the smallest literal
    /// `MaxJobRetirementTime` among its slots less the vacate time.
    pub retirement_time: Option<i64>,
    pub daemon_start: Option<i64>,
    pub last_heard: Option<i64>,
    /// `AuthenticatedIdentity`: the token identity the pilot joined with.
    pub identity: Option<String>,
}

impl Startd {
    /// The key that ties the startd to a node we launched: our node id,
    /// else the instance id, else the daemon name.
    pub fn key(&self) -> &str {
        self.node_id
            .as_deref()
            .or(self.instance_id.as_deref())
            .unwrap_or(&self.name)
    }
}

/// The cloud startds the collector reported, by daemon name.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pool {
    pub startds: BTreeMap<String, Startd>,
}

#[derive(Debug, Error)]
pub enum PoolReadError {
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("slot ad #{index}: {problem}")]
    Slot { index: usize, problem: String },
}

fn int(ad: &ClassAd, name: &str) -> Option<i64> {
    match ad.get(name.as_bytes())? {
        Expr::Int(i) => Some(*i),
        Expr::Real(r) => Some(*r as i64),
        _ => None,
    }
}

fn num(ad: &ClassAd, name: &str) -> Option<f64> {
    match ad.get(name.as_bytes())? {
        Expr::Int(i) => Some(*i as f64),
        Expr::Real(r) => Some(*r),
        _ => None,
    }
}

fn boolean(ad: &ClassAd, name: &str) -> bool {
    matches!(ad.get(name.as_bytes()), Some(Expr::Bool(true)))
}

fn string(ad: &ClassAd, name: &str) -> Option<String> {
    string_attr(ad, name.as_bytes())
}

/// The daemon a slot belongs to: `slot1_2@cloudpilot@vm` → `cloudpilot@vm`;
/// `slot1@host` → `host`.
pub fn daemon_name(slot: &str) -> &str {
    match slot.split_once('@') {
        Some((first, rest)) if first.starts_with("slot") => rest,
        _ => slot,
    }
}

/// `ChildState = { "Claimed", ... }`: how many children hold a claim.
fn claimed_children(ad: &ClassAd) -> u32 {
    match ad.get(b"ChildState") {
        Some(Expr::List(items)) => items
            .iter()
            .filter(|e| !matches!(e, Expr::Str(s) if &s[..] == b"Unclaimed"))
            .count() as u32,
        _ => 0,
    }
}

/// Folds slot ads into startds. Pure.
pub fn assemble(slots: &[ClassAd]) -> Result<Pool, PoolReadError> {
    fold_slots(slots.iter().map(Ok))
}

/// Folds slot ads into startds as they are read, so memory follows the
/// pool's size, not the output's: a slot named twice counts once (the
/// first), and endless output costs only time until the tool's deadline.
fn fold_slots<A: std::borrow::Borrow<ClassAd>>(
    slots: impl IntoIterator<Item = Result<A, PoolReadError>>,
) -> Result<Pool, PoolReadError> {
    #[derive(Default)]
    struct Acc {
        /// Least retirement left among claimed slots, from the startd.
        claimed_retirement: Option<i64>,
        /// Least literal `MaxJobRetirementTime` among all slots.
        literal_retirement: Option<i64>,
        partitionable_claims: u32,
        dynamic_claims: u32,
        static_claims: u32,
        draining: bool,
        drained_idle: bool,
        drained_retiring: bool,
        slot_count: u32,
    }
    let mut pool = Pool::default();
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (i, ad) in slots.into_iter().enumerate() {
        let ad = ad?;
        let ad = ad.borrow();
        let name = string(ad, "Name").ok_or_else(|| PoolReadError::Slot {
            index: i + 1,
            problem: "Name is missing or not a string".into(),
        })?;
        if !seen.insert(name.clone()) {
            continue;
        }
        let daemon = daemon_name(&name).to_string();
        let slot_type = string(ad, "SlotType").unwrap_or_else(|| "Static".into());
        let state = string(ad, "State").unwrap_or_default();
        let activity = string(ad, "Activity").unwrap_or_default();
        let s = pool
            .startds
            .entry(daemon.clone())
            .or_insert_with(|| Startd {
                name: daemon.clone(),
                slots: Vec::new(),
                machine: None,
                node_id: None,
                instance_id: None,
                site: None,
                provider: None,
                flavor: None,
                activity: Activity::Idle,
                claims: 0,
                total_cpus: 0.0,
                free_cpus: 0.0,
                total_memory: 0,
                free_memory: 0,
                free_disk: 0,
                free_gpus: 0,
                drain_reason: None,
                retirement_time: None,
                daemon_start: None,
                last_heard: None,
                identity: None,
            });
        let a = acc.entry(daemon).or_default();
        a.slot_count += 1;
        s.machine = s.machine.take().or_else(|| string(ad, "Machine"));
        s.node_id = s.node_id.take().or_else(|| string(ad, attrs::NODE_ID));
        s.instance_id = s
            .instance_id
            .take()
            .or_else(|| string(ad, attrs::CLOUD_INSTANCE_ID));
        s.site = s.site.take().or_else(|| string(ad, attrs::CLOUD_SITE));
        s.provider = s
            .provider
            .take()
            .or_else(|| string(ad, attrs::CLOUD_PROVIDER));
        s.flavor = s.flavor.take().or_else(|| string(ad, attrs::CLOUD_FLAVOR));
        s.identity = s
            .identity
            .take()
            .or_else(|| string(ad, "AuthenticatedIdentity"));
        s.daemon_start = s.daemon_start.max(int(ad, "DaemonStartTime"));
        s.last_heard = s.last_heard.max(int(ad, "LastHeardFrom"));
        let vacate = int(ad, "MachineMaxVacateTime").unwrap_or(DEFAULT_MAX_VACATE);
        let min = |acc: Option<i64>, v: i64| Some(acc.map_or(v, |x| x.min(v)));
        if let Some(r) = int(ad, "MaxJobRetirementTime") {
            a.literal_retirement = min(a.literal_retirement, r.saturating_sub(vacate));
        }
        let slot_claimed = matches!(state.as_str(), "Claimed" | "Preempting");
        if let (true, Some(r)) = (slot_claimed, int(ad, "RetirementTimeRemaining")) {
            a.claimed_retirement = min(a.claimed_retirement, r.saturating_sub(vacate));
        }
        if boolean(ad, "Draining") || state == "Drained" {
            a.draining = true;
            if s.drain_reason.is_none() {
                s.drain_reason = string(ad, "DrainReason");
            }
        }
        if state == "Drained" {
            if activity == "Retiring" {
                a.drained_retiring = true;
            } else {
                a.drained_idle = true;
            }
        }
        match slot_type.as_str() {
            "Dynamic" => {
                if state != "Unclaimed" {
                    a.dynamic_claims += 1;
                }
            }
            "Partitionable" => {
                s.slots.push(name);
                let children = claimed_children(ad);
                let dynamic = int(ad, "NumDynamicSlots").unwrap_or(0).max(0) as u32;
                a.partitionable_claims += children.max(dynamic);
                s.total_cpus += num(ad, "TotalSlotCpus").unwrap_or(0.0);
                s.free_cpus += num(ad, "Cpus").unwrap_or(0.0);
                s.total_memory += int(ad, "TotalSlotMemory").unwrap_or(0);
                s.free_memory += int(ad, "Memory").unwrap_or(0);
                s.free_disk += int(ad, "Disk").unwrap_or(0);
                s.free_gpus += int(ad, "GPUs").unwrap_or(0);
            }
            _ => {
                s.slots.push(name);
                let claimed = matches!(state.as_str(), "Claimed" | "Matched" | "Preempting");
                let cpus = num(ad, "TotalSlotCpus").or(num(ad, "Cpus")).unwrap_or(0.0);
                let memory = int(ad, "TotalSlotMemory")
                    .or(int(ad, "Memory"))
                    .unwrap_or(0);
                s.total_cpus += cpus;
                s.total_memory += memory;
                if claimed {
                    a.static_claims += 1;
                } else {
                    s.free_cpus += cpus;
                    s.free_memory += memory;
                    s.free_disk += int(ad, "Disk").unwrap_or(0);
                    s.free_gpus += int(ad, "GPUs").unwrap_or(0);
                }
            }
        }
    }
    for (name, a) in acc {
        let s = pool
            .startds
            .get_mut(&name)
            .expect("every startd has an accumulator");
        s.slots.sort();
        // The p-slot's summary and the dynamic slot ads may disagree for an
        // update interval; a claim counted by either is a claim.
        s.claims = a.partitionable_claims.max(a.dynamic_claims) + a.static_claims;
        s.retirement_time = a.claimed_retirement.or(a.literal_retirement);
        s.activity = if a.draining {
            if s.claims == 0 && a.drained_idle && !a.drained_retiring {
                Activity::Drained
            } else {
                Activity::Draining
            }
        } else if s.claims > 0 {
            Activity::Busy
        } else {
            Activity::Idle
        };
    }
    Ok(pool)
}

/// Reads `condor_status -json` slot ads and assembles them.
pub fn read_pool(out: &mut dyn BufRead) -> Result<Pool, PoolReadError> {
    fold_slots(JsonReader::new(out).map(|ad| ad.map_err(PoolReadError::from)))
}

/// The collector's own ad: when it started, so that a young collector
/// (startds not yet re-advertised) is not read as lost nodes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Collector {
    pub name: Option<String>,
    /// Seconds since the epoch; `None` when the ad does not tell.
    pub start_time: Option<i64>,
}

/// Reads the collector's ad. The 25.x collector ad carries no
/// `DaemonStartTime` (captured), but its statistics window does:
/// `StatsLastUpdateTime - StatsLifetime` is when it started.
pub fn read_collector(out: &mut dyn BufRead) -> Result<Collector, PoolReadError> {
    let mut ads = JsonReader::new(out);
    let first = ads.next().transpose()?;
    // Anything after the collector's own ad is read and dropped (memory
    // stays flat however much a broken tool prints).
    for ad in ads {
        ad?;
    }
    let Some(ad) = first.as_ref() else {
        return Err(PoolReadError::Slot {
            index: 0,
            problem: "the collector returned no ad of its own".into(),
        });
    };
    let start_time = int(ad, "DaemonStartTime").or_else(|| {
        let lifetime = int(ad, "StatsLifetime")?;
        let at = int(ad, "StatsLastUpdateTime").or_else(|| int(ad, "MyCurrentTime"))?;
        Some(at - lifetime)
    });
    Ok(Collector {
        name: string(ad, "Name"),
        start_time,
    })
}

/// Reads the schedd names from `condor_status -schedd -json`.
pub fn read_schedds(out: &mut dyn BufRead) -> Result<Vec<String>, PoolReadError> {
    let mut names = std::collections::BTreeSet::new();
    for (i, ad) in JsonReader::new(out).enumerate() {
        let ad = ad?;
        names.insert(string(&ad, "Name").ok_or_else(|| PoolReadError::Slot {
            index: i + 1,
            problem: "schedd ad without a Name".into(),
        })?);
    }
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classad::parse_ad;

    fn ads(texts: &[&str]) -> Vec<ClassAd> {
        texts
            .iter()
            .map(|t| parse_ad(t.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn a_busy_partitionable_slot_that_says_idle_is_busy() {
        let pool = assemble(&ads(&[
            r#"[Name = "slot1@cloudpilot@vm"; SlotType = "Partitionable"; State = "Unclaimed";
                Activity = "Idle"; Cpus = 0; TotalSlotCpus = 1; NumDynamicSlots = 1;
                ChildState = {"Claimed"}; CloudInstanceID = "i-1"]"#,
        ]))
        .unwrap();
        let s = &pool.startds["cloudpilot@vm"];
        assert_eq!(s.activity, Activity::Busy);
        assert_eq!(s.claims, 1);
        assert_eq!(s.slots, ["slot1@cloudpilot@vm"]);
        assert_eq!(s.key(), "i-1");
    }

    #[test]
    fn a_slot_listed_twice_counts_once() {
        let p = r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Unclaimed";
                    Cpus = 4; TotalSlotCpus = 4]"#;
        let pool = assemble(&ads(&[p, p, p])).unwrap();
        let s = &pool.startds["n@h"];
        assert_eq!(s.slots, ["slot1@n@h"]);
        assert_eq!((s.total_cpus, s.free_cpus), (4.0, 4.0));
    }

    #[test]
    fn dynamic_slot_ads_count_even_before_the_pslot_summary_catches_up() {
        let pool = assemble(&ads(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Unclaimed"; NumDynamicSlots = 0]"#,
            r#"[Name = "slot1_1@n@h"; SlotType = "Dynamic"; State = "Claimed"; Activity = "Busy"]"#,
        ]))
        .unwrap();
        assert_eq!(pool.startds["n@h"].activity, Activity::Busy);
    }

    #[test]
    fn drained_and_draining_are_told_apart() {
        let drained = assemble(&ads(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Drained"; Activity = "Idle";
                Draining = true; DrainReason = "cloudburst: idle"]"#,
        ]))
        .unwrap();
        assert_eq!(drained.startds["n@h"].activity, Activity::Drained);
        assert_eq!(
            drained.startds["n@h"].drain_reason.as_deref(),
            Some("cloudburst: idle")
        );
        let retiring = assemble(&ads(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Drained"; Activity = "Retiring"; NumDynamicSlots = 1]"#,
            r#"[Name = "slot1_1@n@h"; SlotType = "Dynamic"; State = "Claimed"; Activity = "Retiring"]"#,
        ]))
        .unwrap();
        assert_eq!(retiring.startds["n@h"].activity, Activity::Draining);
        let idle = assemble(&ads(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Unclaimed"; Activity = "Idle"; NumDynamicSlots = 0; ChildState = {}]"#,
        ]))
        .unwrap();
        assert_eq!(idle.startds["n@h"].activity, Activity::Idle);
    }

    #[test]
    fn static_slots_are_busy_when_claimed() {
        let pool = assemble(&ads(&[
            r#"[Name = "slot1@h"; SlotType = "Static"; State = "Claimed"; Cpus = 1; Memory = 100]"#,
            r#"[Name = "slot2@h"; SlotType = "Static"; State = "Unclaimed"; Cpus = 1; Memory = 100]"#,
        ]))
        .unwrap();
        let s = &pool.startds["h"];
        assert_eq!((s.activity, s.claims), (Activity::Busy, 1));
        assert_eq!((s.total_cpus, s.free_cpus, s.free_memory), (2.0, 1.0, 100));
    }

    #[test]
    fn slot_names_map_to_daemon_names() {
        assert_eq!(daemon_name("slot1_2@cloudpilot@vm"), "cloudpilot@vm");
        assert_eq!(daemon_name("slot1@host.example.org"), "host.example.org");
        assert_eq!(daemon_name("host.example.org"), "host.example.org");
    }

    #[test]
    fn a_collector_without_daemon_start_time_dates_itself_by_its_statistics() {
        let text = br#"[
{
  "MyCurrentTime": 1795313078,
  "Name": "personal-condor-127.0.0.1@vm",
  "StatsLastUpdateTime": 1795313099,
  "StatsLifetime": 21
}
]
"#;
        let c = read_collector(&mut &text[..]).unwrap();
        assert_eq!(c.start_time, Some(1795313078));
    }
}
