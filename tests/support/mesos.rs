//! The Mesos-side stand-in (tests/standin/mesos_standin.py) for one test:
//! its own state file, so tests run in parallel without sharing answers.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub struct MesosStandIn {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub port: u16,
    child: Child,
}

impl Drop for MesosStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixture under tests/data/mesos.
pub fn fixture(name: &str) -> PathBuf {
    super::repo().join("tests/data/mesos").join(name)
}

impl MesosStandIn {
    /// How many requests it has answered so far.
    pub fn requests(&self) -> usize {
        let mut log = self.state.clone().into_os_string();
        log.push(".requests");
        std::fs::read_to_string(log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Serves `state` (see the script's docstring). Plain python3: the
    /// stand-in needs nothing beyond the standard library.
    pub fn start(state: Value) -> MesosStandIn {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesos.json");
        std::fs::write(&path, state.to_string()).unwrap();
        let mut child = super::moto::spawn_tied(
            Command::new("python3")
                .arg(super::repo().join("tests/standin/mesos_standin.py"))
                .arg(&path)
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        MesosStandIn {
            dir,
            state: path,
            port,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, state: Value) {
        write_atomically(&self.state, &state);
    }

    /// The end-to-end world's control file: the Marathon apps it runs.
    pub fn control(&self) -> PathBuf {
        self.dir.path().join("control.json")
    }

    /// Apps for the world to queue and run: `[{"id", "instances", "cpus",
    /// "mem", "seconds"}]`.
    pub fn run_apps(&self, apps: Value) {
        self.control_world(json!({ "apps": apps }));
    }

    /// The whole control file: `{"apps": [...], "master_fault": F}`.
    pub fn control_world(&self, control: Value) {
        write_atomically(&self.control(), &control);
    }
}

/// `{"file": path}` for a fixture.
pub fn serve(name: &str) -> Value {
    json!({ "file": fixture(name) })
}

pub fn write_atomically(path: &Path, v: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, v.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
