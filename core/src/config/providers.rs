//! The provider-specific part of a site: `[sites.ec2]`, `[sites.openstack]`
//! or `[sites.script]`. Credentials are never in this file: EC2 uses the
//! standard AWS chain (environment, profile, instance role), OpenStack a
//! `clouds.yaml` entry or the `OS_*` environment, scripts their own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[sites.ec2]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Config {
    /// Default: the AWS chain's (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// A profile of `~/.aws/config` (default: the chain's).
    pub profile: Option<String>,
    /// Another EC2 endpoint (a test server, a compatible cloud).
    pub endpoint_url: Option<String>,
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    /// An instance profile name for the pilots (usually none: pilots need
    /// no AWS credentials).
    pub iam_instance_profile: Option<String>,
    /// Extra tags on instances and their volumes.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The highest spot price to pay (default: the on-demand price).
    pub spot_max_price: Option<String>,
}

/// `[sites.openstack]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackConfig {
    /// A cloud in `clouds.yaml` (default: the `OS_*` environment).
    pub cloud: Option<String>,
    pub region: Option<String>,
    /// Network name or id for the pilots' port; "auto" (the default)
    /// lets Nova pick or create one, "none" boots without a NIC (test
    /// clouds only: a pilot must reach its central manager).
    pub network: Option<String>,
    pub key_name: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    /// Extra metadata on servers.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `[sites.script]`: the admin's own commands (see
/// `packaging/providers/README.md` for the protocol).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptConfig {
    /// Each an argument vector: the program and its arguments.
    pub launch: Vec<String>,
    pub list: Vec<String>,
    pub terminate: Vec<String>,
    #[serde(default = "script_timeout", deserialize_with = "super::duration")]
    pub timeout: Duration,
}

fn script_timeout() -> Duration {
    Duration::from_secs(120)
}

impl ScriptConfig {
    pub fn commands(&self) -> [(&'static str, &Vec<String>); 3] {
        [
            ("launch", &self.launch),
            ("list", &self.list),
            ("terminate", &self.terminate),
        ]
    }

    pub fn program(argv: &[String]) -> Option<PathBuf> {
        argv.first().map(PathBuf::from)
    }
}
