//! Snapshots: what the condor tools printed in one cycle, saved exactly, so
//! that the same parsing and the same decisions can be replayed offline
//! (`cloudburst plan --snapshot DIR`) and an admin can attach it to a bug
//! report.
//!
//! A snapshot directory holds `manifest.json` (each command: its label,
//! command line, exit status, stderr, time taken) and one `.stdout` file
//! per command, byte for byte. Replaying feeds those bytes through the
//! same readers and classification as a live cycle, so a snapshot of a
//! schedd outage replays as the same `Unknown`. Files are private to the
//! owner (job ads name users). Tokens are never run through a recorder.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::condor::client::Runner;
use crate::process::{self, Finished, Invocation, RunError};

pub const MANIFEST: &str = "manifest.json";

/// How a recorded command ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ended", rename_all = "snake_case")]
pub enum Ended {
    Exited { code: i32 },
    Signaled { signal: i32 },
    TimedOut { after_ms: u64 },
    NotStarted { detail: String },
    Io { detail: String },
}

/// One recorded command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub label: String,
    pub command: String,
    pub stdout_file: String,
    pub ended: Ended,
    pub stderr: String,
    pub elapsed_ms: u64,
}

/// The manifest of a snapshot directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub cloudburst: String,
    /// Seconds since the epoch when the snapshot was taken; the `now` of
    /// a replay.
    pub taken_at: i64,
    pub commands: Vec<Entry>,
}

/// A file name for a label: safe characters only.
fn file_for(label: &str) -> String {
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.stdout")
}

fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Runs the real tools and records what they print.
pub struct Recorder {
    dir: PathBuf,
    entries: Mutex<Vec<Entry>>,
}

/// Copies what the reader consumes into a file.
struct Tee<'a> {
    inner: &'a mut dyn BufRead,
    copy: io::BufWriter<File>,
    error: Option<io::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.keep(&buf[..n]);
        Ok(n)
    }
}

impl BufRead for Tee<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are the front of the inner buffer
        // (already filled: asking again does not read).
        if amt == 0 {
            return;
        }
        if let Ok(buf) = self.inner.fill_buf() {
            let chunk = buf[..amt.min(buf.len())].to_vec();
            self.keep(&chunk);
        }
        self.inner.consume(amt);
    }
}

impl Tee<'_> {
    fn keep(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.copy.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }
}

impl Recorder {
    /// Creates `dir` (mode 0700); it must not hold a snapshot already.
    pub fn create(dir: &Path) -> Result<Recorder> {
        if dir.join(MANIFEST).exists() {
            anyhow::bail!(
                "{} already holds a snapshot; choose another directory",
                dir.display()
            );
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Recorder {
            dir: dir.to_path_buf(),
            entries: Mutex::new(Vec::new()),
        })
    }

    /// Writes the manifest; the snapshot is complete once this returns.
    pub fn finish(self, taken_at: i64) -> Result<Manifest> {
        let mut commands = self.entries.into_inner().unwrap_or_else(|e| e.into_inner());
        commands.sort_by(|a, b| a.label.cmp(&b.label));
        let manifest = Manifest {
            cloudburst: env!("CARGO_PKG_VERSION").to_string(),
            taken_at,
            commands,
        };
        let path = self.dir.join(MANIFEST);
        let mut f = private_file(&path).with_context(|| format!("writing {}", path.display()))?;
        serde_json::to_writer_pretty(&mut f, &manifest)?;
        f.write_all(b"\n")?;
        Ok(manifest)
    }
}

fn ended_of(run: &Result<Finished<()>, RunError>) -> Ended {
    match run {
        Ok(f) => match (f.status.code(), f.status.signal()) {
            (Some(code), _) => Ended::Exited { code },
            (None, Some(signal)) => Ended::Signaled { signal },
            _ => Ended::Io {
                detail: "unknown exit status".into(),
            },
        },
        Err(RunError::TimedOut { timeout, .. }) => Ended::TimedOut {
            after_ms: timeout.as_millis() as u64,
        },
        Err(RunError::Spawn { source, .. }) => Ended::NotStarted {
            detail: source.to_string(),
        },
        Err(RunError::Io { source, .. }) => Ended::Io {
            detail: source.to_string(),
        },
    }
}

impl Runner for Recorder {
    fn run(
        &self,
        label: &str,
        inv: &Invocation,
        consume: &mut dyn FnMut(&mut dyn BufRead),
    ) -> Result<Finished<()>, RunError> {
        let stdout_file = file_for(label);
        let path = self.dir.join(&stdout_file);
        let file = private_file(&path).map_err(|source| RunError::Io {
            program: path.display().to_string(),
            source,
        })?;
        let mut write_error = None;
        let run = process::run(inv, |r| {
            let mut tee = Tee {
                inner: r,
                copy: io::BufWriter::new(file),
                error: None,
            };
            consume(&mut tee);
            // Whatever the parser left unread belongs in the snapshot too.
            let _ = io::copy(&mut tee, &mut io::sink());
            write_error = tee.error.take().or_else(|| tee.copy.flush().err());
        });
        if let Some(source) = write_error {
            return Err(RunError::Io {
                program: path.display().to_string(),
                source,
            });
        }
        let (stderr, elapsed) = match &run {
            Ok(f) => (String::from_utf8_lossy(&f.stderr).into_owned(), f.elapsed),
            Err(_) => (String::new(), Duration::ZERO),
        };
        let entry = Entry {
            label: label.to_string(),
            command: inv.display(),
            stdout_file,
            ended: ended_of(&run),
            stderr,
            elapsed_ms: elapsed.as_millis() as u64,
        };
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
        run
    }
}

/// Replays a snapshot directory: each labelled command "runs" by reading
/// its recorded output.
pub struct Replay {
    dir: PathBuf,
    manifest: Manifest,
    by_label: HashMap<String, usize>,
}

impl Replay {
    pub fn open(dir: &Path) -> Result<Replay> {
        let path = dir.join(MANIFEST);
        let text = fs::read_to_string(&path).with_context(|| {
            format!("reading {} (is this a snapshot directory?)", path.display())
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a cloudburst snapshot manifest", path.display()))?;
        let by_label = manifest
            .commands
            .iter()
            .enumerate()
            .map(|(i, e)| (e.label.clone(), i))
            .collect();
        Ok(Replay {
            dir: dir.to_path_buf(),
            manifest,
            by_label,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

impl Runner for Replay {
    fn run(
        &self,
        label: &str,
        inv: &Invocation,
        consume: &mut dyn FnMut(&mut dyn BufRead),
    ) -> Result<Finished<()>, RunError> {
        let program = inv.program.display().to_string();
        let Some(&i) = self.by_label.get(label) else {
            return Err(RunError::Spawn {
                program,
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the snapshot did not record {label:?}"),
                ),
            });
        };
        let e = &self.manifest.commands[i];
        let status = match &e.ended {
            Ended::Exited { code } => ExitStatus::from_raw((code & 0xff) << 8),
            Ended::Signaled { signal } => ExitStatus::from_raw(*signal & 0x7f),
            Ended::TimedOut { after_ms } => {
                return Err(RunError::TimedOut {
                    program,
                    timeout: Duration::from_millis(*after_ms),
                })
            }
            Ended::NotStarted { detail } => {
                return Err(RunError::Spawn {
                    program,
                    source: io::Error::other(detail.clone()),
                })
            }
            Ended::Io { detail } => {
                return Err(RunError::Io {
                    program,
                    source: io::Error::other(detail.clone()),
                })
            }
        };
        let path = self.dir.join(&e.stdout_file);
        let file = File::open(&path).map_err(|source| RunError::Io {
            program: path.display().to_string(),
            source,
        })?;
        let mut head = Vec::new();
        let _ = file.take(64 * 1024).read_to_end(&mut head);
        let file = File::open(&path).map_err(|source| RunError::Io {
            program: path.display().to_string(),
            source,
        })?;
        consume(&mut BufReader::new(file));
        Ok(Finished {
            status,
            stdout_head: head,
            stderr: e.stderr.clone().into_bytes(),
            value: (),
            elapsed: Duration::from_millis(e.elapsed_ms),
        })
    }
}
