//! Clouds, as the planner and the registry see them: instances carrying
//! our tags. The providers (EC2, OpenStack, admin scripts) come with the
//! cloud issue; the planner and reconciliation only need this view.

use serde::{Deserialize, Serialize};

/// Tag keys every instance we launch carries.
pub const TAG_POOL: &str = "cloudburst:pool";
pub const TAG_NODE: &str = "cloudburst:node";

/// What the cloud says an instance is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Pending,
    Running,
    /// Shutting down or stopped: on its way out.
    Stopping,
    Terminated,
    /// A spot instance the cloud took back.
    Reclaimed,
}

/// One instance in a site's inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub site: String,
    pub flavor: String,
    pub state: InstanceState,
    /// `cloudburst:pool`; instances of other pools are never touched.
    pub pool: Option<String>,
    /// `cloudburst:node`: the registry's node id.
    pub node_id: Option<String>,
    /// The idempotency token it was launched with, when the API keeps it
    /// (EC2 ClientToken; the server name on OpenStack).
    pub token: Option<String>,
    pub launched_at: i64,
    pub spot: bool,
}

impl Instance {
    /// Still costs money or may still run work.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, InstanceState::Terminated)
    }
}

/// A site's instances: ours (tagged with our pool) and how many others
/// share its quota.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub instances: Vec<Instance>,
    /// Untagged or other pools' instances in the same project: counted
    /// against the site's quota, never touched.
    pub foreign: u32,
    pub foreign_cores: u32,
}
