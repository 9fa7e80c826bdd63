//! What one cycle read from the pool: each schedd's queue, the cloud
//! startds, the collector; each part known or not on its own.

use std::collections::BTreeSet;

use super::job::{Job, JobId, JobStatus};
use super::pool::{Collector, Pool};
use crate::observed::Observed;

/// One schedd's queue, as read this cycle.
#[derive(Clone, Debug)]
pub struct ScheddQueue {
    pub schedd: String,
    pub jobs: Observed<Vec<Job>>,
}

/// Everything read from the pool in one cycle.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    /// The schedds asked (from the config, or the collector's list).
    pub schedds: Observed<Vec<String>>,
    pub queues: Vec<ScheddQueue>,
    pub pool: Observed<Pool>,
    pub collector: Observed<Collector>,
    /// Distinct job ads after sharing (autocluster-like groups).
    pub distinct_job_ads: usize,
}

impl PoolSnapshot {
    /// The queue is known only if every schedd answered.
    pub fn queue_known(&self) -> bool {
        self.schedds.is_known() && self.queues.iter().all(|q| q.jobs.is_known())
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.queues.iter().filter_map(|q| q.jobs.known()).flatten()
    }

    /// This snapshot with one schedd's queue as its job log shows it now
    /// (`jobs`: the log's cloud jobs, idle or running), and how many of
    /// the log's idle jobs this snapshot did not have: the new demand.
    /// The schedd is the one named (from the log's `GlobalJobId`s), or the
    /// only one; `None` if neither is in the snapshot.
    pub fn with_log_queue(
        &self,
        schedd: Option<&str>,
        jobs: Vec<Job>,
    ) -> Option<(PoolSnapshot, usize)> {
        let i = schedd
            .and_then(|name| self.queues.iter().position(|q| q.schedd == name))
            .or_else(|| (self.queues.len() == 1).then_some(0))?;
        let known: BTreeSet<JobId> = self.queues[i]
            .jobs
            .known()
            .map(|q| q.iter().map(|j| j.id).collect())
            .unwrap_or_default();
        let new = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Idle && !known.contains(&j.id))
            .count();
        let mut snap = self.clone();
        snap.queues[i].jobs = Observed::Known(jobs);
        Some((snap, new))
    }
}
