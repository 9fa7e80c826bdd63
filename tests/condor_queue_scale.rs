//! Every real capture parses, and a 100,000-job `condor_q -json` dump
//! generated from them streams through the release binary with its
//! resident memory measured (the kernel's peak RSS of the process).

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use cloudburst::classad::stream::JsonReader;
use cloudburst::classad::unparse::write_json;
use cloudburst::classad::{ClassAd, Expr};
use cloudburst::condor::job::JobReader;
use cloudburst::condor::pool::{read_collector, read_pool, Activity};
use cloudburst::condor::queue::{read_jobs, JOB_ATTRIBUTES};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(support::data_dir().join("condor").join(rel)).unwrap()
}

#[test]
fn every_job_capture_reads_as_jobs() {
    for (rel, n) in [
        ("live/condor_q.json", 10),
        ("condor_q_json_job_ce.json", 1),
        ("live/cli/q_json_projection_idle.stdout", 2),
        ("live/cli/q_running_on_cloud.stdout", 4),
        ("live/cli/q_json_global.stdout", 4),
        ("live/cli/q_json_projection_nomatch.stdout", 0),
        ("live/cli/history_json.stdout", 0),
    ] {
        let bytes = fixture(rel);
        let jobs = read_jobs(&mut &bytes[..], &mut JobReader::new(), 1_795_313_300);
        match (rel, jobs) {
            // Completed jobs from history have JobStatus 4: still jobs.
            ("live/cli/history_json.stdout", Ok(j)) => assert!(!j.is_empty(), "{rel}"),
            (_, Ok(j)) => assert_eq!(j.len(), n, "{rel}"),
            (_, Err(e)) => panic!("{rel}: {e}"),
        }
    }
    // A projection without ProcId is not a job queue: an error naming it.
    let bytes = fixture("live/cli/q_collector_down.stdout");
    let e = read_jobs(&mut &bytes[..], &mut JobReader::new(), 0).unwrap_err();
    assert_eq!(e.to_string(), "job ad #1: ProcId is missing");
    // The live queue's requests are evaluated, not read as text.
    let bytes = fixture("live/condor_q.json");
    let jobs = read_jobs(&mut &bytes[..], &mut JobReader::new(), 1_795_313_300).unwrap();
    assert!(jobs
        .iter()
        .all(|j| j.request().memory.is_some() && j.request_problem().is_none()));
}

#[test]
fn every_slot_capture_reads_as_startds() {
    let pool = read_pool(&mut &fixture("live/condor_status.json")[..]).unwrap();
    assert_eq!(pool.startds.len(), 2);
    assert_eq!(pool.startds["local@vm"].claims, 2);
    assert_eq!(pool.startds["cloudpilot@vm"].activity, Activity::Busy);
    let busy = read_pool(&mut &fixture("live/cli/slots_cloud_json.stdout")[..]).unwrap();
    assert_eq!(busy.startds["cloudpilot@vm"].activity, Activity::Busy);
    assert_eq!(busy.startds["cloudpilot@vm"].free_cpus, 0.0);
    let none = read_pool(&mut &fixture("live/cli/status_cloud_none.stdout")[..]).unwrap();
    assert!(none.startds.is_empty());
    // -startd returns daemon ads (no SlotType/State): one "static" startd
    // with nothing claimed, which is why we never ask for them.
    let daemon = read_pool(&mut &fixture("live/cli/startd_daemon_json.stdout")[..]).unwrap();
    assert_eq!(daemon.startds.len(), 1);
    let long = support::data_dir().join("condor/live/cli/status_collector_long.stdout");
    let ad = cloudburst::classad::stream::LongReader::new(&std::fs::read(long).unwrap()[..])
        .next()
        .unwrap()
        .unwrap();
    let mut json = Vec::new();
    write_json(&ad, &mut json);
    let framed = [b"[\n".as_slice(), &json, b"]\n"].concat();
    let c = read_collector(&mut &framed[..]).unwrap();
    assert_eq!(c.start_time, Some(1795313078));
}

/// 100,000 jobs shaped like the live queue's, projected as the agent asks
/// for them, in condor_q's -json layout.
fn write_dump(path: &Path, jobs: usize) {
    let bytes = fixture("live/condor_q.json");
    let templates: Vec<ClassAd> = JsonReader::new(&bytes[..])
        .map(|a| {
            let full = a.unwrap();
            let mut ad = ClassAd::new();
            for (name, expr) in full.iter() {
                if JOB_ATTRIBUTES
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(name))
                {
                    ad.insert(name, expr.clone());
                }
            }
            ad.insert_str("WantCloud", Expr::Bool(true));
            ad.insert_str("JobStatus", Expr::Int(1));
            ad
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(b"[\n").unwrap();
    let mut buf = Vec::new();
    for i in 0..jobs {
        let mut ad = templates[i % templates.len()].clone();
        let (cluster, proc) = (1000 + (i / 100) as i64, (i % 100) as i64);
        ad.insert_str("ClusterId", Expr::Int(cluster));
        ad.insert_str("ProcId", Expr::Int(proc));
        ad.insert_str("QDate", Expr::Int(1_795_300_000 + i as i64));
        ad.insert_str(
            "GlobalJobId",
            Expr::string(&format!("alice@vm#{cluster}.{proc}#{}", 1_795_300_000 + i)),
        );
        buf.clear();
        write_json(&ad, &mut buf);
        if i > 0 {
            out.write_all(b",\n").unwrap();
        }
        out.write_all(&buf).unwrap();
    }
    out.write_all(b"]\n").unwrap();
}

/// Runs the binary with `--stats` and returns (exit code, stdout, peak
/// RSS in KiB). The binary reads its own `VmHWM`: a child's rusage would
/// also count this test process's memory from before the exec.
fn run_measured(cmd: &mut Command) -> (i32, String, i64) {
    let out = cmd.arg("--stats").stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr
        .split("peak RSS ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stats in: {stderr}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        rss,
    )
}

#[test]
fn a_100k_job_dump_streams_through_the_agent_in_little_memory() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("condor_q.json");
    write_dump(&dump, 100_000);
    let size = std::fs::metadata(&dump).unwrap().len();
    // A condor_q that prints the dump (and a condor_status that answers
    // with no cloud nodes), so the binary reads it through a real pipe.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (tool, body) in [
        ("condor_q", format!("exec cat '{}'", dump.display())),
        (
            "condor_status",
            "case \"$*\" in *-collector*) printf '[\\n{\\n  \"Name\": \"cm\",\\n  \"StatsLifetime\": 10,\\n  \"StatsLastUpdateTime\": 1795313000\\n}\\n]\\n';; esac".to_string(),
        ),
    ] {
        let p = bin.join(tool);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[pool]\nschedds = [\"alice@vm\"]\n[condor]\nbin_dir = \"{}\"\n",
            bin.display()
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (rc, out, rss_kib) = run_measured(
        Command::new(env!("CARGO_BIN_EXE_cloudburst"))
            .arg("snapshot")
            .arg("--config")
            .arg(&config)
            .arg("--out")
            .arg(dir.path().join("snap")),
    );
    let took = started.elapsed();
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("100000"), "{out}");
    println!(
        "queue scale: 100,000 jobs ({:.1} MB of -json) read by `cloudburst snapshot` in {:.2?}; peak RSS {:.1} MiB",
        size as f64 / 1e6,
        took,
        rss_kib as f64 / 1024.0
    );
    assert!(rss_kib < 64 * 1024, "peak RSS {rss_kib} KiB");
}
