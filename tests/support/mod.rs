//! Helpers shared by the integration tests: where the shared fixtures and
//! the Python with the official ClassAd library are, and how to skip.

#![allow(dead_code)]

pub mod agentproc;
pub mod burst_world;
pub mod casegen;
pub mod condor_pool;
pub mod faultproxy;
pub mod mesos;
pub mod moto;
pub mod openstack;
pub mod openstack_stack;
pub mod standin;
pub mod world;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tests' own data: real HTCondor captures, traces, recorded oracle
/// answers (`tests/data/README.md` says where each came from).
pub fn data_dir() -> PathBuf {
    repo().join("tests/data")
}

/// A Python that can `import htcondor2`: `CLOUDBURST_PYTHON`, or the
/// repository's `.venv`.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CLOUDBURST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = repo().join(".venv/bin/python");
    venv.exists().then_some(venv)
}

/// Runs a Python program with the repository's venv (htcondor2) and reads
/// the JSON it prints.
pub fn py<A: AsRef<std::ffi::OsStr>>(program: &str, args: &[A]) -> serde_json::Value {
    let python = python().expect("a Python with htcondor");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Skips a test whose real component is missing, unless the run requires
/// real components (`CLOUDBURST_REQUIRE_ORACLE=1`, set by tests/run.sh).
pub fn skip(what: &str) {
    if std::env::var("CLOUDBURST_REQUIRE_ORACLE").as_deref() == Ok("1") {
        panic!("{what} is required but was not found; run tests/run.sh");
    }
    eprintln!("SKIPPED: {what} not found (tests/run.sh installs it)");
}

/// A port for a service a test starts, free now and below the kernel's
/// ephemeral range. A port from bind(0) could be handed to another
/// test's listener or outgoing connection before the service binds it
/// (seen: rabbitmq dying with eaddrinuse); ports below the range are only
/// given to whoever names them.
pub fn service_port() -> u16 {
    static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(1024).clamp(1, 12000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = ((u64::from(std::process::id()) << 32) ^ u64::from(nanos)) | 1;
    let mut taken = TAKEN.lock().unwrap();
    loop {
        // xorshift: no rand crate for one choice of port.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = (low - span + (x % u64::from(span)) as u32) as u16;
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
}

/// Whether a program is on PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The HTCondor-CE routes of `jobmanager/htcondor-ce/` as schedd job
/// transforms, so that a personal pool's real schedd applies them to a
/// submitted job as the CE's job router would to a routed one: each route
/// (`JOB_ROUTER_ROUTE_<n>`), then each post-route transform
/// (`JOB_ROUTER_TRANSFORM_<n>`), in the file's order, as
/// `JOB_TRANSFORM_CE_<n>` before the schedd's own transforms. The router
/// applies only the first route a job meets; the shipped routes'
/// REQUIREMENTS exclude one another, so applying all is the same.
pub fn ce_routes_as_schedd_transforms(text: &str) -> String {
    let mut names = Vec::new();
    let mut bodies = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" @=jrt\n") {
        let head = &rest[..at];
        let name = head.rsplit('\n').next().unwrap_or(head).trim();
        let tail = &rest[at + " @=jrt\n".len()..];
        let (body, after) = tail.split_once("@jrt").expect("every @=jrt is closed");
        let short = name
            .strip_prefix("JOB_ROUTER_ROUTE_")
            .or_else(|| name.strip_prefix("JOB_ROUTER_TRANSFORM_"))
            .unwrap_or_else(|| panic!("{name}: not a route or a router transform"));
        names.push(format!("CE_{short}"));
        bodies.push_str(&format!("JOB_TRANSFORM_CE_{short} @=jrt\n{body}@jrt\n"));
        rest = after;
    }
    assert!(!names.is_empty(), "no route in the CE file");
    format!(
        "# The CE routes of jobmanager/htcondor-ce/, as schedd transforms.\n\
         JOB_TRANSFORM_NAMES = {} $(JOB_TRANSFORM_NAMES)\n{bodies}",
        names.join(" ")
    )
}

/// What each GRAM queue's module writes: (module, `+WantCloud`,
/// `+CloudburstAnywhere`, `requirements`).
pub type GramQueue = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);
pub const GRAM_QUEUES: [GramQueue; 3] = [
    (
        "cloud",
        Some("True"),
        None,
        Some("(TARGET.CloudNode =?= True)"),
    ),
    ("cloudorlocal", Some("True"), Some("True"), None),
    ("localonly", None, None, Some("(TARGET.CloudNode =!= true)")),
];

/// The GRAM modules of `jobmanager/gram/` (cloud, cloudorlocal,
/// localonly) fed a job description: the submit description each writes,
/// as `(module, path)`, after checking it compiles and answers as GRAM
/// expects. `None` without perl.
pub fn gram_submit_descriptions(work: &std::path::Path) -> Option<Vec<(String, PathBuf)>> {
    if !have("perl") {
        skip("perl");
        return None;
    }
    let root = repo();
    let lib = work.join("lib");
    let module_dir = lib.join("Globus/GRAM/JobManager");
    std::fs::create_dir_all(&module_dir).unwrap();
    let stubs = root.join("tests/gram");
    // condor_submit stand-in: keeps the description, answers as the real
    // one does ("N job(s) submitted to cluster C.").
    let fake = work.join("condor_submit");
    std::fs::write(&fake, "#!/bin/sh\ncp \"$1\" \"$(dirname \"$1\")/seen.submit\"\necho 'Submitting job(s).'\necho '1 job(s) submitted to cluster 42.'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = work.join("globus-cloud.conf");
    std::fs::write(&conf, format!("condor_submit=\"{}\"\n", fake.display())).unwrap();
    let mut out = Vec::new();
    for (module, ..) in GRAM_QUEUES {
        let file = format!("{module}.pm");
        std::fs::copy(
            root.join("jobmanager/gram").join(&file),
            module_dir.join(&file),
        )
        .unwrap();
    }
    for (module, ..) in GRAM_QUEUES {
        let perl = |c: &mut std::process::Command| {
            c.arg(format!("-I{}", stubs.display()))
                .arg(format!("-I{}", lib.display()));
        };
        let mut c = std::process::Command::new("perl");
        perl(&mut c);
        let compiled = c
            .arg("-c")
            .arg(module_dir.join(format!("{module}.pm")))
            .output()
            .unwrap();
        assert!(
            compiled.status.success(),
            "perl -c {module}.pm: {}",
            String::from_utf8_lossy(&compiled.stderr)
        );
        let job = work.join(format!("job-{module}"));
        std::fs::create_dir(&job).unwrap();
        let mut c = std::process::Command::new("perl");
        perl(&mut c);
        let ran = c
            .env("GLOBUS_CLOUD_CONF", &conf)
            .arg(stubs.join("submit_test.pl"))
            .arg(&job)
            .arg(module)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&ran.stdout);
        assert!(
            ran.status.success(),
            "{module}: {text}{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert!(
            text.contains("JOB_ID=42.0") && text.contains("JOB_STATE=PENDING"),
            "{module}: {text}"
        );
        assert!(
            text.contains("NO_EXECUTABLE=RSL_EXECUTABLE"),
            "{module}: {text}"
        );
        out.push((module.to_string(), job.join("seen.submit")));
    }
    Some(out)
}
