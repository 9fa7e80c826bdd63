//! The pilot's user-data: one `#cloud-config` document per node that
//! makes a stock or pilot image join the pool as a cloud-tagged startd.
//!
//! Pure: the token comes in (the agent gets it from
//! `condor_token_create`), the text goes out as a [`Secret`]. The condor
//! config written here advertises exactly the machine ad that
//! `demand::template_ad` matches jobs against (the same attributes, START
//! and resources), so a job the planner launches for can run on the node.
//!
//! Order on the VM (cloud-init `runcmd`): the instance id is read from
//! cloud-init into the condor config; the metadata service is closed to
//! everyone but root (jobs must not read the token back from the
//! user-data); CVMFS is set up; condor starts; the Mesos agent starts
//! after it. A `shutdown -P` at the node's maximum lifetime and condor's
//! own shutdown rules are the safety nets for an agent that is gone.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::{classad_string, Config, Flavor, Group, Site};
use crate::secret::Secret;

mod condor;
pub mod revocation;
pub use condor::condor_config;

/// Where the files go on the pilot.
pub const CONDOR_CONFIG: &str = "/etc/condor/config.d/50-cloudburst.conf";
pub const INSTANCE_CONFIG: &str = "/etc/condor/config.d/51-cloudburst-instance.conf";
pub const TOKEN_FILE: &str = "/etc/condor/tokens.d/cloudburst-pilot.token";
pub const CA_FILE: &str = "/etc/condor/cloudburst-ca.pem";
pub const CVMFS_FILE: &str = "/etc/cvmfs/default.local";
pub const EXIT_HOOK: &str = "/usr/libexec/cloudburst/pilot-exit";
pub const CONDOR_DROPIN: &str = "/etc/systemd/system/condor.service.d/50-cloudburst.conf";
pub const CVMFS_PROBE: &str = "/usr/libexec/cloudburst/cvmfs-probe";
/// What the probe writes: read by condor after `CONDOR_CONFIG`.
pub const CVMFS_CONFIG: &str = "/etc/condor/config.d/52-cloudburst-cvmfs.conf";
/// Present when boot found the node unfit to join: condor.service does
/// not start (its drop-in's condition) and the VM powers off.
pub const BOOT_FAILED: &str = "/run/cloudburst/boot-failed";
pub const MESOS_UNIT: &str = "/etc/systemd/system/cloudburst-mesos-agent.service";

/// The top-level cloud-init keys we use (the schema accepts any other
/// key silently, so the tests check against this list too).
pub const CLOUD_CONFIG_KEYS: [&str; 2] = ["write_files", "runcmd"];

/// One node's pilot.
pub struct PilotSpec<'a> {
    pub config: &'a Config,
    pub site: &'a Site,
    pub flavor: &'a Flavor,
    pub group: Option<&'a Group>,
    pub node_id: &'a str,
    /// The node's IDTOKEN (from `condor_token_create`).
    pub token: &'a Secret,
    /// The pool's CA certificate (PEM), when `pilot.ca_certificate` is set.
    pub ca_pem: Option<&'a str>,
}

/// Why a pilot cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PilotError {
    #[error("pilot.central_manager (or pool.collector) is not set: the pilot would not know which pool to join")]
    NoCentralManager,
    #[error("{what} {value:?} contains characters a pilot config cannot carry (quotes, newlines or spaces)")]
    Unsafe { what: &'static str, value: String },
    #[error("the node's token is not a single line")]
    BadToken,
}

/// Checks a value that goes into config files and command lines verbatim.
fn plain<'a>(what: &'static str, value: &'a str) -> Result<&'a str, PilotError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '`' | '$'));
    if ok {
        Ok(value)
    } else {
        Err(PilotError::Unsafe {
            what,
            value: value.to_string(),
        })
    }
}

/// The central manager the pilots join.
pub fn central_manager(config: &Config) -> Result<&str, PilotError> {
    let cm = config
        .pilot
        .central_manager
        .as_deref()
        .or(config.pool.collector.as_deref())
        .ok_or(PilotError::NoCentralManager)?;
    plain("pilot.central_manager", cm)
}

/// The identity in node `node_id`'s token: its own, so that the central
/// manager can tie each cloud ad to the one node that may send it and a
/// retired node's token can be told from a live one's
/// (`pilot.token_identity` is the prefix: `cloudburst-pilot-aws-000001`,
/// qualified with `pilot.trust_domain`). The central manager's snippet
/// (`condor-config/50-cloudburst-central-manager.conf`) admits
/// `<prefix>-*@<trust domain>` and requires the ad's `CloudburstNodeId`
/// to be the one in the identity.
pub fn token_identity(config: &Config, node_id: &str) -> String {
    let user = format!("{}-{node_id}", config.pilot.token_identity);
    match &config.pilot.trust_domain {
        Some(d) => format!("{user}@{d}"),
        None => user,
    }
}

/// Minutes from boot to the pilot's hard stop (`max_lifetime +
/// drain_grace`, rounded up as `shutdown` takes them).
pub fn hard_stop_minutes(config: &Config) -> u64 {
    config
        .timers
        .max_lifetime
        .saturating_add(config.timers.drain_grace)
        .as_secs()
        .div_ceil(60)
}

pub use crate::model::{MAX_VACATE, RETIREMENT_MARGIN, START_MARGIN};

/// The pilot's safety-net idle shutdown.
pub fn noclaim_shutdown(config: &Config) -> Duration {
    config
        .pilot
        .noclaim_shutdown
        .unwrap_or(config.timers.idle_timeout * 2 + Duration::from_secs(600))
}

/// A YAML block scalar (`|`) holding `text`, indented under a key.
fn block(out: &mut String, indent: usize, text: &str) {
    let pad = " ".repeat(indent);
    out.push_str("|\n");
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
}

/// A double-quoted YAML scalar.
fn yq(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

struct File<'a> {
    path: &'a str,
    mode: &'a str,
    content: String,
}

/// The user-data.
pub fn render(spec: &PilotSpec) -> Result<Secret, PilotError> {
    let cfg = spec.config;
    let token = spec.token.expose().trim();
    if token.is_empty() || token.contains(['\n', '\r']) {
        return Err(PilotError::BadToken);
    }
    let condor = condor_config(spec)?;
    let mut files = vec![
        File {
            path: CONDOR_CONFIG,
            mode: "0644",
            content: condor,
        },
        File {
            path: TOKEN_FILE,
            mode: "0600",
            content: format!("{token}\n"),
        },
        File {
            path: EXIT_HOOK,
            mode: "0755",
            content: EXIT_HOOK_SCRIPT.to_string(),
        },
        File {
            path: CONDOR_DROPIN,
            mode: "0644",
            content: format!(
                "# cloudburst: when condor exits for good, the VM powers off; it does\n# not start on a node that boot found unfit to join.\n[Unit]\nConditionPathExists=!{BOOT_FAILED}\n[Service]\nRestart=no\nExecStopPost={EXIT_HOOK}\n"
            ),
        },
    ];
    if let Some(pem) = spec.ca_pem {
        files.push(File {
            path: CA_FILE,
            mode: "0644",
            content: pem.to_string(),
        });
    }
    if let Some(c) = &cfg.pilot.cvmfs {
        let repos: Vec<&str> = c
            .repositories
            .iter()
            .map(|r| plain("pilot.cvmfs.repositories", r))
            .collect::<Result<_, _>>()?;
        files.push(File {
            path: CVMFS_FILE,
            mode: "0644",
            content: format!(
                "# cloudburst: CVMFS client settings for this pilot\nCVMFS_REPOSITORIES={}\nCVMFS_HTTP_PROXY=\"{}\"\nCVMFS_QUOTA_LIMIT={}\n",
                repos.join(","),
                plain("pilot.cvmfs.http_proxy", &c.http_proxy)?,
                c.quota_mb
            ),
        });
        files.push(File {
            path: CVMFS_PROBE,
            mode: "0755",
            content: cvmfs_probe_script(c),
        });
    }
    let stageout_path;
    if let Some(s) = &cfg.pilot.stageout {
        stageout_path = s.config_path.display().to_string();
        let doc = serde_json::json!({
            "site": spec.site.name.get_ref(),
            "endpoint": s.endpoint,
            "protocol": s.protocol,
        });
        files.push(File {
            path: plain("pilot.stageout.config_path", &stageout_path)?,
            mode: "0644",
            content: format!("{doc:#}\n"),
        });
    }
    let mesos_unit;
    if let Some(m) = &cfg.pilot.mesos {
        mesos_unit = mesos_unit_text(spec, m)?;
        files.push(File {
            path: MESOS_UNIT,
            mode: "0644",
            content: mesos_unit,
        });
    }

    let mut out = String::from("#cloud-config\n");
    let _ = writeln!(
        out,
        "# cloudburst pilot: node {}, site {}, flavour {}",
        spec.node_id,
        spec.site.name.get_ref(),
        spec.flavor.name.get_ref()
    );
    out.push_str("write_files:\n");
    for f in &files {
        let _ = writeln!(out, "  - path: {}", yq(f.path));
        let _ = writeln!(out, "    owner: root:root");
        let _ = writeln!(out, "    permissions: '{}'", f.mode);
        out.push_str("    content: ");
        block(&mut out, 6, &f.content);
    }
    out.push_str("runcmd:\n");
    for cmd in runcmd(spec)? {
        let items: Vec<String> = cmd.iter().map(|a| yq(a)).collect();
        let _ = writeln!(out, "  - [{}]", items.join(", "));
    }
    Ok(Secret::new(out))
}

/// The boot probe of the configured CVMFS repositories: mounts each
/// (`cvmfs_config probe`, through autofs), reads its revision (the
/// `user.revision` attribute CVMFS gives its mount point) and writes
/// `HAS_CVMFS_<repo>` and `CVMFS_<repo>_REVISION` for condor to
/// advertise. A required repository that does not mount makes the node
/// unfit: condor never starts, the console and the journal say which
/// repository, and the VM powers off, so the agent counts a boot failure
/// (`timers.boot_timeout`) and never hands a job a node without its
/// software. `CLOUDBURST_CVMFS_CONFIG` and `CLOUDBURST_BOOT_FAILED`
/// move its outputs (the tests run it in a temporary directory).
fn cvmfs_probe_script(c: &crate::config::CvmfsConfig) -> String {
    let mut out = String::from(
        "#!/bin/sh\n\
         # cloudburst: which CVMFS repositories this pilot mounted, for condor.\n\
         out=${CLOUDBURST_CVMFS_CONFIG:-/etc/condor/config.d/52-cloudburst-cvmfs.conf}\n\
         failed=${CLOUDBURST_BOOT_FAILED:-/run/cloudburst/boot-failed}\n\
         tmp=\"$out.tmp\"\n\
         : > \"$tmp\"\n\
         missing=\"\"\n\
         probe() {\n\
         \x20   if cvmfs_config probe \"$1\" >/dev/null 2>&1; then\n\
         \x20       rev=$(attr -qg revision \"/cvmfs/$1\" 2>/dev/null)\n\
         \x20       case $rev in ''|*[!0-9]*) rev=-1 ;; esac\n\
         \x20       printf '%s = True\\n%s = %s\\n' \"$2\" \"$3\" \"$rev\" >> \"$tmp\"\n\
         \x20   else\n\
         \x20       printf '%s = False\\n' \"$2\" >> \"$tmp\"\n\
         \x20       logger -t cloudburst-pilot \"CVMFS repository $1 did not mount\"\n\
         \x20       if [ \"$4\" = required ]; then missing=\"$missing $1\"; fi\n\
         \x20   fi\n\
         }\n",
    );
    for r in &c.repositories {
        let _ = writeln!(
            out,
            "probe {r} {} {} {}",
            crate::config::has_cvmfs_attr(r),
            crate::config::cvmfs_revision_attr(r),
            if c.is_required(r) {
                "required"
            } else {
                "optional"
            }
        );
    }
    out.push_str(
        "mv \"$tmp\" \"$out\"\n\
         if [ -n \"$missing\" ]; then\n\
         \x20   mkdir -p \"$(dirname \"$failed\")\"\n\
         \x20   echo \"required CVMFS repositories missing:$missing\" > \"$failed\"\n\
         \x20   logger -t cloudburst-pilot \"required CVMFS repositories missing:$missing; not joining, powering off\"\n\
         \x20   echo \"cloudburst: required CVMFS repositories missing:$missing\" > /dev/console 2>/dev/null\n\
         \x20   systemctl --no-block poweroff\n\
         \x20   exit 1\n\
         fi\n",
    );
    out
}

/// Runs when condor.service stops: powers the VM off unless an admin
/// asked to keep it (`touch /run/cloudburst/keep` before restarting
/// condor by hand).
const EXIT_HOOK_SCRIPT: &str = "#!/bin/sh\n# cloudburst: condor has exited (its shutdown rules, or condor_off from\n# cloudburst). Power off so the node stops costing; the agent terminates it.\n[ -e /run/cloudburst/keep ] && exit 0\nlogger -t cloudburst-pilot \"condor exited ($SERVICE_RESULT); powering off\"\nexec systemctl --no-block poweroff\n";

fn runcmd(spec: &PilotSpec) -> Result<Vec<Vec<String>>, PilotError> {
    let cfg = spec.config;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cmds = Vec::new();
    if cfg.pilot.install_packages {
        cmds.push(s(&[
            "dnf",
            "install",
            "-y",
            CONDOR_RELEASE_RPM,
            CVMFS_RELEASE_RPM,
        ]));
        let mut pkgs = vec!["dnf", "install", "-y", "condor", "iptables-nft"];
        if cfg.pilot.cvmfs.is_some() {
            pkgs.push("cvmfs");
        }
        cmds.push(s(&pkgs));
    }
    // The instance id is known only on the VM: cloud-init has it. The
    // hard stop is fixed here, at boot, as the `shutdown -P` below: the
    // startd's retirement runs up to it (`condor.rs`).
    let minutes = hard_stop_minutes(cfg);
    cmds.push(s(&[
        "sh",
        "-c",
        &format!(
            "printf 'CloudInstanceID = \"%s\"\\nCLOUDBURST_HARD_STOP = %s\\n' \"$(cloud-init query v1.instance_id)\" \"$(( $(date +%s) + {} ))\" > {INSTANCE_CONFIG}",
            minutes * 60
        ),
    ]));
    // Jobs (never root) must not read the user-data, which holds the
    // token, back from the metadata service.
    for (tool, addr) in [
        ("iptables", "169.254.169.254"),
        ("ip6tables", "fd00:ec2::254"),
    ] {
        cmds.push(s(&[
            tool,
            "-w",
            "-I",
            "OUTPUT",
            "-d",
            addr,
            "-m",
            "owner",
            "!",
            "--uid-owner",
            "0",
            "-j",
            "REJECT",
        ]));
    }
    if cfg.pilot.cvmfs.is_some() {
        cmds.push(s(&["cvmfs_config", "setup"]));
        cmds.push(s(&[CVMFS_PROBE]));
    }
    // The hard stop: past its maximum lifetime and drain grace the node
    // powers off even if nothing else works.
    cmds.push(s(&["shutdown", "-P", &format!("+{minutes}")]));
    cmds.push(s(&["systemctl", "daemon-reload"]));
    cmds.push(s(&["systemctl", "enable", "--now", "condor.service"]));
    if cfg.pilot.mesos.is_some() {
        cmds.push(s(&[
            "systemctl",
            "enable",
            "--now",
            "cloudburst-mesos-agent.service",
        ]));
    }
    Ok(cmds)
}

/// The HTCondor and CVMFS repository release packages, for
/// `pilot.install_packages` on a stock image.
pub const CONDOR_RELEASE_RPM: &str =
    "https://htcss-downloads.chtc.wisc.edu/repo/25.x/htcondor-release-current.el9.noarch.rpm";
pub const CVMFS_RELEASE_RPM: &str =
    "https://cvmrepo.s3.cern.ch/cvmrepo/yum/cvmfs-release-latest.noarch.rpm";

fn mesos_unit_text(spec: &PilotSpec, m: &crate::config::MesosConfig) -> Result<String, PilotError> {
    let mut attrs = vec![
        "cloud_node:true".to_string(),
        format!(
            "cloud_site:{}",
            plain("site name", spec.site.name.get_ref())?
        ),
        format!(
            "cloud_flavor:{}",
            plain("flavour name", spec.flavor.name.get_ref())?
        ),
        format!("cloudburst_node:{}", plain("node id", spec.node_id)?),
    ];
    for (k, v) in &m.attributes {
        attrs.push(format!(
            "{}:{}",
            plain("pilot.mesos.attributes", k)?,
            plain("pilot.mesos.attributes", v)?
        ));
    }
    Ok(format!(
        "[Unit]\nDescription=Mesos agent beside HTCondor (cloudburst)\nAfter=condor.service network-online.target\nWants=network-online.target\n\n[Service]\nExecStart=/usr/sbin/mesos-agent --master={} --work_dir={} --resources=cpus:{};mem:{}{} --attributes={}\nRestart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n",
        plain("pilot.mesos.master", &m.master)?,
        plain("pilot.mesos.work_dir", &m.work_dir.display().to_string())?,
        m.cpus,
        m.memory_mb,
        // Mesos counts disk in MB.
        m.disk_gb.map_or(String::new(), |g| format!(";disk:{}", g * 1024)),
        attrs.join(";")
    ))
}

/// The cycle's [`crate::ports::Pilot`]: renders each node's user-data
/// with a fresh token from `token` (the agent passes one that runs
/// `condor_token_create`).
pub struct ConfiguredPilot<F> {
    pub config: Config,
    pub ca_pem: Option<String>,
    pub token: F,
}

impl<F> crate::ports::Pilot for ConfiguredPilot<F>
where
    F: Fn(&crate::lifecycle::Node) -> Result<Secret, String>,
{
    fn user_data(&self, node: &crate::lifecycle::Node) -> Result<Secret, String> {
        let site = self
            .config
            .site(&node.site)
            .ok_or_else(|| format!("node {}: no site {:?} in the config", node.id, node.site))?;
        let flavor = self
            .config
            .flavor(&node.site, &node.flavor)
            .ok_or_else(|| {
                format!(
                    "node {}: site {} has no flavor {:?}",
                    node.id, node.site, node.flavor
                )
            })?;
        let group = node.group.as_deref().and_then(|g| self.config.group(g));
        let token = (self.token)(node)?;
        render(&PilotSpec {
            config: &self.config,
            site,
            flavor,
            group,
            node_id: &node.id,
            token: &token,
            ca_pem: self.ca_pem.as_deref(),
        })
        .map_err(|e| format!("node {}: {e}", node.id))
    }
}

/// The user-data with the token replaced, for display.
pub fn redact(user_data: &Secret, token: &Secret) -> String {
    let t = token.expose().trim();
    if t.is_empty() {
        return user_data.expose().to_string();
    }
    user_data
        .expose()
        .replace(t, "<redacted: the node's IDTOKEN>")
}

/// The value as a ClassAd string literal (for config files).
pub(crate) fn ad_str(s: &str) -> String {
    classad_string(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        crate::config::parse(
            "t.toml",
            &format!(
                "[pool]\nname = \"p\"\n{extra}\n[[sites]]\nname = \"aws\"\nprovider = \"ec2\"\n[[sites.flavors]]\nname = \"m\"\ncpus = 2\nmemory_mb = 4096\ndisk_gb = 20\nprice_per_hour = 0.1\n"
            ),
        )
        .unwrap()
    }

    #[test]
    fn each_node_has_its_own_token_identity() {
        let c = cfg("[pilot]\ntrust_domain = \"cm.example.edu\"");
        assert_eq!(
            token_identity(&c, "aws-000001"),
            "cloudburst-pilot-aws-000001@cm.example.edu"
        );
        assert_ne!(
            token_identity(&c, "aws-000001"),
            token_identity(&c, "aws-000002")
        );
        let plain = cfg("[pilot]\ntoken_identity = \"burst\"");
        assert_eq!(token_identity(&plain, "n1"), "burst-n1");
    }

    fn spec<'a>(c: &'a Config, token: &'a Secret) -> PilotSpec<'a> {
        PilotSpec {
            config: c,
            site: &c.sites[0],
            flavor: &c.sites[0].flavors[0],
            group: None,
            node_id: "n1",
            token,
            ca_pem: None,
        }
    }

    #[test]
    fn bad_inputs_are_refused_with_the_reason() {
        let t = Secret::new("tok".into());
        assert_eq!(
            render(&spec(&cfg(""), &t)).unwrap_err(),
            PilotError::NoCentralManager
        );
        let c = cfg("[pilot]\ncentral_manager = \"cm.example.edu; rm -rf /\"");
        assert!(matches!(
            render(&spec(&c, &t)),
            Err(PilotError::Unsafe { .. })
        ));
        let c = cfg("[pilot]\ncentral_manager = \"cm.example.edu\"");
        let two = Secret::new("a\nb".into());
        assert_eq!(render(&spec(&c, &two)).unwrap_err(), PilotError::BadToken);
        let ok = render(&spec(&c, &t)).unwrap();
        assert!(ok.expose().contains("CONDOR_HOST = cm.example.edu"));
    }

    #[test]
    fn redaction_hides_every_copy_of_the_token() {
        let c = cfg("[pilot]\ncentral_manager = \"cm\"");
        let t = Secret::new("SIGNED.TOKEN.VALUE".into());
        let ud = render(&spec(&c, &t)).unwrap();
        assert!(ud.expose().contains("SIGNED.TOKEN.VALUE"));
        assert!(!redact(&ud, &t).contains("SIGNED.TOKEN.VALUE"));
        assert_eq!(format!("{ud:?}"), "Secret(<redacted>)");
    }
}
