//! `cargo bench -p cloudburst-classad`: parse and match throughput on
//! generated `condor_q -long` job ads (the comparison with the official
//! library, in one run, is `cloudburst bench classad`).

use std::hint::black_box;
use std::time::Instant;

use cloudburst_classad::stream::LongReader;
use cloudburst_classad::{parse_ad, Matcher};

fn job(i: usize) -> String {
    format!(
        "ClusterId = {i}\nProcId = 0\nOwner = \"user{}\"\nJobStatus = 1\nRequestCpus = {}\n\
         RequestMemory = {}\nRequestDisk = 1048576\nWantCloud = true\nQDate = {}\n\
         Requirements = (TARGET.CloudNode =?= true) && (TARGET.Memory >= RequestMemory) && \
         (TARGET.Cpus >= RequestCpus) && (TARGET.Arch == \"X86_64\")\n\
         Cmd = \"/home/user/run.sh\"\nArgs = \"--seed {i}\"\n\n",
        i % 17,
        1 + i % 4,
        1024 * (1 + i % 8),
        1_700_000_000 + i
    )
}

fn main() {
    let n = 50_000;
    let text: String = (0..n).map(job).collect();
    let started = Instant::now();
    let mut ads = 0;
    for ad in LongReader::new(text.as_bytes()) {
        black_box(ad.expect("generated ads parse"));
        ads += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "parse -long: {ads} ads in {:.1} ms: {:.0} ads/s",
        secs * 1e3,
        ads as f64 / secs
    );

    let machine = parse_ad(
        b"[CloudNode = true; Arch = \"X86_64\"; Cpus = 8; Memory = 32768; \
          Requirements = TARGET.WantCloud =?= true]",
    )
    .expect("the machine ad parses");
    let jobs: Vec<_> = LongReader::new(text.as_bytes())
        .take(10_000)
        .map(|a| a.expect("parses"))
        .collect();
    let matcher = Matcher::new(1_700_000_000);
    let started = Instant::now();
    let matched = jobs
        .iter()
        .filter(|j| matcher.symmetric_match(j, &machine))
        .count();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "symmetric match: {} pairs ({matched} match) in {:.1} ms: {:.0} ns/pair",
        jobs.len(),
        secs * 1e3,
        secs * 1e9 / jobs.len() as f64
    );
}
