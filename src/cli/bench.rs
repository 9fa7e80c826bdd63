//! `cloudburst bench ...`: performance measured against the named
//! reference in the same run. Timings are the best of several runs; the
//! machine's other load only makes a run slower, never faster.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::classad::ast::{ClassAd, Expr};
use crate::classad::stream::LongReader;
use crate::classad::unparse::write_long;
use crate::classad::Matcher;

const REFERENCE: &str = include_str!("bench_classad.py");

/// Peak resident memory of this process, from /proc (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        let r = f();
        best = best.min(t0.elapsed().as_secs_f64());
        out = Some(r);
    }
    (out.expect("at least one run"), best)
}

fn read_ads(path: &Path) -> Result<Vec<ClassAd>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    LongReader::new(std::io::BufReader::new(f))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", path.display()))
}

/// A realistic dump: the capture's job ads, trimmed to `attrs` attributes
/// each, repeated with varying ids, owners and requests.
pub fn synthetic_dump(templates: &[ClassAd], n: usize, attrs: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 2048);
    for i in 0..n {
        let t = &templates[i % templates.len()];
        let mut ad = ClassAd::with_capacity(attrs);
        for (name, e) in t.iter().take(attrs) {
            ad.insert(name, e.clone());
        }
        let cluster = 1000 + i / 10;
        ad.insert_str("ClusterId", Expr::Int(cluster as i64));
        ad.insert_str("ProcId", Expr::Int((i % 10) as i64));
        ad.insert_str("QDate", Expr::Int(1_795_300_000 + i as i64));
        ad.insert_str("Owner", Expr::string(&format!("user{}", i % 37)));
        ad.insert_str(
            "GlobalJobId",
            Expr::string(&format!(
                "schedd.example.org#{cluster}.{}#1795300000",
                i % 10
            )),
        );
        ad.insert_str("RequestMemory", Expr::Int(128 << (i % 6)));
        write_long(&ad, &mut out);
        out.push(b'\n');
    }
    out
}

/// Runs a Python reference script (written out from `source`) and reads the
/// one JSON object it prints.
pub fn run_reference(
    python: &Path,
    script: &Path,
    source: &str,
    args: &[&std::ffi::OsStr],
) -> Result<serde_json::Value> {
    std::fs::write(script, source)?;
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "the reference failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

pub struct ClassadBench {
    pub fixtures: PathBuf,
    pub ads: usize,
    pub runs: usize,
    pub python: Option<PathBuf>,
    pub workdir: PathBuf,
}

pub fn run_classad(cfg: &ClassadBench, mut out: impl Write) -> Result<()> {
    let live = cfg.fixtures.join("condor/live");
    let jobs = read_ads(&live.join("condor_q-long.txt"))?;
    let slots = read_ads(&live.join("condor_status-long.txt"))?;
    let job = jobs
        .iter()
        .find(|j| j.lookup("WantCloud").is_some())
        .context("no cloud job in the capture")?;
    let machine = slots
        .iter()
        .find(|s| s.lookup("CloudNode").is_some())
        .context("no cloud slot in the capture")?;

    std::fs::create_dir_all(&cfg.workdir)?;
    let dump_path = cfg.workdir.join("jobs-dump.long");
    let dump = synthetic_dump(&jobs, cfg.ads, 70);
    std::fs::write(&dump_path, &dump)?;
    let job_path = cfg.workdir.join("job.long");
    let machine_path = cfg.workdir.join("machine.long");
    let (mut jb, mut mb) = (Vec::new(), Vec::new());
    write_long(job, &mut jb);
    write_long(machine, &mut mb);
    std::fs::write(&job_path, jb)?;
    std::fs::write(&machine_path, mb)?;

    // Same work as the reference: every ad parsed from its own chunk.
    let text = std::str::from_utf8(&dump).context("dump is ASCII")?;
    let chunks: Vec<&str> = text
        .split("\n\n")
        .filter(|c| !c.trim().is_empty())
        .collect();
    let (parsed, parse_secs) = best_of(cfg.runs, || {
        // One reader for all chunks, as the official library keeps its
        // caches across parseNext calls.
        let mut reader = LongReader::new(&b""[..]);
        chunks
            .iter()
            .filter_map(|c| reader.next_from(c.as_bytes()))
            .filter(|r| r.is_ok())
            .count()
    });
    if parsed != cfg.ads {
        bail!("parsed {parsed} of {} ads", cfg.ads);
    }
    let (streamed, stream_secs) = best_of(cfg.runs, || {
        let f = std::fs::File::open(&dump_path).expect("dump written above");
        LongReader::new(std::io::BufReader::with_capacity(1 << 16, f)).count()
    });
    let m = Matcher::new(1_795_312_300);
    if !m.requirements_accept(job, machine) {
        bail!("the benchmark pair must match");
    }
    let matches = 1_000_000;
    let (_, match_secs) = best_of(cfg.runs, || {
        let mut n = 0;
        for _ in 0..matches {
            n += usize::from(m.requirements_accept(std::hint::black_box(job), machine));
        }
        n
    });
    let ours_rate = parsed as f64 / parse_secs;
    let ours_ns = match_secs / matches as f64 * 1e9;
    let avg_len = dump.len() as f64 / cfg.ads as f64;

    let reference = match &cfg.python {
        None => None,
        Some(py) => Some(run_reference(
            py,
            &cfg.workdir.join("bench_classad.py"),
            REFERENCE,
            &[
                dump_path.as_os_str(),
                job_path.as_os_str(),
                machine_path.as_os_str(),
                cfg.runs.to_string().as_ref(),
                "100000".as_ref(),
            ],
        )?),
    };
    writeln!(
        out,
        "ClassAd benchmark: {} job ads of 70 attributes ({:.2} KB each), best of {} runs",
        cfg.ads,
        avg_len / 1000.0,
        cfg.runs
    )?;
    writeln!(
        out,
        "{:<34} {:>14} {:>18} {:>8}",
        "", "cloudburst", "official classad2", "ratio"
    )?;
    let (ref_rate, ref_ns) = match &reference {
        Some(r) => (r["ads_per_sec"].as_f64(), r["ns_per_match"].as_f64()),
        None => (None, None),
    };
    let cell = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
    writeln!(
        out,
        "{:<34} {:>14.0} {:>18} {:>8}",
        "parse -long, one chunk per ad (ads/s)",
        ours_rate,
        cell(ref_rate, 0),
        cell(ref_rate.map(|r| ours_rate / r), 1) + "x"
    )?;
    writeln!(
        out,
        "{:<34} {:>14.0} {:>18} {:>8}",
        "job Requirements vs slot (ns/eval)",
        ours_ns,
        cell(ref_ns, 0),
        cell(ref_ns.map(|r| r / ours_ns), 1) + "x"
    )?;
    writeln!(
        out,
        "streamed from file: {} ads at {:.0} ads/s ({:.0} MB/s); peak RSS {} KiB",
        streamed,
        streamed as f64 / stream_secs,
        dump.len() as f64 / stream_secs / 1e6,
        peak_rss_kib().map_or("?".into(), |k| k.to_string())
    )?;
    Ok(())
}
