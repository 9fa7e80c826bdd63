//! What serde cannot check: expressions that must parse, names that must
//! be unique or safe on a command line, numbers that must make sense
//! together. Each error carries the byte offset of the value it is about.

use std::collections::HashSet;

use toml::Spanned;

use super::{Config, Provider};
use crate::classad::parse_expr;
use crate::model::attrs;

type Check = Result<(), (usize, String)>;

/// Machine attributes the pilot sets itself; a flavour may not override
/// them through `attributes`.
const RESERVED: &[&str] = &[
    "Cpus",
    "Memory",
    "Disk",
    "GPUs",
    attrs::CLOUD_NODE,
    attrs::CLOUD_SITE,
    attrs::CLOUD_PROVIDER,
    attrs::CLOUD_FLAVOR,
    attrs::CLOUD_INSTANCE_ID,
    attrs::NODE_ID,
    attrs::GROUP,
    "Start",
    "Requirements",
    "WithinResourceLimits",
];

fn expression(what: &str, e: &Spanned<String>) -> Check {
    parse_expr(e.get_ref().as_bytes())
        .map(|_| ())
        .map_err(|err| {
            (
                e.span().start + 1 + err.offset,
                format!("{what} is not a ClassAd expression: {}", err.message),
            )
        })
}

fn name(what: &str, n: &Spanned<String>) -> Check {
    let s = n.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !s.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err((
            n.span().start,
            format!("{what} {s:?}: use letters, digits, '.', '_' and '-' (at most 64)"),
        ))
    }
}

fn attribute_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn share(what: &str, v: f64) -> Check {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err((
            0,
            format!("{what} = {v}: must be more than 0 and at most 1"),
        ))
    }
}

pub fn validate(c: &Config) -> Check {
    name("pool.name", &c.pool.name)?;
    expression("pool.cloud_job_constraint", &c.pool.cloud_job_constraint)?;
    expression("pool.cloud_slot_constraint", &c.pool.cloud_slot_constraint)?;
    for s in &c.pool.schedds {
        crate::condor::commands::validate_name("schedd", s).map_err(|e| (0, e.to_string()))?;
    }
    for a in &c.pool.job_attributes {
        if !attribute_name(a) {
            return Err((
                0,
                format!("pool.job_attributes: {a:?} is not an attribute name"),
            ));
        }
    }

    let t = &c.timers;
    for (what, d) in [
        ("timers.cycle", t.cycle),
        ("timers.idle_timeout", t.idle_timeout),
        ("timers.boot_timeout", t.boot_timeout),
        ("timers.max_lifetime", t.max_lifetime),
        ("timers.terminate_timeout", t.terminate_timeout),
        ("condor.timeout", c.condor.timeout),
    ] {
        if d.is_zero() {
            return Err((0, format!("{what} must be more than 0")));
        }
    }
    // At max_lifetime a busy node's jobs have drain_grace left, less what
    // the pilot keeps to retire and vacate: the drain must be allowed then.
    let min_retirement = c.condor.min_retirement.as_secs();
    let margin = crate::model::START_MARGIN as u64;
    if min_retirement > 0 && min_retirement.saturating_add(margin) > t.drain_grace.as_secs() {
        return Err((
            0,
            format!(
                "condor.min_retirement ({min_retirement} s) plus the {margin} s a pilot keeps to retire and vacate is longer than timers.drain_grace ({} s): a busy node at max_lifetime could never be drained; lengthen drain_grace or shorten min_retirement (0: never drain busy nodes)",
                t.drain_grace.as_secs()
            ),
        ));
    }

    if let Some(f) = &c.pilot.revocation_file {
        if f.as_os_str().is_empty() || f == &c.agent.registry || f.file_name().is_none() {
            return Err((
                0,
                format!(
                    "pilot.revocation_file = {:?}: must name a file of its own (not the registry), which the central manager's condor reads",
                    f.display().to_string()
                ),
            ));
        }
    }

    if let Some(cv) = &c.pilot.cvmfs {
        let repo_name = |r: &String| {
            !r.is_empty()
                && r.contains('.')
                && r.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'))
        };
        if let Some(bad) = cv.repositories.iter().find(|r| !repo_name(r)) {
            return Err((
                0,
                format!("pilot.cvmfs.repositories: {bad:?} is not a repository name (like \"cms.cern.ch\")"),
            ));
        }
        let mut attrs = HashSet::new();
        for r in &cv.repositories {
            if !attrs.insert(super::pilot::has_cvmfs_attr(r)) {
                return Err((
                    0,
                    format!("pilot.cvmfs.repositories: {r:?} is listed twice, or advertises the same attribute as another"),
                ));
            }
        }
        for r in cv.required.iter().flatten() {
            if !cv.repositories.contains(r) {
                return Err((
                    0,
                    format!("pilot.cvmfs.required: {r:?} is not in pilot.cvmfs.repositories"),
                ));
            }
        }
    }

    if let Some(m) = &c.mesos {
        if c.pilot.mesos.is_none() {
            return Err((
                0,
                "mesos.master: [mesos] is set but [pilot.mesos] is not: the pilots would run no Mesos agent for its work".into(),
            ));
        }
        let masters = m.master.iter().map(|u| ("mesos.master", u));
        let frameworks = [("mesos.marathon", &m.marathon), ("mesos.aurora", &m.aurora)]
            .into_iter()
            .filter_map(|(what, u)| Some((what, u.as_ref()?)));
        for (what, u) in masters.chain(frameworks) {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains('@') {
                return Err((
                    0,
                    format!("{what} = {u:?}: must be an http:// or https:// address without credentials"),
                ));
            }
        }
        if m.timeout.is_zero() {
            return Err((0, "mesos.timeout must be more than 0".into()));
        }
    }

    let l = &c.limits;
    share("limits.ramp", l.ramp)?;
    share("limits.removal_share", l.removal_share)?;
    for (what, v) in [
        ("limits.max_cost_per_hour", l.max_cost_per_hour),
        ("limits.max_cost_per_month", l.max_cost_per_month),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            return Err((0, format!("{what} = {v}: must be a non-negative amount")));
        }
    }
    if l.backoff_initial > l.backoff_max {
        return Err((
            0,
            "limits.backoff_initial is longer than limits.backoff_max".into(),
        ));
    }

    let mut sites = HashSet::new();
    for site in &c.sites {
        name("site name", &site.name)?;
        let at = site.name.span().start;
        if !sites.insert(site.name.get_ref().as_str()) {
            return Err((
                at,
                format!("site {:?} is defined twice", site.name.get_ref()),
            ));
        }
        let tables = [
            (Provider::Ec2, site.ec2.is_some()),
            (Provider::Openstack, site.openstack.is_some()),
            (Provider::Script, site.script.is_some()),
        ];
        for (p, present) in tables {
            if present && p != site.provider {
                return Err((
                    at,
                    format!(
                        "site {:?} has provider = {:?} but a [sites.{}] table",
                        site.name.get_ref(),
                        site.provider.name(),
                        p.name()
                    ),
                ));
            }
        }
        if site.provider == Provider::Script {
            let Some(script) = &site.script else {
                return Err((
                    at,
                    format!("site {:?} has provider = \"script\" but no [sites.script] table with launch, list and terminate", site.name.get_ref()),
                ));
            };
            for (what, argv) in script.commands() {
                if argv.is_empty() {
                    return Err((
                        at,
                        format!("site {:?}: script.{what} is empty", site.name.get_ref()),
                    ));
                }
            }
        }
        if site.flavors.is_empty() {
            return Err((at, format!("site {:?} has no flavors", site.name.get_ref())));
        }
        let mut flavors = HashSet::new();
        for f in &site.flavors {
            name("flavor name", &f.name)?;
            let fat = f.name.span().start;
            let fname = f.name.get_ref();
            if !flavors.insert(fname.as_str()) {
                return Err((
                    fat,
                    format!("flavor {fname:?} is defined twice at this site"),
                ));
            }
            if f.cpus == 0 || f.memory_mb == 0 || f.disk_gb == 0 {
                return Err((
                    fat,
                    format!("flavor {fname:?}: cpus, memory_mb and disk_gb must be more than 0"),
                ));
            }
            if let Some(m) = &c.pilot.mesos {
                let disk = m.disk_gb.unwrap_or(0);
                if m.cpus >= f.cpus || m.memory_mb >= f.memory_mb || disk >= f.disk_gb {
                    return Err((
                        fat,
                        format!(
                            "flavor {fname:?} ({} cpus, {} MB, {} GB) is not larger than the [pilot.mesos] share ({} cpus, {} MB, {} GB): condor would get nothing",
                            f.cpus, f.memory_mb, f.disk_gb, m.cpus, m.memory_mb, disk
                        ),
                    ));
                }
            }
            if !(f.price_per_hour >= 0.0 && f.price_per_hour.is_finite()) {
                return Err((
                    fat,
                    format!("flavor {fname:?}: price_per_hour must be a non-negative amount"),
                ));
            }
            if let Some(start) = &f.start {
                expression(&format!("flavor {fname:?} start"), start)?;
            }
            for (attr, value) in &f.attributes {
                if !attribute_name(attr) {
                    return Err((
                        value.span().start,
                        format!("flavor {fname:?}: {attr:?} is not an attribute name"),
                    ));
                }
                if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(attr)) {
                    return Err((
                        value.span().start,
                        format!("flavor {fname:?}: {attr} is set by cloudburst itself and cannot be overridden"),
                    ));
                }
                expression(&format!("flavor {fname:?} attribute {attr}"), value)?;
            }
        }
    }

    let mut groups = HashSet::new();
    for g in &c.groups {
        name("group name", &g.name)?;
        let at = g.name.span().start;
        if !groups.insert(g.name.get_ref().as_str()) {
            return Err((at, format!("group {:?} is defined twice", g.name.get_ref())));
        }
        if g.token.is_some() == g.accounting_group.is_some() {
            return Err((
                at,
                format!(
                    "group {:?}: give exactly one of token or accounting_group",
                    g.name.get_ref()
                ),
            ));
        }
        for s in &g.sites {
            if !sites.contains(s.as_str()) {
                return Err((
                    at,
                    format!("group {:?}: no site named {s:?}", g.name.get_ref()),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const GOOD: &str = r#"
[pool]
name = "uni-hpc"

[[sites]]
name = "jetstream"
provider = "openstack"
image = "cloudburst-pilot"
[sites.openstack]
cloud = "jetstream"

[[sites.flavors]]
name = "m3.small"
cpus = 2
memory_mb = 6144
disk_gb = 20
price_per_hour = 0.08
start = "TARGET.WantCloud =?= true"
attributes = { HAS_CVMFS = "true" }

[[groups]]
name = "cms"
accounting_group = "group_cms"
sites = ["jetstream"]
"#;

    #[test]
    fn cvmfs_repositories_must_be_names_and_required_ones_configured() {
        let with = |block: &str| format!("{GOOD}\n[pilot.cvmfs]\nhttp_proxy = \"DIRECT\"\n{block}");
        assert!(parse(
            "c.toml",
            &with("repositories = [\"cms.cern.ch\"]\nrequired = [\"cms.cern.ch\"]\n")
        )
        .is_ok());
        let e = error(&with("repositories = [\"cms.cern.ch; reboot\"]\n"));
        assert!(
            e.contains(
                "pilot.cvmfs.repositories: \"cms.cern.ch; reboot\" is not a repository name"
            ),
            "{e}"
        );
        let e = error(&with(
            "repositories = [\"cms.cern.ch\"]\nrequired = [\"atlas.cern.ch\"]\n",
        ));
        assert!(
            e.contains(
                "pilot.cvmfs.required: \"atlas.cern.ch\" is not in pilot.cvmfs.repositories"
            ),
            "{e}"
        );
        let e = error(&with("repositories = [\"cms.cern.ch\", \"cms-cern.ch\"]\n"));
        assert!(e.contains("advertises the same attribute"), "{e}");
    }

    #[test]
    fn a_full_config_parses() {
        let c = parse("c.toml", GOOD).unwrap();
        assert_eq!(c.sites[0].flavors[0].cpus, 2);
        assert_eq!(
            c.groups[0].start_clause(),
            "TARGET.AcctGroup =?= \"group_cms\""
        );
        assert!(c.flavor("jetstream", "m3.small").is_some());
    }

    fn error(text: &str) -> String {
        parse("c.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_column() {
        assert!(error("[pool]\nschedds = [\"a\"]\nbogus = 1\n")
            .starts_with("c.toml:3:1: pool.bogus: unknown field `bogus`"),);
        let e = error("[pool]\ncloud_job_constraint = \"WantCloud =?= (\"\n");
        assert!(e.starts_with("c.toml:2:"), "{e}");
        assert!(
            e.contains("pool.cloud_job_constraint is not a ClassAd expression"),
            "{e}"
        );
        assert!(error("[condor]\ntimeout = \"5 parsecs\"\n").contains("unknown unit"));
        let e = error(&GOOD.replace(
            "start = \"TARGET.WantCloud =?= true\"",
            "start = \"TARGET.WantCloud =?= \"",
        ));
        assert!(e.starts_with("c.toml:18:"), "{e}");
        let e = error(&GOOD.replace("HAS_CVMFS", "Cpus"));
        assert!(e.contains("Cpus is set by cloudburst itself"), "{e}");
        assert!(e.starts_with("c.toml:19:"), "{e}");
        let e = error(&GOOD.replace("cpus = 2", "cpus = 0"));
        assert!(e.contains("must be more than 0"), "{e}");
        assert!(e.starts_with("c.toml:13:"), "{e}");
        let e = error(&GOOD.replace("sites = [\"jetstream\"]", "sites = [\"aws\"]"));
        assert!(e.contains("no site named \"aws\""), "{e}");
        let e = error(&GOOD.replace(
            "[sites.openstack]\ncloud = \"jetstream\"",
            "[sites.ec2]\nregion = \"us-east-1\"",
        ));
        assert!(
            e.contains("provider = \"openstack\" but a [sites.ec2] table"),
            "{e}"
        );
        // The provider tables are typed: a misspelt key names its line.
        let e = error(&GOOD.replace("cloud = \"jetstream\"", "clouds = \"jetstream\""));
        assert!(
            e.starts_with("c.toml:10:") && e.contains("unknown field `clouds`"),
            "{e}"
        );
        let e = error(&format!("{GOOD}\n[limits]\nramp = 1.5\n"));
        assert!(e.contains("limits.ramp = 1.5"), "{e}");
    }
}
