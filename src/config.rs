//! The configuration file (`/etc/cloudburst/cloudburst.toml`): the model,
//! and validation whose errors name the file, line and column.
//!
//! Pure: `parse` takes the text; reading the file is the caller's.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;
use toml::Spanned;

use crate::classad::parse_expr;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default)]
    pub condor: CondorConfig,
}

/// The site's HTCondor pool, as cloudburst reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// The central manager (`-pool`), when it is not the local config's
    /// `CONDOR_HOST`.
    pub collector: Option<String>,
    /// Schedds to query by name. Empty: the schedds the collector knows.
    pub schedds: Vec<String>,
    /// Which jobs are meant for the cloud (a ClassAd constraint on the
    /// job ad).
    pub cloud_job_constraint: Spanned<String>,
    /// Which slots are our cloud nodes.
    pub cloud_slot_constraint: Spanned<String>,
    /// Job attributes to fetch beyond the built-in projection (those the
    /// flavours' START expressions or the constraint refer to).
    pub job_attributes: Vec<String>,
    /// The schedd's `job_queue.log`, when it is readable on this host:
    /// new cloud jobs are then seen at once instead of at the next poll.
    pub job_log: Option<PathBuf>,
    /// How long a startd's ad must be missing from every successful
    /// reading (and the collector up) before its node counts as gone.
    #[serde(deserialize_with = "duration")]
    pub startd_missing_grace: Duration,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            collector: None,
            schedds: Vec::new(),
            cloud_job_constraint: Spanned::new(0..0, DEFAULT_JOB_CONSTRAINT.to_string()),
            cloud_slot_constraint: Spanned::new(0..0, DEFAULT_SLOT_CONSTRAINT.to_string()),
            job_attributes: Vec::new(),
            job_log: None,
            startd_missing_grace: Duration::from_secs(300),
        }
    }
}

pub const DEFAULT_JOB_CONSTRAINT: &str = "WantCloud =?= true";
pub const DEFAULT_SLOT_CONSTRAINT: &str = "CloudNode =?= true";

/// How the condor tools are run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CondorConfig {
    /// Where `condor_q` and friends are; default: `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// Each tool is killed if it runs longer than this.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Jobs on a node being drained are protected by the pilot's
    /// `MaxJobRetirementTime`; a busy node is drained only if it is at
    /// least this (0: never drain a busy node).
    #[serde(deserialize_with = "duration")]
    pub min_retirement: Duration,
}

impl Default for CondorConfig {
    fn default() -> CondorConfig {
        CondorConfig {
            bin_dir: None,
            timeout: Duration::from_secs(60),
            min_retirement: Duration::ZERO,
        }
    }
}

/// `90`, `"90s"`, `"5m"`, `"2h"`, `"1d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 90s, 5m, 2h, 1d)"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use s, m, h or d)"
            ))
        }
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// A configuration problem, located.
#[derive(Debug, Error, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

fn locate(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses and validates a configuration file's text.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let at = |offset: usize, message: String| {
        let (line, column) = locate(text, offset);
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    };
    let config: Config = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim_end().to_string())
    })?;
    for (key, c) in [
        (
            "pool.cloud_job_constraint",
            &config.pool.cloud_job_constraint,
        ),
        (
            "pool.cloud_slot_constraint",
            &config.pool.cloud_slot_constraint,
        ),
    ] {
        if let Err(e) = parse_expr(c.get_ref().as_bytes()) {
            // Point into the string: one past the opening quote.
            let offset = c.span().start + 1 + e.offset;
            return Err(at(
                offset,
                format!("{key} is not a ClassAd expression: {}", e.message),
            ));
        }
    }
    for s in &config.pool.schedds {
        crate::condor::commands::validate_name("schedd", s).map_err(|e| at(0, e.to_string()))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = parse("c.toml", "").unwrap();
        assert_eq!(
            c.pool.cloud_job_constraint.get_ref(),
            DEFAULT_JOB_CONSTRAINT
        );
        assert_eq!(c.condor.timeout, Duration::from_secs(60));
        assert!(c.pool.schedds.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("c.toml", "[pool]\nschedds = [\"a\"]\nbogus = 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(
            e.to_string()
                .starts_with("c.toml:3:1: unknown field `bogus`"),
            "{e}"
        );
        let e = parse(
            "c.toml",
            "[pool]\ncloud_job_constraint = \"WantCloud =?= (\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("pool.cloud_job_constraint is not a ClassAd expression"),
            "{e}"
        );
        let e = parse("c.toml", "[condor]\ntimeout = \"5 parsecs\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown unit"), "{e}");
    }

    #[test]
    fn durations_read_as_an_admin_writes_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("m5").is_err());
    }
}
