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
