//! Revoking a retired node's token: the central manager refuses it from
//! the moment the node is being terminated until it would have expired
//! anyway.
//!
//! Each pilot's IDTOKEN names its node (`token_identity`) and lives for
//! the node's lifetime plus its drain grace. A node that is terminated
//! early leaves a token that would still authenticate for hours if it was
//! copied off the VM (a job can read its own node's disk). The collector
//! evaluates `SEC_TOKEN_REVOCATION_EXPR` against the claims of every token
//! presented to it (`sub`, `iss`, `iat`, `exp`, `jti`, `scope`) and
//! refuses the token when it is true, or when it is not a boolean at all;
//! the central manager's snippet (`condor-config/50-cloudburst-central-
//! manager.conf`) builds that expression from the list this module
//! renders, which the agent keeps in `pilot.revocation_file`.
//!
//! The list names the identities' user part, so it holds whatever
//! `@domain` `condor_token_create` put in `sub`. An identity stays listed
//! until every token minted for it has expired: minting happens before
//! the node is terminated, so its token expires at most one token
//! lifetime after the node entered the state it is in now.

use crate::config::Config;
use crate::lifecycle::{Node, State};

/// The config macro the revocation file defines.
pub const MACRO: &str = "CLOUDBURST_REVOKED_PILOTS";

/// Whether a node in `state` has retired: being terminated, or gone for
/// whatever reason. Its startd has no work left (never-kill-work holds
/// before a terminate), so refusing its token can cost nothing.
fn retired(state: State) -> bool {
    matches!(
        state,
        State::Terminating | State::Gone | State::BootFailed | State::Lost | State::Preempted
    )
}

/// How long a pilot's token lives (`condor_token_create -lifetime`).
pub fn token_lifetime_secs(config: &Config) -> u64 {
    config
        .timers
        .max_lifetime
        .saturating_add(config.timers.drain_grace)
        .as_secs()
}

/// The user part of each retired node's identity whose token may still be
/// valid at `now`, sorted and without repeats.
pub fn revoked(config: &Config, nodes: &[Node], now: i64) -> Vec<String> {
    let lifetime = i64::try_from(token_lifetime_secs(config)).unwrap_or(i64::MAX);
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|n| retired(n.state) && n.since.saturating_add(lifetime) >= now)
        .map(|n| {
            let identity = super::token_identity(config, &n.id);
            match identity.split_once('@') {
                Some((user, _)) => user.to_string(),
                None => identity,
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The revocation file: one macro holding the identities as a ClassAd
/// list's elements. Node ids are made of the pool name and a sequence
/// number (the config refuses quotes and backslashes in a pool name), so
/// each element is a plain string literal.
pub fn render(revoked: &[String]) -> String {
    let list = revoked
        .iter()
        .map(|u| format!("\"{}\"", u.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# Written by cloudburst (pilot.revocation_file); do not edit.\n\
         # The pilot identities of retired nodes whose tokens have not expired\n\
         # yet: 50-cloudburst-central-manager.conf refuses their tokens.\n\
         {MACRO} = {list}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn node(id: &str, state: State, since: i64) -> Node {
        let mut n = fixtures::node(id, state, None);
        n.since = since;
        n
    }

    #[test]
    fn retired_nodes_are_listed_until_their_tokens_have_expired() {
        let mut config = crate::config::parse("c.toml", crate::planner::tests::CONFIG).unwrap();
        config.pilot.trust_domain = Some("pool.example.edu".into());
        let life = token_lifetime_secs(&config) as i64;
        let nodes = [
            node("p-000001", State::Gone, 1_000),
            node("p-000002", State::Terminating, 1_000),
            node("p-000003", State::Busy, 1_000),
            node("p-000004", State::BootFailed, 1_000),
            node("p-000005", State::Gone, 1_000 - life - 1),
            node("p-000006", State::Idle, 1_000),
            node("p-000007", State::Lost, 1_000),
        ];
        let listed = revoked(&config, &nodes, 1_000 + 10);
        assert_eq!(
            listed,
            [
                "cloudburst-pilot-p-000001",
                "cloudburst-pilot-p-000002",
                "cloudburst-pilot-p-000004",
                "cloudburst-pilot-p-000007"
            ]
        );
        assert_eq!(
            revoked(&config, &nodes, 1_000 + life + 1),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_file_defines_one_macro_of_string_literals() {
        assert_eq!(
            render(&["a-1".into(), "b\"2".into()]).lines().last(),
            Some("CLOUDBURST_REVOKED_PILOTS = \"a-1\", \"b\\\"2\"")
        );
        assert!(render(&[]).ends_with("CLOUDBURST_REVOKED_PILOTS = \n"));
    }
}
