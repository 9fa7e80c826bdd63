//! Test fixtures shared by the core's unit tests: a node and its startd as
//! the planner, pairing and reconciliation tests need them. They live here,
//! apart from any one module's tests, so that sharing them adds no import
//! between the modules under test.

use crate::condor::{Activity, Startd};
use crate::lifecycle::{DrainCause, Node, State};

/// A node of the small flavour, joined at 99,000, last busy at 99,990.
pub fn node(id: &str, state: State, cause: Option<DrainCause>) -> Node {
    Node {
        id: id.into(),
        site: "aws".into(),
        flavor: "small".into(),
        group: None,
        token: format!("t-{id}"),
        instance_id: Some(format!("i-{id}")),
        state,
        since: 99_000,
        created_at: 99_000,
        last_busy: Some(99_990),
        startd: Some(format!("{id}@cloud")),
        drain_cause: cause,
        admin_drain: None,
        terminate_attempts: 0,
        terminate_last: None,
        price_per_hour: 0.1,
        spot: false,
        ended_at: None,
    }
}

/// Its startd, with `claims` claims.
pub fn startd(id: &str, claims: u32) -> Startd {
    Startd {
        name: format!("{id}@cloud"),
        slots: vec![format!("slot1@{id}@cloud")],
        machine: None,
        node_id: Some(id.into()),
        instance_id: None,
        site: Some("aws".into()),
        provider: Some("ec2".into()),
        flavor: Some("small".into()),
        activity: if claims > 0 {
            Activity::Busy
        } else {
            Activity::Idle
        },
        claims,
        total_cpus: 2.0,
        free_cpus: if claims > 0 { 0.0 } else { 2.0 },
        total_memory: 8192,
        free_memory: 8192,
        free_disk: 1 << 20,
        free_gpus: 0,
        drain_reason: None,
        retirement_time: None,
        daemon_start: None,
        last_heard: None,
        identity: None,
    }
}
