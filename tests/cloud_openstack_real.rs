//! The OpenStack provider against a real control plane (tests/openstack/
//! stack.py: Keystone, Placement, Nova API, conductor, scheduler and a
//! nova-compute with the fake virt driver, RabbitMQ), authenticated with
//! an application credential from `clouds.yaml`, the fault proxy in front
//! of Nova. Glance and Neutron are a stand-in (one image, no ports).
//! The tests share one project, so they take turns.

mod support;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cloudburst::cloud::openstack::{OpenstackOptions, OpenstackProvider};
use cloudburst::cloud::{ErrorKind, InstanceState, LaunchRequest, Provider, TAG_NODE, TAG_POOL};
use cloudburst::secret::Secret;
use support::faultproxy::Fault;
use support::openstack_stack::Stack;

fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The stack, with a `clouds.yaml` (application credential) under a
/// private `$HOME`, written once before any provider reads it.
fn stack() -> Option<&'static Stack> {
    static HOME: OnceLock<Option<&'static Stack>> = OnceLock::new();
    *HOME.get_or_init(|| {
        let s = Stack::shared()?;
        let home = s.dir.join("home");
        std::fs::create_dir_all(home.join(".config/openstack")).unwrap();
        std::fs::write(
            home.join(".config/openstack/clouds.yaml"),
            format!(
                "clouds:\n  stack:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {}\n      application_credential_secret: {}\n    region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n",
                s.str("keystone"),
                s.str("app_cred_id"),
                s.str("app_cred_secret")
            ),
        )
        .unwrap();
        std::env::set_var("HOME", &home);
        for (k, _) in std::env::vars() {
            if k.starts_with("OS_") {
                std::env::remove_var(k);
            }
        }
        eprintln!(
            "openstack stack: up in {:.1} s ({})",
            s.startup, s.info["timings"]
        );
        Some(s)
    })
}

/// A provider whose pool's servers are deleted when the test ends, even
/// by a failed assertion, so one failure does not cascade into the next
/// test's quota.
struct Guarded(OpenstackProvider);

impl std::ops::Deref for Guarded {
    type Target = OpenstackProvider;
    fn deref(&self) -> &OpenstackProvider {
        &self.0
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut OpenstackProvider {
        &mut self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(inv) = self.0.inventory() {
            for i in inv.instances {
                let _ = self.0.terminate(&i.id);
            }
        }
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end && self.0.inventory().map_or(true, |i| !i.instances.is_empty()) {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn provider(pool: &str, page_size: usize) -> Option<Guarded> {
    stack()?;
    let text = format!(
        r#"
[pool]
name = "{pool}"
[[sites]]
name = "stack"
provider = "openstack"
image = "cirros-pilot"
[sites.openstack]
cloud = "stack"
network = "none"
metadata = {{ project = "cms-burst" }}
[[sites.flavors]]
name = "m1.small"
cpus = 1
memory_mb = 2048
disk_gb = 20
price_per_hour = 0.05
"#
    );
    let site = cloudburst::config::parse("stack.toml", &text)
        .unwrap()
        .sites
        .remove(0);
    let opts = OpenstackOptions {
        page_size,
        call_timeout: Duration::from_secs(20),
    };
    Some(Guarded(OpenstackProvider::new(&site, pool, opts).unwrap()))
}

fn request(pool: &str, node: &str) -> LaunchRequest {
    LaunchRequest {
        site: "stack".into(),
        flavor: "m1.small".into(),
        node_id: node.into(),
        token: format!("cb-{pool}-{node}"),
        spot: false,
        tags: vec![
            (TAG_POOL.into(), pool.into()),
            (TAG_NODE.into(), node.into()),
        ],
        user_data: Secret::new("#cloud-config\nruncmd:\n- [true]\n".to_string()),
    }
}

/// Polls the inventory (bounded) until `f` holds for it.
fn until(
    p: &mut OpenstackProvider,
    what: &str,
    f: impl Fn(&[cloudburst::cloud::Instance]) -> bool,
) {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let inv = p.inventory().unwrap();
        if f(&inv.instances) {
            return;
        }
        assert!(
            Instant::now() < end,
            "waited 120 s for {what}: {:?}",
            inv.instances
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Deletes the pool's servers and waits until Nova has none left.
fn clean(p: &mut OpenstackProvider) {
    for i in p.inventory().unwrap().instances {
        p.terminate(&i.id).unwrap();
    }
    until(p, "every server to be deleted", |i| i.is_empty());
}

/// As the admin: sets the tenant's instance quota (os-quota-sets).
fn set_quota(s: &Stack, instances: i64) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys, urllib.request
ks, nova, pw, project, n = sys.argv[1:6]
def call(m, u, b=None, t=None):
    r = urllib.request.Request(u, method=m, data=json.dumps(b).encode() if b is not None else None)
    r.add_header("Content-Type", "application/json")
    if t: r.add_header("X-Auth-Token", t)
    return urllib.request.urlopen(r, timeout=60)
auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
        "domain": {"id": "default"}, "password": pw}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
t = call("POST", ks + "/auth/tokens", auth).headers["X-Subject-Token"]
call("PUT", nova + "/os-quota-sets/" + project, {"quota_set": {"instances": int(n)}}, t)
"#,
        )
        .args([
            s.str("keystone"),
            s.str("nova"),
            s.str("admin_password"),
            s.str("project_id"),
            instances.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn create_find_by_metadata_see_active_and_delete() {
    let _t = turn();
    let Some(mut p) = provider("real-basic", 200) else {
        return;
    };
    let i = p.launch(&request("real-basic", "n1")).unwrap();
    until(&mut p, "ACTIVE", |inv| {
        inv.iter()
            .any(|x| x.id == i.id && x.state == InstanceState::Running)
    });
    let inv = p.inventory().unwrap();
    let got = inv.instances.iter().find(|x| x.id == i.id).unwrap();
    assert_eq!(got.node_id.as_deref(), Some("n1"), "found by our metadata");
    assert_eq!(got.pool.as_deref(), Some("real-basic"));
    assert_eq!(got.token.as_deref(), Some("cb-real-basic-n1"));
    assert_eq!(
        got.flavor, "m1.small",
        "the flavour name was resolved and read back"
    );
    // Quota and usage from the real /limits.
    let q = p.quota().unwrap().unwrap();
    assert!(q.instances.is_some(), "{q:?}");
    // Another pool's servers are not ours.
    let mut other = provider("real-other", 200).unwrap();
    assert!(other.inventory().unwrap().instances.is_empty());
    // Delete; a second delete of the same server is not an error.
    p.terminate(&i.id).unwrap();
    until(&mut p, "the server to be deleted", |inv| {
        inv.iter().all(|x| x.id != i.id)
    });
    p.terminate(&i.id).unwrap();
}

#[test]
fn the_quota_refusal_is_classified_as_quota() {
    let _t = turn();
    let Some(mut p) = provider("real-quota", 200) else {
        return;
    };
    let s = stack().unwrap();
    set_quota(s, 2);
    let a = p.launch(&request("real-quota", "q1"));
    let b = p.launch(&request("real-quota", "q2"));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    // Nova counts a server against the quota once it is in its cell;
    // until then a third is accepted and fails later (its conductor's
    // recheck puts it in ERROR, which the boot timeout retires).
    until(&mut p, "both ACTIVE", |inv| {
        inv.iter()
            .filter(|x| x.state == InstanceState::Running)
            .count()
            == 2
    });
    let c = p.launch(&request("real-quota", "q3"));
    set_quota(s, 50);
    let err = c.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Quota, "{}", err.message);
    assert!(
        err.message.to_lowercase().contains("quota"),
        "{}",
        err.message
    );
    clean(&mut p);
}

#[test]
fn a_lost_reply_retried_with_the_same_token_makes_one_server() {
    let _t = turn();
    let Some(mut p) = provider("real-token", 200) else {
        return;
    };
    let s = stack().unwrap();
    s.proxy.inject("POST /v2.1/servers", Fault::LoseReply, 1);
    let before = s.proxy.count("POST /v2.1/servers");
    let err = p.launch(&request("real-token", "t1")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{}", err.message);
    // Nova did create it; the retry finds it by name instead of posting.
    let i = p.launch(&request("real-token", "t1")).unwrap();
    let inv = p.inventory().unwrap();
    assert_eq!(inv.instances.len(), 1, "{:?}", inv.instances);
    assert_eq!(inv.instances[0].id, i.id);
    assert_eq!(s.proxy.count("POST /v2.1/servers") - before, 1);
    clean(&mut p);
}

#[test]
fn listing_more_servers_than_a_page_follows_the_links() {
    let _t = turn();
    let Some(mut p) = provider("real-pages", 2) else {
        return;
    };
    let s = stack().unwrap();
    for n in 0..5 {
        p.launch(&request("real-pages", &format!("p{n}"))).unwrap();
    }
    // Listed in full once every server is in its cell: while some are
    // still being scheduled, a real Nova's pages may leave them out (the
    // lifecycle never reads one absence as a loss).
    until(&mut p, "five ACTIVE", |inv| {
        inv.iter()
            .filter(|x| x.state == InstanceState::Running)
            .count()
            == 5
    });
    let before = s.proxy.count("GET /v2.1/servers/detail");
    let inv = p.inventory().unwrap();
    let pages = s.proxy.count("GET /v2.1/servers/detail") - before;
    let mut nodes: Vec<String> = inv
        .instances
        .iter()
        .filter_map(|i| i.node_id.clone())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["p0", "p1", "p2", "p3", "p4"]);
    assert!(pages >= 3, "5 servers at 2 a page: {pages} GETs");
    clean(&mut p);
}

/// The end-to-end world with the real Nova as its cloud: idle cloud jobs
/// → servers of the right flavours → pilots join from the user-data Nova
/// stored → jobs run → idle → drain → delete → zero servers.
#[test]
fn a_whole_burst_cycle_on_the_real_nova() {
    use support::agentproc::Agent;
    use support::world::{completed, Job, World};
    let _t = turn();
    let Some(s) = stack() else {
        return;
    };
    let Some(world) = World::start_openstack("nova", s) else {
        return;
    };
    let cfg = world.agent_config("");
    let mut want = world.submit(&[
        Job::cloud(1, 1000, 3.0),
        Job::cloud(1, 1000, 3.0),
        Job::cloud(3, 6000, 3.0),
    ]);
    want.sort();
    let mut agent = Agent::start(&cfg);
    let long = Duration::from_secs(240);
    let r = world.wait_until("every job to complete on Nova's servers", long, |r| {
        let mut c = completed(r);
        c.sort();
        c == want
    });
    let types: Vec<&str> = r["types"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"m1.large"),
        "the 3-core job needs m1.large: {types:?}"
    );
    assert!(r["refused"].as_object().unwrap().is_empty(), "{r:#}");
    let r = world.wait_until("zero servers", long, |r| r["live"] == 0);
    assert_eq!(r["killed"].as_array().unwrap().len(), 0, "{r:#}");
    assert!(r["max_live"].as_u64().unwrap() <= 4, "{r:#}");
    eprintln!(
        "nova burst cycle: {} servers, most live at once {}, {} jobs done",
        r["seen"],
        r["max_live"],
        completed(&r).len()
    );
    agent.signal(libc::SIGTERM);
    agent.wait_for("stopping");
}
