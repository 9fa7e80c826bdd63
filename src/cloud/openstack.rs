//! OpenStack (Jetstream2 is the reference cloud) through the `openstack`
//! crate's session: authentication as the OpenStack CLI does it — a
//! `clouds.yaml` entry (`./`, `~/.config/openstack/`, `/etc/openstack/`)
//! or the `OS_*` environment, with a password or an application
//! credential — then the catalog, token renewal and version discovery.
//!
//! The Nova calls are made through that session rather than the crate's
//! typed server API, which cannot set security groups and folds quota
//! refusals, rate limits and policy refusals into one error. They are:
//! `POST /servers`, `GET /servers/detail` (paginated with `limit` and
//! `marker`), `DELETE /servers/{id}` and `GET /limits`, at compute
//! microversion 2.47 (the flavor is embedded in each server); image and
//! network names resolve through `GET /v2/images?name=` (Glance) and
//! `GET /v2.0/networks?name=` (Neutron), flavour names through
//! `GET /flavors`.
//!
//! Idempotency: the server name is the launch token, unique per launch;
//! a launch whose answer was lost is looked for by that name before it
//! is tried again.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use openstack::session::Session;
use osauth::services::{COMPUTE, IMAGE, NETWORK};
use serde::Deserialize;
use serde_json::json;

use super::{
    CloudError, ErrorKind, Instance, InstanceState, Inventory, LaunchRequest, Provider, Quota,
    TAG_NODE, TAG_POOL,
};
use crate::config::{OpenstackConfig, Site};

/// Compute microversion: 2.47 embeds the flavor (name, vcpus, ram) in
/// each server, so listing needs no flavor look-ups.
const MICROVERSION: (u16, u16) = (2, 47);

/// Nova takes at most 65535 bytes of base64 user-data.
pub const USER_DATA_LIMIT: usize = 65535;

#[derive(Clone, Debug)]
pub struct OpenstackOptions {
    /// Servers per page when listing.
    pub page_size: usize,
    pub call_timeout: Duration,
}

impl Default for OpenstackOptions {
    fn default() -> OpenstackOptions {
        OpenstackOptions {
            page_size: 200,
            call_timeout: Duration::from_secs(30),
        }
    }
}

pub struct OpenstackProvider {
    site: String,
    pool: String,
    image: String,
    cfg: OpenstackConfig,
    opts: OpenstackOptions,
    session: Session,
    rt: tokio::runtime::Runtime,
    /// Image and network names already resolved to ids.
    resolved: BTreeMap<String, String>,
    /// Tokens whose last launch may or may not have created a server.
    uncertain: HashSet<String>,
}

#[derive(Deserialize)]
struct ServerList {
    servers: Vec<Server>,
    #[serde(default)]
    servers_links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    href: String,
    rel: String,
}

#[derive(Deserialize)]
struct Server {
    id: String,
    name: String,
    status: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    flavor: EmbeddedFlavor,
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize, Default)]
struct EmbeddedFlavor {
    #[serde(default)]
    original_name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    vcpus: u32,
}

#[derive(Deserialize)]
struct Created {
    server: CreatedServer,
}

#[derive(Deserialize)]
struct CreatedServer {
    id: String,
}

/// What a server's status means to us. `ERROR` (Nova found no host, or
/// the build failed) and `SHUTOFF` are on their way out: the node never
/// joins and the boot timeout terminates it.
pub fn state_of(status: &str) -> InstanceState {
    match status {
        "BUILD" | "REBUILD" | "REBOOT" | "HARD_REBOOT" | "MIGRATING" | "RESIZE"
        | "VERIFY_RESIZE" | "REVERT_RESIZE" | "PASSWORD" => InstanceState::Pending,
        "ACTIVE" => InstanceState::Running,
        "DELETED" | "SOFT_DELETED" => InstanceState::Terminated,
        _ => InstanceState::Stopping,
    }
}

/// Classifies a Nova (or Glance, Neutron) error reply. Nova answers a
/// quota refusal with 403 and "Quota exceeded" (413 on older releases),
/// a rate limit with 429, and a policy refusal with a plain 403.
pub fn kind_of_reply(status: u16, body: &str) -> ErrorKind {
    let quota = body.contains("Quota exceeded") || body.contains("quota exceeded");
    match status {
        401 => ErrorKind::Auth,
        403 | 413 if quota => ErrorKind::Quota,
        413 => ErrorKind::Quota,
        403 => ErrorKind::Auth,
        429 => ErrorKind::Throttled,
        503 if body.contains("No valid host") => ErrorKind::Capacity,
        400..=499 => ErrorKind::Invalid,
        _ => ErrorKind::Transient,
    }
}

/// The `message` of a Nova fault body (`{"forbidden": {"code": 403,
/// "message": "..."}}`), or the start of the body.
pub fn fault_message(body: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = v.as_ref().and_then(|v| v.as_object()).and_then(|o| {
        o.values()
            .find_map(|f| {
                f.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .or_else(|| {
                o.get("NeutronError")
                    .and_then(|e| e.get("message"))
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
    });
    msg.unwrap_or_else(|| {
        body.chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_string()
    })
}

fn from_osauth(what: &str, e: osauth::Error) -> CloudError {
    use osauth::ErrorKind as K;
    let kind = match e.kind() {
        K::AuthenticationFailed | K::AccessDenied => ErrorKind::Auth,
        K::InvalidConfig | K::EndpointNotFound | K::InvalidInput | K::IncompatibleApiVersion => {
            ErrorKind::Invalid
        }
        K::ResourceNotFound => ErrorKind::Invalid,
        _ => ErrorKind::Transient,
    };
    CloudError {
        kind,
        message: format!("openstack {what}: {e}"),
    }
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Seconds since the epoch of Nova's `created` (`2017-02-14T19:24:42Z`).
fn epoch_of(created: &str) -> Option<i64> {
    let (date, time) = created.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time
        .split(':')
        .map(|x| x.split('.').next()?.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let days =
        crate::registry::days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(day).ok()?);
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

impl OpenstackProvider {
    pub fn new(
        site: &Site,
        pool: &str,
        opts: OpenstackOptions,
    ) -> Result<OpenstackProvider, CloudError> {
        let cfg = site.openstack.clone().unwrap_or_default();
        let rt = super::runtime("OpenStack")?;
        let session = rt
            .block_on(async {
                match &cfg.cloud {
                    Some(name) => Session::from_config(name).await,
                    None => Session::from_env().await,
                }
            })
            .map_err(|e| from_osauth("authentication", e))?;
        let session = match &cfg.region {
            Some(r) => session.with_region(r.clone()),
            None => session,
        };
        Ok(OpenstackProvider {
            site: site.name.get_ref().clone(),
            pool: pool.to_string(),
            image: site.image.clone(),
            cfg,
            opts,
            session,
            rt,
            resolved: BTreeMap::new(),
            uncertain: HashSet::new(),
        })
    }

    /// Sends one request; the reply's body as JSON, or a classified error.
    fn send(
        &self,
        what: &str,
        req: osauth::ServiceRequestBuilder<impl osauth::services::ServiceType + Send>,
    ) -> Result<serde_json::Value, CloudError> {
        let timeout = self.opts.call_timeout;
        let r = self.rt.block_on(async {
            let resp = req.timeout(timeout).send_unchecked().await?;
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            Ok::<_, osauth::Error>((status, body))
        });
        let (status, body) = r.map_err(|e| from_osauth(what, e))?;
        if (200..300).contains(&status) {
            if body.trim().is_empty() {
                return Ok(serde_json::Value::Null);
            }
            return serde_json::from_str(&body).map_err(|e| CloudError {
                kind: ErrorKind::Transient,
                message: format!("openstack {what}: unreadable reply: {e}"),
            });
        }
        Err(CloudError {
            kind: kind_of_reply(status, &body),
            message: format!("openstack {what}: HTTP {status}: {}", fault_message(&body)),
        })
    }

    /// An image or network id from a name or id (ids pass through).
    fn resolve(&mut self, kind: &str, name: &str) -> Result<String, CloudError> {
        // Image and network ids are UUIDs; flavour ids are whatever the
        // cloud chose ("3" on Jetstream2), so flavours always go by list.
        if kind != "flavor" && looks_like_uuid(name) {
            return Ok(name.to_string());
        }
        let key = format!("{kind}:{name}");
        if let Some(id) = self.resolved.get(&key) {
            return Ok(id.clone());
        }
        let q = [("name", name)];
        let (what, v) = match kind {
            "image" => (
                "images",
                self.send(
                    "GET /v2/images",
                    self.session.get(IMAGE, ["images"]).query(&q),
                )?,
            ),
            "network" => (
                "networks",
                self.send(
                    "GET /v2.0/networks",
                    self.session.get(NETWORK, ["networks"]).query(&q),
                )?,
            ),
            _ => (
                "flavors",
                self.send(
                    "GET /flavors",
                    self.session
                        .get(COMPUTE, ["flavors"])
                        .api_version(MICROVERSION),
                )?,
            ),
        };
        let ids: Vec<String> = v[what]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["name"] == name || (kind == "flavor" && o["id"] == name))
            .filter_map(|o| o["id"].as_str().map(str::to_string))
            .collect();
        match ids.as_slice() {
            [id] => {
                self.resolved.insert(key, id.clone());
                Ok(id.clone())
            }
            [] => Err(CloudError {
                kind: ErrorKind::Invalid,
                message: format!("openstack: no {kind} named {name:?} at site {}", self.site),
            }),
            _ => Err(CloudError {
                kind: ErrorKind::Invalid,
                message: format!(
                    "openstack: {} {kind}s are named {name:?} at site {}: give the id",
                    ids.len(),
                    self.site
                ),
            }),
        }
    }

    /// Every server in the project, following the `next` links.
    fn servers(&self, name: Option<&str>) -> Result<Vec<Server>, CloudError> {
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut marker: Option<String> = None;
        loop {
            // Sorted by the unique id: Nova's default order (created_at)
            // ties for servers made in the same second, and a real Nova
            // then repeats some across pages and skips others.
            let mut q: Vec<(&str, String)> = vec![
                ("limit", self.opts.page_size.to_string()),
                ("sort_key", "uuid".to_string()),
                ("sort_dir", "asc".to_string()),
            ];
            if let Some(m) = &marker {
                q.push(("marker", m.clone()));
            }
            if let Some(n) = name {
                // Nova's name filter is a regular expression.
                q.push(("name", format!("^{}$", regex_escape(n))));
            }
            let v = self.send(
                "GET /servers/detail",
                self.session
                    .get(COMPUTE, ["servers", "detail"])
                    .api_version(MICROVERSION)
                    .query(&q),
            )?;
            let page: ServerList = serde_json::from_value(v).map_err(|e| CloudError {
                kind: ErrorKind::Transient,
                message: format!("openstack GET /servers/detail: unexpected reply: {e}"),
            })?;
            let next = page
                .servers_links
                .iter()
                .find(|l| l.rel == "next")
                .and_then(|l| marker_of(&l.href));
            let last = page.servers.last().map(|s| s.id.clone());
            all.extend(
                page.servers
                    .into_iter()
                    .filter(|s| seen.insert(s.id.clone())),
            );
            match next {
                // A next link that does not move on would loop for ever.
                Some(m) if Some(&m) != marker.as_ref() && last.is_some() => marker = Some(m),
                _ => return Ok(all),
            }
        }
    }

    fn to_instance(&self, s: &Server) -> Instance {
        Instance {
            id: s.id.clone(),
            site: self.site.clone(),
            flavor: s
                .flavor
                .original_name
                .clone()
                .or_else(|| s.flavor.id.clone())
                .unwrap_or_default(),
            state: state_of(&s.status),
            pool: s.metadata.get(TAG_POOL).cloned(),
            node_id: s.metadata.get(TAG_NODE).cloned(),
            token: Some(s.name.clone()),
            launched_at: s.created.as_deref().and_then(epoch_of).unwrap_or(0),
            spot: false,
        }
    }

    fn create(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        let user_data = base64::engine::general_purpose::STANDARD.encode(req.user_data.expose());
        if user_data.len() > USER_DATA_LIMIT {
            return Err(CloudError {
                kind: ErrorKind::Invalid,
                message: format!(
                    "user-data is {} bytes in base64, over Nova's {USER_DATA_LIMIT}",
                    user_data.len()
                ),
            });
        }
        let image = self.resolve("image", &self.image.clone())?;
        let flavor = self.resolve("flavor", &req.flavor)?;
        let mut metadata: BTreeMap<String, String> = self.cfg.metadata.clone();
        metadata.extend(req.tags.iter().cloned());
        let mut server = json!({
            "name": req.token,
            "flavorRef": flavor,
            "imageRef": image,
            "user_data": user_data,
            "metadata": metadata,
            "min_count": 1,
            "max_count": 1,
        });
        // "auto" and "none" are Nova's own words (microversion 2.37+): a
        // network Nova allocates itself, or no NIC at all (test clouds).
        server["networks"] = match self.cfg.network.clone().as_deref() {
            None | Some("auto") => json!("auto"),
            Some("none") => json!("none"),
            Some(n) => json!([{ "uuid": self.resolve("network", n)? }]),
        };
        if !self.cfg.security_groups.is_empty() {
            server["security_groups"] = self
                .cfg
                .security_groups
                .iter()
                .map(|g| json!({ "name": g }))
                .collect();
        }
        if let Some(k) = &self.cfg.key_name {
            server["key_name"] = json!(k);
        }
        if let Some(az) = &self.cfg.availability_zone {
            server["availability_zone"] = json!(az);
        }
        let v = self.send(
            "POST /servers",
            self.session
                .post(COMPUTE, ["servers"])
                .api_version(MICROVERSION)
                .json(&json!({ "server": server })),
        )?;
        let c: Created = serde_json::from_value(v).map_err(|e| CloudError {
            kind: ErrorKind::Transient,
            message: format!("openstack POST /servers: unexpected reply: {e}"),
        })?;
        Ok(Instance {
            id: c.server.id,
            site: self.site.clone(),
            flavor: req.flavor.clone(),
            state: InstanceState::Pending,
            pool: Some(self.pool.clone()),
            node_id: Some(req.node_id.clone()),
            token: Some(req.token.clone()),
            launched_at: 0,
            spot: false,
        })
    }
}

/// The `marker` of a `next` link's query.
fn marker_of(href: &str) -> Option<String> {
    let query = href.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "marker").then(|| v.to_string())
    })
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Provider for OpenstackProvider {
    fn launch(&mut self, req: &LaunchRequest) -> Result<Instance, CloudError> {
        if self.uncertain.contains(&req.token) {
            let found = self.servers(Some(&req.token))?;
            if let Some(s) = found
                .iter()
                .find(|s| s.name == req.token && s.metadata.get(TAG_POOL) == Some(&self.pool))
            {
                self.uncertain.remove(&req.token);
                return Ok(self.to_instance(s));
            }
        }
        match self.create(req) {
            Err(e) if !e.kind.is_definitive() => {
                self.uncertain.insert(req.token.clone());
                Err(e)
            }
            r => {
                self.uncertain.remove(&req.token);
                r
            }
        }
    }

    fn inventory(&mut self) -> Result<Inventory, CloudError> {
        let mut inv = Inventory::default();
        for s in self.servers(None)? {
            if s.metadata.get(TAG_POOL) == Some(&self.pool) {
                inv.instances.push(self.to_instance(&s));
            } else if state_of(&s.status) != InstanceState::Terminated {
                inv.foreign += 1;
                inv.foreign_cores += s.flavor.vcpus;
            }
        }
        Ok(inv)
    }

    fn terminate(&mut self, instance_id: &str) -> Result<(), CloudError> {
        let r = self.send(
            "DELETE /servers/{id}",
            self.session
                .delete(COMPUTE, ["servers", instance_id])
                .api_version(MICROVERSION),
        );
        match r {
            // Already gone.
            Err(e) if e.message.contains("HTTP 404") => Ok(()),
            r => r.map(|_| ()),
        }
    }

    fn quota(&mut self) -> Result<Option<Quota>, CloudError> {
        let v = self.send(
            "GET /limits",
            self.session
                .get(COMPUTE, ["limits"])
                .api_version(MICROVERSION),
        )?;
        let a = &v["limits"]["absolute"];
        // -1 is "unlimited".
        let max = |k: &str| a[k].as_i64().filter(|n| *n >= 0);
        let used = |k: &str| a[k].as_i64().unwrap_or(0).max(0);
        Ok(Some(Quota {
            instances: max("maxTotalInstances").map(|n| n as u32),
            cores: max("maxTotalCores").map(|n| n as u32),
            ram_mb: max("maxTotalRAMSize").map(|n| n as u64),
            used_instances: used("totalInstancesUsed") as u32,
            used_cores: used("totalCoresUsed") as u32,
            used_ram_mb: used("totalRAMUsed") as u64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_as_nova_documents_them() {
        let quota = r#"{"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}}"#;
        assert_eq!(kind_of_reply(403, quota), ErrorKind::Quota);
        assert_eq!(
            fault_message(quota),
            "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
        );
        let policy = r#"{"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:servers:create to be performed."}}"#;
        assert_eq!(kind_of_reply(403, policy), ErrorKind::Auth);
        assert_eq!(kind_of_reply(429, ""), ErrorKind::Throttled);
        assert_eq!(kind_of_reply(401, ""), ErrorKind::Auth);
        assert_eq!(
            kind_of_reply(
                400,
                r#"{"badRequest": {"code": 400, "message": "Invalid flavorRef provided."}}"#
            ),
            ErrorKind::Invalid
        );
        assert_eq!(kind_of_reply(500, ""), ErrorKind::Transient);
        assert_eq!(kind_of_reply(503, ""), ErrorKind::Transient);
    }

    #[test]
    fn statuses_map_to_states() {
        assert_eq!(state_of("BUILD"), InstanceState::Pending);
        assert_eq!(state_of("ACTIVE"), InstanceState::Running);
        assert_eq!(state_of("ERROR"), InstanceState::Stopping);
        assert_eq!(state_of("DELETED"), InstanceState::Terminated);
    }

    #[test]
    fn next_links_give_the_marker_and_times_parse() {
        let href = "http://openstack.example.com/v2.1/6f70/servers/detail?limit=1&marker=764e369e-a874-4401-b7ce-43e4760888da";
        assert_eq!(
            marker_of(href).as_deref(),
            Some("764e369e-a874-4401-b7ce-43e4760888da")
        );
        assert_eq!(epoch_of("2017-02-14T19:24:42Z"), Some(1_487_100_282));
        assert!(looks_like_uuid("70a599e0-31e7-49b7-b260-868f441e862b"));
        assert!(!looks_like_uuid("Featured-AlmaLinux9"));
        assert_eq!(regex_escape("cb-a.1"), "cb\\-a\\.1".replace("\\-", "-"));
    }
}
