//! `cloudburst snapshot` (read the pool once and save exactly what the
//! tools printed) and `cloudburst plan --snapshot` (replay it offline).
//! Both print the same tables, so what an admin sees live is what a bug
//! report replays.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::condor::{Activity, Condor, JobStatus, PoolSnapshot};
use crate::config::Config;
use crate::observed::Observed;
use crate::snapshot::{Recorder, Replay};

/// Reads the pool through the recorder and saves the snapshot.
pub fn take(config: &Config, out_dir: &Path, now: i64, mut out: impl Write) -> Result<()> {
    let recorder = Recorder::create(out_dir)?;
    let snap = Condor::new(config, &recorder).snapshot(now);
    let manifest = recorder.finish(now)?;
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
                    let mut ptrs: Vec<*const _> =
                        jobs.iter().map(|j| std::sync::Arc::as_ptr(&j.ad)).collect();
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
        .filter_map(|j| j.request_problem.as_ref().map(|p| (j.id, p)))
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
