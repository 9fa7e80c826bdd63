//! `cloudburst snapshot` (read the pool once and save exactly what the
//! tools printed) and `cloudburst plan --snapshot` (replay it offline).
//! Both print the same tables, so what an admin sees live is what a bug
//! report replays.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::condor::presence::Presence;
use crate::condor::{Activity, Condor, JobStatus, PoolSnapshot};
use crate::config::Config;
use crate::decide::{decide, Decision, Situation};
use crate::demand::{self, Demand, FlavorOption};
use crate::lifecycle::{self, advance, CloudView, CondorView, Node};
use crate::observed::Observed;
use crate::planner::Plan;
use crate::snapshot::{Recorder, Replay};

/// The registry's nodes, saved beside the tool outputs.
const NODES: &str = "nodes.json";

/// Reads the pool through the recorder and saves the snapshot.
pub fn take(config: &Config, out_dir: &Path, now: i64, mut out: impl Write) -> Result<()> {
    let recorder = Recorder::create(out_dir)?;
    let snap = Condor::new(config, &recorder).snapshot(now);
    let manifest = recorder.finish(now)?;
    let registry = &config.agent.registry;
    if registry.exists() {
        let nodes = crate::registry::Registry::open(registry)?.nodes()?;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out_dir.join(NODES))?;
        serde_json::to_writer_pretty(f, &nodes)?;
    }
    render(&snap, &mut out)?;
    writeln!(
        out,
        "\nsaved {} command outputs to {} (replay with: cloudburst plan --snapshot {})",
        manifest.commands.len(),
        out_dir.display(),
        out_dir.display()
    )?;
    Ok(())
}

/// Replays a snapshot through the same readers.
pub fn replay(config: &Config, dir: &Path, mut out: impl Write) -> Result<()> {
    let replay = Replay::open(dir)?;
    let now = replay.manifest().taken_at;
    let snap = Condor::new(config, &replay).snapshot(now);
    writeln!(
        out,
        "snapshot {} (taken at {} by cloudburst {})\n",
        dir.display(),
        now,
        replay.manifest().cloudburst
    )?;
    render(&snap, &mut out)?;
    let nodes: Vec<Node> = match std::fs::read(dir.join(NODES)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(NODES).display()))?,
        Err(_) => Vec::new(),
    };
    let (demand, plan) = offline_plan(config, &snap, nodes, now);
    writeln!(out)?;
    render_demand(demand.as_ref(), &demand::flavor_options(config), &mut out)?;
    writeln!(out)?;
    render_plan(&plan, &mut out)?;
    Ok(())
}

/// The decision a cycle would take on this snapshot. The cloud inventory
/// is not in a condor snapshot: the registry's nodes stand for it, so no
/// node is declared lost offline.
pub fn offline_plan(
    config: &Config,
    snap: &PoolSnapshot,
    mut nodes: Vec<Node>,
    now: i64,
) -> (Option<Demand>, Plan) {
    let options: Vec<FlavorOption> = demand::flavor_options(config);
    let mut presence = Presence::new(config.pool.startd_missing_grace.as_secs() as i64);
    let keys: Option<Vec<String>> = snap
        .pool
        .known()
        .map(|p| p.startds.values().map(|s| s.key().to_string()).collect());
    let start = snap.collector.known().and_then(|c| c.start_time);
    presence.record(
        keys.as_ref().map(|k| k.iter().map(String::as_str)),
        start,
        now,
    );
    let startds = snap.pool.known().map(crate::pairing::StartdIndex::new);
    for n in &mut nodes {
        let startd = startds.as_ref().and_then(|s| s.of(n));
        let condor = CondorView::from(startd, presence.status(&n.id), snap.pool.is_known());
        if let Some(t) = advance(n, CloudView::Unknown, condor, &config.timers, now) {
            lifecycle::apply(n, &t);
        }
    }
    let spend = crate::registry::spend(&nodes, crate::registry::month_start(now), now);
    let backoff = Default::default();
    let Decision { demand, mut plan } = decide(
        &Situation {
            now,
            config,
            options: &options,
            startds: startds.as_ref(),
            cloud_known: true,
            nodes: &nodes,
            month_spend: spend,
            backoff: &backoff,
            foreign: &Default::default(),
            paused: &Default::default(),
            mesos: None,
        },
        snap.queue_known().then(|| snap.jobs()),
    );
    plan.notes.push(
        "offline: the cloud inventory is not in a condor snapshot; the registry's nodes stand for it".into(),
    );
    (demand, plan)
}

fn render_demand(
    demand: Option<&Demand>,
    options: &[FlavorOption],
    out: &mut impl Write,
) -> Result<()> {
    writeln!(out, "DEMAND (idle cloud jobs by shape)")?;
    let Some(d) = demand else {
        writeln!(out, "UNKNOWN: the queue could not be read")?;
        return Ok(());
    };
    if d.shapes.is_empty() {
        writeln!(out, "(no idle cloud jobs)")?;
    }
    for s in &d.shapes {
        let eg = s
            .examples
            .first()
            .map(|j| j.to_string())
            .unwrap_or_default();
        let runs_on = if s.options.is_empty() {
            format!("NO FLAVOUR: {}", s.unmatched.as_deref().unwrap_or("?"))
        } else {
            s.options
                .iter()
                .map(|&i| options[i].label())
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "{:>7} jobs (e.g. {eg:<10}) {:<24} {runs_on}",
            s.idle,
            s.request.to_string()
        )?;
    }
    for (id, p) in d.problems.iter().take(5) {
        writeln!(out, "  job {id}: {p}")?;
    }
    Ok(())
}

fn render_plan(plan: &Plan, out: &mut impl Write) -> Result<()> {
    writeln!(out, "PLAN")?;
    if plan.actions.is_empty() {
        writeln!(out, "(nothing to do)")?;
    }
    for a in &plan.actions {
        writeln!(out, "{a}")?;
    }
    for n in &plan.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

fn observed_text<T>(o: &Observed<T>, known: impl FnOnce(&T) -> String) -> String {
    match o {
        Observed::Known(t) => known(t),
        Observed::Unknown(u) => format!("UNKNOWN: {u}"),
    }
}

/// The human view of a snapshot: queues, nodes, and what a cycle may do.
pub fn render(s: &PoolSnapshot, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "collector: {}",
        observed_text(&s.collector, |c| format!(
            "{} (up since {})",
            c.name.as_deref().unwrap_or("?"),
            c.start_time
                .map_or("unknown".to_string(), |t| t.to_string())
        ))
    )?;
    writeln!(
        out,
        "schedds:   {}",
        observed_text(&s.schedds, |v| v.join(", "))
    )?;
    writeln!(out, "\nQUEUE (cloud jobs)")?;
    writeln!(
        out,
        "{:<32} {:>8} {:>8} {:>8}  STATE",
        "SCHEDD", "IDLE", "RUNNING", "AD-GROUPS"
    )?;
    for q in &s.queues {
        match &q.jobs {
            Observed::Known(jobs) => {
                let idle = jobs.iter().filter(|j| j.status == JobStatus::Idle).count();
                let running = jobs
                    .iter()
                    .filter(|j| j.status == JobStatus::Running)
                    .count();
                let groups = {
                    let mut ptrs: Vec<*const _> = jobs
                        .iter()
                        .map(|j| std::sync::Arc::as_ptr(&j.shape))
                        .collect();
                    ptrs.sort();
                    ptrs.dedup();
                    ptrs.len()
                };
                writeln!(
                    out,
                    "{:<32} {:>8} {:>8} {:>8}  ok",
                    q.schedd, idle, running, groups
                )?;
            }
            Observed::Unknown(u) => writeln!(
                out,
                "{:<32} {:>8} {:>8} {:>8}  UNKNOWN: {u}",
                q.schedd, "?", "?", "?"
            )?,
        }
    }
    let problems: Vec<_> = s
        .jobs()
        .filter_map(|j| j.request_problem().map(|p| (j.id, p)))
        .collect();
    for (id, p) in problems.iter().take(10) {
        writeln!(out, "  job {id}: {p}")?;
    }
    if problems.len() > 10 {
        writeln!(
            out,
            "  ... and {} more jobs with request problems",
            problems.len() - 10
        )?;
    }

    writeln!(out, "\nCLOUD STARTDS")?;
    match &s.pool {
        Observed::Unknown(u) => writeln!(out, "UNKNOWN: {u}")?,
        Observed::Known(pool) if pool.startds.is_empty() => writeln!(out, "(none)")?,
        Observed::Known(pool) => {
            writeln!(
                out,
                "{:<36} {:<16} {:<10} {:>6} {:>11}  INSTANCE",
                "STARTD", "SITE", "ACTIVITY", "CLAIMS", "CPUS-FREE"
            )?;
            for st in pool.startds.values() {
                writeln!(
                    out,
                    "{:<36} {:<16} {:<10} {:>6} {:>5}/{:<5}  {}",
                    st.name,
                    st.site.as_deref().unwrap_or("-"),
                    format!("{:?}", st.activity).to_lowercase(),
                    st.claims,
                    st.free_cpus,
                    st.total_cpus,
                    st.instance_id.as_deref().unwrap_or("-")
                )?;
            }
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for st in pool.startds.values() {
                let k = match st.activity {
                    Activity::Idle => "idle",
                    Activity::Busy => "busy",
                    Activity::Draining => "draining",
                    Activity::Drained => "drained",
                };
                *by.entry(k).or_default() += 1;
            }
            let parts: Vec<String> = by.iter().map(|(k, v)| format!("{v} {k}")).collect();
            writeln!(out, "total: {}", parts.join(", "))?;
        }
    }

    writeln!(out)?;
    if s.queue_known() && s.pool.is_known() {
        writeln!(
            out,
            "this cycle may scale up and down: every source answered"
        )?;
    } else {
        let mut blind = Vec::new();
        if !s.queue_known() {
            blind.push("the queue");
        }
        if !s.pool.is_known() {
            blind.push("the pool");
        }
        writeln!(
            out,
            "NO SCALE-DOWN this cycle: {} could not be read (unknown is not empty)",
            blind.join(" and ")
        )?;
    }
    Ok(())
}
