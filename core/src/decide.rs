//! The decision, whole: demand from the queue, then the plan. The agent's
//! cycle, `plan --snapshot` and `bench plan` all call this one function,
//! so what an admin replays offline and what the benchmark times is what
//! the agent does.

use std::collections::BTreeMap;

use crate::condor::Job;
use crate::config::Config;
use crate::demand::{self, Demand, FlavorOption};
use crate::lifecycle::Node;
use crate::mesos::MesosView;
use crate::pairing::StartdIndex;
use crate::planner::{self, Plan};

/// Everything but the queue that a decision reads.
pub struct Situation<'a> {
    pub now: i64,
    pub config: &'a Config,
    pub options: &'a [FlavorOption],
    /// The pool's startds paired with nodes; `None`: the pool could not
    /// be read.
    pub startds: Option<&'a StartdIndex<'a>>,
    pub cloud_known: bool,
    /// The registry's nodes, after this cycle's observed transitions.
    pub nodes: &'a [Node],
    pub month_spend: f64,
    /// (site, flavor) → in back-off until.
    pub backoff: &'a BTreeMap<(String, String), i64>,
    /// Per site: instances and cores that are not ours.
    pub foreign: &'a BTreeMap<String, (u32, u32)>,
    /// Sites whose launches are paused: until, why.
    pub paused: &'a BTreeMap<String, (i64, String)>,
    pub mesos: Option<&'a MesosView>,
}

pub struct Decision {
    /// `None` when the queue could not be read.
    pub demand: Option<Demand>,
    pub plan: Plan,
}

/// Demand from `jobs` (`None`: the queue could not be read), then the plan.
pub fn decide<'j>(s: &Situation<'_>, jobs: Option<impl IntoIterator<Item = &'j Job>>) -> Decision {
    let demand = jobs.map(|jobs| demand::compute(jobs, s.options, &s.config.groups, s.now));
    let plan = planner::plan(&planner::Inputs {
        now: s.now,
        config: s.config,
        options: s.options,
        demand: demand.as_ref(),
        startds: s.startds,
        cloud_known: s.cloud_known,
        nodes: s.nodes,
        month_spend: s.month_spend,
        backoff: s.backoff,
        foreign: s.foreign,
        paused: s.paused,
        mesos: s.mesos,
    });
    Decision { demand, plan }
}
