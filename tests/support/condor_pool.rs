//! A real HTCondor personal pool for the tests: a collector, negotiator,
//! schedd and startd on loopback, run as an unprivileged user, waited for
//! by asking it, torn down at the end, its logs kept when a test fails.
//!
//! Where HTCondor comes from: `CLOUDBURST_HTCONDOR` (a directory holding
//! `bin/condor_master`, or the release tarball, unpacked once into
//! `target/htcondor/`), else the HTCondor on `PATH`. With neither the
//! real-pool tests skip with one line saying how to provide it, unless
//! `CLOUDBURST_REQUIRE_HTCONDOR=1` (CI), where a skip is a failure.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The user pools run as when the tests run as root (HTCondor's schedd
/// refuses jobs of root, and a personal pool must not run as root).
const POOL_USER: &str = "cbcondor";

/// An HTCondor release: its `bin` and `sbin`.
#[derive(Clone, Debug)]
pub struct Release {
    pub root: PathBuf,
}

impl Release {
    pub fn bin(&self, tool: &str) -> PathBuf {
        let b = self.root.join("bin").join(tool);
        if b.exists() {
            b
        } else {
            self.root.join("sbin").join(tool)
        }
    }
}

static UNPACK: Mutex<()> = Mutex::new(());

/// Finds HTCondor, or says how to provide it (and skips, outside CI).
pub fn release() -> Option<Release> {
    if let Some(p) = std::env::var_os("CLOUDBURST_HTCONDOR") {
        let p = PathBuf::from(p);
        if p.join("bin/condor_master").exists() || p.join("sbin/condor_master").exists() {
            return Some(Release { root: p });
        }
        if let Some(r) = unpack(&p) {
            return Some(r);
        }
        if let Some(tarball) = find_tarball(&p) {
            return unpack(&tarball);
        }
    } else if let Some(master) = on_path("condor_master") {
        let root = master.parent()?.parent()?.to_path_buf();
        return Some(Release { root });
    }
    let how = "HTCondor for the real-pool tests: set CLOUDBURST_HTCONDOR to a release directory or its tarball, or put condor_master on PATH";
    if std::env::var("CLOUDBURST_REQUIRE_HTCONDOR").as_deref() == Ok("1") {
        panic!("{how} (CLOUDBURST_REQUIRE_HTCONDOR=1: a skip is a failure)");
    }
    eprintln!("SKIPPED: {how}");
    None
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn find_tarball(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy().ends_with(".tar.xz") || p.to_string_lossy().ends_with(".tar.gz")
        })
}

/// Unpacks a release tarball once into `target/htcondor/` (keyed by its
/// name); `None` if `tarball` is not one.
fn unpack(tarball: &Path) -> Option<Release> {
    if !tarball.is_file() {
        return None;
    }
    let _one = UNPACK.lock().unwrap_or_else(|e| e.into_inner());
    let name = tarball.file_name()?.to_string_lossy().to_string();
    let dest = super::repo()
        .join("target/htcondor")
        .join(name.replace(".tar.xz", "").replace(".tar.gz", ""));
    let done = dest.join(".unpacked");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).unwrap();
        let out = Command::new("tar")
            .arg("-xf")
            .arg(tarball)
            .arg("-C")
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "unpacking {}: {}",
            tarball.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, b"").unwrap();
    }
    // The tarball holds one top directory (condor25/).
    let root = std::fs::read_dir(&dest)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("sbin/condor_master").exists() || p.join("bin/condor_master").exists())?;
    Some(Release { root })
}

/// The uid and gid pools run as: ours, or the pool user's when root.
fn pool_identity() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let lookup = || {
        let name = std::ffi::CString::new(POOL_USER).unwrap();
        // SAFETY: a valid C string; the result is read before any other
        // getpw* call in this process could overwrite it (under UNPACK).
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        // SAFETY: checked for null.
        (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
    };
    let _one = UNPACK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = lookup() {
        return Some(id);
    }
    let out = Command::new("useradd")
        .args(["--system", "--create-home", "--shell", "/bin/sh", POOL_USER])
        .output()
        .expect("useradd");
    assert!(
        out.status.success() || lookup().is_some(),
        "useradd {POOL_USER}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lookup()
}

/// One personal pool.
pub struct Pool {
    pub release: Release,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
    name: String,
    owner: Option<(u32, u32)>,
}

impl Pool {
    /// Starts a pool named `name` with `extra` config (and every file of
    /// `config_d` in its config directory), and waits until its startd's
    /// slot is listed and the schedd answers.
    pub fn start(release: &Release, name: &str, extra: &str, config_d: &[PathBuf]) -> Pool {
        let owner = pool_identity();
        let dir = tempfile::Builder::new()
            .prefix(&format!("cb-pool-{name}-"))
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = super::service_port();
        let local = dir.path().join("local");
        let confd = dir.path().join("config.d");
        for d in [
            "log",
            "spool",
            "execute",
            "lock",
            "run",
            "passwords.d",
            "tokens.d",
        ] {
            std::fs::create_dir_all(local.join(d)).unwrap();
        }
        std::fs::create_dir_all(&confd).unwrap();
        for f in config_d {
            std::fs::copy(f, confd.join(f.file_name().unwrap())).unwrap();
        }
        let root = &release.root;
        let config = dir.path().join("condor_config");
        // The release's personal-pool config, relocated: its own paths,
        // its own collector port (adaptations: paths, ports, names only).
        let conf = format!(
            "include : {root}/etc/condor_config\n\
             RELEASE_DIR = {root}\n\
             LOCAL_DIR = {local}\n\
             LOCAL_CONFIG_DIR = {confd}\n\
             COLLECTOR_HOST = 127.0.0.1:{port}\n\
             COLLECTOR_NAME = cloudburst-test-{name}\n\
             SEC_PASSWORD_DIRECTORY = {local}/passwords.d\n\
             SEC_TOKEN_SYSTEM_DIRECTORY = {local}/tokens.d\n\
             {extra}\n",
            root = root.display(),
            local = local.display(),
            confd = confd.display(),
        );
        std::fs::write(&config, conf).unwrap();
        if let Some((uid, gid)) = owner {
            chown_tree(dir.path(), uid, gid);
        }
        let pool = Pool {
            release: release.clone(),
            dir,
            config,
            port,
            name: name.to_string(),
            owner,
        };
        let out = pool.run("condor_master", &[]);
        assert!(out.status.success(), "condor_master: {}", text(&out));
        pool.wait_for("the startd's slot", Duration::from_secs(60), |p| {
            let out = p.run("condor_status", &["-af", "Name"]);
            out.status.success() && !out.stdout.is_empty()
        });
        pool.wait_for("the schedd", Duration::from_secs(60), |p| {
            p.run("condor_q", &["-af", "ClusterId"]).status.success()
        });
        pool
    }

    /// Runs a tool of the release against this pool, as the pool's user.
    pub fn run(&self, tool: &str, args: &[&str]) -> Output {
        self.command(tool).args(args).output().unwrap()
    }

    pub fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(self.release.bin(tool));
        c.env("CONDOR_CONFIG", &self.config)
            .env(
                "PATH",
                format!(
                    "{}:{}:/usr/bin:/bin",
                    self.release.root.join("bin").display(),
                    self.release.root.join("sbin").display()
                ),
            )
            .current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            c.uid(uid)
                .gid(gid)
                .env("HOME", self.dir.path())
                .env("USER", POOL_USER);
        }
        c
    }

    /// Waits, asking the pool every 200 ms, until `ready`, or panics
    /// naming what never came.
    pub fn wait_for(&self, what: &str, deadline: Duration, mut ready: impl FnMut(&Pool) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            assert!(
                start.elapsed() < deadline,
                "the real pool {}: {what} did not come within {deadline:?}; logs in {}",
                self.name,
                self.dir.path().join("local/log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Writes a file the pool's user can read (a submit file, say).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        p
    }
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.run("condor_off", &["-master", "-fast"]);
        // The master takes its daemons with it; wait for it (by asking).
        let pid_gone = || {
            !self
                .run("condor_status", &["-master", "-af", "Name"])
                .status
                .success()
        };
        let start = Instant::now();
        while !pid_gone() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(200));
        }
        if std::thread::panicking() {
            let keep = super::repo().join("target/real-pool-logs").join(&self.name);
            let _ = std::fs::create_dir_all(&keep);
            if let Ok(entries) = std::fs::read_dir(self.dir.path().join("local/log")) {
                for e in entries.flatten() {
                    let _ = std::fs::copy(e.path(), keep.join(e.file_name()));
                }
            }
            eprintln!(
                "the real pool {}'s logs are in {}",
                self.name,
                keep.display()
            );
        }
    }
}

impl Pool {
    /// A directory of the tools the agent runs (`condor.bin_dir`), each a
    /// wrapper that points the real tool at this pool: the one adaptation
    /// the agent's side needs (the agent inherits `CONDOR_CONFIG` on a
    /// site's machine).
    pub fn tool_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("tools");
        std::fs::create_dir_all(&dir).unwrap();
        for tool in [
            "condor_q",
            "condor_status",
            "condor_drain",
            "condor_off",
            "condor_on",
            "condor_reconfig",
            "condor_token_create",
            "condor_history",
        ] {
            let p = dir.join(tool);
            // Run as root (CI), the tools run as the pool's user, as an
            // agent runs as a pool administrator's account: HTCondor reads
            // the signing key only as its owner ("Failed to read file
            // .../passwords.d/POOL securely" as root).
            let ids = self.owner.map_or(String::new(), |(u, g)| {
                format!("exec setpriv --reuid={u} --regid={g} --clear-groups ")
            });
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\nexport CONDOR_CONFIG='{}'\n{ids}'{}' \"$@\"\n",
                    self.config.display(),
                    self.release.bin(tool).display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }
}

/// What a pilot needs of its pool to start beside it on this machine
/// (cheap to clone, and sent to a launcher thread).
#[derive(Clone, Debug)]
pub struct PilotHost {
    pub release: Release,
    pub dir: PathBuf,
    pub port: u16,
    owner: Option<(u32, u32)>,
}

impl Pool {
    pub fn pilot_host(&self) -> PilotHost {
        PilotHost {
            release: self.release.clone(),
            dir: self.dir.path().to_path_buf(),
            port: self.port,
            owner: self.owner,
        }
    }

    pub fn start_pilot(&self, node_id: &str, rendered: &str, token: &str, hard_stop: u64) -> Pilot {
        self.pilot_host()
            .start_pilot(node_id, &format!("i-{node_id}"), rendered, token, hard_stop)
    }
}

/// What a pilot's rendered condor config is changed in to run beside the
/// pool on this machine, and nothing else: paths (its own local
/// directory, the release's binaries, the token directory), ports (no
/// shared port, the pool's collector port), names (one master and startd
/// per node on one host), no family session (a pilot and the pool on
/// one host are two machines; the real pilot master, started outside the
/// pool master's family, had its updates rejected with "not in the same
/// family of Condor daemon processes"), and what the pilot's runcmd
/// writes at boot (the instance id, the hard stop). The rendered text
/// comes first; these lines after it win.
pub fn pilot_adaptations(
    host: &PilotHost,
    dir: &Path,
    node_id: &str,
    instance: &str,
    hard_stop: u64,
) -> String {
    format!(
        "RELEASE_DIR = {root}\n\
         LOCAL_DIR = {dir}\n\
         LOCAL_CONFIG_DIR =\n\
         USE_SHARED_PORT = False\n\
         SEC_USE_FAMILY_SESSION = False\n\
         COLLECTOR_HOST = 127.0.0.1:{port}\n\
         SEC_TOKEN_DIRECTORY = {dir}/tokens.d\n\
         MASTER_NAME = {node_id}\n\
         STARTD_NAME = {node_id}\n\
         CloudInstanceID = \"{instance}\"\n\
         CLOUDBURST_HARD_STOP = {hard_stop}\n",
        root = host.release.root.display(),
        dir = dir.display(),
        port = host.port,
    )
}

/// A pilot: a real condor_master and condor_startd started from the
/// condor config the agent rendered for a node, joining the pool with the
/// node's own IDTOKEN. Dropped, it is turned off (`condor_off -master
/// -fast`: a powered-off VM's jobs die with it).
pub struct Pilot {
    pub node_id: String,
    pub dir: PathBuf,
    config: PathBuf,
    owner: Option<(u32, u32)>,
    release: Release,
    /// Keep its logs when dropped (set by a world whose test failed).
    pub keep_logs: bool,
}

impl PilotHost {
    pub fn start_pilot(
        &self,
        node_id: &str,
        instance: &str,
        rendered: &str,
        token: &str,
        hard_stop: u64,
    ) -> Pilot {
        let dir = self.dir.join(format!("pilot-{node_id}"));
        for d in ["log", "spool", "execute", "lock", "run", "tokens.d"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // Where cloud-init writes it (tokens.d, mode 0600, the pilot's own).
        let tok = dir.join("tokens.d/cloudburst-pilot.token");
        std::fs::write(&tok, format!("{}\n", token.trim())).unwrap();
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.join("tokens.d"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let config = dir.join("condor_config");
        let base = self.release.root.join("etc/condor_config");
        std::fs::write(
            &config,
            format!(
                "include : {}\n{rendered}\n# --- adaptations (tests/support/condor_pool.rs)\n{}",
                base.display(),
                pilot_adaptations(self, &dir, node_id, instance, hard_stop)
            ),
        )
        .unwrap();
        if let Some((uid, gid)) = self.owner {
            chown_tree(&dir, uid, gid);
        }
        let pilot = Pilot {
            node_id: node_id.to_string(),
            dir,
            config,
            owner: self.owner,
            release: self.release.clone(),
            keep_logs: false,
        };
        let out = pilot.command("condor_master").output().unwrap();
        assert!(out.status.success(), "pilot condor_master: {}", text(&out));
        pilot
    }
}

impl Pilot {
    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(self.release.bin(tool));
        c.env("CONDOR_CONFIG", &self.config).current_dir(&self.dir);
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        c
    }

    /// Whether its master still runs (it exits after the agent's
    /// `condor_off -master`, as the VM would then power off).
    pub fn running(&self) -> bool {
        let Ok(log) = std::fs::read_to_string(self.dir.join("log/MasterLog")) else {
            return true;
        };
        !log.contains("EXITING WITH STATUS")
    }
}

impl Drop for Pilot {
    fn drop(&mut self) {
        if self.running() {
            let _ = self
                .command("condor_off")
                .args(["-master", "-fast"])
                .output();
        }
        if self.keep_logs || std::thread::panicking() {
            let keep = super::repo()
                .join("target/real-pool-logs")
                .join(&self.node_id);
            let _ = std::fs::create_dir_all(&keep);
            if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
                for e in entries.flatten() {
                    let _ = std::fs::copy(e.path(), keep.join(e.file_name()));
                }
            }
            eprintln!(
                "the pilot {}'s logs are in {}",
                self.node_id,
                keep.display()
            );
        }
    }
}
