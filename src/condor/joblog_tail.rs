//! Following the schedd's `job_queue.log` on disk: read what was appended,
//! notice when the schedd compacted the log into a new file (a new inode,
//! a shorter file, or a new 107 header) and then read the new file from
//! the start. `watch` wakes a caller when the file changes, through
//! inotify (`notify`), so a new job is seen within milliseconds instead of
//! a polling interval; polling `condor_q` stays the fallback.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use thiserror::Error;

use super::job::JobId;
use super::joblog::{JobLog, LogError};

#[derive(Debug, Error)]
pub enum TailError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: LogError,
    },
}

/// What one poll found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// The log was read again from the start (first read, or rotation).
    pub reread: bool,
    /// Jobs whose committed ads changed (all jobs after a re-read).
    pub touched: Vec<JobId>,
}

/// A job queue log being followed.
pub struct JobLogTail {
    path: PathBuf,
    file: Option<(File, u64, u64)>,
    log: JobLog,
    buf: Vec<u8>,
    rereads: u64,
}

impl JobLogTail {
    pub fn new(path: impl Into<PathBuf>) -> JobLogTail {
        JobLogTail {
            path: path.into(),
            file: None,
            log: JobLog::new(),
            buf: vec![0; 1 << 20],
            rereads: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn log(&self) -> &JobLog {
        &self.log
    }

    /// How many times the log file was opened and read from the start.
    pub fn rereads(&self) -> u64 {
        self.rereads
    }

    fn io_err(&self, source: io::Error) -> TailError {
        TailError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads whatever is new. An error leaves the last good state in place
    /// (callers then fall back to `condor_q`).
    pub fn poll(&mut self) -> Result<Update, TailError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| self.io_err(e))?;
        let replaced = match &self.file {
            None => true,
            Some((_, dev, ino)) => {
                (*dev, *ino) != (meta.dev(), meta.ino()) || meta.len() < self.log.consumed()
            }
        };
        let mut update = Update::default();
        if replaced {
            self.reopen()?;
            update.reread = true;
        }
        let changes = self.read_new()?;
        update.reread |= changes.reset;
        update.touched = if update.reread {
            self.log.job_ads().map(|(id, _)| id).collect()
        } else {
            self.log.touched(&changes)
        };
        Ok(update)
    }

    fn reopen(&mut self) -> Result<(), TailError> {
        let file = File::open(&self.path).map_err(|e| self.io_err(e))?;
        let meta = file.metadata().map_err(|e| self.io_err(e))?;
        self.file = Some((file, meta.dev(), meta.ino()));
        self.log = JobLog::new();
        self.rereads += 1;
        Ok(())
    }

    fn read_new(&mut self) -> Result<super::joblog::Changes, TailError> {
        let mut all = super::joblog::Changes::default();
        let Some((file, _, _)) = self.file.as_mut() else {
            return Ok(all);
        };
        loop {
            let n = match file.read(&mut self.buf) {
                Ok(0) => return Ok(all),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_err(e)),
            };
            match self.log.feed(&self.buf[..n]) {
                Ok(c) => {
                    if c.reset {
                        all = super::joblog::Changes {
                            reset: true,
                            ..Default::default()
                        };
                    }
                    all.jobs.extend(c.jobs);
                    all.clusters.extend(c.clusters);
                }
                Err(source) => {
                    return Err(TailError::Log {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
    }
}

/// Calls `wake` whenever the log file changes or is replaced. The
/// directory is watched, not the file, so that the schedd's
/// rename-into-place of a compacted log is seen too. Keep the returned
/// watcher alive for as long as wake-ups are wanted.
pub fn watch(
    path: &Path,
    wake: impl Fn() + Send + 'static,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            // Reading the file (ours included: a reload reads the config)
            // is not a change; waking on it would loop.
            Ok(ev) if matches!(ev.kind, notify::EventKind::Access(_)) => false,
            Ok(ev) => {
                ev.paths.is_empty()
                    || ev
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
            }
            // A watcher error may mean missed events: look anyway.
            Err(_) => true,
        };
        if relevant {
            wake();
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
