//! A real OpenStack control plane on loopback (tests/openstack/stack.py:
//! RabbitMQ, PostgreSQL, Keystone, Placement, Nova API, conductor, scheduler and a
//! nova-compute with the fake virt driver, from `.venv-openstack`, which
//! tests/run.sh installs), with the fault proxy in front of Nova in the
//! catalog. One per test binary; it stops when the binary's end closes
//! its stdin.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::faultproxy::FaultProxy;

pub struct Stack {
    _child: Mutex<(Child, ChildStdin)>,
    pub info: Value,
    pub proxy: FaultProxy,
    pub dir: PathBuf,
    /// Seconds from start until the stack answered.
    pub startup: f64,
}

impl Stack {
    pub fn shared() -> Option<&'static Stack> {
        static STACK: OnceLock<Option<Stack>> = OnceLock::new();
        STACK.get_or_init(Stack::start).as_ref()
    }

    fn start() -> Option<Stack> {
        let venv = super::repo().join(".venv-openstack/bin");
        if !venv.join("nova-compute").exists()
            || !std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
            || !std::path::Path::new("/usr/lib/postgresql").exists()
        {
            super::skip("Nova and Placement in .venv-openstack, rabbitmq-server and postgresql");
            return None;
        }
        let nova_port = super::service_port();
        let proxy = FaultProxy::start(nova_port);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("openstack-stack")
            .join(std::process::id().to_string());
        let started = std::time::Instant::now();
        let mut child = Command::new("python3")
            .arg(super::repo().join("tests/openstack/stack.py"))
            .arg(&venv)
            .arg(&dir)
            .arg(nova_port.to_string())
            .arg(format!("{}/v2.1", proxy.url()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/openstack/stack.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let _ = child.wait();
            panic!("the OpenStack stack did not come up (its message is above)")
        });
        let stdin = child.stdin.take().unwrap();
        Some(Stack {
            _child: Mutex::new((child, stdin)),
            info,
            proxy,
            dir,
            startup: started.elapsed().as_secs_f64(),
        })
    }

    pub fn str(&self, key: &str) -> String {
        self.info[key].as_str().unwrap().to_string()
    }
}
