//! Commands on startds: drain, cancel a drain, peaceful off, and minting a
//! pilot's IDTOKEN. Argument vectors and the reading of each command's
//! result are pure and live here; running them is the adapter's job.
//!
//! What the real pool showed (`tests/data/README.md`):
//! - `condor_drain` takes a *slot* name (`slot1@cloudpilot@vm`); the daemon
//!   name fails with "Can't find address for startd" and exit 1;
//! - with the default `MaxJobRetirementTime = 0`, a graceful drain evicts a
//!   running job at once, so an idle node is drained with a startd-side
//!   check that refuses if a claim arrived since we looked (`-check`,
//!   evaluated by the startd on every slot when the request lands, which
//!   closes the race with the negotiator), and a busy node only when its
//!   jobs' retirement protects them (our pilot grants it up to its hard
//!   stop; the startd evicts once less than `MachineMaxVacateTime` is left);
//! - `condor_off -peaceful -startd` leaves the pilot's master running;
//!   `condor_off -master` ends it;
//! - a command can succeed against a pilot that has just gone (stale
//!   collector data), and fail with "Can't find address" once the
//!   collector has forgotten it: that is "already gone", not a failure.

use std::fmt;

use thiserror::Error;

use super::outcome::error_text;
use super::pool::{Activity, Startd};
pub use crate::secret::Secret;

/// Names that go on a command line: slot, daemon and token identity names.
/// Letters, digits and `._@-`, not starting with `-` (so never read as an
/// option), at most 255 bytes.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), CommandError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CommandError::BadName {
            what,
            name: name.escape_debug().to_string(),
        })
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum CommandError {
    #[error("refusing to use {what} {name:?}: only letters, digits and ._@- are allowed, not starting with '-'")]
    BadName { what: &'static str, name: String },
    #[error("not draining {startd}: {reason}")]
    Unsafe { startd: String, reason: String },
}

/// The startd-side check sent with every drain of an idle node: every
/// slot unclaimed and no dynamic slots. If a job was matched since our
/// snapshot, the startd refuses the drain instead of evicting it.
pub const IDLE_CHECK: &str = "(State =?= \"Unclaimed\" || State =?= \"Owner\") && (NumDynamicSlots =?= undefined || NumDynamicSlots == 0)";

/// How a drain may treat running work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainMode {
    /// Only an idle node; the startd re-checks when the request lands.
    IdleOnly,
    /// A node whose jobs are protected by the pilot's retirement time of
    /// at least this many seconds; they finish before the node drains.
    Retire { min_retirement: i64 },
}

/// Whether draining `startd` in `mode` could kill running work.
pub fn drain_allowed(startd: &Startd, mode: DrainMode) -> Result<(), CommandError> {
    let unsafe_because = |reason: String| CommandError::Unsafe {
        startd: startd.name.clone(),
        reason,
    };
    if startd.slots.is_empty() {
        return Err(unsafe_because("it advertises no slot to drain".into()));
    }
    match mode {
        DrainMode::IdleOnly if startd.claims > 0 || startd.activity == Activity::Busy => Err(
            unsafe_because(format!("it has {} claim(s)", startd.claims.max(1))),
        ),
        DrainMode::Retire { min_retirement } if startd.claims > 0 => {
            match startd.retirement_time {
                Some(t) if t >= min_retirement => Ok(()),
                Some(t) => Err(unsafe_because(format!(
                    "it has {} claim(s) whose retirement ({t} s left before eviction) is less than the {min_retirement} s its jobs need (condor.min_retirement)",
                    startd.claims
                ))),
                None => Err(unsafe_because(format!(
                    "it has {} claim(s) and does not advertise MaxJobRetirementTime",
                    startd.claims
                ))),
            }
        }
        _ => Ok(()),
    }
}

/// How `startd` may be drained now, given `condor.min_retirement`
/// (seconds; 0 never drains a busy node), or why it may not: the one rule
/// the adapter, the planner and the simulated pool apply.
pub fn drain_mode(startd: &Startd, min_retirement: i64) -> Result<DrainMode, CommandError> {
    if startd.claims == 0 {
        drain_allowed(startd, DrainMode::IdleOnly)?;
        return Ok(DrainMode::IdleOnly);
    }
    if min_retirement <= 0 {
        return Err(CommandError::Unsafe {
            startd: startd.name.clone(),
            reason: format!(
                "it has {} claim(s) and condor.min_retirement is 0 (never drain busy nodes)",
                startd.claims
            ),
        });
    }
    let mode = DrainMode::Retire { min_retirement };
    drain_allowed(startd, mode)?;
    Ok(mode)
}

fn with_pool(pool: Option<&str>) -> Vec<String> {
    match pool {
        Some(p) => vec!["-pool".to_string(), p.to_string()],
        None => Vec::new(),
    }
}

/// `condor_drain -graceful -reason R [-check C] SLOT`.
pub fn drain_args(
    pool: Option<&str>,
    slot: &str,
    reason: &str,
    mode: DrainMode,
) -> Result<Vec<String>, CommandError> {
    validate_name("slot", slot)?;
    let mut args = with_pool(pool);
    args.extend([
        "-graceful".to_string(),
        "-reason".to_string(),
        reason.to_string(),
    ]);
    if mode == DrainMode::IdleOnly {
        args.extend(["-check".to_string(), IDLE_CHECK.to_string()]);
    }
    args.push(slot.to_string());
    Ok(args)
}

/// `condor_drain -cancel SLOT`.
pub fn cancel_drain_args(pool: Option<&str>, slot: &str) -> Result<Vec<String>, CommandError> {
    validate_name("slot", slot)?;
    let mut args = with_pool(pool);
    args.extend(["-cancel".to_string(), slot.to_string()]);
    Ok(args)
}

/// `condor_off -peaceful -startd -name DAEMON`: the startd stops once its
/// jobs finish.
pub fn off_startd_args(pool: Option<&str>, daemon: &str) -> Result<Vec<String>, CommandError> {
    validate_name("startd", daemon)?;
    let mut args = with_pool(pool);
    args.extend(["-peaceful", "-startd", "-name", daemon].map(String::from));
    Ok(args)
}

/// `condor_off -master -name DAEMON`: ends the pilot's master (and with it
/// the pilot, whose image powers off when condor exits).
pub fn off_master_args(pool: Option<&str>, daemon: &str) -> Result<Vec<String>, CommandError> {
    validate_name("master", daemon)?;
    let mut args = with_pool(pool);
    args.extend(["-master", "-name", daemon].map(String::from));
    Ok(args)
}

/// `condor_reconfig`: the collector reads its config again (a changed
/// pilot revocation list; see `pilot::revocation`). The pool's own
/// collector is `-collector`; a named one is reached by its address,
/// since `condor_reconfig` refuses `-pool` without `-addr` or `-name`
/// (HTCondor 25.14: "you have asked to find a machine in another pool
/// ... but you have not specified which machine").
pub fn reconfig_collector_args(pool: Option<&str>) -> Vec<String> {
    match pool {
        Some(p) => {
            let addr = if p
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
            {
                p.to_string()
            } else {
                format!("{p}:9618")
            };
            vec!["-addr".into(), format!("<{addr}>")]
        }
        None => vec!["-collector".into()],
    }
}

/// The authorizations a pilot's token carries: enough to advertise its
/// startd and master and to read the pool, nothing that can administer it.
pub const PILOT_AUTHZ: [&str; 3] = ["ADVERTISE_STARTD", "ADVERTISE_MASTER", "READ"];

/// `condor_token_create -identity ID -authz ... -lifetime SECS [-key K]`.
/// The token comes back on stdout (a pipe to us), never through a file or
/// an argument another user could read.
pub fn token_args(
    identity: &str,
    lifetime_secs: u64,
    key: Option<&str>,
) -> Result<Vec<String>, CommandError> {
    validate_name("token identity", identity)?;
    let mut args = vec!["-identity".to_string(), identity.to_string()];
    for a in PILOT_AUTHZ {
        args.extend(["-authz".to_string(), a.to_string()]);
    }
    args.extend(["-lifetime".to_string(), lifetime_secs.to_string()]);
    if let Some(k) = key {
        validate_name("signing key", k)?;
        args.extend(["-key".to_string(), k.to_string()]);
    }
    Ok(args)
}

/// What a command on a startd achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The daemon accepted the request. (Not proof that it exists: the
    /// collector may still hold the ad of a pilot that just left.)
    Sent,
    /// The collector has no address for it: it has already gone.
    Gone,
    /// The startd refused to drain because a slot is no longer idle (the
    /// `-check` caught a claim that arrived after our snapshot).
    BecameBusy {
        message: String,
    },
    /// It is already draining.
    AlreadyDraining,
    Failed {
        message: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Sent => f.write_str("sent"),
            Outcome::Gone => f.write_str("already gone"),
            Outcome::BecameBusy { message } => write!(f, "refused, no longer idle: {message}"),
            Outcome::AlreadyDraining => f.write_str("already draining"),
            Outcome::Failed { message } => write!(f, "failed: {message}"),
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    memchr::memmem::find(hay, needle.as_bytes()).is_some()
}

/// Reads the result of `condor_drain`, `condor_drain -cancel` or
/// `condor_off` from its exit code and output.
pub fn read_outcome(success: bool, stdout: &[u8], stderr: &[u8]) -> Outcome {
    let either = |m: &str| contains(stdout, m) || contains(stderr, m);
    if success && (contains(stdout, "Sent request") || contains(stdout, "Sent \"")) {
        return Outcome::Sent;
    }
    if either("Draining check expression is false") {
        return Outcome::BecameBusy {
            message: error_text(stdout, stderr),
        };
    }
    if either("Draining already in progress") {
        return Outcome::AlreadyDraining;
    }
    if either("Can't find address") {
        return Outcome::Gone;
    }
    Outcome::Failed {
        message: error_text(stdout, stderr),
    }
}

/// Reads `condor_token_create`'s stdout: one JWT (three base64url parts).
/// Errors describe the shape, never the text, which may hold the secret.
pub fn read_token(success: bool, stdout: &[u8], stderr: &[u8]) -> Result<Secret, String> {
    if !success {
        // stderr is the tool's own message and holds no token.
        return Err(format!(
            "condor_token_create failed: {}",
            error_text(b"", stderr)
        ));
    }
    let text = std::str::from_utf8(stdout)
        .map_err(|_| "condor_token_create printed something that is not text".to_string())?;
    let token = text.trim();
    let parts: Vec<&str> = token.split('.').collect();
    let jwt = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !jwt {
        return Err(format!(
            "condor_token_create printed {} line(s) that are not one token",
            text.lines().count()
        ));
    }
    Ok(Secret::new(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condor::pool::assemble;

    fn startd(text: &[&str]) -> Startd {
        let ads: Vec<_> = text
            .iter()
            .map(|t| crate::classad::parse_ad(t.as_bytes()).unwrap())
            .collect();
        assemble(&ads)
            .unwrap()
            .startds
            .into_values()
            .next()
            .unwrap()
    }

    #[test]
    fn names_that_could_be_options_or_shell_are_refused() {
        for bad in [
            "",
            "-pool",
            "a b",
            "a;rm",
            "x\ny",
            "$(id)",
            "a'b",
            &"x".repeat(256),
        ] {
            assert!(validate_name("slot", bad).is_err(), "{bad:?}");
        }
        for good in [
            "slot1@cloudpilot@vm",
            "cb-node-0001.example.org",
            "pilot@site",
        ] {
            validate_name("slot", good).unwrap();
        }
    }

    #[test]
    fn drains_go_to_the_slot_with_a_startd_side_check() {
        let args = drain_args(
            None,
            "slot1@cloudpilot@vm",
            "cloudburst: idle",
            DrainMode::IdleOnly,
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "-graceful",
                "-reason",
                "cloudburst: idle",
                "-check",
                IDLE_CHECK,
                "slot1@cloudpilot@vm"
            ]
        );
        let retire = drain_args(
            Some("cm:9618"),
            "slot1@n",
            "r",
            DrainMode::Retire { min_retirement: 60 },
        )
        .unwrap();
        assert!(!retire.contains(&"-check".to_string()));
        assert_eq!(&retire[..2], ["-pool", "cm:9618"]);
        assert!(drain_args(None, "-cancel", "r", DrainMode::IdleOnly).is_err());
    }

    #[test]
    fn the_idle_check_is_valid_classad_and_true_only_for_idle_slots() {
        use crate::classad::{matching::with_value, parse_ad, parse_expr};
        let check = parse_expr(IDLE_CHECK.as_bytes()).unwrap();
        let truth = |ad: &str| {
            let ad = parse_ad(ad.as_bytes()).unwrap();
            with_value(&check, Some(&ad), None, 0, |v| {
                v.ok().and_then(|v| v.as_bool_equiv())
            })
        };
        assert_eq!(
            truth(r#"[State = "Unclaimed"; NumDynamicSlots = 0]"#),
            Some(true)
        );
        assert_eq!(
            truth(r#"[State = "Unclaimed"; NumDynamicSlots = 1]"#),
            Some(false)
        );
        assert_eq!(truth(r#"[State = "Claimed"]"#), Some(false));
        assert_eq!(truth(r#"[State = "Owner"]"#), Some(true));
    }

    #[test]
    fn busy_nodes_are_never_drained_unless_retirement_protects_them() {
        let busy = startd(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Unclaimed"; NumDynamicSlots = 1; MaxJobRetirementTime = 0]"#,
        ]);
        let e = drain_allowed(&busy, DrainMode::IdleOnly).unwrap_err();
        assert_eq!(e.to_string(), "not draining n@h: it has 1 claim(s)");
        let e = drain_allowed(
            &busy,
            DrainMode::Retire {
                min_retirement: 3600,
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("(-600 s left before eviction)"),
            "{e}"
        );
        let protected = startd(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Unclaimed"; NumDynamicSlots = 1; MaxJobRetirementTime = 86400]"#,
        ]);
        drain_allowed(
            &protected,
            DrainMode::Retire {
                min_retirement: 3600,
            },
        )
        .unwrap();
        let idle = startd(&[
            r#"[Name = "slot1@n@h"; SlotType = "Partitionable"; State = "Unclaimed"; NumDynamicSlots = 0]"#,
        ]);
        drain_allowed(&idle, DrainMode::IdleOnly).unwrap();
    }

    /// The captured outputs of the real tools (fixtures/condor/live/cli).
    #[test]
    fn outcomes_read_as_the_real_tools_print_them() {
        let sent = b"Sent request to drain the startd <127.0.0.1:9620?addrs=127.0.0.1-9620&alias=vm> with slot1@cloudpilot@vm. This only affects the single startd; any other startds running on the same host will not be drained.\n";
        assert_eq!(read_outcome(true, sent, b""), Outcome::Sent);
        assert_eq!(
            read_outcome(
                true,
                b"Sent request to cancel draining on slot1@cloudpilot@vm\n",
                b""
            ),
            Outcome::Sent
        );
        assert_eq!(
            read_outcome(
                false,
                b"",
                b"ERROR: Can't find address for startd cloudpilot@vm\n"
            ),
            Outcome::Gone
        );
        let off_gone_out = b"Sent \"Set-Peaceful-Shutdown\" command to startd cloudpilot@vm\n";
        let off_gone_err = b"Can't find address for master cloudpilot@vm\nCan't find address for cloudpilot@vm\nPerhaps you need to query another pool.\n";
        assert_eq!(
            read_outcome(false, off_gone_out, off_gone_err),
            Outcome::Gone
        );
        // From HTCondor's drain.cpp and ResMgr::startDraining (no capture:
        // provoking it needs a claim racing the drain).
        let busy = b"Attempt to send DRAIN_JOBS to startd <127.0.0.1:9620> failed\nReceived failure from slot1@n in response to DRAIN_JOBS request: error code 10003: Draining check expression is false on slot1_1@n.\n";
        assert!(matches!(
            read_outcome(false, b"", busy),
            Outcome::BecameBusy { .. }
        ));
        assert!(matches!(
            read_outcome(false, b"", b"Error: communication error\n"),
            Outcome::Failed { .. }
        ));
    }

    #[test]
    fn the_collector_is_reconfigured_by_its_address() {
        assert_eq!(reconfig_collector_args(None), ["-collector"]);
        assert_eq!(
            reconfig_collector_args(Some("cm.example.edu:9619")),
            ["-addr", "<cm.example.edu:9619>"]
        );
        assert_eq!(
            reconfig_collector_args(Some("cm.example.edu")),
            ["-addr", "<cm.example.edu:9618>"]
        );
    }

    #[test]
    fn tokens_are_scoped_and_never_shown() {
        let args = token_args("pilot-0001@cloud.example.org", 86400, Some("POOL")).unwrap();
        assert_eq!(
            args.join(" "),
            "-identity pilot-0001@cloud.example.org -authz ADVERTISE_STARTD -authz ADVERTISE_MASTER -authz READ -lifetime 86400 -key POOL"
        );
        let t = read_token(
            true,
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwIn0.c2lnbmF0dXJl\n",
            b"",
        )
        .unwrap();
        assert_eq!(format!("{t:?} {t}"), "Secret(<redacted>) <redacted>");
        assert!(t.expose().starts_with("eyJ"));
        let e = read_token(true, b"not a token but secret-ish\n", b"").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
