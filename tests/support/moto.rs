//! A real EC2 API endpoint: PyPI `moto[server]` from the repository's
//! `.venv` (tests/run.sh installs it), one server per test binary on a
//! free loopback port, stopped when the binary's tests are done.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    let p = super::repo().join(".venv/bin/moto_server");
    p.exists().then_some(p)
}

impl Moto {
    /// `None` (and the test skipped) without `moto_server`.
    pub fn start() -> Option<Moto> {
        let Some(bin) = moto_server() else {
            super::skip("moto_server (PyPI moto[server]) in .venv");
            return None;
        };
        let port = super::service_port();
        let mut child = spawn_tied(
            Command::new(bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        // Ready when werkzeug says it is running (read, not slept on).
        let stderr = child.stderr.take().unwrap();
        if let Err(seen) = cloudburst::cli::bench_reaction::wait_ready(stderr) {
            panic!("moto_server exited before it was ready:\n{seen}");
        }
        Some(Moto { port, child })
    }

    /// The test binary's shared server (AWS test credentials are set in
    /// the environment once, before any client reads them).
    pub fn shared() -> Option<&'static Moto> {
        static MOTO: OnceLock<Option<Moto>> = OnceLock::new();
        MOTO.get_or_init(|| {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::remove_var("AWS_PROFILE");
            Moto::start()
        })
        .as_ref()
    }
}

/// Spawns a server that dies with the test binary, even when the binary
/// ends without dropping it (a `static`): the child asks for SIGKILL when
/// its parent thread ends, and it is spawned from a thread that never does.
pub fn spawn_tied(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let cmd = std::mem::replace(cmd, Command::new("true"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = cmd;
        let _ = tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap().expect("spawn a test server")
}

/// An EC2 client of the server on `port` (its config loaded on a
/// runtime of its own; the client then works on any).
pub fn ec2_client(port: u16) -> aws_sdk_ec2::Client {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conf = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load(),
    );
    aws_sdk_ec2::Client::new(&conf)
}
