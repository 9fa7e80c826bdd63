//! Running an external program the safe way: an argument vector (never a
//! shell), no stdin, a deadline after which the whole process group is
//! killed, stdout streamed to the caller's reader (so a multi-GB
//! `condor_q` dump is parsed as it arrives), stderr kept up to a bound.
//!
//! This is part of the imperative shell: the condor adapter and the
//! admin-script cloud provider use it; nothing in the pure core does.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How much of stderr, and of the start of stdout, is kept for messages.
const KEEP_BYTES: usize = 64 * 1024;

/// A program and its arguments.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub timeout: Duration,
    /// Written to the program's stdin (a pipe: private, unlike argv or the
    /// environment, which other users can read in `/proc`). None: no stdin.
    pub stdin: Option<crate::secret::Secret>,
}

impl Invocation {
    pub fn new(program: impl Into<PathBuf>, timeout: Duration) -> Invocation {
        Invocation {
            program: program.into(),
            args: Vec::new(),
            timeout,
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Invocation {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn stdin(mut self, input: crate::secret::Secret) -> Invocation {
        self.stdin = Some(input);
        self
    }

    /// The command line as an admin would type it (for logs and
    /// snapshots; arguments never hold secrets).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn shell_quote(a: &OsStr) -> String {
    let s = a.to_string_lossy();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub use cloudburst_core::exec::{status_text, Finished, RunError};

/// Keeps the first `KEEP_BYTES` that pass through.
struct Head<R> {
    inner: R,
    head: Vec<u8>,
}

impl<R: Read> Read for Head<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = KEEP_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

fn read_bounded(mut r: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = KEEP_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Runs `inv`, handing its stdout to `consume` as it arrives. If the
/// deadline passes, the process group is killed (so `consume` sees end of
/// input) and the run is `TimedOut`, whatever `consume` returned.
pub fn run<T>(
    inv: &Invocation,
    consume: impl FnOnce(&mut dyn BufRead) -> T,
) -> Result<Finished<T>, RunError> {
    let program = inv.program.display().to_string();
    let started = Instant::now();
    let mut child = Command::new(&inv.program)
        .args(&inv.args)
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that the deadline kills whatever the
        // tool started too.
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.clone(),
            source,
        })?;
    let pid = child.id() as libc::pid_t;

    // `reaped` guards the kill: the group is signalled only while the
    // child is unreaped, so its id cannot belong to anyone else yet.
    let reaped = Arc::new(Mutex::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = {
        let (reaped, timed_out) = (Arc::clone(&reaped), Arc::clone(&timed_out));
        let timeout = inv.timeout;
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                let reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
                if !*reaped {
                    timed_out.store(true, Ordering::SeqCst);
                    // SAFETY: plain syscall; the child (the group leader)
                    // is not reaped while we hold the lock.
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                }
            }
        })
    };

    // Fed from a thread, so a program that writes before it has read all
    // of its input cannot deadlock us.
    let feeder = match (child.stdin.take(), &inv.stdin) {
        (Some(mut pipe), Some(input)) => {
            let bytes = input.expose().as_bytes().to_vec();
            Some(thread::spawn(move || {
                use std::io::Write;
                let _ = pipe.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = thread::spawn(move || read_bounded(stderr));

    let stdout = child.stdout.take().expect("stdout is piped");
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        Head {
            inner: stdout,
            head: Vec::new(),
        },
    );
    let value = consume(&mut reader);
    // Whatever the reader left unread is drained so the tool can finish
    // writing and exit; the deadline still bounds this.
    let drained = io::copy(&mut reader, &mut io::sink());
    wait_for_exit_without_reaping(pid);
    let status = {
        let mut reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
        *reaped = true;
        child.wait()
    };
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let stderr = stderr_reader.join().unwrap_or_default();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout_head = reader.into_inner().head;

    if timed_out.load(Ordering::SeqCst) {
        return Err(RunError::TimedOut {
            program,
            timeout: inv.timeout,
        });
    }
    let status = status.map_err(|source| RunError::Io {
        program: program.clone(),
        source,
    })?;
    drained.map_err(|source| RunError::Io { program, source })?;
    Ok(Finished {
        status,
        stdout_head,
        stderr,
        value,
        elapsed: started.elapsed(),
    })
}

/// Blocks until the child has exited but leaves it a zombie, so that its
/// pid (and process group id) stay ours until `wait` reaps it.
fn wait_for_exit_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: waitid only writes into the siginfo we own.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Runs `inv` and keeps all of stdout (for tools with small outputs).
pub fn run_capture(inv: &Invocation) -> Result<Finished<Vec<u8>>, RunError> {
    run(inv, |r| {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        all
    })
}

/// Resolves a tool name against `bin_dir` if one is configured, else
/// leaves it to `PATH`.
pub fn tool_path(bin_dir: Option<&Path>, name: &str) -> PathBuf {
    match bin_dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> Invocation {
        Invocation::new("/bin/sh", Duration::from_millis(timeout_ms))
            .arg("-c")
            .arg(script)
    }

    #[test]
    fn captures_stdout_stderr_and_status() {
        let f = run_capture(&sh("echo out; echo err >&2; exit 3", 10_000)).unwrap();
        assert_eq!(f.value, b"out\n");
        assert_eq!(f.stderr, b"err\n");
        assert_eq!(f.status.code(), Some(3));
        assert_eq!(f.status_text(), "exit 3");
    }

    #[test]
    fn a_hung_tool_and_its_children_are_killed_at_the_deadline() {
        // The grandchild holds stdout open; only killing the group ends it.
        let err = run_capture(&sh("sleep 300 & sleep 300; echo never", 300)).unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = run_capture(&Invocation::new(
            "/nonexistent/condor_q",
            Duration::from_secs(5),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/condor_q"), "{err}");
    }

    #[test]
    fn a_reader_that_stops_early_does_not_block_the_tool() {
        let f = run(&sh("seq 1 200000", 30_000), |r| {
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            first
        })
        .unwrap();
        assert_eq!(f.value, "1\n");
        assert!(f.success());
        assert!(f.stdout_head.starts_with(b"1\n2\n"));
    }

    #[test]
    fn stdin_is_fed_through_a_pipe() {
        let inv = sh("tr a-z A-Z", 10_000).stdin(crate::secret::Secret::new("secret".into()));
        let f = run_capture(&inv).unwrap();
        assert_eq!(f.value, b"SECRET");
        // Not in the command line.
        assert!(!inv.display().contains("secret"));
    }

    #[test]
    fn command_lines_are_displayed_quoted() {
        let inv = Invocation::new("condor_q", Duration::from_secs(1)).args([
            "-constraint",
            "WantCloud =?= true",
            "-json",
        ]);
        assert_eq!(
            inv.display(),
            "condor_q -constraint 'WantCloud =?= true' -json"
        );
    }
}
