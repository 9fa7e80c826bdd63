//! `status.json` (written by the agent after each cycle) and the
//! `cloudburst status` table (read from it and the registry, so it works
//! while the agent runs: the registry is in WAL mode).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::cycle::Report;
use crate::lifecycle::{Node, State};
use crate::registry::{spend, Registry};

pub fn path(registry: &Path) -> PathBuf {
    registry.with_file_name("status.json")
}

/// What `status` needs of the last cycle.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LastCycle {
    pub at: i64,
    pub cycle_ms: u128,
    pub config: String,
    pub idle_jobs: u64,
    /// (job shape, count, why no flavour can run it)
    pub unmatched: Vec<(String, u64, String)>,
    /// Launches planned, by site/flavour.
    pub launches: BTreeMap<String, u64>,
    pub notes: Vec<String>,
    pub actions: Vec<String>,
    /// The Mesos side, when `[mesos]` is configured.
    #[serde(default)]
    pub mesos: Option<crate::mesos::Summary>,
}

pub fn write(path: &Path, config: &Path, r: &Report, cycle_ms: u128) -> Result<()> {
    let mut launches = BTreeMap::new();
    for a in &r.plan.actions {
        if let crate::planner::Action::Launch { site, flavor, .. } = a {
            *launches.entry(format!("{site}/{flavor}")).or_insert(0) += 1;
        }
    }
    let last = LastCycle {
        at: r.now,
        cycle_ms,
        config: config.display().to_string(),
        idle_jobs: r.idle_jobs,
        unmatched: r.unmatched.clone(),
        launches,
        notes: r.notes.clone(),
        actions: r
            .done
            .iter()
            .map(|d| format!("{} -> {}", d.action, d.outcome))
            .collect(),
        mesos: r.mesos.clone(),
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&last)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Everything `status` shows, also as `--json`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub pool: String,
    pub now: i64,
    pub last_cycle: Option<LastCycle>,
    pub nodes: Vec<Node>,
    pub spend_this_hour: f64,
    pub spend_month_to_date: f64,
    /// Nodes stuck terminating (`timers.terminate_timeout`): the admin's.
    pub stuck_terminating: Vec<String>,
    /// Sites whose launches are paused: site → (until, why).
    pub paused_sites: BTreeMap<String, (i64, String)>,
}

pub fn gather(config: &Config, now: i64) -> Result<Status> {
    let mut reg = Registry::open(&config.agent.registry)?;
    gather_from(&mut reg, config, now)
}

pub fn gather_from(reg: &mut Registry, config: &Config, now: i64) -> Result<Status> {
    let reg_path = &config.agent.registry;
    let all = reg.nodes()?;
    let month = reg.month_spend(now)?;
    let last = std::fs::read(path(reg_path))
        .ok()
        .and_then(|b| serde_json::from_slice::<LastCycle>(&b).ok());
    let hour = spend(&all, now - 3600, now);
    let stuck_terminating = all
        .iter()
        .filter(|n| crate::planner::terminate_stuck(n, now, &config.timers))
        .map(|n| n.id.clone())
        .collect();
    let paused_sites = reg
        .site_pauses()?
        .into_iter()
        .filter(|(_, (until, _))| *until > now)
        .collect();
    Ok(Status {
        pool: config.pool.name.get_ref().clone(),
        now,
        last_cycle: last,
        nodes: all.into_iter().filter(|n| n.state != State::Gone).collect(),
        spend_this_hour: hour,
        spend_month_to_date: month,
        stuck_terminating,
        paused_sites,
    })
}

/// `3m`, `2h05m`, `4d3h`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// One line per live node.
pub fn node_table(st: &Status) -> String {
    let mut o = String::from("NODE                 SITE         FLAVOR         STATE        IN STATE  AGE       INSTANCE\n");
    for n in &st.nodes {
        let _ = writeln!(
            o,
            "{:<20} {:<12} {:<14} {:<12} {:>8}  {:<8}  {}",
            n.id,
            n.site,
            n.flavor,
            n.state.name(),
            age(st.now - n.since),
            age(st.now - n.created_at),
            n.instance_id.as_deref().unwrap_or("-")
        );
    }
    o
}

/// The Mesos side in two lines: the master's agents on our nodes, and
/// the frameworks' waiting tasks.
fn mesos_lines(m: &crate::mesos::Summary) -> String {
    let count = |by: &BTreeMap<String, u64>| {
        if by.is_empty() {
            "none".to_string()
        } else {
            by.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let master = match &m.master_unknown {
        Some(why) => format!("master UNREADABLE ({why}): no node is drained"),
        None => format!(
            "{} agents on our nodes, {} busy with {} tasks",
            m.agents, m.busy_agents, m.tasks
        ),
    };
    let queue = match &m.frameworks_unknown {
        Some(why) => format!("frameworks UNREADABLE ({why}): nothing bought for Mesos"),
        None => format!(
            "tasks waiting: {}; in back-off: {}",
            count(&m.waiting),
            count(&m.delayed)
        ),
    };
    format!("MESOS: {master}\n       {queue}\n")
}

/// The table an admin reads.
pub fn render(st: &Status, config: &Config) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "cloudburst status: pool {}", st.pool);
    match &st.last_cycle {
        Some(c) => {
            let _ = writeln!(
                o,
                "last cycle {} ago, took {} ms",
                age(st.now - c.at),
                c.cycle_ms
            );
        }
        None => o.push_str("no cycle recorded yet (is the agent running?)\n"),
    }

    o.push_str("\nSITE                 PROVIDER    NODES  CORES   $/HOUR\n");
    for site in &config.sites {
        let name = site.name.get_ref();
        let nodes: Vec<&Node> = st.nodes.iter().filter(|n| &n.site == name).collect();
        let cores: u32 = nodes
            .iter()
            .filter_map(|n| config.flavor(&n.site, &n.flavor))
            .map(|f| f.cpus)
            .sum();
        let cost: f64 = nodes.iter().map(|n| n.price_per_hour).sum();
        let _ = writeln!(
            o,
            "{name:<20} {:<10} {:>6} {cores:>6} {cost:>8.2}",
            site.provider.name(),
            nodes.len()
        );
    }

    o.push_str("\nSTATE        NODES  OLDEST\n");
    let mut by_state: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for n in &st.nodes {
        let e = by_state.entry(n.state.name()).or_insert((0, 0));
        e.0 += 1;
        e.1 = e.1.max(st.now - n.since);
    }
    if by_state.is_empty() {
        o.push_str("(no nodes)\n");
    }
    for (state, (count, oldest)) in &by_state {
        let _ = writeln!(o, "{state:<12} {count:>5}  {}", age(*oldest));
    }
    if !st.paused_sites.is_empty() || !st.stuck_terminating.is_empty() {
        o.push_str("\nNEEDS AN ADMIN\n");
    }
    for (site, (until, why)) in &st.paused_sites {
        let _ = writeln!(
            o,
            "site {site}: launches paused for {} more ({why}); a reload lifts it",
            age(until - st.now)
        );
    }
    for id in &st.stuck_terminating {
        if let Some(n) = st.nodes.iter().find(|n| &n.id == id) {
            let _ = writeln!(
                o,
                "node {id}: terminate sent {} times, its instance {} still exists after {}",
                n.terminate_attempts,
                n.instance_id.as_deref().unwrap_or("?"),
                age(st.now - n.since)
            );
        }
    }

    if !st.nodes.is_empty() {
        o.push_str(
            "\nNODE                 SITE         FLAVOR         STATE        IN STATE  INSTANCE\n",
        );
        for n in &st.nodes {
            let _ = writeln!(
                o,
                "{:<20} {:<12} {:<14} {:<12} {:>8}  {}",
                n.id,
                n.site,
                n.flavor,
                n.state.name(),
                age(st.now - n.since),
                n.instance_id.as_deref().unwrap_or("-")
            );
        }
    }

    if let Some(c) = &st.last_cycle {
        let _ = writeln!(o, "\nDEMAND: {} idle cloud jobs", c.idle_jobs);
        for (flavor, n) in &c.launches {
            let _ = writeln!(o, "  launching {n} x {flavor}");
        }
        if let Some(m) = &c.mesos {
            o.push_str(&mesos_lines(m));
        }
        if !c.unmatched.is_empty() {
            o.push_str("\nUNMATCHED JOBS  (no configured flavour can run them)\nJOBS  SHAPE                          WHY\n");
            for (shape, n, why) in &c.unmatched {
                let _ = writeln!(o, "{n:>4}  {shape:<30} {why}");
            }
        }
    }
    let _ = writeln!(
        o,
        "\nSPEND: ${:.2} in the last hour, ${:.2} this month (limits ${:.2}/hour, ${:.2}/month)",
        st.spend_this_hour,
        st.spend_month_to_date,
        config.limits.max_cost_per_hour,
        config.limits.max_cost_per_month
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_an_admin_writes_them() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(150), "2m");
        assert_eq!(age(7500), "2h05m");
        assert_eq!(age(3 * 86400 + 7200), "3d2h");
        assert_eq!(age(-5), "0s");
    }
}
