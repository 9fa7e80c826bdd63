//! What one cycle read from the pool: each schedd's queue, the cloud
//! startds, the collector; each part known or not on its own.

use super::job::Job;
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
}
