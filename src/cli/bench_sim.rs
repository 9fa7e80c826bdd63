//! `cloudburst bench simulate`: how long the comparison takes on a real
//! trace, per policy, against the targets: all four policies on 20,000
//! jobs in under 30 s, and (with `--whole`) the whole trace in under 5
//! minutes. The simulation is deterministic, so only the time varies.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::sim::policy::Kind;
use crate::sim::trace_file::{self as trace, Marking};
use crate::sim::{CloudModel, Setup};

pub struct SimBench {
    pub trace: PathBuf,
    /// The first this many jobs (that ran) of the trace.
    pub jobs: usize,
    /// Also the whole trace.
    pub whole: bool,
}

pub fn run(cfg: &SimBench, mut out: impl Write) -> Result<()> {
    let t = trace::read(
        &cfg.trace,
        trace::sniff(&cfg.trace)?,
        Marking {
            cloud_share: 0.6,
            seed: 2026,
        },
    )
    .with_context(|| format!("reading {}", cfg.trace.display()))?;
    let config = crate::config::parse("(embedded simulation site)", crate::sim::DEFAULT_CONFIG)?;
    let mut runs = vec![(format!("first {} jobs", cfg.jobs), cfg.jobs, 30.0)];
    if cfg.whole {
        runs.push(("the whole trace".to_string(), t.jobs.len(), 300.0));
    }
    for (what, n, target) in runs {
        let jobs: Vec<_> = t.jobs.iter().take(n).copied().collect();
        let setup = Setup {
            config: config.clone(),
            jobs,
            cloud: CloudModel::default(),
            seed: 2026,
            local_cores: 256,
            policies: Kind::ALL.to_vec(),
        };
        let began = Instant::now();
        let r = crate::sim::compare(&setup, |_, _| {})?;
        let wall = began.elapsed().as_secs_f64();
        writeln!(
            out,
            "bench simulate: {} ({} jobs, {:.0} days) of {}: all four policies in {wall:.1} s (target < {target:.0} s: {}); {}; peak RSS {} KiB",
            what,
            setup.jobs.len(),
            r.span as f64 / 86_400.0,
            cfg.trace.display(),
            if wall < target { "met" } else { "NOT met" },
            r.timing_line(),
            super::bench::peak_rss_kib().map_or("unknown".into(), |k| k.to_string()),
        )?;
    }
    Ok(())
}
