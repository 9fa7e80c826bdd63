//! The condor stand-in (tests/standin/condor_standin.py) set up for one
//! test: a private pool model seeded from the real captures, and a bin
//! directory whose `condor_*` wrappers point at it. Each test gets its own
//! directory, so tests run in parallel without sharing state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use cloudburst::classad::stream::LongReader;
use cloudburst::classad::unparse::write_json;
use cloudburst::config::Config;

pub const TOOLS: [&str; 5] = [
    "condor_q",
    "condor_status",
    "condor_drain",
    "condor_off",
    "condor_token_create",
];

pub struct StandIn {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub bin: PathBuf,
}

fn live(name: &str) -> PathBuf {
    super::data_dir().join("condor/live").join(name)
}

/// A `-long` capture as the JSON objects `condor_status -json` would print.
fn long_to_json(path: &Path) -> Vec<Value> {
    let text = std::fs::read(path).unwrap();
    LongReader::new(&text[..])
        .map(|ad| {
            let mut out = Vec::new();
            write_json(&ad.unwrap(), &mut out);
            serde_json::from_slice(&out).unwrap()
        })
        .collect()
}

impl StandIn {
    /// `None` (and the test skipped) when no Python with classad2 exists.
    pub fn new() -> Option<StandIn> {
        let Some(python) = super::python() else {
            super::skip("a Python with PyPI htcondor (for the condor stand-in)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let state = dir.path().join("pool.json");
        let script = super::repo().join("tests/standin/condor_standin.py");
        cloudburst::cli::bench_reaction::write_standin_tools(
            &bin, &python, &script, &state, &TOOLS,
        )
        .unwrap();
        let s = StandIn { dir, state, bin };
        s.write(&s.seed());
        Some(s)
    }

    /// A pool with one schedd (`e2e@submit`) and no jobs or startds: the
    /// end-to-end tests fill it.
    pub fn empty_pool() -> Option<StandIn> {
        let s = StandIn::new()?;
        s.edit(|v| {
            v["schedds"] = json!({"e2e@submit": {
                "up": true,
                "machine": "submit",
                "address": "<127.0.0.1:33333?addrs=127.0.0.1-33333&alias=submit>",
                "jobs": []
            }});
            v["startds"] = json!({});
        });
        Some(s)
    }

    /// The live pool as captured: schedd `alice@vm` with its 10 jobs, the
    /// local startd and the cloud pilot with their slot ads, the collector.
    fn seed(&self) -> Value {
        let jobs: Value =
            serde_json::from_slice(&std::fs::read(live("condor_q.json")).unwrap()).unwrap();
        let slots: Vec<Value> =
            serde_json::from_slice(&std::fs::read(live("condor_status.json")).unwrap()).unwrap();
        let mut startds = serde_json::Map::new();
        for slot in slots {
            let name = slot["Name"].as_str().unwrap();
            let daemon = name.split_once('@').unwrap().1.to_string();
            let port = if daemon.starts_with("cloudpilot") {
                9620
            } else {
                37453
            };
            let entry = startds.entry(daemon).or_insert_with(|| {
                json!({
                    "address": format!("<127.0.0.1:{port}?addrs=127.0.0.1-{port}&alias=vm>"),
                    "master": true,
                    "slots": []
                })
            });
            entry["slots"].as_array_mut().unwrap().push(slot);
        }
        let collector = long_to_json(&live("cli/status_collector_long.stdout"))
            .pop()
            .unwrap();
        json!({
            "schedds": {
                "alice@vm": {
                    "up": true,
                    "machine": "vm",
                    "address": "<127.0.0.1:33333?addrs=127.0.0.1-33333&alias=vm>",
                    "jobs": jobs
                }
            },
            "startds": startds,
            "collector": {"up": true},
            "other_ads": {"collector": collector},
        })
    }

    /// The state, read under the lock the stand-in takes to rewrite it (a
    /// read without it can see the file truncated mid-rewrite).
    pub fn read(&self) -> Value {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let mut f = std::fs::File::open(&self.state).unwrap();
        // SAFETY: flock on a descriptor this function owns; released when
        // `f` is closed.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH) }, 0);
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    pub fn write(&self, v: &Value) {
        use std::io::{Seek, Write};
        use std::os::fd::AsRawFd;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.state)
            .unwrap();
        // SAFETY: as in `read`.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
        f.set_len(0).unwrap();
        f.rewind().unwrap();
        f.write_all(&serde_json::to_vec_pretty(v).unwrap()).unwrap();
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.read();
        f(&mut v);
        self.write(&v);
    }

    /// Edits the pool model holding the lock the stand-in's tools (and the
    /// end-to-end world) take, so a concurrent command never loses the edit.
    pub fn edit_locked<T>(&self, f: impl FnOnce(&mut Value) -> T) -> T {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.state)
            .unwrap();
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
        let mut text = Vec::new();
        file.read_to_end(&mut text).unwrap();
        let mut v: Value = serde_json::from_slice(&text).unwrap();
        let out = f(&mut v);
        file.rewind().unwrap();
        file.set_len(0).unwrap();
        file.write_all(&serde_json::to_vec_pretty(&v).unwrap())
            .unwrap();
        out // the lock goes with the file
    }

    /// Injects a fault into every later run of `tool`.
    pub fn fault(&self, tool: &str, mode: &str) {
        self.edit(|v| v["faults"][tool] = json!({ "mode": mode }));
    }

    /// A config that runs the stand-in's tools.
    pub fn config(&self, timeout: Duration) -> Config {
        let mut c = Config::default();
        c.condor.bin_dir = Some(self.bin.clone());
        c.condor.timeout = timeout;
        c
    }

    /// The commands the stand-in was run with.
    pub fn log(&self) -> Vec<Vec<String>> {
        serde_json::from_value(self.read()["log"].clone()).unwrap_or_default()
    }
}
