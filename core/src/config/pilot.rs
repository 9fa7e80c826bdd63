//! `[pilot]`: what every pilot VM is told in its user-data (see
//! `src/pilot/`). The per-node parts (site, flavour, node id, token) come
//! from the rest of the config and the registry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PilotConfig {
    /// The central manager the pilots join (`CONDOR_HOST`), with an
    /// optional `:port`. Default: `pool.collector`.
    pub central_manager: Option<String>,
    /// `TRUST_DOMAIN` and `UID_DOMAIN` of the pool (the IDTOKEN issuer).
    pub trust_domain: Option<String>,
    /// The prefix of each pilot's own token identity (`condor_token_create
    /// -identity <prefix>-<node id>@<trust domain>`); the central
    /// manager's config lets only such identities advertise startds and
    /// masters, each only for its own node.
    pub token_identity: String,
    /// The signing key pilot tokens are made with (`condor_token_create
    /// -key`): a key of their own in the central manager's
    /// `passwords.d`, readable by the cloudburst user, so the agent needs
    /// neither root nor the pool's own key. Default: the pool key.
    pub token_key: Option<String>,
    /// The file the agent keeps the retired pilots' identities in, for the
    /// central manager's `SEC_TOKEN_REVOCATION_EXPR` (its snippet includes
    /// it); after each change the agent runs `condor_reconfig -collector`.
    /// The agent must run on the central manager, or the file reach it.
    /// Unset: retired nodes' tokens stay valid until they expire.
    pub revocation_file: Option<PathBuf>,
    /// Who may drain and turn off pilots (the identity cloudburst's
    /// `condor_drain` and `condor_off` authenticate as at the pilot).
    pub admin_identity: String,
    /// Pilots behind NAT reach back through the central manager's CCB.
    pub ccb: bool,
    /// `TCP_FORWARDING_HOST`, when the pilots' public address is a
    /// forwarder.
    pub tcp_forwarding_host: Option<String>,
    /// A PEM file with the pool's CA (public): pilots trust SSL
    /// connections from the central manager signed by it.
    pub ca_certificate: Option<PathBuf>,
    /// The pilot shuts itself down when its startd has been unclaimed
    /// this long (a safety net for an agent that is gone). Default: twice
    /// `timers.idle_timeout` plus 10 minutes.
    #[serde(default, deserialize_with = "super::opt_duration")]
    pub noclaim_shutdown: Option<Duration>,
    /// Install HTCondor and the CVMFS client from their repositories at
    /// boot (for a stock cloud image without our pilot image).
    pub install_packages: bool,
    /// An empty pilot starts only a job that no smaller flavour at its
    /// site could hold; smaller jobs fill a node once it runs one
    /// (the core's `sizing`). Off: any job that fits opens any node.
    pub sized_start: bool,
    pub cvmfs: Option<CvmfsConfig>,
    pub stageout: Option<StageoutConfig>,
    pub mesos: Option<MesosConfig>,
}

impl Default for PilotConfig {
    fn default() -> PilotConfig {
        PilotConfig {
            central_manager: None,
            trust_domain: None,
            token_identity: "cloudburst-pilot".into(),
            token_key: None,
            revocation_file: None,
            admin_identity: "condor".into(),
            ccb: false,
            tcp_forwarding_host: None,
            ca_certificate: None,
            noclaim_shutdown: None,
            install_packages: false,
            sized_start: true,
            cvmfs: None,
            stageout: None,
            mesos: None,
        }
    }
}

/// `[pilot.cvmfs]` → `/etc/cvmfs/default.local`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvmfsConfig {
    pub repositories: Vec<String>,
    /// `CVMFS_HTTP_PROXY`, e.g. `"http://squid.example.edu:3128"` or
    /// `"DIRECT"`.
    pub http_proxy: String,
    /// Cache size in MB (`CVMFS_QUOTA_LIMIT`).
    #[serde(default = "cvmfs_quota")]
    pub quota_mb: u64,
    /// The repositories a node must mount to join (a node missing one
    /// powers off at boot: a boot failure). Default: all of them.
    #[serde(default)]
    pub required: Option<Vec<String>>,
}

impl CvmfsConfig {
    pub fn is_required(&self, repo: &str) -> bool {
        self.required
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == repo))
    }
}

/// `HAS_CVMFS_<repo>`, the attribute a pilot advertises when `repo`
/// mounted (OSG's pilots' name: dots, and anything else an attribute
/// name cannot hold, as underscores).
pub fn has_cvmfs_attr(repo: &str) -> String {
    format!("HAS_CVMFS_{}", attr_part(repo))
}

/// `CVMFS_<repo>_REVISION`: the revision it mounted.
pub fn cvmfs_revision_attr(repo: &str) -> String {
    format!("CVMFS_{}_REVISION", attr_part(repo))
}

fn attr_part(repo: &str) -> String {
    repo.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn cvmfs_quota() -> u64 {
    20_000
}

/// `[pilot.stageout]` → the site-local file jobs read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageoutConfig {
    /// e.g. `"davs://se.example.edu:1094/store/user"`.
    pub endpoint: String,
    /// e.g. `"davs"`, `"root"`, `"srm"`, `"s3"`.
    pub protocol: String,
    /// Where the file goes on the pilot.
    #[serde(default = "stageout_path")]
    pub config_path: PathBuf,
}

fn stageout_path() -> PathBuf {
    PathBuf::from("/etc/cloudburst/stage-out.json")
}

/// `[pilot.mesos]`: a Mesos agent beside condor (Airavata).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MesosConfig {
    /// `zk://host:2181/mesos` or `host:5050[,host:5050]`.
    pub master: String,
    /// The share of each node Mesos may offer; condor gets the rest.
    pub cpus: u32,
    pub memory_mb: u64,
    /// The disk Mesos may offer. Unset: the agent finds its own (and
    /// shares the disk with condor, which is then not carved out).
    #[serde(default)]
    pub disk_gb: Option<u64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default = "mesos_work_dir")]
    pub work_dir: PathBuf,
}

fn mesos_work_dir() -> PathBuf {
    PathBuf::from("/var/lib/mesos")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_attributes_are_named_as_osg_pilots_name_them() {
        assert_eq!(has_cvmfs_attr("cms.cern.ch"), "HAS_CVMFS_cms_cern_ch");
        assert_eq!(
            cvmfs_revision_attr("oasis.opensciencegrid.org"),
            "CVMFS_oasis_opensciencegrid_org_REVISION"
        );
        assert_eq!(has_cvmfs_attr("cms-ib.cern.ch"), "HAS_CVMFS_cms_ib_cern_ch");
    }
}
