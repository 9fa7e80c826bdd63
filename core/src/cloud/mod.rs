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

/// How a cloud call failed, so the planner backs off the right way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Rate limited: retry later, same request.
    Throttled,
    /// No capacity for this flavour (or spot price): back off this
    /// site/flavour.
    Capacity,
    /// Over the project's quota.
    Quota,
    /// Credentials refused: nothing will work until an admin acts.
    Auth,
    /// The request itself is wrong (bad image, flavour, network).
    Invalid,
    /// A 5xx, a timeout, a dropped connection: the call may or may not
    /// have taken effect.
    Transient,
}

impl ErrorKind {
    /// Whether the call surely had no effect (a launch that surely created
    /// nothing).
    pub fn is_definitive(self) -> bool {
        !matches!(self, ErrorKind::Transient)
    }

    /// Whether the site/flavour should be backed off.
    pub fn backs_off(self) -> bool {
        matches!(self, ErrorKind::Capacity | ErrorKind::Quota)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind:?}: {message}")]
pub struct CloudError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Everything a provider needs to launch one node.
#[derive(Clone, PartialEq)]
pub struct LaunchRequest {
    pub site: String,
    pub flavor: String,
    pub node_id: String,
    /// The idempotency token (EC2 ClientToken, OpenStack server name).
    pub token: String,
    pub spot: bool,
    /// Tags: `cloudburst:pool`, `cloudburst:node`, and the site's own.
    pub tags: Vec<(String, String)>,
    /// The rendered `#cloud-config` (holds the pilot's token: never logged).
    pub user_data: crate::secret::Secret,
}

impl std::fmt::Debug for LaunchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchRequest")
            .field("site", &self.site)
            .field("flavor", &self.flavor)
            .field("node_id", &self.node_id)
            .field("token", &self.token)
            .field("spot", &self.spot)
            .field("tags", &self.tags)
            .field("user_data", &"<redacted>")
            .finish()
    }
}

pub mod retry;

/// What a cloud can hold for a project, where its API says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub instances: Option<u32>,
    pub cores: Option<u32>,
    pub ram_mb: Option<u64>,
    pub used_instances: u32,
    pub used_cores: u32,
    pub used_ram_mb: u64,
}

/// One site's cloud API, as cloudburst uses it. Implementations classify
/// their failures ([`ErrorKind`]); retrying is the caller's
/// ([`clouds::Clouds`]).
pub trait Provider {
    /// Launches one instance; with the same `req.token`, returns the
    /// instance an earlier call made instead of making a second.
    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError>;
    /// Our instances (tagged with our pool), and what else uses the quota.
    fn inventory(&mut self) -> Result<Inventory, CloudError>;
    /// Terminates an instance; one already gone is not an error.
    fn terminate(&mut self, instance_id: &str) -> Result<(), CloudError>;
    /// The project's limits, if the API has them.
    fn quota(&mut self) -> Result<Option<Quota>, CloudError> {
        Ok(None)
    }
}

impl InstanceState {
    pub fn parse(s: &str) -> Option<InstanceState> {
        Some(match s {
            "pending" | "build" | "building" => InstanceState::Pending,
            "running" | "active" => InstanceState::Running,
            "stopping" | "shutting-down" | "stopped" | "shutoff" => InstanceState::Stopping,
            "terminated" | "deleted" | "gone" => InstanceState::Terminated,
            "reclaimed" => InstanceState::Reclaimed,
            _ => return None,
        })
    }
}
