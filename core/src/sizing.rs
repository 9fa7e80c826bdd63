//! Sized starts: an empty pilot opens only for a job that needs a node
//! its size, a job no smaller flavour at its site could hold; once a job
//! runs there, smaller ones fill the cores left.
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
//! The pilot enforces it in `START` (`start_clause`, evaluated by the
//! negotiator and the startd on the partitionable slot, whose `Cpus` is
//! what is left of `TotalSlotCpus`); the planner places demand by the
//! same rule (`Sizes::opens`), and the simulator's pool obeys it. Sites
//! are separate: a job that one site's smallest flavour holds can open
//! that flavour even if another site has a smaller one, so a job whose
//! Requirements name a site can always open a node there. `pilot.
//! sized_start = false` turns it off.

use crate::demand::FlavorOption;
use crate::model::Resources;

/// For each flavour option, the flavours at its site with fewer cores
/// (only those no other one of them contains).
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    smaller: Vec<Vec<Resources>>,
}

impl Sizes {
    /// The rule over `options` (`on`: `pilot.sized_start`).
    pub fn of(options: &[FlavorOption], on: bool) -> Sizes {
        if !on {
            return Sizes::default();
        }
        Sizes {
            smaller: options
                .iter()
                .map(|o| smaller_than(options, &o.site, &o.capacity))
                .collect(),
        }
    }

    /// Whether a job asking `req` may start on an empty node of `option`.
    pub fn opens(&self, option: usize, req: &Resources) -> bool {
        self.smaller
            .get(option)
            .is_none_or(|s| s.iter().all(|f| f.fits(req) == 0))
    }
}

/// The capacities of the flavours at `site` with fewer cores than
/// `capacity`, without those another of them contains.
pub fn smaller_than(options: &[FlavorOption], site: &str, capacity: &Resources) -> Vec<Resources> {
    let all: Vec<Resources> = options
        .iter()
        .filter(|o| o.site == site && o.capacity.cpus < capacity.cpus)
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
/// no smaller flavour exists (every job opens the node). Undefined
/// requests count as HTCondor's defaults for a job without them.
pub fn start_clause(smaller: &[Resources]) -> Option<String> {
    if smaller.is_empty() {
        return None;
    }
    let outgrows = |s: &Resources| {
        format!(
            "(TARGET.RequestCpus ?: 1) > {} || (TARGET.RequestMemory ?: 0) > {} || (TARGET.RequestDisk ?: 0) > {} || (TARGET.RequestGpus ?: 0) > {}",
            s.cpus, s.memory, s.disk, s.gpus
        )
    };
    let each: Vec<String> = smaller
        .iter()
        .map(|s| format!("({})", outgrows(s)))
        .collect();
    Some(format!(
        "(MY.Cpus < MY.TotalSlotCpus || ({}))",
        each.join(" && ")
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
        // The smallest flavour at a site takes anything that fits it,
        // whatever another site has.
        assert!(sizes.opens(0, &job(1, 1024)));
        assert!(sizes.opens(3, &job(1, 1024)));
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
        // Off: everything opens.
        let off = Sizes::of(&options, false);
        assert!(off.opens(2, &job(1, 1)));
    }

    #[test]
    fn contained_flavours_are_left_out_of_the_clause() {
        let options = vec![
            option("aws", 2, 4096),
            option("aws", 2, 8192),
            option("aws", 4, 16384),
            option("aws", 8, 16384),
        ];
        let smaller = smaller_than(&options, "aws", &options[3].capacity);
        // (2, 4096) is inside (2, 8192) and (4, 16384); only the latter
        // decides.
        assert_eq!(smaller.len(), 1);
        assert_eq!(smaller[0].cpus, 4);
        let clause = start_clause(&smaller).unwrap();
        assert_eq!(
            clause,
            "(MY.Cpus < MY.TotalSlotCpus || (((TARGET.RequestCpus ?: 1) > 4 || (TARGET.RequestMemory ?: 0) > 16384 || (TARGET.RequestDisk ?: 0) > 52428800 || (TARGET.RequestGpus ?: 0) > 0)))"
        );
        assert_eq!(start_clause(&[]), None);
    }
}
