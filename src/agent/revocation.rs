//! Keeps `pilot.revocation_file` equal to the list the core computes
//! (`pilot::revocation`) and tells the collector when it changed.
//!
//! The file is replaced whole (written beside it, then renamed), so the
//! collector never reads half a list; it is world-readable on purpose: it
//! names identities, not secrets, and the condor daemons read it. A failed
//! reconfig is tried again after the next cycle: the file is only taken as
//! applied once the collector accepted the request.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::condor::commands::Outcome;
use crate::config::Config;
use crate::lifecycle::Node;
use crate::pilot::revocation;

#[derive(Default)]
pub struct Revocations {
    /// What the collector was last told to read.
    applied: Option<String>,
}

/// What `update` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    /// No revocation file is configured, or the list is as applied.
    Unchanged,
    /// Written, and the collector asked to read it.
    Applied { identities: usize },
}

impl Revocations {
    /// Writes the list for `nodes` at `now` when it differs from what the
    /// collector last read, then calls `reconfig`.
    pub fn update(
        &mut self,
        config: &Config,
        nodes: &[Node],
        now: i64,
        reconfig: impl FnOnce() -> Outcome,
    ) -> Result<Update> {
        let Some(path) = &config.pilot.revocation_file else {
            return Ok(Update::Unchanged);
        };
        let listed = revocation::revoked(config, nodes, now);
        let text = revocation::render(&listed);
        if self.applied.is_none() {
            // After a restart: a file already as it should be was read by
            // the collector when it was written.
            if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
                self.applied = Some(text);
                return Ok(Update::Unchanged);
            }
        }
        if self.applied.as_deref() == Some(text.as_str()) {
            return Ok(Update::Unchanged);
        }
        replace(path, &text)
            .with_context(|| format!("writing pilot.revocation_file {}", path.display()))?;
        match reconfig() {
            Outcome::Sent => {
                self.applied = Some(text);
                Ok(Update::Applied {
                    identities: listed.len(),
                })
            }
            other => anyhow::bail!(
                "condor_reconfig -collector after writing {}: {other:?}; tried again next cycle",
                path.display()
            ),
        }
    }
}

/// Replaces `path` with `text` in one rename, mode 0644.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(d) = dir {
        // The rename itself survives a crash only once the folder is synced.
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::State;

    fn config(path: &Path) -> Config {
        let text = format!(
            "[pool]\nname = \"p\"\n[pilot]\ntrust_domain = \"cm.example.edu\"\nrevocation_file = {:?}\n\
             [[sites]]\nname = \"aws\"\nprovider = \"ec2\"\n[[sites.flavors]]\nname = \"m\"\ncpus = 2\n\
             memory_mb = 4096\ndisk_gb = 20\nprice_per_hour = 0.1\n",
            path.display().to_string()
        );
        crate::config::parse("t.toml", &text).unwrap()
    }

    fn node(id: &str, state: State) -> Node {
        Node {
            state,
            ..Node::requested(id, "aws", "m", id, 1_000)
        }
    }

    #[test]
    fn the_file_follows_the_retired_nodes_and_the_collector_is_told_once_per_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked-pilots.conf");
        let c = config(&path);
        let mut r = Revocations::default();
        let mut calls = 0;
        let mut nodes = vec![node("p-000001", State::Busy)];
        let mut step = |r: &mut Revocations, nodes: &[Node], answer: Outcome| {
            r.update(&c, nodes, 1_010, || {
                calls += 1;
                answer
            })
        };
        // Nothing retired: an empty list, applied once.
        assert_eq!(
            step(&mut r, &nodes, Outcome::Sent).unwrap(),
            Update::Applied { identities: 0 }
        );
        assert_eq!(
            step(&mut r, &nodes, Outcome::Sent).unwrap(),
            Update::Unchanged
        );
        nodes[0].state = State::Terminating;
        // A refused reconfig is an error, and the change is tried again.
        let failed = Outcome::Failed {
            message: "refused".into(),
        };
        assert!(step(&mut r, &nodes, failed).is_err());
        assert_eq!(
            step(&mut r, &nodes, Outcome::Sent).unwrap(),
            Update::Applied { identities: 1 }
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("CLOUDBURST_REVOKED_PILOTS = \"cloudburst-pilot-p-000001\""));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // A restarted agent finds the file as it should be: no reconfig.
        let mut again = Revocations::default();
        assert_eq!(
            step(&mut again, &nodes, Outcome::Sent).unwrap(),
            Update::Unchanged
        );
        assert_eq!(calls, 3);
    }
}
