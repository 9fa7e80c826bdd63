//! The simulator on real data: the traces of tests/data/traces/ (read from
//! there, never copied), the live pool's history captures, the built-in
//! workload's fit to the traces, determinism, and the policy's cost
//! against the clairvoyant bound on a real grid week.

mod support;

use std::path::PathBuf;

use cloudburst::sim::policy::Kind;
use cloudburst::sim::trace_file::{self as trace, Format, Marking, TraceJob};
use cloudburst::sim::workload::{self, Workload};
use cloudburst::sim::{compare, CloudModel, Setup, DEFAULT_CONFIG};

fn traces() -> PathBuf {
    support::data_dir().join("traces")
}

const ALL: Marking = Marking {
    cloud_share: 1.0,
    seed: 1,
};

#[test]
fn every_real_trace_reads_whole() {
    for (file, jobs) in [
        ("LPC-EGEE-2004-1.2-cln.swf.gz", 234_889),
        ("DAS2-fs1-2003-1.swf.gz", 40_315),
        ("HPC2N-2002-2.2-cln.swf.gz", 202_871),
    ] {
        let path = traces().join(file);
        assert_eq!(trace::sniff(&path).unwrap(), Format::Swf);
        let t = trace::read(&path, Format::Swf, ALL).unwrap();
        assert_eq!(t.jobs.len() + t.skipped, jobs, "{file}");
        // Jobs that ran for 0 s (LPC-EGEE has 9% of them) are left out.
        assert!(t.skipped < jobs / 10, "{file}: {} skipped", t.skipped);
        assert_eq!(t.jobs[0].submit, 0);
        assert!(t.jobs.windows(2).all(|w| w[0].submit <= w[1].submit));
    }
}

/// The generator's constants are the traces' numbers.
#[test]
fn the_built_in_workload_is_fitted_to_the_grid_trace() {
    let lpc = trace::read(
        &traces().join("LPC-EGEE-2004-1.2-cln.swf.gz"),
        Format::Swf,
        ALL,
    )
    .unwrap();
    let ln: Vec<f64> = lpc.jobs.iter().map(|j| (j.runtime as f64).ln()).collect();
    let mu = ln.iter().sum::<f64>() / ln.len() as f64;
    let sigma = (ln.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / ln.len() as f64).sqrt();
    assert!((mu - workload::RUNTIME_LN_MU).abs() < 0.05, "mu {mu}");
    assert!(
        (sigma - workload::RUNTIME_LN_SIGMA).abs() < 0.05,
        "sigma {sigma}"
    );
    // The hourly profile, in the trace's own clock (UnixStartTime and its
    // zone do not shift the shape, only where hour 0 falls).
    let mut hours = [0f64; 24];
    for j in &lpc.jobs {
        hours[(((j.submit + lpc.origin) / 3600) % 24) as usize] += 1.0;
    }
    let n = lpc.jobs.len() as f64;
    for (h, &c) in hours.iter().enumerate() {
        let share = c / n * 24.0;
        assert!(
            (share - workload::HOURLY[h]).abs() < 0.05,
            "hour {h}: {share}"
        );
    }
    // HPC2N's multi-core mix among 2-8 cores.
    let hpc = trace::read(
        &traces().join("HPC2N-2002-2.2-cln.swf.gz"),
        Format::Swf,
        ALL,
    )
    .unwrap();
    let multi: Vec<&TraceJob> = hpc
        .jobs
        .iter()
        .filter(|j| matches!(j.cpus, 2 | 4 | 8))
        .collect();
    for (cores, share) in workload::MULTI_CORE {
        let got = multi.iter().filter(|j| j.cpus == cores).count() as f64 / multi.len() as f64;
        assert!((got - share).abs() < 0.03, "{cores} cores: {got}");
    }
}

#[test]
fn the_live_pools_history_replays() {
    let live = support::data_dir().join("condor/live");
    let file = trace::read(
        &live.join("schedd-history-file.txt"),
        Format::HistoryFile,
        ALL,
    )
    .unwrap();
    // 11 ads: the ones that never completed have no runtime.
    assert_eq!(file.jobs.len() + file.skipped, 11);
    assert!(file.jobs.iter().all(|j| j.runtime > 0));
    assert_eq!(
        trace::sniff(&live.join("schedd-history-file.txt")).unwrap(),
        Format::HistoryFile
    );
    for capture in ["cli/history_json.stdout", "cli/history_jsonl.stdout"] {
        let path = live.join(capture);
        assert_eq!(trace::sniff(&path).unwrap(), Format::HistoryJson);
        let t = trace::read(&path, Format::HistoryJson, ALL).unwrap();
        assert!(!t.jobs.is_empty(), "{capture}");
        // The cloud job 7.0 ran 15 s with WantCloud.
        assert!(
            t.jobs.iter().any(|j| j.cloud && j.runtime == 15),
            "{capture}: {:?}",
            t.jobs
        );
    }
}

fn setup(jobs: Vec<TraceJob>, policies: Vec<Kind>) -> Setup {
    Setup {
        config: cloudburst::config::parse("sim", DEFAULT_CONFIG).unwrap(),
        jobs,
        cloud: CloudModel::default(),
        seed: 7,
        local_cores: 64,
        policies,
    }
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let jobs = workload::generate(&Workload {
        seconds: 4 * 3600,
        jobs_per_day: 3000.0,
        ..Workload::default()
    });
    let a = compare(&setup(jobs.clone(), Kind::ALL.to_vec()), |_, _| {}).unwrap();
    let b = compare(&setup(jobs, Kind::ALL.to_vec()), |_, _| {}).unwrap();
    let table = cloudburst::sim::report::table;
    assert_eq!(table(&a.outcomes), table(&b.outcomes));
    assert_eq!(a.outcomes.len(), 5);
    for o in &a.outcomes {
        if o.name != "annex" {
            assert_eq!(o.completed, a.outcomes[4].completed, "{}", o.name);
        }
    }
}

/// cloudburst pays within 10% of the clairvoyant bound (boot time aside),
/// jobs wait a median of no more than a boot plus a minute, and nothing
/// is killed.
fn assert_near_the_bound(label: &str, setup: &Setup) {
    let r = compare(setup, |_, _| {}).unwrap();
    let (cb, bound) = (&r.outcomes[0], &r.outcomes[1]);
    let paid = cb.paid_core_hours - cb.boot_core_hours;
    println!(
        "sim: {label}: cloudburst {paid:.0} core-h outside boot vs bound {:.0} ({:+.1}%), median wait {} s",
        bound.paid_core_hours,
        (paid / bound.paid_core_hours - 1.0) * 100.0,
        cb.waits.p50
    );
    assert_eq!(cb.completed, bound.completed, "{label}: jobs left unrun");
    assert!(
        paid <= bound.paid_core_hours * 1.10,
        "{label}: {paid} vs {}",
        bound.paid_core_hours
    );
    assert!(
        cb.waits.p50 <= setup.cloud.boot_secs.1 + 60,
        "{label}: median wait {}",
        cb.waits.p50
    );
    assert_eq!(cb.jobs_killed, 0, "{label}");
}

/// A week of a real trace, seeded. Same embedded site for every trace:
/// nothing is tuned per trace.
fn a_week_costs_near_the_clairvoyant_bound(file: &str, skip_days: i64) {
    let t = trace::read(&traces().join(file), Format::Swf, ALL).unwrap();
    let (from, to) = (skip_days * 86_400, (skip_days + 7) * 86_400);
    let week: Vec<TraceJob> = t
        .jobs
        .iter()
        .filter(|j| j.submit >= from && j.submit < to)
        .map(|j| TraceJob {
            submit: j.submit - from,
            ..*j
        })
        .collect();
    let label = format!("{file} days {skip_days}-{}", skip_days + 7);
    assert_near_the_bound(&label, &setup(week, vec![Kind::Cloudburst]));
}

/// What `cloudburst simulate` prints with no arguments: the built-in
/// workload, seed 2026, the CLI's default cloud (2% of boots fail) and
/// 256 local cores.
#[test]
fn the_built_in_workload_costs_near_the_clairvoyant_bound() {
    let jobs = workload::generate(&Workload::default());
    let setup = Setup {
        seed: 2026,
        local_cores: 256,
        cloud: CloudModel {
            boot_failure: 0.02,
            ..CloudModel::default()
        },
        ..setup(jobs, vec![Kind::Cloudburst])
    };
    assert_near_the_bound("built-in workload, seed 2026", &setup);
}

/// The LHC grid site (single-core jobs).
#[test]
fn a_real_grid_week_costs_near_the_clairvoyant_bound() {
    a_week_costs_near_the_clairvoyant_bound("LPC-EGEE-2004-1.2-cln.swf.gz", 98);
}

/// A parallel cluster (multi-core jobs of many sizes).
#[test]
fn a_real_parallel_week_costs_near_the_clairvoyant_bound() {
    a_week_costs_near_the_clairvoyant_bound("HPC2N-2002-2.2-cln.swf.gz", 98);
}

/// A research grid's cluster (DAS-2: parallel jobs, mostly short).
#[test]
fn a_real_research_grid_week_costs_near_the_clairvoyant_bound() {
    a_week_costs_near_the_clairvoyant_bound("DAS2-fs1-2003-1.swf.gz", 98);
}

/// The baselines as their sources describe them. Two hundred 2-hour jobs
/// stating 3 hours, submitted over an hour: annex leases cover the stated
/// run times, so none is killed at a lease's end and none is too short;
/// COBalD's controller (TARDIS's settings) drains what it releases, so
/// it kills nothing either; both run every job.
#[test]
fn the_baselines_run_as_documented() {
    let jobs: Vec<TraceJob> = (0..200)
        .map(|i| TraceJob {
            submit: i * 18,
            runtime: 7200,
            cpus: 1,
            memory_mb: 2048,
            cloud: true,
            requested: Some(3 * 3600),
        })
        .collect();
    let r = compare(&setup(jobs, vec![Kind::Feedback, Kind::Annex]), |_, _| {}).unwrap();
    for o in &r.outcomes[..2] {
        assert_eq!((o.completed, o.jobs_killed), (200, 0), "{}", o.name);
    }
    let (_, annex) = &r.notes[1];
    assert!(annex.leases >= 1, "{annex:?}");
    assert_eq!(annex.leases_too_short, 0, "{annex:?}");
    assert!(
        r.baselines.iter().any(|l| l.contains("TARDIS")),
        "{:?}",
        r.baselines
    );
}

/// `report.html`, with the knob sweep, as a browser shows it: headless
/// Chromium parses the page, logs no console message (the page has no
/// script, and must stay so), and draws every plot and every point.
#[test]
fn the_report_renders_in_chromium_without_script_errors() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| support::have(c));
    let Some(chromium) = chromium else {
        support::skip("chromium (Debian package)");
        return;
    };
    let jobs = workload::generate(&Workload {
        seconds: 3 * 3600,
        jobs_per_day: 2000.0,
        ..Workload::default()
    });
    let setup = setup(jobs, Kind::ALL.to_vec());
    let r = compare(&setup, |_, _| {}).unwrap();
    let sweep = cloudburst::sim::sweep(&setup, |_, _, _| {}).unwrap();
    assert_eq!(sweep.len(), 18);
    let page = cloudburst::sim::report::html("render test", &r.outcomes, &r.waits, &sweep, 0);
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, &page).unwrap();
    let shot = dir.path().join("report.png");
    let out = std::process::Command::new("timeout")
        .arg("180")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=800,2400",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("CONSOLE") && !stderr.contains("Uncaught"),
        "{stderr}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{}",
        png.len()
    );
    let dom = std::process::Command::new("timeout")
        .arg("180")
        .arg(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Cost against wait, queue, nodes, nodes by state, spend, waits; a
    // point per policy (the bound aside) and per sweep run.
    assert_eq!(dom.matches("<svg").count(), 6, "{dom}");
    assert_eq!(dom.matches("<circle").count(), 4 + 18);
    println!(
        "sim: report.html renders in {chromium}: {} bytes of screenshot, no console message",
        png.len()
    );
}
