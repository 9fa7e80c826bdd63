//! What a finished command looks like: its status, the head of its output,
//! what the caller's reader made of it, or why it did not run. The
//! process adapter (`cloudburst::process`) runs commands; the core reads
//! these to decide what an answer means.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use thiserror::Error;

/// A run that ended by itself (whatever its exit status).
#[derive(Debug)]
pub struct Finished<T> {
    pub status: ExitStatus,
    /// The first bytes of stdout (up to 64 KiB), for error messages.
    pub stdout_head: Vec<u8>,
    /// stderr (up to 64 KiB).
    pub stderr: Vec<u8>,
    /// What the caller's reader made of stdout.
    pub value: T,
    pub elapsed: Duration,
}

impl<T> Finished<T> {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// "exit 1", or "killed by signal 9".
    pub fn status_text(&self) -> String {
        status_text(self.status)
    }
}

pub fn status_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".to_string(),
    }
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} did not finish within {timeout:?} and was killed")]
    TimedOut { program: String, timeout: Duration },
    #[error("reading from {program}: {source}")]
    Io {
        program: String,
        #[source]
        source: io::Error,
    },
}
