//! The agent as a child process: started with a config, its log read
//! line by line on a thread, and waited on by log line (never by sleeping).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Agent {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Agent {
    pub fn start(config: &Path) -> Agent {
        Agent::start_with(config, &[])
    }

    pub fn start_with(config: &Path, extra: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudburst"))
            .args(["agent", "--config"])
            .arg(config)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Agent {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The next log line containing `text` (a generous deadline: a stuck
    /// agent fails the test instead of hanging it).
    pub fn wait_for(&mut self, text: &str) -> String {
        self.wait_for_within(text, Duration::from_secs(60))
            .unwrap_or_else(|| {
                panic!(
                    "no log line with {text:?}; the agent said:\n{}",
                    self.tail(80)
                )
            })
    }

    /// Like `wait_for`, `None` when the deadline passes or the agent ends.
    pub fn wait_for_within(&mut self, text: &str, deadline: Duration) -> Option<String> {
        let until = std::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Takes in every line logged so far, so that the next `wait_for`
    /// sees only what happens from now on.
    pub fn catch_up(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    /// The next `n` log lines (fewer if the agent ends first).
    pub fn next_lines(&mut self, n: usize) -> usize {
        let mut got = 0;
        while got < n {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(l) => {
                    self.seen.push(l);
                    got += 1;
                }
                Err(_) => break,
            }
        }
        got
    }

    /// The actions it logged from now until `n` more cycles are done.
    pub fn actions_over_cycles(&mut self, n: usize) -> Vec<String> {
        self.catch_up();
        let from = self.seen.len();
        for _ in 0..n {
            self.wait_for("cycle done");
        }
        self.seen[from..]
            .iter()
            .filter(|l| l.contains("msg=\"action\""))
            .cloned()
            .collect()
    }

    /// Waits, a cycle at a time, until `cloudburst nodes` lists a node
    /// in `state`; the ids of those in it then.
    pub fn wait_for_nodes_in(
        &mut self,
        config: &Path,
        state: &str,
        deadline: Duration,
    ) -> Vec<String> {
        let until = std::time::Instant::now() + deadline;
        loop {
            let ids: Vec<String> = node_states(config)
                .into_iter()
                .filter(|(_, s)| s == state)
                .map(|(id, _)| id)
                .collect();
            if !ids.is_empty() {
                return ids;
            }
            assert!(
                std::time::Instant::now() < until,
                "the agent never listed a node {state} within {deadline:?}:\n{}",
                self.tail(40)
            );
            self.wait_for("cycle done");
        }
    }

    /// Every line the agent logged so far holds no secret: no token (a
    /// JWT starts `eyJ`) and no user-data, in clear or in base64.
    pub fn assert_no_secrets(&self) {
        for l in &self.seen {
            for secret in ["eyJ", "#cloud-config", "I2Nsb3VkLWNvbmZpZ", "write_files"] {
                assert!(!l.contains(secret), "a secret ({secret}) in the log: {l}");
            }
        }
    }

    pub fn tail(&self, n: usize) -> String {
        let from = self.seen.len().saturating_sub(n);
        self.seen[from..].join("\n")
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGKILL, and reaped.
    pub fn kill9(mut self) -> Vec<String> {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over loopback: (status line, body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// `cloudburst ARGS --config CONFIG`, run to its end.
pub fn cli(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cloudburst"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// `cloudburst nodes --json`: (node id, state) of each node.
pub fn node_states(config: &Path) -> Vec<(String, String)> {
    let out = cli(&["nodes", "--json"], config);
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
