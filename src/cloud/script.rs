//! The `script` provider: any cloud an admin can drive from a command. For
//! each call cloudburst runs the configured command (an argument vector,
//! no shell) with one JSON document on stdin and reads one JSON document
//! from stdout; the protocol is documented in `packaging/providers/README.md`.
//!
//! Exit status: 0 success; 10 throttled; 11 no capacity; 12 over quota;
//! 13 credentials refused; 14 invalid request; anything else, a signal or
//! the timeout: transient (the call may or may not have happened, so a
//! launch is retried with the same token). The command's stderr is its
//! error message; stdin (which holds the user-data) is never echoed.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{CloudError, ErrorKind, Instance, InstanceState, Inventory, LaunchRequest, Provider};
use crate::condor::outcome::error_text;
use crate::config::{ScriptConfig, Site};
use crate::process::{self, Invocation, RunError};
use crate::secret::Secret;

pub struct ScriptProvider {
    site: Site,
    pool: String,
    cfg: ScriptConfig,
}

#[derive(Deserialize)]
struct Launched {
    id: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    launched_at: Option<i64>,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    flavor: String,
    state: String,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    node_id: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    launched_at: Option<i64>,
    #[serde(default)]
    spot: bool,
}

#[derive(Deserialize)]
struct Listing {
    instances: Vec<Listed>,
    #[serde(default)]
    foreign: u32,
    #[serde(default)]
    foreign_cores: u32,
}

/// The error class an exit status stands for.
pub fn kind_of_exit(code: Option<i32>) -> ErrorKind {
    match code {
        Some(10) => ErrorKind::Throttled,
        Some(11) => ErrorKind::Capacity,
        Some(12) => ErrorKind::Quota,
        Some(13) => ErrorKind::Auth,
        Some(14) => ErrorKind::Invalid,
        _ => ErrorKind::Transient,
    }
}

impl ScriptProvider {
    pub fn new(site: &Site, pool: &str) -> Result<ScriptProvider, String> {
        let cfg = site
            .script
            .clone()
            .ok_or_else(|| format!("site {:?} has no [sites.script]", site.name.get_ref()))?;
        Ok(ScriptProvider {
            site: site.clone(),
            pool: pool.to_string(),
            cfg,
        })
    }

    /// Runs one command with `input` on stdin; its stdout as JSON.
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        argv: &[String],
        input: serde_json::Value,
    ) -> Result<T, CloudError> {
        let fail = |kind, message: String| CloudError { kind, message };
        let Some((program, args)) = argv.split_first() else {
            return Err(fail(ErrorKind::Invalid, format!("script.{what} is empty")));
        };
        let inv = Invocation::new(program, self.cfg.timeout)
            .args(args)
            .stdin(Secret::new(input.to_string()));
        let f = process::run_capture(&inv).map_err(|e| match e {
            RunError::Spawn { .. } => fail(ErrorKind::Invalid, format!("script.{what}: {e}")),
            other => fail(ErrorKind::Transient, format!("script.{what}: {other}")),
        })?;
        if !f.success() {
            return Err(fail(
                kind_of_exit(f.status.code()),
                format!(
                    "script.{what} ({}): {}",
                    f.status_text(),
                    error_text(b"", &f.stderr)
                ),
            ));
        }
        serde_json::from_slice(&f.value).map_err(|e| {
            fail(
                ErrorKind::Transient,
                format!("script.{what} printed no valid JSON document: {e}"),
            )
        })
    }
}

impl Provider for ScriptProvider {
    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        let flavor = self
            .site
            .flavors
            .iter()
            .find(|f| f.name.get_ref() == &req.flavor)
            .ok_or_else(|| CloudError {
                kind: ErrorKind::Invalid,
                message: format!("site {} has no flavor {}", req.site, req.flavor),
            })?;
        let tags: BTreeMap<&str, &str> = req
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let input = json!({
            "action": "launch",
            "site": req.site,
            "flavor": req.flavor,
            "cpus": flavor.cpus,
            "memory_mb": flavor.memory_mb,
            "disk_gb": flavor.disk_gb,
            "gpus": flavor.gpus,
            "image": self.site.image,
            "node_id": req.node_id,
            "token": req.token,
            "spot": req.spot,
            "tags": tags,
            "user_data_base64": base64::engine::general_purpose::STANDARD.encode(req.user_data.expose()),
        });
        let l: Launched = self.call("launch", &self.cfg.launch.clone(), input)?;
        Ok(Instance {
            id: l.id,
            site: req.site.clone(),
            flavor: req.flavor.clone(),
            state: l
                .state
                .as_deref()
                .and_then(InstanceState::parse)
                .unwrap_or(InstanceState::Pending),
            pool: Some(self.pool.clone()),
            node_id: Some(req.node_id.clone()),
            token: Some(req.token.clone()),
            launched_at: l.launched_at.unwrap_or(0),
            spot: req.spot,
        })
    }

    fn inventory(&mut self) -> Result<Inventory, CloudError> {
        let input = json!({
            "action": "list",
            "site": self.site.name.get_ref(),
            "pool": self.pool,
        });
        let l: Listing = self.call("list", &self.cfg.list.clone(), input)?;
        let mut instances = Vec::new();
        for i in l.instances {
            let state = InstanceState::parse(&i.state).ok_or_else(|| CloudError {
                kind: ErrorKind::Transient,
                message: format!(
                    "script.list: instance {}: unknown state {:?}",
                    i.id, i.state
                ),
            })?;
            instances.push(Instance {
                id: i.id,
                site: self.site.name.get_ref().clone(),
                flavor: i.flavor,
                state,
                pool: i.pool.or_else(|| Some(self.pool.clone())),
                node_id: i.node_id,
                token: i.token,
                launched_at: i.launched_at.unwrap_or(0),
                spot: i.spot,
            });
        }
        Ok(Inventory {
            instances,
            foreign: l.foreign,
            foreign_cores: l.foreign_cores,
        })
    }

    fn terminate(&mut self, instance_id: &str) -> Result<(), CloudError> {
        let input = json!({
            "action": "terminate",
            "site": self.site.name.get_ref(),
            "id": instance_id,
        });
        let _: serde_json::Value = self.call("terminate", &self.cfg.terminate.clone(), input)?;
        Ok(())
    }
}
