//! `cloudburst agent`: the imperative shell around `cycle::Agent`.
//!
//! Each cycle observes the pool (condor tools, on a scoped thread) and
//! the clouds (each provider's calls, with their own deadlines) at the
//! same time, then runs the pure decision core on what came back.
//!
//! One thread runs the cycles; everything else only wakes it, through one
//! channel: the interval, a change of the schedd's job log (a new cloud
//! job is seen at once), a change of the config file, and SIGHUP, SIGTERM
//! and SIGINT (blocked in every thread and read by one `sigwait` thread,
//! so no handler runs inside a cloud call). A cycle in progress always
//! finishes: its intents are journaled before and after each call, so
//! even a kill -9 leaves nothing the next start cannot reconcile.
//!
//! A lock file beside the registry keeps two agents off one registry. A
//! reloaded config that fails validation is logged and ignored; the old
//! one keeps running. Under systemd (`Type=notify`) the agent reports
//! READY, RELOADING, STOPPING and WATCHDOG on `$NOTIFY_SOCKET`.
//!
//! After every cycle `status.json` (beside the registry) holds what the
//! cycle saw and did, for `cloudburst status` while the agent runs.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};

use crate::cloud::clouds::{connect, Clouds};
use crate::cloud::retry::Backoff;
use crate::cloud::{CloudError, Instance, Inventory, LaunchRequest};
use crate::condor::client::Live;
use crate::condor::commands::{CommandError, Outcome};
use crate::condor::presence::Presence;
use crate::condor::Condor;
use crate::condor::{PoolSnapshot, Startd};
use crate::config::Config;
use crate::cycle::{Agent, CloudPort, CondorPort, MesosPort};
use crate::mesos::client::MesosClient;
use crate::mesos::MesosView;
use crate::observed::Observed;
use crate::pilot::ConfiguredPilot;
use crate::registry::{Registry, RegistryError};
use crate::secret::Secret;
use std::collections::BTreeMap;

mod lock;
pub mod log_demand;
pub mod metrics;
mod notify_socket;
pub mod revocation;
pub mod status;
mod verify;

use lock::Lock;
use log_demand::{Debounce, Found, LogDemand};

/// Why the loop woke.
#[derive(Debug)]
enum Wake {
    JobLog,
    ConfigChanged,
    Hup,
    Term(&'static str),
}

pub struct Options {
    /// Run one cycle and exit (tests, cron-style use).
    pub once: bool,
    /// Move a damaged registry aside and adopt our tagged instances that
    /// the registry does not know (see `verify`).
    pub rebuild_registry: bool,
}

/// Seconds since the epoch: the shell's one reading of the wall clock.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn load(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::config::parse(&path.display().to_string(), &text)?)
}

/// Blocks the signals the loop handles in this thread (and every thread
/// spawned after) and reads them in one thread of its own.
fn signals(tx: mpsc::Sender<Wake>) -> Result<()> {
    // SAFETY: plain libc calls on a local sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(anyhow!("cannot block signals"));
        }
        std::thread::spawn(move || loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            let w = match sig {
                libc::SIGHUP => Wake::Hup,
                libc::SIGINT => Wake::Term("SIGINT"),
                _ => Wake::Term("SIGTERM"),
            };
            if tx.send(w).is_err() {
                return;
            }
        });
    }
    Ok(())
}

pub fn run(config_path: &Path, opts: Options) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Wake>();
    signals(tx.clone())?;
    let mut config = load(config_path)?;
    crate::logging::init(config.agent.log_level);
    let registry_path = config.agent.registry.clone();
    let _lock = Lock::acquire(&registry_path.with_extension("lock"))?;
    let mut registry = open_registry(&registry_path, opts.rebuild_registry)?;
    let mut clouds = Clouds::new(connect(&config)?, Backoff::default(), now() as u64);
    // A registry that never met the clouds adopts (when told to) in its
    // first cycle, whatever the unknown-instance policy says.
    let mut adopt_first = false;
    if !registry.verified()? {
        match verify_registry(&config, &mut registry, &mut clouds, &rx, &opts)? {
            Some(adopt) => adopt_first = adopt,
            None => return Ok(()),
        }
    }
    let mut presence: Option<Presence> = None;
    let status_path = status::path(&registry_path);

    // Wake-ups from the config file and the job log.
    let t = tx.clone();
    let _config_watch = crate::condor::joblog_tail::watch(config_path, move || {
        let _ = t.send(Wake::ConfigChanged);
    })
    .map_err(|e| tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP"))
    .ok();
    let mut joblog_watch = watch_joblog(&config, &tx);
    let mut mesos_side = MesosSide::new(config.mesos.as_ref());
    let mut revocations = revocation::Revocations::default();

    let pages = std::sync::Arc::new(std::sync::Mutex::new(metrics::Pages::default()));
    let mut metrics = metrics::Metrics::default();
    // The histograms go on from where the last run left them.
    match (registry.events(None), registry.nodes()) {
        (Ok(events), Ok(nodes)) => metrics.rebuild(&events, &nodes),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot read the registry's events; histograms start empty")
        }
    }
    if !config.agent.listen.is_empty() {
        match std::net::TcpListener::bind(&config.agent.listen) {
            Ok(l) => {
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                metrics::serve(l, pages.clone());
                tracing::info!(addr = %addr, "serving /metrics and the status page");
            }
            Err(e) => {
                tracing::warn!(addr = %config.agent.listen, error = %e, "cannot listen; no metrics")
            }
        }
    }

    let notify = notify_socket::NotifySocket::from_env();
    let watchdog = notify_socket::watchdog_interval();
    tracing::info!(config = %config_path.display(), registry = %registry_path.display(), "agent started");
    let mut ready = false;
    let mut cycle_no = 0u64;
    // A reload due at this instant, and why.
    let mut pending_reload: Option<(Instant, &'static str)> = None;
    // The job log between full cycles, and what the last full cycle saw.
    let mut log_demand = LogDemand::new(&config);
    let mut log_changed = Debounce::default();
    let mut last_seen: Option<LastSeen> = None;
    loop {
        cycle_no += 1;
        let mut follow_up = false;
        let cycle_span = tracing::info_span!("cycle", cycle = cycle_no);
        let entered = cycle_span.enter();
        let started = Instant::now();
        let t = now();
        let adopting;
        let cycle_config = if adopt_first {
            let mut c = config.clone();
            c.reconcile.unknown_instances = crate::config::UnknownInstances::Adopt;
            adopting = c;
            &adopting
        } else {
            &config
        };
        let keep = log_demand.as_ref().map(|_| &mut last_seen);
        match one_cycle(
            cycle_config,
            &mut registry,
            &mut clouds,
            &mut presence,
            &mesos_side,
            keep,
            t,
        ) {
            Ok(report) => {
                follow_up = report.wants_follow_up();
                if adopt_first {
                    adopt_first = false;
                    registry.set_verified(t)?;
                }
                let ms = started.elapsed().as_millis();
                for n in &report.notes {
                    tracing::info!(note = %n, "note");
                }
                if let Err(e) = status::write(&status_path, config_path, &report, ms) {
                    tracing::warn!(error = %e, "cannot write status.json");
                }
                // Every node, read once for the metrics and the revocation
                // list.
                let all = registry.nodes();
                match status::gather_from(&mut registry, &config, t) {
                    Ok(st) => {
                        let nodes = all.as_deref().unwrap_or_default();
                        metrics.observe(&report, nodes, started.elapsed().as_secs_f64());
                        let text = status::render(&st, &config);
                        let mut p = pages.lock().unwrap_or_else(|e| e.into_inner());
                        p.metrics = metrics.render(&st, &config);
                        p.html = metrics.page(&text);
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "cannot read the registry for metrics")
                    }
                }
                match &all {
                    Ok(nodes) => revoke(&config, nodes, &mut revocations, t),
                    // Never an empty list for an unreadable registry: that
                    // would take back every revocation.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the registry for the revocation list")
                    }
                }
                // Logged last: "cycle done" means status and metrics are current.
                tracing::info!(
                    ms = ms as u64,
                    idle_jobs = report.idle_jobs,
                    actions = report.done.len(),
                    "cycle done"
                );
            }
            // The next cycle starts from the registry again.
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cycle failed"),
        }
        drop(entered);
        if !ready {
            notify.send("READY=1\nSTATUS=running");
            ready = true;
        }
        if opts.once {
            return Ok(());
        }
        // Wait for the interval (shorter after idle drains, whose nodes
        // the next cycle terminates), a wake-up or a signal.
        let mut deadline = started
            + if follow_up {
                config
                    .timers
                    .cycle
                    .min(Duration::from_secs(crate::cycle::FOLLOW_UP_SECS))
            } else {
                config.timers.cycle
            };
        loop {
            let now_i = Instant::now();
            // A file change is read once the file has been quiet for a
            // moment: an editor (or `cat >`) truncates before it writes,
            // and a truncated file can still parse.
            if let Some((_, why)) = pending_reload.filter(|(t, _)| now_i >= *t) {
                pending_reload = None;
                reload(
                    config_path,
                    &mut config,
                    &mut registry,
                    &mut clouds,
                    &mut mesos_side,
                    &mut joblog_watch,
                    &tx,
                    why,
                    &notify,
                );
                if log_demand.as_ref().map(|d| d.path()) != config.pool.job_log.as_deref() {
                    log_demand = LogDemand::new(&config);
                    last_seen = None;
                }
            }
            if log_changed.fire(now_i) {
                let fallback = on_log_change(
                    &config,
                    &mut registry,
                    &mut clouds,
                    &mut presence,
                    log_demand.as_mut(),
                    &mut last_seen,
                    &mut metrics,
                    cycle_no,
                );
                if fallback {
                    // condor_q, soon, but not more than once a second.
                    deadline = deadline.min(started + Duration::from_secs(1));
                }
            }
            if now_i >= deadline {
                break;
            }
            let until = pending_reload.map_or(deadline, |(t, _)| t.min(deadline));
            let until = log_changed.due().map_or(until, |t| t.min(until));
            let wait = (until - now_i).min(watchdog.unwrap_or(Duration::MAX));
            notify.send("WATCHDOG=1");
            match rx.recv_timeout(wait) {
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(Wake::Term(sig)) => {
                    notify.send("STOPPING=1");
                    tracing::info!(signal = %sig, "stopping; nodes keep running and are reconciled at the next start");
                    return Ok(());
                }
                Ok(Wake::JobLog) => log_changed.changed(Instant::now()),
                Ok(Wake::ConfigChanged) => {
                    pending_reload = Some((Instant::now() + CONFIG_SETTLE, "file changed"));
                }
                // The admin asked: at once.
                Ok(Wake::Hup) => pending_reload = Some((Instant::now(), "SIGHUP")),
            }
        }
    }
}

/// Brings the pilot revocation list up to date with the registry.
fn revoke(
    config: &Config,
    nodes: &[crate::lifecycle::Node],
    revocations: &mut revocation::Revocations,
    now: i64,
) {
    let reconfig = || Condor::new(config, &Live).reconfig_collector();
    match revocations.update(config, nodes, now, reconfig) {
        Ok(revocation::Update::Unchanged) => {}
        Ok(revocation::Update::Applied { identities }) => {
            tracing::info!(identities, "pilot revocation list applied")
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "pilot revocation list not applied"),
    }
}

/// How long the config file must be quiet before a change is read.
const CONFIG_SETTLE: Duration = Duration::from_millis(700);

/// Re-reads and re-validates the config; a bad one, or one that changes
/// what only a restart can (the pool's name, the registry), is logged and
/// rejected, and the old one keeps running.
#[allow(clippy::too_many_arguments)]
fn reload(
    config_path: &Path,
    config: &mut Config,
    registry: &mut Registry,
    clouds: &mut Clouds,
    mesos_side: &mut MesosSide,
    joblog_watch: &mut Option<notify::RecommendedWatcher>,
    tx: &mpsc::Sender<Wake>,
    why: &str,
    notify: &notify_socket::NotifySocket,
) {
    notify.send("RELOADING=1");
    let fresh = load(config_path).and_then(|c| {
        if c.pool.name.get_ref() != config.pool.name.get_ref()
            || c.agent.registry != config.agent.registry
        {
            return Err(anyhow!(
                "pool.name and agent.registry cannot change while the agent runs; restart it"
            ));
        }
        let providers = connect(&c).map_err(|e| anyhow!("{e}"))?;
        Ok((c, providers))
    });
    match fresh {
        Ok((c, providers)) => {
            *clouds = Clouds::new(providers, Backoff::default(), now() as u64);
            *mesos_side = MesosSide::new(c.mesos.as_ref());
            *joblog_watch = watch_joblog(&c, tx);
            crate::logging::set_level(c.agent.log_level);
            *config = c;
            // New credentials may be what the admin reloaded for: sites
            // paused for refused ones are tried again.
            match registry.clear_site_pauses() {
                Ok(0) => {}
                Ok(n) => tracing::info!(sites = n, "site pauses lifted"),
                Err(e) => tracing::error!(error = %e, "cannot lift site pauses"),
            }
            tracing::info!(why = %why, "config reloaded");
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "new config rejected; the old one keeps running")
        }
    }
    notify.send("READY=1\nSTATUS=running");
}

/// Opens the registry; a damaged one is refused, or moved aside and
/// replaced by a new one when the admin asked for a rebuild.
fn open_registry(path: &Path, rebuild: bool) -> Result<Registry> {
    match Registry::open(path) {
        Err(RegistryError::Damaged { message, .. }) if rebuild => {
            let aside = PathBuf::from(format!("{}.damaged-{}", path.display(), now()));
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", path.display()));
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                if from.exists() {
                    std::fs::rename(&from, &to).with_context(|| {
                        format!("moving the damaged registry {} aside", from.display())
                    })?;
                }
            }
            tracing::warn!(error = %message, moved_to = %aside.display(), "registry damaged; moved aside, rebuilding it from the cloud tags");
            Ok(Registry::open(path)?)
        }
        Err(e @ RegistryError::Damaged { .. }) => Err(anyhow!(
            "{e}. Refusing to start: the nodes it tracked may still be running. Start with \
             --rebuild-registry to move it aside and rebuild it from the instances' cloud tags."
        )),
        other => Ok(other?),
    }
}

/// Compares a registry that was never verified with every site's
/// inventory (waiting, cycle by cycle, while a site cannot be read):
/// `Some(false)` verified, `Some(true)` strangers to adopt in the first
/// cycle, `None` stopped by a signal while waiting; an error when there are
/// strangers and no rebuild was asked for.
fn verify_registry(
    config: &Config,
    registry: &mut Registry,
    clouds: &mut Clouds,
    rx: &mpsc::Receiver<Wake>,
    opts: &Options,
) -> Result<Option<bool>> {
    let pool = config.pool.name.get_ref();
    loop {
        let mut known = Vec::new();
        let mut blind = None;
        for site in &config.sites {
            match clouds.inventory(site.name.get_ref()) {
                Observed::Known(inv) => known.push(inv),
                Observed::Unknown(why) => blind = Some((site.name.get_ref().clone(), why)),
            }
        }
        if let Some((site, why)) = blind {
            tracing::warn!(site = %site, reason = %why, "cannot check the new registry against the cloud yet; waiting");
            match rx.recv_timeout(config.timers.cycle) {
                Ok(Wake::Term(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                _ => continue,
            }
        }
        let nodes = registry.nodes()?;
        let found = verify::strangers(pool, &nodes, &known);
        if found.is_empty() {
            registry.set_verified(now())?;
            return Ok(Some(false));
        }
        if !opts.rebuild_registry {
            return Err(anyhow!(verify::refusal(
                &config.agent.registry.display().to_string(),
                pool,
                &found
            )));
        }
        tracing::warn!(
            instances = found.len(),
            "rebuilding the registry: adopting instances from their tags"
        );
        return Ok(Some(true));
    }
}

fn watch_joblog(config: &Config, tx: &mpsc::Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    let path: PathBuf = config.pool.job_log.clone()?;
    let t = tx.clone();
    crate::condor::joblog_tail::watch(&path, move || {
        let _ = t.send(Wake::JobLog);
    })
    .map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "cannot watch the job log; polling only")
    })
    .ok()
}

/// What the last full cycle read, for the launches between cycles.
struct LastSeen {
    snapshot: PoolSnapshot,
    inventories: BTreeMap<String, Observed<Inventory>>,
}

/// Reads the job log after a change and launches for new cloud jobs in
/// it; `true` when a full cycle should come soon instead.
#[allow(clippy::too_many_arguments)]
fn on_log_change(
    config: &Config,
    registry: &mut Registry,
    clouds: &mut Clouds,
    presence: &mut Option<Presence>,
    log_demand: Option<&mut LogDemand>,
    last_seen: &mut Option<LastSeen>,
    metrics: &mut metrics::Metrics,
    cycle_no: u64,
) -> bool {
    let Some(d) = log_demand else {
        return true;
    };
    let started = Instant::now();
    let t = now();
    let (snapshot, jobs) = match d.poll(last_seen.as_ref().map(|l| &l.snapshot), t) {
        Found::Nothing => return false,
        Found::Fallback => return true,
        Found::New { snapshot, jobs } => (snapshot, jobs),
    };
    let Some(last) = last_seen.as_mut() else {
        return true;
    };
    let _span = tracing::info_span!("cycle", cycle = cycle_no, from = "job log").entered();
    tracing::info!(jobs, "new cloud jobs in the job log");
    last.snapshot = snapshot.clone();
    let inventories = last.inventories.clone();
    match demand_cycle(config, registry, clouds, presence, snapshot, inventories, t) {
        Ok(report) => {
            metrics.observe_actions(&report);
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                actions = report.done.len(),
                "launched for the job log"
            );
            false
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "launching for the job log failed");
            true
        }
    }
}

/// One full cycle; `keep` receives what it read, when the job log is
/// followed.
fn one_cycle(
    config: &Config,
    registry: &mut Registry,
    clouds: &mut Clouds,
    presence: &mut Option<Presence>,
    mesos_side: &MesosSide,
    keep: Option<&mut Option<LastSeen>>,
    now: i64,
) -> Result<crate::cycle::Report> {
    let runner = Live;
    let condor = Condor::new(config, &runner);
    // Observe the pool and the clouds at the same time: each source has
    // its own deadline (the condor timeout; a provider's call timeout and
    // retry budget), so the slowest, not their sum, bounds the cycle.
    let cycle = tracing::Span::current();
    let (snapshot, inventories, mesos) = std::thread::scope(|s| {
        // The readers' events belong to this cycle's span.
        let pool = s.spawn(|| cycle.in_scope(|| condor.snapshot(now)));
        let mesos = s.spawn(|| cycle.in_scope(|| mesos_side.observe()));
        let inventories: BTreeMap<String, Observed<Inventory>> = config
            .sites
            .iter()
            .map(|site| {
                let name = site.name.get_ref().clone();
                let inv = clouds.inventory(&name);
                (name, inv)
            })
            .collect();
        match (pool.join(), mesos.join()) {
            (Ok(snap), Ok(mesos)) => (snap, inventories, mesos),
            (Err(panic), _) | (_, Err(panic)) => std::panic::resume_unwind(panic),
        }
    });
    if let Some(keep) = keep {
        *keep = Some(LastSeen {
            snapshot: snapshot.clone(),
            inventories: inventories.clone(),
        });
    }
    act(
        config,
        registry,
        clouds,
        presence,
        (snapshot, inventories, mesos),
        false,
        now,
    )
}

/// Launches for the new jobs in `snapshot` (the job log's queue in the
/// last full cycle's reading), and does nothing else.
fn demand_cycle(
    config: &Config,
    registry: &mut Registry,
    clouds: &mut Clouds,
    presence: &mut Option<Presence>,
    snapshot: PoolSnapshot,
    inventories: BTreeMap<String, Observed<Inventory>>,
    now: i64,
) -> Result<crate::cycle::Report> {
    act(
        config,
        registry,
        clouds,
        presence,
        (snapshot, inventories, None),
        true,
        now,
    )
}

type Observation<'m> = (
    PoolSnapshot,
    BTreeMap<String, Observed<Inventory>>,
    Option<(MesosView, Option<&'m MesosClient>)>,
);

/// Runs the core on what was observed: a full cycle, or (`new_demand`)
/// launches only.
fn act(
    config: &Config,
    registry: &mut Registry,
    clouds: &mut Clouds,
    presence: &mut Option<Presence>,
    (snapshot, inventories, mesos): Observation<'_>,
    new_demand: bool,
    now: i64,
) -> Result<crate::cycle::Report> {
    let runner = Live;
    let condor = Condor::new(config, &runner);
    let mut condor = Prefetched {
        snapshot: Some(snapshot),
        condor,
    };
    let mut clouds = PrefetchedClouds {
        inventories,
        clouds,
    };
    let token_condor = Condor::new(config, &runner);
    let lifetime = crate::pilot::revocation::token_lifetime_secs(config);
    let ca_pem = match &config.pilot.ca_certificate {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading pilot.ca_certificate {}", p.display()))?,
        ),
        None => None,
    };
    let pilot = ConfiguredPilot {
        config: config.clone(),
        ca_pem,
        token: |node: &crate::lifecycle::Node| -> std::result::Result<Secret, String> {
            let identity = crate::pilot::token_identity(config, &node.id);
            token_condor.token(&identity, lifetime, config.pilot.token_key.as_deref())
        },
    };
    let mut agent = Agent::new(
        config,
        registry,
        Box::new(|node: &str| format!("cb-{node}-{:x}", rand_u64())),
    );
    if let Some(p) = presence.take() {
        agent.presence = p;
    }
    let mut mesos = mesos.map(|(view, client)| PrefetchedMesos { view, client });
    let result = if new_demand {
        agent.cycle_new_demand(&mut condor, &mut clouds, &pilot, now)
    } else {
        agent.cycle_with_mesos(
            &mut condor,
            &mut clouds,
            &pilot,
            mesos.as_mut().map(|m| m as &mut dyn MesosPort),
            now,
        )
    };
    *presence = Some(std::mem::replace(&mut agent.presence, Presence::new(0)));
    Ok(result?)
}

/// The Mesos side's client, kept from cycle to cycle (the master that
/// answered last is asked first, and its HTTP connections and CA file are
/// not made anew each cycle) and made again when the config is reloaded.
pub struct MesosSide {
    /// `None` without `[mesos]`; the error when no client could be made.
    client: Option<std::result::Result<MesosClient, String>>,
}

impl MesosSide {
    pub fn new(source: Option<&crate::config::MesosSource>) -> MesosSide {
        MesosSide {
            client: source.map(|source| {
                MesosClient::new(source).map_err(|e| format!("cannot make an HTTP client: {e}"))
            }),
        }
    }

    /// This cycle's view with the client that read it; `None` without
    /// `[mesos]`.
    pub fn observe(&self) -> Option<(MesosView, Option<&MesosClient>)> {
        Some(match self.client.as_ref()? {
            Ok(c) => (c.observe(), Some(c)),
            Err(e) => (MesosView::unknown(e), None),
        })
    }
}

/// The Mesos port with this cycle's view already read.
struct PrefetchedMesos<'m> {
    view: MesosView,
    client: Option<&'m MesosClient>,
}

impl MesosPort for PrefetchedMesos<'_> {
    fn view(&self) -> &MesosView {
        &self.view
    }

    fn deactivate_agent(&mut self, agent: &str) -> std::result::Result<(), String> {
        match &self.client {
            Some(c) => c.deactivate_agent(agent),
            None => Err("no Mesos client".into()),
        }
    }
}

/// The condor port with this cycle's snapshot already taken.
struct Prefetched<'r> {
    snapshot: Option<PoolSnapshot>,
    condor: Condor<'r>,
}

impl CondorPort for Prefetched<'_> {
    fn snapshot(&mut self, now: i64) -> PoolSnapshot {
        self.snapshot
            .take()
            .unwrap_or_else(|| self.condor.snapshot(now))
    }
    fn drain(
        &mut self,
        startd: &Startd,
        reason: &str,
    ) -> std::result::Result<Vec<Outcome>, CommandError> {
        CondorPort::drain(&mut self.condor, startd, reason)
    }
    fn cancel_drain(&mut self, startd: &Startd) -> Vec<Outcome> {
        CondorPort::cancel_drain(&mut self.condor, startd)
    }
}

/// The cloud port with this cycle's inventories already taken.
struct PrefetchedClouds<'c> {
    inventories: BTreeMap<String, Observed<Inventory>>,
    clouds: &'c mut Clouds,
}

impl CloudPort for PrefetchedClouds<'_> {
    fn inventory(&mut self, site: &str) -> Observed<Inventory> {
        match self.inventories.remove(site) {
            Some(inv) => inv,
            None => self.clouds.inventory(site),
        }
    }
    fn launch(&mut self, req: &LaunchRequest) -> std::result::Result<Instance, CloudError> {
        self.clouds.launch(req)
    }
    fn terminate(&mut self, site: &str, instance_id: &str) -> std::result::Result<(), CloudError> {
        self.clouds.terminate(site, instance_id)
    }
}

/// 64 random bits from the kernel (launch tokens must not repeat across
/// restarts).
fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom into a local buffer of the given length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        return SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    }
    u64::from_le_bytes(b)
}
