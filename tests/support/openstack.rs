//! A real Keystone v3 (PyPI `keystone` on sqlite, served by gunicorn on
//! loopback; tests/run.sh installs it into `.venv-openstack`) with the
//! Nova stand-in (tests/standin/nova_standin.py) registered in its
//! catalog behind a fault proxy. One cloud per test binary; its servers
//! die with the binary.
//!
//! Authentication is set up the three ways the provider supports: the
//! `OS_*` environment (password), and a `clouds.yaml` under `$HOME` with
//! a password cloud (`burst-password`) and an application-credential
//! cloud (`burst-appcred`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::faultproxy::FaultProxy;
use super::moto::spawn_tied;

pub struct Cloud {
    /// Closing it (the binary's exit) stops Keystone.
    _keystone: std::process::Child,
    _nova: std::process::Child,
    pub keystone_url: String,
    pub standin_port: u16,
    pub proxy: FaultProxy,
    pub dir: PathBuf,
    pub project_id: String,
    pub app_cred_secret: String,
    pub password: String,
}

fn venv() -> PathBuf {
    super::repo().join(".venv-openstack/bin")
}

/// A plain HTTP/1.1 request on loopback: (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Waits (bounded) until `port` answers `GET path` at all.
fn wait_http(what: &str, port: u16, path: &str, deadline: Duration, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if http(port, "GET", path, "").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(30).collect();
    panic!(
        "{what} did not answer on 127.0.0.1:{port} within {deadline:?}; its log ends:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new(venv().join("keystone-manage"))
        .arg("--config-file")
        .arg(dir.join("keystone.conf"))
        .args(args)
        .env("OS_KEYSTONE_CONFIG_FILES", dir.join("keystone.conf"))
        .output()
        .expect("run keystone-manage");
    assert!(
        out.status.success(),
        "keystone-manage {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cloud {
    pub fn shared() -> Option<&'static Cloud> {
        static CLOUD: OnceLock<Option<Cloud>> = OnceLock::new();
        CLOUD.get_or_init(Cloud::start).as_ref()
    }

    fn start() -> Option<Cloud> {
        if !venv().join("keystone-manage").exists() {
            super::skip("Keystone (PyPI keystone, gunicorn) in .venv-openstack");
            return None;
        }
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openstack");
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join(std::process::id().to_string());
        for d in ["fernet", "cred", "home/.config/openstack"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let ks_port = super::service_port();
        let d = dir.display();
        std::fs::write(
            dir.join("keystone.conf"),
            format!(
                "[DEFAULT]\nuse_stderr = true\n[database]\nconnection = sqlite:///{d}/keystone.db\n\
                 [token]\nprovider = fernet\n[fernet_tokens]\nkey_repository = {d}/fernet\n\
                 [fernet_receipts]\nkey_repository = {d}/fernet\n[credential]\nkey_repository = {d}/cred\n"
            ),
        )
        .unwrap();
        // gunicorn's argv would otherwise be read as keystone's options.
        std::fs::write(
            dir.join("ks_wsgi.py"),
            "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.server.wsgi import initialize_public_application\napplication = initialize_public_application()\n",
        )
        .unwrap();
        let uid = unsafe { libc::getuid() }.to_string();
        let gid = unsafe { libc::getgid() }.to_string();
        run(&dir, &["db_sync"]);
        run(
            &dir,
            &[
                "fernet_setup",
                "--keystone-user",
                &uid,
                "--keystone-group",
                &gid,
            ],
        );
        run(
            &dir,
            &[
                "credential_setup",
                "--keystone-user",
                &uid,
                "--keystone-group",
                &gid,
            ],
        );
        let url = format!("http://127.0.0.1:{ks_port}/v3");
        run(
            &dir,
            &[
                "bootstrap",
                "--bootstrap-password",
                "admin-pw-17",
                "--bootstrap-public-url",
                &url,
                "--bootstrap-region-id",
                "RegionOne",
            ],
        );
        let ks_log = dir.join("keystone.log");
        // gunicorn's workers outlive a killed master, so it is stopped
        // gracefully instead: the shell waits for its stdin (held by this
        // binary) to close, which happens however the binary ends.
        let keystone = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<&0; "$0" "$@" </dev/null & pid=$!; cat <&3 >/dev/null; kill -TERM $pid; wait $pid"#)
            .arg(venv().join("gunicorn"))
            .args(["-b", &format!("127.0.0.1:{ks_port}"), "-w", "2", "ks_wsgi:application"])
            .current_dir(&dir)
            .env("OS_KEYSTONE_CONFIG_FILES", dir.join("keystone.conf"))
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&ks_log).unwrap())
            .stderr(std::fs::File::create(dir.join("keystone.err")).unwrap())
            .spawn()
            .expect("start gunicorn");
        wait_http(
            "Keystone (gunicorn)",
            ks_port,
            "/v3",
            Duration::from_secs(90),
            &dir.join("keystone.err"),
        );

        let nova_port = super::service_port();
        let nova_log = dir.join("nova.log");
        let nova = spawn_tied(
            Command::new("python3")
                .arg(super::repo().join("tests/standin/nova_standin.py"))
                .arg(nova_port.to_string())
                .arg(format!("http://127.0.0.1:{ks_port}"))
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&nova_log).unwrap())
                .stderr(std::fs::File::create(dir.join("nova.err")).unwrap()),
        );
        wait_http(
            "the Nova stand-in",
            nova_port,
            "/compute",
            Duration::from_secs(30),
            &dir.join("nova.err"),
        );
        let proxy = FaultProxy::start(nova_port);

        let out = Command::new("python3")
            .arg(super::repo().join("tests/standin/keystone_setup.py"))
            .arg(format!("http://127.0.0.1:{ks_port}"))
            .arg("admin-pw-17")
            .arg(proxy.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keystone_setup.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let s = |k: &str| ids[k].as_str().unwrap().to_string();

        let clouds = format!(
            "clouds:\n  burst-password:\n    auth:\n      auth_url: {url}\n      username: {user}\n      password: {pw}\n      project_name: burst\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n  burst-appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {url}\n      application_credential_id: {acid}\n      application_credential_secret: {acs}\n    region_name: RegionOne\n  burst-wrong:\n    auth:\n      auth_url: {url}\n      username: {user}\n      password: not-the-password\n      project_name: burst\n      user_domain_name: Default\n      project_domain_name: Default\n",
            user = s("username"),
            pw = s("password"),
            acid = s("app_cred_id"),
            acs = s("app_cred_secret"),
        );
        let cfile = dir.join("home/.config/openstack/clouds.yaml");
        std::fs::write(&cfile, clouds).unwrap();
        // The OpenStack client configuration, as an admin's shell has it.
        std::env::set_var("HOME", dir.join("home"));
        std::env::remove_var("OS_CLOUD");
        std::env::set_var("OS_AUTH_URL", &url);
        std::env::set_var("OS_USERNAME", s("username"));
        std::env::set_var("OS_PASSWORD", s("password"));
        std::env::set_var("OS_PROJECT_NAME", "burst");
        std::env::set_var("OS_USER_DOMAIN_NAME", "Default");
        std::env::set_var("OS_PROJECT_DOMAIN_NAME", "Default");
        std::env::set_var("OS_REGION_NAME", "RegionOne");
        Some(Cloud {
            _keystone: keystone,
            _nova: nova,
            keystone_url: url,
            standin_port: nova_port,
            proxy,
            dir,
            project_id: s("project_id"),
            app_cred_secret: s("app_cred_secret"),
            password: s("password"),
        })
    }

    /// Sets the project's instance and core quota in the stand-in.
    pub fn set_quota(&self, instances: u32, cores: u32) {
        let (st, _) = http(
            self.standin_port,
            "POST",
            "/_standin/quota",
            &format!("{{\"instances\": {instances}, \"cores\": {cores}}}"),
        )
        .unwrap();
        assert_eq!(st, 200);
    }

    /// Every server the stand-in holds, user-data included.
    pub fn servers(&self) -> Vec<serde_json::Value> {
        let (_, body) = http(self.standin_port, "GET", "/_standin/servers", "").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["servers"].as_array().unwrap().clone()
    }
}
