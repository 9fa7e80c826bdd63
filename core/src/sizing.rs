//! Sized starts: an empty pilot opens only for a job that needs a node
//! its size, a job no smaller flavour could hold; once a job runs there,
//! smaller ones fill the cores left.
//!
//! Why: a node lives as long as its longest job, and grid run times are
//! heavy-tailed. When a 1-core job takes an empty 8-core node (booted for
//! an 8-core job, or left empty by one), the node's other 7 cores wait
//! for that one job, often for hours, while the 8-core job boots another
//! node. On the built-in workload such mismatches were most of
//! cloudburst's cost over the clairvoyant bound. HTCondor's own default
//! (`NEGOTIATOR_PRE_JOB_RANK` prefers the slot with the fewest cores)
//! already fills part-used nodes first; this rule keeps empty ones for
//! the jobs they fit.
//!
//! "Smaller" means at any site: a 1-core job does not open a 2-core EC2
//! node while a 1-core Jetstream flavour exists. The pilot cannot see
//! whether a job's Requirements exclude that other site, so a job that
//! has waited `ANY_SITE_WAIT_SECS` is judged by its node's site alone:
//! a job pinned to a site always starts there, at worst that much later.
//! The planner knows the job's Requirements and buys for it by the rule
//! that will let it start first.
//!
//! The pilot enforces it in `START` (`start_clause`, evaluated by the
//! negotiator and the startd on the partitionable slot, whose `Cpus` is
//! what is left of `TotalSlotCpus`); the planner places demand by the
//! same rule (`Sizes`), and the simulator's pool obeys it.
//! `pilot.sized_start = false` turns it off.

use crate::demand::FlavorOption;
use crate::model::Resources;

/// How long a job waits before it may open an empty node that a smaller
/// flavour at another site could replace (see [`Sizes::opens_at_once`]).
/// Longer than a boot: the smaller node bought for the job joins first.
pub const ANY_SITE_WAIT_SECS: i64 = 300;

/// For each flavour option, the flavours with fewer cores at its site and
/// at any site (only those no other one of them contains).
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    at_site: Vec<Vec<Resources>>,
    anywhere: Vec<Vec<Resources>>,
}

impl Sizes {
    /// The rule over `options` (`on`: `pilot.sized_start`).
    pub fn of(options: &[FlavorOption], on: bool) -> Sizes {
        if !on {
            return Sizes::default();
        }
        Sizes {
            at_site: options
                .iter()
                .map(|o| smaller_than(options, Some(&o.site), &o.capacity))
                .collect(),
            anywhere: options
                .iter()
                .map(|o| smaller_than(options, None, &o.capacity))
                .collect(),
        }
    }

    /// Whether a job asking `req` may start on an empty node of `option`
    /// once it has waited `ANY_SITE_WAIT_SECS`: no smaller flavour at
    /// the node's site holds it.
    pub fn opens(&self, option: usize, req: &Resources) -> bool {
        outgrows(self.at_site.get(option), req)
    }

    /// Whether it may at once: no smaller flavour at any site holds it.
    pub fn opens_at_once(&self, option: usize, req: &Resources) -> bool {
        outgrows(self.anywhere.get(option), req)
    }

    /// Whether it may after waiting `waited` seconds.
    pub fn opens_after(&self, option: usize, req: &Resources, waited: i64) -> bool {
        self.opens_at_once(option, req) || (waited > ANY_SITE_WAIT_SECS && self.opens(option, req))
    }
}

fn outgrows(smaller: Option<&Vec<Resources>>, req: &Resources) -> bool {
    smaller.is_none_or(|s| s.iter().all(|f| f.fits(req) == 0))
}

/// The capacities of the flavours at `site` (or at any site) with fewer
/// cores than `capacity`, without those another of them contains.
pub fn smaller_than(
    options: &[FlavorOption],
    site: Option<&str>,
    capacity: &Resources,
) -> Vec<Resources> {
    let all: Vec<Resources> = options
        .iter()
        .filter(|o| site.is_none_or(|s| o.site == s) && o.capacity.cpus < capacity.cpus)
        .map(|o| o.capacity)
        .collect();
    let mut out: Vec<Resources> = Vec::new();
    for (i, a) in all.iter().enumerate() {
        let contained = all
            .iter()
            .enumerate()
            .any(|(j, b)| j != i && b.fits(a) > 0 && (b != a || j < i));
        if !contained {
            out.push(*a);
        }
    }
    out.sort_by_key(|r| (r.cpus, r.memory, r.disk, r.gpus));
    out
}

/// The clause of the pilot's `START` that enforces the rule, `None` when
/// no smaller flavour exists anywhere (every job opens the node): a part-
/// used slot takes any job; an empty one a job no smaller flavour at any
/// site holds, or, once the job has waited `ANY_SITE_WAIT_SECS` (by its
/// `QDate`), one no smaller flavour at this site holds. Undefined
/// requests count as HTCondor's defaults for a job without them.
pub fn start_clause(at_site: &[Resources], anywhere: &[Resources]) -> Option<String> {
    if anywhere.is_empty() {
        return None;
    }
    let outgrows = |list: &[Resources]| -> String {
        let each: Vec<String> = list
            .iter()
            .map(|s| {
                format!(
                    "((TARGET.RequestCpus ?: 1) > {} || (TARGET.RequestMemory ?: 0) > {} || (TARGET.RequestDisk ?: 0) > {} || (TARGET.RequestGpus ?: 0) > {})",
                    s.cpus, s.memory, s.disk, s.gpus
                )
            })
            .collect();
        format!("({})", each.join(" && "))
    };
    if at_site == anywhere {
        return Some(format!(
            "(MY.Cpus < MY.TotalSlotCpus || {})",
            outgrows(anywhere)
        ));
    }
    let waited = format!("time() - (TARGET.QDate ?: 0) > {ANY_SITE_WAIT_SECS}");
    let later = if at_site.is_empty() {
        waited
    } else {
        format!("({} && {waited})", outgrows(at_site))
    };
    Some(format!(
        "(MY.Cpus < MY.TotalSlotCpus || {} || {later})",
        outgrows(anywhere)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(site: &str, cpus: u64, memory: u64) -> FlavorOption {
        FlavorOption {
            site: site.into(),
            flavor: format!("{cpus}c{memory}"),
            group: None,
            capacity: Resources {
                cpus,
                memory,
                disk: 50 << 20,
                gpus: 0,
            },
            mesos_share: Resources::default(),
            price_per_hour: cpus as f64,
            priority: 0,
            spot: false,
            ad: Default::default(),
        }
    }

    fn job(cpus: u64, memory: u64) -> Resources {
        Resources {
            cpus,
            memory,
            disk: 1 << 20,
            gpus: 0,
        }
    }

    #[test]
    fn an_empty_node_opens_only_for_a_job_no_smaller_flavour_holds() {
        let options = vec![
            option("aws", 2, 4096),
            option("aws", 4, 16384),
            option("aws", 8, 16384),
            option("js", 1, 3072),
            option("js", 8, 30720),
        ];
        let sizes = Sizes::of(&options, true);
        // The smallest flavour at a site takes anything that fits it once
        // the job has waited; at once only what the other site's smaller
        // flavour cannot hold.
        assert!(sizes.opens(0, &job(1, 1024)));
        assert!(!sizes.opens_at_once(0, &job(1, 1024)));
        assert!(!sizes.opens_after(0, &job(1, 1024), ANY_SITE_WAIT_SECS));
        assert!(sizes.opens_after(0, &job(1, 1024), ANY_SITE_WAIT_SECS + 1));
        assert!(sizes.opens_at_once(0, &job(2, 1024)));
        assert!(sizes.opens_at_once(3, &job(1, 1024)));
        // A 4-core node: not for a job a 2-core one holds; for one that
        // needs its cores or its memory.
        assert!(!sizes.opens(1, &job(1, 2048)));
        assert!(!sizes.opens(1, &job(2, 4096)));
        assert!(sizes.opens(1, &job(3, 1024)));
        assert!(sizes.opens(1, &job(1, 8192)));
        // An 8-core node with the 4-core one's memory: a 4-core job is
        // held by the 4-core flavour.
        assert!(!sizes.opens(2, &job(4, 8192)));
        assert!(sizes.opens(2, &job(5, 8192)));
        // Jetstream's 8-core node: a 4-core job waits for the other site's
        // 4-core flavour, or opens it after waiting.
        assert!(!sizes.opens_at_once(4, &job(4, 8192)));
        assert!(sizes.opens_after(4, &job(4, 8192), ANY_SITE_WAIT_SECS + 1));
        // Off: everything opens.
        let off = Sizes::of(&options, false);
        assert!(off.opens(2, &job(1, 1)));
        assert!(off.opens_at_once(2, &job(1, 1)));
    }

    #[test]
    fn contained_flavours_are_left_out_of_the_clause() {
        let options = vec![
            option("aws", 2, 4096),
            option("aws", 2, 8192),
            option("aws", 4, 16384),
            option("aws", 8, 16384),
        ];
        let smaller = smaller_than(&options, Some("aws"), &options[3].capacity);
        // (2, 4096) is inside (2, 8192) and (4, 16384); only the latter
        // decides.
        assert_eq!(smaller.len(), 1);
        assert_eq!(smaller[0].cpus, 4);
        let clause = start_clause(&smaller, &smaller).unwrap();
        assert_eq!(
            clause,
            "(MY.Cpus < MY.TotalSlotCpus || (((TARGET.RequestCpus ?: 1) > 4 || (TARGET.RequestMemory ?: 0) > 16384 || (TARGET.RequestDisk ?: 0) > 52428800 || (TARGET.RequestGpus ?: 0) > 0)))"
        );
        assert_eq!(start_clause(&[], &[]), None);
    }

    #[test]
    fn a_smaller_flavour_elsewhere_adds_the_waiting_escape() {
        let options = vec![option("aws", 2, 4096), option("js", 1, 3072)];
        let at_site = smaller_than(&options, Some("aws"), &options[0].capacity);
        let anywhere = smaller_than(&options, None, &options[0].capacity);
        assert!(at_site.is_empty());
        assert_eq!(anywhere.len(), 1);
        assert_eq!(
            start_clause(&at_site, &anywhere).unwrap(),
            format!("(MY.Cpus < MY.TotalSlotCpus || (((TARGET.RequestCpus ?: 1) > 1 || (TARGET.RequestMemory ?: 0) > 3072 || (TARGET.RequestDisk ?: 0) > 52428800 || (TARGET.RequestGpus ?: 0) > 0)) || time() - (TARGET.QDate ?: 0) > {ANY_SITE_WAIT_SECS})")
        );
    }
}
