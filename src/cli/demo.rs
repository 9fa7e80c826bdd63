//! `cloudburst demo`: a small embedded site (idle jobs, some marked for the
//! cloud, and the flavours a cloud offers) matched with the ClassAd engine
//! exactly as the negotiator would, to show which jobs could burst onto
//! which flavour and why the others cannot. No cloud account, no pool.

use std::io::Write;

use anyhow::Result;

use crate::classad::ast::ClassAd;
use crate::classad::parse_expr;
use crate::classad::stream::LongReader;
use crate::classad::Matcher;

/// Idle jobs as `condor_q -long` prints them (trimmed to what matching
/// reads). Requirements follow what a 25.x schedd writes.
const JOBS: &str = r#"ClusterId = 101
ProcId = 0
Owner = "alice"
JobStatus = 1
RequestCpus = 1
RequestMemory = 2048
RequestDisk = 1048576
WantCloud = true
Requirements = (TARGET.CloudNode =?= true) && (TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk) && (TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus)

ClusterId = 102
ProcId = 0
Owner = "bob"
JobStatus = 1
RequestCpus = 8
RequestMemory = 30000
RequestDisk = 10485760
WantCloud = true
Requirements = (TARGET.CloudNode =?= true) && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk) && (TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus)

ClusterId = 103
ProcId = 0
Owner = "carol"
JobStatus = 1
RequestCpus = 4
RequestGPUs = 1
RequestMemory = 16000
RequestDisk = 2097152
WantCloud = true
Requirements = (TARGET.CloudNode =?= true) && (TARGET.GPUs >= RequestGPUs) && (TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus)

ClusterId = 104
ProcId = 0
Owner = "dave"
JobStatus = 1
RequestCpus = 64
RequestMemory = 512000
RequestDisk = 1048576
WantCloud = true
Requirements = (TARGET.CloudNode =?= true) && (TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus)

ClusterId = 105
ProcId = 0
Owner = "erin"
JobStatus = 1
RequestCpus = 1
RequestMemory = 1024
RequestDisk = 1048576
Requirements = (TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Memory >= RequestMemory)
"#;

/// Template machine ads of cloud flavours, with their price per hour.
const FLAVOURS: &str = r#"Name = "m5.large"
CloudNode = true
Arch = "X86_64"
OpSys = "LINUX"
Cpus = 2
Memory = 7680
Disk = 50000000
GPUs = 0
PricePerHour = 0.096
Start = TARGET.WantCloud =?= true
Requirements = START

Name = "m5.4xlarge"
CloudNode = true
Arch = "X86_64"
OpSys = "LINUX"
Cpus = 16
Memory = 62000
Disk = 100000000
GPUs = 0
PricePerHour = 0.768
Start = TARGET.WantCloud =?= true
Requirements = START

Name = "g4dn.xlarge"
CloudNode = true
Arch = "X86_64"
OpSys = "LINUX"
Cpus = 4
Memory = 15500
Disk = 100000000
GPUs = 1
PricePerHour = 0.526
Start = TARGET.WantCloud =?= true
Requirements = START

Name = "g4dn.2xlarge"
CloudNode = true
Arch = "X86_64"
OpSys = "LINUX"
Cpus = 8
Memory = 31000
Disk = 200000000
GPUs = 1
PricePerHour = 0.752
Start = TARGET.WantCloud =?= true
Requirements = START
"#;

fn ads(text: &str) -> Vec<ClassAd> {
    LongReader::new(text.as_bytes())
        .collect::<Result<_, _>>()
        .expect("the embedded ads parse")
}

fn attr(ad: &ClassAd, name: &str, m: &Matcher) -> String {
    let Ok(e) = parse_expr(name.as_bytes()) else {
        return String::new();
    };
    let empty = ClassAd::new();
    m.eval_with(&e, ad, &empty, |v| {
        let mut out = Vec::new();
        crate::classad::value::unparse_value_into(v, crate::classad::unparse::Style::Old, &mut out);
        String::from_utf8_lossy(&out).trim_matches('"').to_string()
    })
    .unwrap_or_default()
}

pub fn run(mut out: impl Write) -> Result<()> {
    let jobs = ads(JOBS);
    let flavours = ads(FLAVOURS);
    let m = Matcher::new(0);
    let cloud = parse_expr(b"WantCloud =?= true").expect("parses");
    writeln!(out, "cloudburst demo: which idle jobs could burst, onto which flavour (exact ClassAd matching)\n")?;
    writeln!(
        out,
        "{:<8} {:<6} {:>5} {:>8} {:<6} {:<28} {:<14}",
        "job", "owner", "cpus", "memory", "cloud", "matching flavours", "cheapest"
    )?;
    for job in &jobs {
        let id = format!("{}.{}", attr(job, "ClusterId", &m), attr(job, "ProcId", &m));
        let wants = m.eval_with(&cloud, job, &ClassAd::new(), |v| {
            v.as_bool_equiv() == Some(true)
        }) == Some(true);
        let matching: Vec<&ClassAd> = flavours
            .iter()
            .filter(|f| m.symmetric_match(job, f))
            .collect();
        let cheapest = matching
            .iter()
            .min_by(|a, b| {
                let p = |f: &ClassAd| {
                    attr(f, "PricePerHour", &m)
                        .parse::<f64>()
                        .unwrap_or(f64::MAX)
                };
                p(a).total_cmp(&p(b))
            })
            .map(|f| format!("{} ${}/h", attr(f, "Name", &m), attr(f, "PricePerHour", &m)));
        let names: Vec<String> = matching.iter().map(|f| attr(f, "Name", &m)).collect();
        let why = if !wants {
            "(not marked for the cloud)".to_string()
        } else if names.is_empty() {
            "(no flavour is big enough)".to_string()
        } else {
            names.join(", ")
        };
        writeln!(
            out,
            "{:<8} {:<6} {:>5} {:>8} {:<6} {:<28} {:<14}",
            id,
            attr(job, "Owner", &m),
            attr(job, "RequestCpus", &m),
            attr(job, "RequestMemory", &m),
            if wants { "yes" } else { "no" },
            why,
            cheapest.unwrap_or_else(|| "-".into())
        )?;
    }
    writeln!(
        out,
        "\nJobs are matched both ways: the job's Requirements against each flavour's template\n\
         machine ad, and the flavour's START against the job. Try your own ads with\n\
         `cloudburst classad parse` and `cloudburst classad eval`."
    )?;
    Ok(())
}
