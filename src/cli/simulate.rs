//! `cloudburst simulate`: replay a workload against cloudburst and the
//! baselines, print the comparison and write `report.html`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::sim::policy::Kind;
use crate::sim::trace_file::{self as trace, Format, Marking};
use crate::sim::workload::{self, Workload};
use crate::sim::{report, CloudModel, Setup};

pub struct Args {
    pub trace: Option<PathBuf>,
    pub format: Option<Format>,
    pub config: Option<PathBuf>,
    pub policy: String,
    pub report: PathBuf,
    pub seed: u64,
    pub days: Option<f64>,
    pub skip_days: f64,
    pub cloud_share: f64,
    pub jobs_per_day: f64,
    pub local_cores: u64,
    pub cloud: CloudModel,
    /// Also run the knob sweep.
    pub sweep: bool,
}

/// `90-240` (seconds).
pub fn parse_range(text: &str) -> Result<(i64, i64)> {
    let (a, b) = text
        .split_once('-')
        .with_context(|| format!("{text:?}: give a range of seconds like 90-240"))?;
    let (a, b): (i64, i64) = (a.trim().parse()?, b.trim().parse()?);
    if a < 0 || b < a {
        bail!("{text:?}: the range must be 0 <= low <= high");
    }
    Ok((a, b))
}

/// Draws a progress line on stderr when it is a terminal.
struct Progress {
    on: bool,
    last: i64,
}

impl Progress {
    fn show(&mut self, what: &str, fraction: f64) {
        if !self.on {
            return;
        }
        let pct = (fraction * 100.0) as i64;
        if pct == self.last {
            return;
        }
        self.last = pct;
        let filled = (fraction * 30.0) as usize;
        eprint!(
            "\r{what:<11} [{}{}] {pct:>3}%",
            "#".repeat(filled),
            " ".repeat(30 - filled)
        );
        if fraction >= 1.0 {
            eprintln!();
            self.last = -1;
        }
    }
}

pub fn run(args: &Args, mut out: impl Write) -> Result<()> {
    let mut config = match &args.config {
        Some(p) => super::load_config(Some(p))?,
        None => crate::config::parse("(embedded simulation site)", crate::sim::DEFAULT_CONFIG)?,
    };
    // The simulated world has no Mesos: a site config's [mesos] would read
    // as an unreachable master and hold every node.
    if config.mesos.take().is_some() {
        writeln!(
            out,
            "note: [mesos] is ignored; the simulator models the condor side only"
        )?;
    }
    let policies: Vec<Kind> = if args.policy == "all" {
        Kind::ALL.to_vec()
    } else {
        args.policy
            .split(',')
            .map(|p| {
                Kind::parse(p.trim()).with_context(|| {
                    format!("unknown policy {p:?} (cloudburst, static, feedback, annex, all)")
                })
            })
            .collect::<Result<_>>()?
    };
    let (mut jobs, source, skipped) = match &args.trace {
        Some(path) => {
            let format = match args.format {
                Some(f) => f,
                None => trace::sniff(path)?,
            };
            let t = trace::read(
                path,
                format,
                Marking {
                    cloud_share: args.cloud_share,
                    seed: args.seed,
                },
            )?;
            (t.jobs, path.display().to_string(), t.skipped)
        }
        None => {
            let w = Workload {
                seconds: (args.days.unwrap_or(1.0) * 86_400.0) as i64,
                jobs_per_day: args.jobs_per_day,
                cloud_share: args.cloud_share.min(1.0),
                seed: args.seed,
            };
            (
                workload::generate(&w),
                "the built-in workload (fitted to LPC-EGEE and HPC2N; see src/sim/workload.rs)"
                    .to_string(),
                0,
            )
        }
    };
    // A window of the trace: skip the first days, keep the next ones.
    if args.trace.is_some() {
        let from = (args.skip_days * 86_400.0) as i64;
        let to = args.days.map_or(i64::MAX, |d| from + (d * 86_400.0) as i64);
        jobs.retain(|j| j.submit >= from && j.submit < to);
        for j in &mut jobs {
            j.submit -= from;
        }
    }
    if jobs.is_empty() {
        bail!("no jobs to replay in {source}");
    }
    let setup = Setup {
        config,
        jobs,
        cloud: args.cloud.clone(),
        seed: args.seed,
        local_cores: args.local_cores,
        policies,
    };
    let cloud_jobs = setup.jobs.iter().filter(|j| j.cloud).count();
    writeln!(
        out,
        "Replaying {} jobs ({} for the cloud) from {source}{}; seed {}",
        setup.jobs.len(),
        cloud_jobs,
        if skipped > 0 {
            format!(" ({skipped} never ran, left out)")
        } else {
            String::new()
        },
        args.seed
    )?;
    let mut progress = Progress {
        on: std::io::stderr().is_terminal(),
        last: -1,
    };
    let started = Instant::now();
    let result = crate::sim::compare(&setup, |p, f| progress.show(p, f))?;
    let wall = started.elapsed().as_secs_f64();
    writeln!(out, "\n{}", report::table(&result.outcomes))?;
    if result.unfittable > 0 {
        writeln!(
            out,
            "{} cloud jobs fit no flavour or run (or state they run) longer than a pilot lives (timers.max_lifetime + timers.drain_grace) and are left out of every row.",
            result.unfittable
        )?;
    }
    if let (Some(cb), Some(bound)) = (
        result.outcomes.iter().find(|o| o.name == "cloudburst"),
        result.outcomes.iter().find(|o| o.name == "clairvoyant"),
    ) {
        let paid = cb.paid_core_hours - cb.boot_core_hours;
        writeln!(
            out,
            "cloudburst paid {:.1} core-hours outside boot, {:+.1}% over the clairvoyant bound ({:.1}); median wait {} s (boot {}-{} s)",
            paid,
            (paid / bound.paid_core_hours - 1.0) * 100.0,
            bound.paid_core_hours,
            cb.waits.p50,
            setup.cloud.boot_secs.0,
            setup.cloud.boot_secs.1
        )?;
        writeln!(
            out,
            "  its idle core-hours: {:.1} on nodes running no job, {:.1} free beside running jobs",
            cb.empty_core_hours, cb.fragment_core_hours
        )?;
        if cb.completed < bound.completed {
            writeln!(
                out,
                "  {} of its {} cloud jobs did not finish within the simulated time",
                bound.completed - cb.completed,
                bound.completed
            )?;
        }
        for (label, w) in &cb.by_flavor {
            writeln!(
                out,
                "    {label:<28} {:>8.1} joined, {:>6.1} empty, {:>6.1} beside jobs",
                w.joined, w.empty, w.fragment
            )?;
        }
    }
    writeln!(out, "\nbaselines:")?;
    for line in &result.baselines {
        writeln!(out, "  {line}")?;
    }
    for (name, notes) in &result.notes {
        if notes.leases > 0 {
            let killed = result
                .outcomes
                .iter()
                .find(|o| &o.name == name)
                .map_or(0, |o| o.jobs_killed);
            writeln!(
                out,
                "  {name}: {} leases, {} of them too short for a job that ran on it ({killed} jobs killed at a lease's end)",
                notes.leases, notes.leases_too_short
            )?;
        }
    }
    writeln!(
        out,
        "simulated {:.1} days in {:.1} s ({:.0} events/s): {}",
        result.span as f64 / 86_400.0,
        wall,
        result.events as f64 / wall.max(1e-9),
        result.timing_line()
    )?;
    let sweep = if args.sweep {
        let began = Instant::now();
        let points = crate::sim::sweep(&setup, |label, done, of| {
            if progress.on {
                eprint!("\rsweep {done:>2}/{of} {label:<40}");
                if done == of {
                    eprintln!();
                }
            }
        })?;
        writeln!(
            out,
            "\nsweep of cloudburst's knobs ({} runs, {:.1} s):",
            points.len(),
            began.elapsed().as_secs_f64()
        )?;
        let front = report::pareto(
            &points
                .iter()
                .map(|p| (p.paid_outside_boot, p.wait_p50 as f64))
                .collect::<Vec<_>>(),
        );
        writeln!(
            out,
            "  {:<36} {:>12} {:>7} {:>6}  front",
            "cloudburst with", "c-h ex boot", "wait50", "killed"
        )?;
        for (p, f) in points.iter().zip(front) {
            writeln!(
                out,
                "  {:<36} {:>12.1} {:>6}s {:>6}  {}",
                p.label,
                p.paid_outside_boot,
                p.wait_p50,
                p.killed,
                if f { "*" } else { "" }
            )?;
        }
        points
    } else {
        Vec::new()
    };
    write_report(&args.report, &result, &sweep, &source)?;
    writeln!(out, "report: {}", args.report.join("report.html").display())?;
    Ok(())
}

fn write_report(
    dir: &Path,
    result: &crate::sim::Comparison,
    sweep: &[report::SweepPoint],
    source: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let page = report::html(
        &format!("cloudburst simulation: {source}"),
        &result.outcomes,
        &result.waits,
        sweep,
        crate::sim::START,
    );
    let path = dir.join("report.html");
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
