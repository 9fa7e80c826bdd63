//! Reading a condor tool's exit: what counts as an answer, what counts as
//! "could not answer". Pure: it sees the exit status and the text, never a
//! process.
//!
//! Each rule below is a case captured from a real pool
//! (`tests/data/condor/live/cli/`):
//! - a non-zero exit is never an answer (`q_schedd_down`,
//!   `status_collector_down`, `q_bad_constraint`, `q_no_such_schedd`);
//! - some refusals exit 0: `condor_q -global` with the schedd down prints
//!   `All queues are empty` (`q_schedd_down_global`), and `-- Failed to
//!   fetch ads` can appear on either stream;
//! - an empty answer is *no output at all* with exit 0 (not `[]`).

use crate::exec::{status_text, Finished, RunError};
use crate::observed::Unknown;

/// Text that means the tool could not answer, whatever its exit status.
/// On stderr it counts anywhere; on stdout only at the start of a line, so
/// that a job attribute quoting such text (a `HoldReason`) is not taken
/// for the tool's own message.
const REFUSALS: [&str; 7] = [
    "-- Failed to fetch ads",
    "All queues are empty",
    "Error:",
    "ERROR:",
    "Can't find address",
    "Collector has no record",
    "Failed to connect",
];

/// The tool's own explanation, as an admin would want it in one log line:
/// the first paragraph of stderr (or of stdout if stderr is empty), at
/// most three lines.
pub fn error_text(stdout_head: &[u8], stderr: &[u8]) -> String {
    let source = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout_head
    };
    let text = String::from_utf8_lossy(source);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .take(3)
        .collect();
    let mut joined = lines.join("; ");
    if joined.len() > 400 {
        let mut cut = 400;
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        joined.truncate(cut);
        joined.push('…');
    }
    if joined.is_empty() {
        "no error text".to_string()
    } else {
        joined
    }
}

/// A refusal marker in either stream, if any.
pub fn refusal(stdout_head: &[u8], stderr: &[u8]) -> Option<&'static str> {
    REFUSALS.iter().copied().find(|m| {
        memchr::memmem::find(stderr, m.as_bytes()).is_some()
            || stdout_head
                .split(|&b| b == b'\n')
                .any(|line| line.trim_ascii_start().starts_with(m.as_bytes()))
    })
}

/// Turns a query's run into its answer or the reason there is none. `T` is
/// what the output parser made of stdout; a parse problem is garbage.
pub fn classify<T, E: std::fmt::Display>(
    run: Result<Finished<Result<T, E>>, RunError>,
) -> Result<T, Unknown> {
    let f = match run {
        Ok(f) => f,
        Err(RunError::Spawn { program, source }) => {
            return Err(Unknown::NotStarted {
                detail: format!("{program}: {source}"),
            })
        }
        Err(RunError::TimedOut { timeout, .. }) => {
            return Err(Unknown::TimedOut {
                after_ms: timeout.as_millis() as u64,
            })
        }
        Err(e @ RunError::Io { .. }) => {
            return Err(Unknown::Failed {
                status: "i/o error".into(),
                message: e.to_string(),
            })
        }
    };
    if !f.status.success() {
        return Err(Unknown::Failed {
            status: status_text(f.status),
            message: error_text(&f.stdout_head, &f.stderr),
        });
    }
    if refusal(&f.stdout_head, &f.stderr).is_some() {
        return Err(Unknown::Refused {
            message: error_text(&f.stdout_head, &f.stderr),
        });
    }
    f.value.map_err(|e| Unknown::Garbage {
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_takes_the_first_paragraph() {
        let schedd_down = b"Error: Can't find address for schedd vm\n\nExtra Info: You probably saw this error because\n";
        assert_eq!(
            error_text(b"", schedd_down),
            "Error: Can't find address for schedd vm"
        );
        let collector_down =
            b"Error: communication error\nCEDAR:6001:Failed to connect to <127.0.0.1:9618>\n";
        assert_eq!(
            error_text(b"", collector_down),
            "Error: communication error; CEDAR:6001:Failed to connect to <127.0.0.1:9618>"
        );
        let bad_constraint =
            b"\n-- Failed to fetch ads from: <127.0.0.1:33333?addrs=127.0.0.1-33333&alias=vm> : vm\n\n";
        assert!(error_text(bad_constraint, b"").starts_with("-- Failed to fetch ads from"));
        assert_eq!(error_text(b"", b""), "no error text");
    }

    #[test]
    fn refusals_are_found_on_either_stream() {
        assert_eq!(
            refusal(b"All queues are empty\n", b""),
            Some("All queues are empty")
        );
        assert_eq!(
            refusal(b"", b"\n-- Failed to fetch ads from: <x> : vm\n"),
            Some("-- Failed to fetch ads")
        );
        let held = b"{\n  \"HoldReason\": \"Error: Failed to connect\"\n}\n";
        assert_eq!(refusal(held, b""), None);
        assert_eq!(refusal(b"[\n{\n  \"ClusterId\": 3\n}\n]\n", b""), None);
    }
}
