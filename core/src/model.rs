//! The model types several parts of the core share, so that none of them
//! has to import another for its vocabulary.

use std::fmt;

use serde::Serialize;

/// A slot's resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub cpus: u64,
    /// MiB
    pub memory: u64,
    /// KiB
    pub disk: u64,
    pub gpus: u64,
}

impl Resources {
    /// How many requests of `r` fit in `self`.
    pub fn fits(&self, r: &Resources) -> u64 {
        let per = |have: u64, want: u64| have.checked_div(want).unwrap_or(u64::MAX);
        per(self.cpus, r.cpus)
            .min(per(self.memory, r.memory))
            .min(per(self.disk, r.disk))
            .min(per(self.gpus, r.gpus))
    }

    pub fn minus(&self, r: &Resources, n: u64) -> Resources {
        Resources {
            cpus: self.cpus.saturating_sub(r.cpus * n),
            memory: self.memory.saturating_sub(r.memory * n),
            disk: self.disk.saturating_sub(r.disk * n),
            gpus: self.gpus.saturating_sub(r.gpus * n),
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cpu, {} MB", self.cpus, self.memory)?;
        if self.gpus > 0 {
            write!(f, ", {} gpu", self.gpus)?;
        }
        Ok(())
    }
}

/// Seconds before the hard stop that a running job's retirement ends, and
/// the vacate time it then has (`MachineMaxVacateTime`): the real startd
/// starts evicting once less retirement is left than the vacate time, so
/// both come off the node's life.
pub const RETIREMENT_MARGIN: i64 = 180;
pub const MAX_VACATE: i64 = 120;
/// A job that states its run time starts only if it ends this long before
/// the hard stop (the pilot's START; the planner places by the same end).
pub const START_MARGIN: i64 = RETIREMENT_MARGIN + MAX_VACATE;

/// The attributes a pilot's startd advertises about itself: what makes it
/// a cloud node and which one. The pilot's condor config writes them, the
/// demand side's template ad carries them, the pool reader reads them back,
/// and the config refuses flavour attributes that would shadow them.
pub mod attrs {
    pub const CLOUD_NODE: &str = "CloudNode";
    pub const CLOUD_SITE: &str = "CloudSite";
    pub const CLOUD_PROVIDER: &str = "CloudProvider";
    pub const CLOUD_FLAVOR: &str = "CloudFlavor";
    /// Set by the pilot at boot from the cloud's metadata.
    pub const CLOUD_INSTANCE_ID: &str = "CloudInstanceID";
    pub const NODE_ID: &str = "CloudburstNodeId";
    /// Only on nodes bought for a protected group.
    pub const GROUP: &str = "CloudburstGroup";

    /// Every one of them, in the order the pilot lists them.
    pub const ALL: &[&str] = &[
        CLOUD_NODE,
        CLOUD_SITE,
        CLOUD_PROVIDER,
        CLOUD_FLAVOR,
        CLOUD_INSTANCE_ID,
        NODE_ID,
        GROUP,
    ];
}
