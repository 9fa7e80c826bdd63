//! The pilot's condor config (`/etc/condor/config.d/50-cloudburst.conf`).
//!
//! Security model: the pilot authenticates to the central manager with
//! its own IDTOKEN (identity `pilot.token_identity`, authorisations to
//! advertise its startd and master and to read), which the central
//! manager's `condor-config/` files accept for startd and master ads and
//! nothing more. Inbound, the schedd reaches the startd with the claim's
//! match password; the agent's `condor_drain`/`condor_off` come from the
//! central manager authenticated by SSL against the pool CA
//! (`pilot.ca_certificate`) or by token, as `pilot.admin_identity`.

use super::{ad_str, central_manager, noclaim_shutdown, plain, PilotError, PilotSpec, CA_FILE};
use crate::model::attrs;

/// The `START` clause of `crate::sizing` for a node of `share` at `site`.
fn sized_start_clause(
    cfg: &crate::config::Config,
    site: &str,
    share: &crate::model::Resources,
) -> Option<String> {
    if !cfg.pilot.sized_start {
        return None;
    }
    let options = crate::demand::flavor_options(cfg);
    crate::sizing::start_clause(
        &crate::sizing::smaller_than(&options, Some(site), share),
        &crate::sizing::smaller_than(&options, None, share),
    )
}

pub fn condor_config(spec: &PilotSpec) -> Result<String, PilotError> {
    let cfg = spec.config;
    let p = &cfg.pilot;
    let cm = central_manager(cfg)?;
    let node = plain("node id", spec.node_id)?;
    let site = spec.site.name.get_ref();
    let flavor = spec.flavor;
    let mut o = String::new();
    let mut line = |s: &str| {
        o.push_str(s);
        o.push('\n');
    };
    line("# Written by cloudburst at boot for this node only; do not edit.");
    // CONDOR_HOST is the host (ALLOW lists match it); the collector
    // keeps the port when one was given.
    let host = cm.rsplit_once(':').map_or(cm, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            cm
        }
    });
    line(&format!("CONDOR_HOST = {host}"));
    line(&format!("COLLECTOR_HOST = {cm}"));
    line("DAEMON_LIST = MASTER, STARTD");
    line("USE_SHARED_PORT = True");
    if let Some(td) = &p.trust_domain {
        let td = plain("pilot.trust_domain", td)?;
        line(&format!("TRUST_DOMAIN = {td}"));
        line(&format!("UID_DOMAIN = {td}"));
    }
    // Each pilot is its own file system domain (see demand::template_ad).
    line(&format!(
        "FILESYSTEM_DOMAIN = {}.cloudburst",
        plain("site name", site)?
    ));
    line("");
    line("# One partitionable slot with the flavour's resources.");
    let share = crate::demand::capacity(flavor, p.mesos.as_ref());
    line(&format!("NUM_CPUS = {}", share.cpus));
    line(&format!("MEMORY = {}", share.memory));
    if let Some(g) = p.mesos.as_ref().and_then(|m| m.disk_gb) {
        // The Mesos agent's disk, kept out of the slot (MiB).
        line(&format!("RESERVED_DISK = {}", g * 1024));
    }
    if flavor.gpus > 0 {
        line("use feature : GPUs");
    }
    line("NUM_SLOTS = 1");
    line("NUM_SLOTS_TYPE_1 = 1");
    line("SLOT_TYPE_1 = 100%");
    line("SLOT_TYPE_1_PARTITIONABLE = True");
    line("");
    line("# What makes this a cloud node, and which one.");
    line(&format!("{} = True", attrs::CLOUD_NODE));
    line(&format!("{} = {}", attrs::CLOUD_SITE, ad_str(site)));
    line(&format!(
        "{} = {}",
        attrs::CLOUD_PROVIDER,
        ad_str(spec.site.provider.name())
    ));
    line(&format!(
        "{} = {}",
        attrs::CLOUD_FLAVOR,
        ad_str(flavor.name.get_ref())
    ));
    line(&format!("{} = {}", attrs::NODE_ID, ad_str(node)));
    let mut listed: Vec<&str> = attrs::ALL
        .iter()
        .copied()
        .filter(|a| *a != attrs::GROUP)
        .collect();
    if let Some(g) = spec.group {
        line(&format!("{} = {}", attrs::GROUP, ad_str(g.name.get_ref())));
        listed.push(attrs::GROUP);
    }
    for (name, value) in &flavor.attributes {
        // Validated as ClassAd expressions and attribute names by config.
        line(&format!("{name} = {}", value.get_ref().replace('\n', " ")));
        listed.push(name);
    }
    // CVMFS: False until the boot probe (`super::CVMFS_PROBE`) has
    // mounted the repository; its file, read after this one, says True
    // and the revision.
    let cvmfs_attrs: Vec<(String, String)> = p
        .cvmfs
        .iter()
        .flat_map(|c| &c.repositories)
        .map(|r| {
            (
                crate::config::has_cvmfs_attr(r),
                crate::config::cvmfs_revision_attr(r),
            )
        })
        .collect();
    for (has, revision) in &cvmfs_attrs {
        line(&format!("{has} = False"));
        line(&format!("{revision} = -1"));
        listed.push(has);
        listed.push(revision);
    }
    line(&format!(
        "STARTD_ATTRS = $(STARTD_ATTRS) {}",
        listed.join(" ")
    ));
    // The central manager accepts master ads from the pilot identity only
    // when they are marked as cloud nodes too.
    line("MASTER_ATTRS = $(MASTER_ATTRS) CloudNode CloudSite CloudburstNodeId");
    let start = flavor.start.as_ref().map_or("true".to_string(), |s| {
        format!("({})", s.get_ref().replace('\n', " "))
    });
    let start = match spec.group {
        Some(g) => format!("{start} && ({})", g.start_clause()),
        None => start,
    };

    // A job that states its run time starts only if it can end before the
    // hard stop (the planner places it by the same rule).
    line(&format!(
        "CLOUDBURST_JOB_RUNTIME = {}",
        crate::condor::runtime::target_expr()
    ));
    // An empty node is kept for the jobs of its size (crate::sizing).
    let sized = sized_start_clause(cfg, site, &share).map_or(String::new(), |c| format!(" && {c}"));
    line(&format!(
        "START = {start} && ($(CLOUDBURST_HARD_STOP) <= 0 || time() + $(CLOUDBURST_JOB_RUNTIME) <= $(CLOUDBURST_HARD_STOP) - {}){sized}",
        super::START_MARGIN
    ));
    line("");
    line("# Safety nets for an agent that is gone: the startd exits when");
    line("# unclaimed this long, and the master exits when its startd has, or");
    line("# past the node's lifetime; condor.service then powers the VM off.");
    line(&format!(
        "STARTD_NOCLAIM_SHUTDOWN = {}",
        noclaim_shutdown(cfg).as_secs()
    ));
    line(&format!(
        "MASTER.DAEMON_SHUTDOWN = (STARTD_StartTime =?= 0) || ((time() - DaemonStartTime) > {})",
        (cfg.timers.max_lifetime + cfg.timers.drain_grace).as_secs()
    ));
    line("");
    line("# A drain (the node's lifetime, an admin's, an idle node's) never");
    line("# evicts: running jobs retire until shortly before the hard stop fixed");
    line("# at boot (CLOUDBURST_HARD_STOP, written beside the instance id), with");
    line("# time to vacate after. Without a hard stop (0) a drained job is evicted");
    line("# at once, as HTCondor's default retirement of 0 does.");
    line("CLOUDBURST_HARD_STOP = 0");
    line(&format!("MachineMaxVacateTime = {}", super::MAX_VACATE));
    line(&format!(
        "MAXJOBRETIREMENTTIME = ifThenElse(isUndefined(JobStart) || $(CLOUDBURST_HARD_STOP) <= 0, 0, $(CLOUDBURST_HARD_STOP) - {} - JobStart)",
        super::RETIREMENT_MARGIN
    ));
    line("");
    line("# Security: token out, nothing in that is not needed.");
    line("SEC_DEFAULT_AUTHENTICATION = REQUIRED");
    let methods = if spec.ca_pem.is_some() {
        "FS, IDTOKENS, SSL"
    } else {
        "FS, IDTOKENS"
    };
    line(&format!("SEC_DEFAULT_AUTHENTICATION_METHODS = {methods}"));
    line("SEC_DEFAULT_ENCRYPTION = REQUIRED");
    line("SEC_DEFAULT_INTEGRITY = REQUIRED");
    line("SEC_READ_AUTHENTICATION = OPTIONAL");
    line("SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS, SSL");
    line("SEC_TOKEN_DIRECTORY = /etc/condor/tokens.d");
    if spec.ca_pem.is_some() {
        line(&format!("AUTH_SSL_CLIENT_CAFILE = {CA_FILE}"));
        line(&format!("AUTH_SSL_SERVER_CAFILE = {CA_FILE}"));
    }
    line("ALLOW_READ = *");
    line("ALLOW_WRITE = $(CONDOR_HOST)");
    line(&format!(
        "ALLOW_ADMINISTRATOR = {}@*/$(CONDOR_HOST), root@localhost, condor@localhost",
        plain("pilot.admin_identity", &p.admin_identity)?
    ));
    line("ALLOW_DAEMON = $(ALLOW_ADMINISTRATOR)");
    line("ALLOW_NEGOTIATOR = $(CONDOR_HOST)");
    if p.ccb {
        line("");
        line("# Behind NAT: the central manager brokers connections to this node.");
        line("CCB_ADDRESS = $(COLLECTOR_HOST)");
        line(&format!("PRIVATE_NETWORK_NAME = {site}.cloudburst"));
    }
    if let Some(h) = &p.tcp_forwarding_host {
        line(&format!(
            "TCP_FORWARDING_HOST = {}",
            plain("pilot.tcp_forwarding_host", h)?
        ));
    }
    Ok(o)
}
