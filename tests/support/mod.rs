//! Helpers shared by the integration tests: where the shared fixtures and
//! the Python with the official ClassAd library are, and how to skip.

#![allow(dead_code)]

pub mod agentproc;
pub mod casegen;
pub mod faultproxy;
pub mod mesos;
pub mod moto;
pub mod openstack;
pub mod openstack_stack;
pub mod standin;
pub mod world;

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` (real HTCondor captures, the oracle script), or
/// `CLOUDBURST_SHARED`.
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CLOUDBURST_SHARED") {
        return PathBuf::from(d);
    }
    let beside = repo().join("../shared");
    if beside.exists() {
        return beside;
    }
    PathBuf::from("/work/shared")
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

/// Whether a program is on PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
