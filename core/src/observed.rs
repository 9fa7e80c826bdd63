//! What a source told us: known, or explicitly unknown with the reason.
//!
//! This is invariant 3 ("Unknown is not empty") as a type. A queue that
//! could not be read is never an empty queue, and nothing downstream can
//! mistake one for the other without matching on `Unknown`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a source could not be read this cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unknown {
    /// The tool could not be started (not installed, not executable).
    NotStarted { detail: String },
    /// The tool ran past its deadline and was killed.
    TimedOut { after_ms: u64 },
    /// It exited with a failure status (or a signal); `message` is its
    /// own error text.
    Failed { status: String, message: String },
    /// It exited 0 but said something that means "I could not answer"
    /// (`-- Failed to fetch ads`, `All queues are empty` from a -global
    /// query, ...).
    Refused { message: String },
    /// Its output did not parse: where and what.
    Garbage { message: String },
    /// The source is not configured to be read (for example a job log
    /// that is not readable); another source must be used.
    Unavailable { detail: String },
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::NotStarted { detail } => write!(f, "could not start: {detail}"),
            Unknown::TimedOut { after_ms } => {
                write!(
                    f,
                    "timed out after {:.1} s and was killed",
                    *after_ms as f64 / 1000.0
                )
            }
            Unknown::Failed { status, message } => write!(f, "failed ({status}): {message}"),
            Unknown::Refused { message } => write!(f, "could not answer: {message}"),
            Unknown::Garbage { message } => write!(f, "unreadable output: {message}"),
            Unknown::Unavailable { detail } => write!(f, "unavailable: {detail}"),
        }
    }
}

/// One source's reading for one cycle.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed<T> {
    Known(T),
    Unknown(Unknown),
}

impl<T> Observed<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Observed::Known(t) => Some(t),
            Observed::Unknown(_) => None,
        }
    }

    pub fn unknown(&self) -> Option<&Unknown> {
        match self {
            Observed::Known(_) => None,
            Observed::Unknown(u) => Some(u),
        }
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Observed::Known(_))
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observed<U> {
        match self {
            Observed::Known(t) => Observed::Known(f(t)),
            Observed::Unknown(u) => Observed::Unknown(u),
        }
    }
}

impl<T> From<Result<T, Unknown>> for Observed<T> {
    fn from(r: Result<T, Unknown>) -> Observed<T> {
        match r {
            Ok(t) => Observed::Known(t),
            Err(u) => Observed::Unknown(u),
        }
    }
}
