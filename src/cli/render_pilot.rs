//! `cloudburst render-pilot`: the user-data one node would boot with.

use anyhow::{anyhow, Context, Result};

use crate::config::Config;
use crate::pilot::{condor_config, render as render_user_data, PilotSpec};
use crate::secret::Secret;

pub fn render(
    cfg: &Config,
    site: &str,
    flavor: &str,
    group: Option<&str>,
    node_id: &str,
    token: &Secret,
    condor_only: bool,
) -> Result<Secret> {
    let s = cfg
        .site(site)
        .ok_or_else(|| anyhow!("no site named {site:?} in the config"))?;
    let f = cfg
        .flavor(site, flavor)
        .ok_or_else(|| anyhow!("site {site:?} has no flavor named {flavor:?}"))?;
    let g = match group {
        Some(name) => Some(
            cfg.group(name)
                .ok_or_else(|| anyhow!("no group named {name:?} in the config"))?,
        ),
        None => None,
    };
    let ca = match &cfg.pilot.ca_certificate {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading pilot.ca_certificate {}", p.display()))?,
        ),
        None => None,
    };
    let spec = PilotSpec {
        config: cfg,
        site: s,
        flavor: f,
        group: g,
        node_id,
        token,
        ca_pem: ca.as_deref(),
    };
    if condor_only {
        return Ok(Secret::new(condor_config(&spec)?));
    }
    Ok(render_user_data(&spec)?)
}
