//! The HTTP reads of the Mesos side. The only part of `mesos` that
//! touches the network: everything it gets is handed to the pure parsers.
//!
//! With `mesos.credentials`, each call carries HTTP basic authentication
//! (Mesos `--authenticate_http_readonly`, Marathon's and Aurora's basic
//! auth); the file must not be readable by others, and its secret is
//! held in a redacting `Secret`.
//!
//! Each call has the configured deadline; an answer over `MAX_BODY` is
//! cut off and reported (an endless body costs time, not memory). A
//! non-leading master redirects `/api/v1` to the leader (307), which is
//! followed with the same body. With several masters configured, a call
//! goes to the one that answered last and, failing, to each other in
//! turn: one master down leaves the side readable.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{aurora, marathon, master, MesosError, MesosView, Unit};
use crate::config::MesosSource;
use crate::observed::{Observed, Unknown};
use crate::secret::Secret;

/// Larger answers are refused: a master of thousands of agents answers
/// GET_STATE in a few MB.
const MAX_BODY: usize = 64 << 20;

pub struct MesosClient {
    source: MesosSource,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// (principal, secret) from `mesos.credentials`, or why it is unusable.
    credentials: Option<Result<(String, Secret), String>>,
    /// The master (index in `source.master`) that answered last. The
    /// agent keeps the client from cycle to cycle, so this carries over
    /// (a dead first master costs its timeout once, not every cycle).
    answered: AtomicUsize,
}

impl MesosClient {
    pub fn new(source: &MesosSource) -> std::io::Result<MesosClient> {
        let http = reqwest::Client::builder()
            .timeout(source.timeout)
            .connect_timeout(source.timeout)
            .build()
            .map_err(std::io::Error::other)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(MesosClient {
            source: source.clone(),
            http,
            runtime,
            credentials: source.credentials.as_deref().map(read_credentials),
            answered: AtomicUsize::new(0),
        })
    }

    /// The master (index in `mesos.master`) that will be asked first.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// The master's agents and every configured framework's queue.
    pub fn observe(&self) -> MesosView {
        let s = &self.source;
        let agents = self
            .post_master(master::QUERY)
            .and_then(|b| master::parse(&b).map_err(garbage));
        let mut queue: Result<Vec<Unit>, Unknown> = Ok(Vec::new());
        if let Some(m) = &s.marathon {
            let units = self
                .get(&format!("{m}/v2/queue"))
                .and_then(|b| marathon::parse(&b).map_err(garbage));
            queue = join(queue, units);
        }
        if let Some(a) = &s.aurora {
            let units = self
                .post(
                    &format!("{a}/apibeta/getTasksWithoutConfigs"),
                    aurora::QUERY,
                )
                .and_then(|b| aurora::parse(&b).map_err(garbage));
            queue = join(queue, units);
        }
        MesosView {
            agents: Observed::from(agents),
            queue: Observed::from(queue),
        }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, Unknown> {
        self.fetch(url, self.http.get(url))
    }

    /// `DEACTIVATE_AGENT` at the master: 200 with an empty body.
    pub fn deactivate_agent(&self, agent: &str) -> Result<(), String> {
        self.post_master(&master::deactivate(agent))
            .map(drop)
            .map_err(|u| u.to_string())
    }

    /// `body` at the masters' `/api/v1`: the first answer, starting with
    /// the master that answered last; every master's failure otherwise.
    fn post_master(&self, body: &str) -> Result<Vec<u8>, Unknown> {
        let masters = &self.source.master;
        let first = self.answered();
        let mut failures = Vec::new();
        for i in (0..masters.len()).map(|k| (first + k) % masters.len()) {
            match self.post(&format!("{}/api/v1", masters[i]), body.to_string()) {
                Ok(b) => {
                    self.answered.store(i, Ordering::Relaxed);
                    return Ok(b);
                }
                Err(e) => failures.push((&masters[i], e)),
            }
        }
        if failures.len() == 1 {
            return Err(failures.remove(0).1);
        }
        let each: Vec<String> = failures.iter().map(|(m, e)| format!("{m}: {e}")).collect();
        Err(Unknown::Failed {
            status: format!("none of {} masters answered", masters.len()),
            message: each.join("; "),
        })
    }

    fn post(&self, url: &str, body: impl Into<String>) -> Result<Vec<u8>, Unknown> {
        let req = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.into());
        self.fetch(url, req)
    }

    fn fetch(&self, url: &str, req: reqwest::RequestBuilder) -> Result<Vec<u8>, Unknown> {
        let req = match &self.credentials {
            None => req,
            Some(Ok((principal, secret))) => req.basic_auth(principal, Some(secret.expose())),
            Some(Err(why)) => {
                return Err(Unknown::Unavailable {
                    detail: why.clone(),
                })
            }
        };
        let timeout = self.source.timeout;
        self.runtime.block_on(async move {
            let mut resp = req.send().await.map_err(|e| failure(url, &e, timeout))?;
            let status = resp.status();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| failure(url, &e, timeout))? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Unknown::Garbage {
                        message: format!("{url}: the answer is over {} MiB", MAX_BODY >> 20),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err(Unknown::Failed {
                    status: format!("HTTP {}", status.as_u16()),
                    message: format!("{url}: {}", text.trim()),
                });
            }
            Ok(body)
        })
    }
}

/// `principal:secret` from a file others cannot read (the secret never
/// reaches a message).
fn read_credentials(path: &Path) -> Result<(String, Secret), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("mesos.credentials {shown}: {e}"))?;
    if meta.mode() & 0o004 != 0 {
        return Err(format!(
            "mesos.credentials {shown} is readable by everyone (mode {:o}): not used",
            meta.mode() & 0o777
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("mesos.credentials {shown}: {e}"))?;
    match text.trim_end_matches(['\n', '\r']).split_once(':') {
        Some((p, s)) if !p.is_empty() && !s.is_empty() => {
            Ok((p.to_string(), Secret::new(s.to_string())))
        }
        _ => Err(format!(
            "mesos.credentials {shown}: not principal:secret on one line"
        )),
    }
}

fn failure(url: &str, e: &reqwest::Error, timeout: Duration) -> Unknown {
    if e.is_timeout() {
        return Unknown::TimedOut {
            after_ms: timeout.as_millis() as u64,
        };
    }
    // The chain says what failed (refused, reset, DNS), reqwest's own
    // text only that a request did.
    let mut message = format!("{url}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    Unknown::Failed {
        status: "unreachable".into(),
        message,
    }
}

fn garbage(e: MesosError) -> Unknown {
    match e {
        MesosError::Refused { .. } => Unknown::Refused {
            message: e.to_string(),
        },
        MesosError::Format { .. } => Unknown::Garbage {
            message: e.to_string(),
        },
    }
}

fn join(
    a: Result<Vec<Unit>, Unknown>,
    b: Result<Vec<Unit>, Unknown>,
) -> Result<Vec<Unit>, Unknown> {
    let mut a = a?;
    a.extend(b?);
    Ok(a)
}
