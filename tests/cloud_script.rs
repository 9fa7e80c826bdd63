//! The `script` provider end to end with the two example scripts in
//! packaging/providers/: local containers (util-linux `unshare`, root)
//! and the AWS CLI against a real EC2 API (moto).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cloudburst::cloud::script::ScriptProvider;
use cloudburst::cloud::{ErrorKind, InstanceState, LaunchRequest, Provider, TAG_NODE, TAG_POOL};
use cloudburst::config::Site;
use cloudburst::secret::Secret;
use support::moto::Moto;

const SECRET: &str = "eyJhbGciOiJFUzI1NiJ9.SCRIPT-PILOT-TOKEN";

fn script(name: &str) -> String {
    support::repo()
        .join("packaging/providers")
        .join(name)
        .display()
        .to_string()
}

/// A site whose three commands are `argv` (the same program for each).
fn site(argv: &[String], image: &str) -> Site {
    let list = serde_json::to_string(argv).unwrap();
    let text = format!(
        r#"
[pool]
name = "scripttest"
[[sites]]
name = "lab"
provider = "script"
image = "{image}"
[sites.script]
launch = {list}
list = {list}
terminate = {list}
timeout = "60s"
[[sites.flavors]]
name = "c7i.large"
cpus = 2
memory_mb = 4096
disk_gb = 20
price_per_hour = 0.0
"#
    );
    cloudburst::config::parse("scripttest.toml", &text)
        .unwrap()
        .sites
        .remove(0)
}

fn request(pool: &str, node: &str) -> LaunchRequest {
    LaunchRequest {
        site: "lab".into(),
        flavor: "c7i.large".into(),
        node_id: node.into(),
        token: format!("cb-{pool}-{node}"),
        spot: false,
        tags: vec![
            (TAG_POOL.into(), pool.into()),
            (TAG_NODE.into(), node.into()),
        ],
        user_data: Secret::new(format!("#cloud-config\n# {SECRET}\n")),
    }
}

fn can_unshare() -> bool {
    std::process::Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc", "--uts", "--ipc", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn init_alive(dir: &Path, id: &str) -> bool {
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(id).join("instance.json")).unwrap())
            .unwrap();
    // A killed init may linger as a zombie until its new parent reaps it.
    std::fs::read_to_string(format!("/proc/{}/stat", rec["pid"]))
        .map(|st| {
            !st.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Kills every container of a test, even when it fails half-way.
struct Containers<'a>(&'a Path);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for e in std::fs::read_dir(self.0).into_iter().flatten().flatten() {
            if let Ok(b) = std::fs::read(e.path().join("instance.json")) {
                let rec: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                if let Some(pid) = rec["pid"].as_i64() {
                    unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
                }
            }
        }
    }
}

#[test]
fn local_containers_launch_list_and_terminate() {
    if !can_unshare() {
        // A permission of the machine (root, user namespaces), not a
        // missing component: reported, never fatal.
        eprintln!("SKIPPED: unshare with PID namespaces is not permitted here (needs root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Containers(dir.path());
    let argv = vec![
        "env".to_string(),
        format!("CLOUDBURST_LOCAL_DIR={}", dir.path().display()),
        "CLOUDBURST_LOCAL_MAX=2".to_string(),
        script("local-container"),
    ];
    let mut p = ScriptProvider::new(&site(&argv, "none"), "pool-lc").unwrap();
    let a = p.launch(&request("pool-lc", "n1")).unwrap();
    assert_eq!(a.state, InstanceState::Running);
    // The same token again: the same container.
    assert_eq!(p.launch(&request("pool-lc", "n1")).unwrap().id, a.id);
    let b = p.launch(&request("pool-lc", "n2")).unwrap();

    // The user-data is beside it, readable by its owner only.
    let ud = dir.path().join(&a.id).join("user-data");
    assert_eq!(
        std::fs::metadata(&ud).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&ud).unwrap().contains(SECRET));
    assert!(init_alive(dir.path(), &a.id));

    // A third is over CLOUDBURST_LOCAL_MAX: no capacity.
    let err = p.launch(&request("pool-lc", "n3")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Capacity, "{}", err.message);
    assert!(!err.message.contains(SECRET));

    let inv = p.inventory().unwrap();
    let mut nodes: Vec<_> = inv
        .instances
        .iter()
        .map(|i| (i.node_id.clone().unwrap(), i.state))
        .collect();
    nodes.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        nodes,
        [
            ("n1".into(), InstanceState::Running),
            ("n2".into(), InstanceState::Running)
        ]
    );

    p.terminate(&a.id).unwrap();
    p.terminate(&a.id).unwrap();
    p.terminate("lc-unknown").unwrap();
    assert!(
        !init_alive(dir.path(), &a.id),
        "the container's processes are gone"
    );
    let inv = p.inventory().unwrap();
    assert_eq!(
        inv.instances.iter().find(|i| i.id == a.id).unwrap().state,
        InstanceState::Terminated
    );
    p.terminate(&b.id).unwrap();
}

#[test]
fn the_aws_cli_example_against_a_real_ec2_api() {
    let Some(moto) = Moto::shared() else { return };
    let aws = support::repo().join(".venv/bin/aws");
    if !aws.exists() {
        support::skip("the AWS CLI (PyPI awscli) in .venv");
        return;
    }
    let argv = vec![
        "env".to_string(),
        format!("AWS_CLI={}", aws.display()),
        format!(
            "CLOUDBURST_AWS_ARGS=--endpoint-url http://127.0.0.1:{}",
            moto.port
        ),
        "AWS_DEFAULT_REGION=us-east-1".to_string(),
        script("aws-cli"),
    ];
    let mut p = ScriptProvider::new(&site(&argv, "ami-0123456789abcdef0"), "pool-cli").unwrap();
    let a = p.launch(&request("pool-cli", "n1")).unwrap();
    assert!(a.id.starts_with("i-"), "{a:?}");
    assert_eq!(
        p.launch(&request("pool-cli", "n1")).unwrap().id,
        a.id,
        "the same token, the same instance"
    );
    let inv = p.inventory().unwrap();
    assert_eq!(inv.instances.len(), 1);
    let i = &inv.instances[0];
    assert_eq!(
        (i.flavor.as_str(), i.node_id.as_deref(), i.token.as_deref()),
        ("c7i.large", Some("n1"), Some("cb-pool-cli-n1"))
    );
    p.terminate(&a.id).unwrap();
    p.terminate(&a.id).unwrap();
    let inv = p.inventory().unwrap();
    assert!(matches!(
        inv.instances[0].state,
        InstanceState::Terminated | InstanceState::Stopping
    ));

    // A bad instance type is the CLI's InvalidParameterValue: exit 14.
    let mut bad = request("pool-cli", "n2");
    bad.flavor = "no.such-type".into();
    let err = p.launch(&bad).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid, "{}", err.message);
}

#[test]
fn a_failing_or_garbled_script_is_classified_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\ncat >/dev/null\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    let cases = [
        (
            write("throttled", "echo 'slow down' >&2; exit 10"),
            ErrorKind::Throttled,
        ),
        (
            write("quota", "echo 'quota' >&2; exit 12"),
            ErrorKind::Quota,
        ),
        (
            write("auth", "echo 'bad key' >&2; exit 13"),
            ErrorKind::Auth,
        ),
        (
            write("crash", "echo boom >&2; exit 1"),
            ErrorKind::Transient,
        ),
        (write("garbage", "echo 'not json'"), ErrorKind::Transient),
        (write("killed", "kill -9 $$"), ErrorKind::Transient),
    ];
    for (path, want) in cases {
        let mut p = ScriptProvider::new(&site(std::slice::from_ref(&path), "x"), "pool-x").unwrap();
        let err = p.inventory().unwrap_err();
        assert_eq!(err.kind, want, "{path}: {}", err.message);
        assert!(err.message.contains("script.list"), "{}", err.message);
        let err = p.launch(&request("pool-x", "n")).unwrap_err();
        assert!(!err.message.contains(SECRET), "{}", err.message);
    }
    let mut p =
        ScriptProvider::new(&site(&["/nonexistent/provider".into()], "x"), "pool-x").unwrap();
    assert_eq!(p.inventory().unwrap_err().kind, ErrorKind::Invalid);
}
