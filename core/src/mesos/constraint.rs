//! Where a framework lets its waiting tasks run, as far as it bears on
//! buying pilots. A task whose constraints no pilot satisfies must buy
//! none: it would wait on every node we boot, and each would retire idle
//! only to be bought again the next cycle.
//!
//! Marathon (1.x `docs/constraints.md`): a constraint is a field (the
//! agent's `hostname` or an attribute), an operator and an optional
//! value. An agent without the attribute is refused by every operator
//! but UNLIKE. LIKE and UNLIKE take a (Java) regular expression that must
//! match the whole value; PCRE2, which the ClassAd engine already links,
//! reads the same syntax.
//!
//! Aurora (0.22 `api.thrift` `Constraint`; the scheduler's
//! `ConstraintMatcher`): a value constraint admits an agent holding any
//! of its values, negated one holding none of them (an agent without the
//! attribute holds none); a limit needs the attribute. `host` is the
//! agent's hostname.
//!
//! Our pilots' agents carry what `pilot::mesos_unit_text` gives them:
//! `cloud_node:true`, `cloud_site`, `cloud_flavor`, `cloudburst_node` and
//! `[pilot.mesos] attributes`. A node not yet booted has no hostname or
//! node id we could know: a rule that needs one of them refuses it,
//! except one that only excludes values (a new machine is none of the
//! hosts named today). Pure.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::classad::builtins::regex::{Pattern, WHOLE};

/// One placement rule of a waiting task.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Constraint {
    /// `hostname` or an attribute's name.
    pub field: String,
    pub rule: Rule,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The value is one of these (Marathon CLUSTER or IS with a value,
    /// an Aurora value constraint).
    OneOf(Vec<String>),
    /// The value is none of these, or absent (a negated Aurora value
    /// constraint).
    NoneOf(Vec<String>),
    /// The whole value matches this regular expression (LIKE).
    Like(String),
    /// The value does not match, or is absent (UNLIKE).
    Unlike(String),
    /// At most this many tasks per value (UNIQUE: 1, MAX_PER, an Aurora
    /// limit), or spread or gathered by value (GROUP_BY, CLUSTER without a
    /// value): the attribute must be there.
    PerValue(Option<u64>),
    /// An operator this release does not know: no pilot is assumed to do.
    Unmodelled(String),
}

impl Constraint {
    pub fn new(field: &str, rule: Rule) -> Constraint {
        Constraint {
            field: field.to_string(),
            rule,
        }
    }

    /// A Marathon constraint, `[field, operator, value?]` of an app or
    /// `{fieldName, operator, value}` of a pod.
    pub fn marathon(field: &str, operator: &str, value: Option<&str>) -> Constraint {
        let rule = match (operator, value) {
            ("UNIQUE", _) => Rule::PerValue(Some(1)),
            ("CLUSTER" | "IS", Some(v)) => Rule::OneOf(vec![v.to_string()]),
            ("CLUSTER" | "GROUP_BY", _) => Rule::PerValue(None),
            ("LIKE", Some(re)) => Rule::Like(re.to_string()),
            ("UNLIKE", Some(re)) => Rule::Unlike(re.to_string()),
            ("MAX_PER", Some(n)) => match n.trim().parse() {
                Ok(n) => Rule::PerValue(Some(n)),
                Err(_) => Rule::Unmodelled(format!("MAX_PER {n:?}")),
            },
            (op, _) => Rule::Unmodelled(op.to_string()),
        };
        Constraint::new(field, rule)
    }

    /// How many of the task's instances one host takes, if this rule
    /// says.
    fn per_host(&self) -> Option<u64> {
        match self.rule {
            Rule::PerValue(n) if self.field == "hostname" => n,
            _ => None,
        }
    }

    fn admits(&self, value: Seen<'_>, like: impl Fn(&str) -> bool) -> bool {
        match (&self.rule, value) {
            (Rule::Unmodelled(_), _) => false,
            (Rule::NoneOf(_) | Rule::Unlike(_), Seen::Missing | Seen::NotYetKnown) => true,
            (Rule::PerValue(_), Seen::NotYetKnown) => true,
            (_, Seen::Missing | Seen::NotYetKnown) => false,
            (Rule::OneOf(vs), Seen::Is(v)) => vs.iter().any(|x| x == v),
            (Rule::NoneOf(vs), Seen::Is(v)) => !vs.iter().any(|x| x == v),
            (Rule::Like(_), Seen::Is(v)) => like(v),
            (Rule::Unlike(_), Seen::Is(v)) => !like(v),
            (Rule::PerValue(_), Seen::Is(_)) => true,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        match &self.rule {
            Rule::OneOf(vs) => write!(f, "{field} in {vs:?}"),
            Rule::NoneOf(vs) => write!(f, "{field} not in {vs:?}"),
            Rule::Like(re) => write!(f, "{field} LIKE {re:?}"),
            Rule::Unlike(re) => write!(f, "{field} UNLIKE {re:?}"),
            Rule::PerValue(Some(n)) => write!(f, "at most {n} per {field}"),
            Rule::PerValue(None) => write!(f, "{field} present"),
            Rule::Unmodelled(op) => write!(f, "{field} {op} (not modelled)"),
        }
    }
}

/// The constraints of a JSON list (absent: none), each read by `one`;
/// an entry `one` cannot read is skipped.
pub fn list(
    v: Option<&serde_json::Value>,
    one: impl Fn(&serde_json::Value) -> Option<Constraint>,
) -> Vec<Constraint> {
    v.and_then(serde_json::Value::as_array)
        .map(|cs| cs.iter().filter_map(one).collect())
        .unwrap_or_default()
}

/// At most this many of a task's instances on one host, if any rule says.
pub fn per_host(constraints: &[Constraint]) -> Option<u64> {
    constraints.iter().filter_map(Constraint::per_host).min()
}

/// An attribute of a node as it can be known before its agent offers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seen<'a> {
    Is(&'a str),
    /// Our pilots never carry it.
    Missing,
    /// It will have one, but not one we can know yet.
    NotYetKnown,
}

/// What a pilot's agent carries (`pilot::mesos_unit_text`).
pub struct PilotAttributes<'a> {
    pub site: &'a str,
    pub flavor: &'a str,
    /// Our node id, once the node exists.
    pub node: Option<&'a str>,
    /// The agent's hostname, once it registered.
    pub hostname: Option<&'a str>,
    /// `[pilot.mesos] attributes`.
    pub extra: &'a BTreeMap<String, String>,
}

impl<'a> PilotAttributes<'a> {
    fn get(&self, field: &str) -> Seen<'a> {
        let known = |v: Option<&'a str>| v.map_or(Seen::NotYetKnown, Seen::Is);
        match field {
            "hostname" => known(self.hostname),
            "cloudburst_node" => known(self.node),
            "cloud_node" => Seen::Is("true"),
            "cloud_site" => Seen::Is(self.site),
            "cloud_flavor" => Seen::Is(self.flavor),
            other => self
                .extra
                .get(other)
                .map_or(Seen::Missing, |v| Seen::Is(v.as_str())),
        }
    }
}

/// One unit's constraints, ready to test nodes against (the regular
/// expressions compiled once).
pub struct Admission<'a> {
    rules: Vec<(&'a Constraint, Option<Pattern>)>,
}

impl<'a> Admission<'a> {
    pub fn new(constraints: &'a [Constraint]) -> Admission<'a> {
        let rules = constraints
            .iter()
            .map(|c| {
                let re = match &c.rule {
                    // A pattern that does not compile matches nothing.
                    Rule::Like(re) | Rule::Unlike(re) => Pattern::new(re.as_bytes(), WHOLE),
                    _ => None,
                };
                (c, re)
            })
            .collect();
        Admission { rules }
    }

    /// The first rule a node with these attributes breaks, if any.
    pub fn refusal(&self, node: &PilotAttributes<'_>) -> Option<&'a Constraint> {
        self.rules.iter().find_map(|(c, re)| {
            let like = |v: &str| re.as_ref().is_some_and(|re| re.is_match(v.as_bytes()));
            (!c.admits(node.get(&c.field), like)).then_some(*c)
        })
    }

    pub fn admits(&self, node: &PilotAttributes<'_>) -> bool {
        self.refusal(node).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pilot<'a>(
        node: Option<&'a str>,
        hostname: Option<&'a str>,
        extra: &'a BTreeMap<String, String>,
    ) -> PilotAttributes<'a> {
        PilotAttributes {
            site: "aws",
            flavor: "c5.large",
            node,
            hostname,
            extra,
        }
    }

    fn m(field: &str, op: &str, value: Option<&str>) -> Vec<Constraint> {
        vec![Constraint::marathon(field, op, value)]
    }

    #[test]
    fn marathon_operators_against_a_new_and_a_registered_pilot() {
        let extra = BTreeMap::from([("gpu_class".to_string(), "none".to_string())]);
        let new = pilot(None, None, &extra);
        let up = pilot(Some("e2e-000004"), Some("ip-10-0-0-21"), &extra);
        // (constraint, admits a new pilot, admits the registered one)
        let cases = [
            (m("cloud_site", "CLUSTER", Some("aws")), true, true),
            (m("cloud_site", "IS", Some("jetstream")), false, false),
            (m("cloud_flavor", "LIKE", Some("c5\\..*")), true, true),
            // The whole value: "c5" alone does not match "c5.large".
            (m("cloud_flavor", "LIKE", Some("c5")), false, false),
            (m("cloud_flavor", "UNLIKE", Some("m5.*")), true, true),
            (m("cloud_node", "CLUSTER", Some("true")), true, true),
            (m("gpu_class", "IS", Some("none")), true, true),
            // An attribute our pilots lack: only UNLIKE admits.
            (m("rack_id", "CLUSTER", Some("rack-1")), false, false),
            (m("rack_id", "GROUP_BY", None), false, false),
            (m("rack_id", "UNIQUE", None), false, false),
            (m("rack_id", "UNLIKE", Some("rack-1")), true, true),
            // A host we cannot know before it boots.
            (m("hostname", "CLUSTER", Some("ip-10-0-0-21")), false, true),
            (m("hostname", "LIKE", Some("ip-.*")), false, true),
            (m("hostname", "UNLIKE", Some("login.*")), true, true),
            (m("hostname", "UNLIKE", Some("ip-.*")), true, false),
            (m("hostname", "UNIQUE", None), true, true),
            (m("hostname", "MAX_PER", Some("2")), true, true),
            (
                m("cloudburst_node", "CLUSTER", Some("e2e-000004")),
                false,
                true,
            ),
            (m("cloud_site", "FANCY", Some("x")), false, false),
            (m("cloud_site", "LIKE", Some("(")), false, false),
        ];
        for (cs, for_new, for_up) in cases {
            let a = Admission::new(&cs);
            assert_eq!(
                (a.admits(&new), a.admits(&up)),
                (for_new, for_up),
                "{}",
                cs[0]
            );
        }
    }

    #[test]
    fn aurora_value_constraints_and_limits() {
        let extra = BTreeMap::new();
        let new = pilot(None, None, &extra);
        let vals = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let one = |field: &str, rule: Rule| vec![Constraint::new(field, rule)];
        assert!(
            Admission::new(&one("cloud_site", Rule::OneOf(vals(&["gcp", "aws"])))).admits(&new)
        );
        assert!(!Admission::new(&one("cloud_site", Rule::NoneOf(vals(&["aws"])))).admits(&new));
        // `dedicated` is absent on our pilots: a negated value admits, a
        // plain one or a limit refuses.
        assert!(
            Admission::new(&one("dedicated", Rule::NoneOf(vals(&["www-data/x"])))).admits(&new)
        );
        assert!(
            !Admission::new(&one("dedicated", Rule::OneOf(vals(&["www-data/x"])))).admits(&new)
        );
        assert!(!Admission::new(&one("rack", Rule::PerValue(Some(2)))).admits(&new));
        let both = [
            Constraint::new("cloud_site", Rule::OneOf(vals(&["aws"]))),
            Constraint::new("rack", Rule::PerValue(Some(2))),
        ];
        assert_eq!(
            Admission::new(&both).refusal(&new).map(ToString::to_string),
            Some("at most 2 per rack".to_string())
        );
    }

    #[test]
    fn the_tightest_per_host_rule_caps_a_node() {
        let cs = [
            Constraint::marathon("hostname", "MAX_PER", Some("3")),
            Constraint::marathon("hostname", "UNIQUE", None),
            Constraint::marathon("cloud_site", "UNIQUE", None),
        ];
        assert_eq!(per_host(&cs), Some(1));
        assert_eq!(per_host(&cs[..1]), Some(3));
        assert_eq!(per_host(&cs[2..]), None);
    }
}
