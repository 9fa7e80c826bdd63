//! The OpenStack provider against a real Keystone v3 and the Nova
//! stand-in registered in its catalog (tests/support/openstack.rs). The
//! tests share one project, so they take turns (`turn()`), and each
//! removes its servers before it ends.

mod support;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use cloudburst::cloud::openstack::{OpenstackOptions, OpenstackProvider};
use cloudburst::cloud::{ErrorKind, InstanceState, LaunchRequest, Provider, TAG_NODE, TAG_POOL};
use cloudburst::config::Site;
use cloudburst::secret::Secret;
use support::faultproxy::Fault;
use support::openstack::Cloud;

const SECRET: &str = "eyJhbGciOiJFUzI1NiJ9.OPENSTACK-PILOT-TOKEN";

fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn site(cloud: Option<&str>, image: &str, extra: &str) -> Site {
    let cloud = cloud
        .map(|c| format!("cloud = \"{c}\"\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
[pool]
name = "ostest"
[[sites]]
name = "jetstream2"
provider = "openstack"
image = "{image}"
[sites.openstack]
{cloud}network = "auto_allocated_network"
security_groups = ["default", "condor"]
metadata = {{ project = "cms-burst" }}
{extra}
[[sites.flavors]]
name = "m3.small"
cpus = 2
memory_mb = 6144
disk_gb = 20
price_per_hour = 0.10
"#
    );
    cloudburst::config::parse("ostest.toml", &text)
        .unwrap()
        .sites
        .remove(0)
}

fn provider(
    cloud: Option<&str>,
    pool: &str,
    page_size: usize,
) -> Option<(OpenstackProvider, &'static Cloud)> {
    let c = Cloud::shared()?;
    // A generous deadline: a local server on a loaded machine is slow,
    // not gone. The hang case has a provider of its own with a short one.
    let opts = OpenstackOptions {
        page_size,
        call_timeout: Duration::from_secs(60),
    };
    let p = OpenstackProvider::new(&site(cloud, "Featured-AlmaLinux9", ""), pool, opts).unwrap();
    Some((p, c))
}

fn request(pool: &str, node: &str) -> LaunchRequest {
    LaunchRequest {
        site: "jetstream2".into(),
        flavor: "m3.small".into(),
        node_id: node.into(),
        token: format!("cb-{pool}-{node}"),
        spot: false,
        tags: vec![(TAG_POOL.into(), pool.into()), (TAG_NODE.into(), node.into())],
        user_data: Secret::new(format!("#cloud-config\nwrite_files:\n- path: /etc/condor/tokens.d/pilot\n  content: {SECRET}\n")),
    }
}

/// Terminates every server of `pool` (each test cleans up after itself).
fn clean(p: &mut OpenstackProvider) {
    for i in p.inventory().unwrap().instances {
        p.terminate(&i.id).unwrap();
    }
}

#[test]
fn authenticates_with_the_environment_a_password_and_an_application_credential() {
    let _t = turn();
    let Some(_) = Cloud::shared() else { return };
    for cloud in [None, Some("burst-password"), Some("burst-appcred")] {
        let (mut p, c) = provider(cloud, "pool-auth", 200).unwrap();
        let q = p.quota().unwrap().unwrap();
        assert!(q.instances.is_some(), "{cloud:?}: {q:?}");
        // Authenticated for the right project: our servers are its servers.
        let i = p.launch(&request("pool-auth", "a1")).unwrap();
        let s = c
            .servers()
            .into_iter()
            .find(|s| s["id"] == i.id.as_str())
            .unwrap();
        assert_eq!(s["project_id"], c.project_id.as_str(), "{cloud:?}");
        clean(&mut p);
    }
    // A wrong password is an auth error, naming no secret.
    let c = Cloud::shared().unwrap();
    let err = OpenstackProvider::new(
        &site(Some("burst-wrong"), "Featured-AlmaLinux9", ""),
        "x",
        OpenstackOptions::default(),
    )
    .and_then(|mut p| p.quota().map(|_| ()))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth, "{}", err.message);
    assert!(!err.message.contains(&c.password) && !err.message.contains(&c.app_cred_secret));
    // An unknown cloud name is a configuration error.
    let err = OpenstackProvider::new(
        &site(Some("no-such-cloud"), "x", ""),
        "x",
        OpenstackOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind, ErrorKind::Invalid, "{}", err.message);
}

#[test]
fn launch_list_and_delete() {
    let _t = turn();
    let Some((mut p, c)) = provider(Some("burst-appcred"), "pool-basic", 200) else {
        return;
    };
    let i = p.launch(&request("pool-basic", "n1")).unwrap();
    assert_eq!(i.state, InstanceState::Pending);

    let inv = p.inventory().unwrap();
    assert_eq!(inv.instances.len(), 1);
    let got = &inv.instances[0];
    assert_eq!(got.id, i.id);
    assert_eq!(got.flavor, "m3.small");
    assert_eq!(got.node_id.as_deref(), Some("n1"));
    assert_eq!(got.token.as_deref(), Some("cb-pool-basic-n1"));
    assert!(got.launched_at > 1_700_000_000);
    // BUILD when first seen, ACTIVE after.
    assert_eq!(got.state, InstanceState::Pending);
    assert_eq!(
        p.inventory().unwrap().instances[0].state,
        InstanceState::Running
    );

    // What Nova got: user-data, metadata, security groups, network, image.
    let s = c
        .servers()
        .into_iter()
        .find(|s| s["id"] == i.id.as_str())
        .unwrap();
    let ud = base64::engine::general_purpose::STANDARD
        .decode(s["user_data"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8(ud).unwrap().contains(SECRET));
    assert_eq!(s["metadata"][TAG_POOL], "pool-basic");
    assert_eq!(s["metadata"]["project"], "cms-burst");
    assert_eq!(
        s["security_groups"],
        serde_json::json!(["default", "condor"])
    );
    assert_eq!(
        s["image"], "5f2f6a1d-8b0e-4a3c-9a59-1f0c5a1e9c01",
        "the image name was resolved"
    );
    assert_eq!(
        s["flavor"]["id"], "2",
        "the flavour name was resolved to its id"
    );

    p.terminate(&i.id).unwrap();
    p.terminate(&i.id).unwrap(); // already gone: fine
    assert!(p.inventory().unwrap().instances.is_empty());
}

#[test]
fn listing_follows_next_links_and_counts_foreign_servers() {
    let _t = turn();
    let Some((mut p, c)) = provider(None, "pool-pages", 3) else {
        return;
    };
    let (mut other, _) = provider(None, "pool-other", 3).unwrap();
    for n in 0..7 {
        p.launch(&request("pool-pages", &format!("p{n}"))).unwrap();
    }
    other.launch(&request("pool-other", "o1")).unwrap();
    let before = c.proxy.count("GET /compute/v2.1/servers/detail");
    let inv = p.inventory().unwrap();
    let pages = c.proxy.count("GET /compute/v2.1/servers/detail") - before;
    assert_eq!(inv.instances.len(), 7);
    assert_eq!(pages, 3, "8 servers at 3 a page: {:?}", c.proxy.log());
    assert_eq!(
        (inv.foreign, inv.foreign_cores),
        (1, 2),
        "the other pool's server uses the quota"
    );
    clean(&mut p);
    clean(&mut other);
}

#[test]
fn the_quota_is_read_and_a_refusal_is_classified() {
    let _t = turn();
    let Some((mut p, c)) = provider(None, "pool-quota", 200) else {
        return;
    };
    c.set_quota(2, 100);
    p.launch(&request("pool-quota", "q1")).unwrap();
    p.launch(&request("pool-quota", "q2")).unwrap();
    let err = p.launch(&request("pool-quota", "q3")).unwrap_err();
    let q = p.quota().unwrap().unwrap();
    c.set_quota(10, 20);
    assert_eq!(err.kind, ErrorKind::Quota, "{}", err.message);
    assert!(
        err.message.contains("Quota exceeded for instances"),
        "{}",
        err.message
    );
    assert_eq!(
        (q.instances, q.used_instances, q.used_cores),
        (Some(2), 2, 4)
    );
    clean(&mut p);
}

#[test]
fn a_retry_after_a_lost_reply_creates_no_second_server() {
    let _t = turn();
    let Some((mut p, c)) = provider(None, "pool-idem", 200) else {
        return;
    };
    let req = request("pool-idem", "n1");
    let posts = || c.proxy.count("POST /compute/v2.1/servers");
    let before = posts();
    c.proxy
        .inject("POST /compute/v2.1/servers", Fault::LoseReply, 1);
    assert_eq!(p.launch(&req).unwrap_err().kind, ErrorKind::Transient);
    let i = p.launch(&req).unwrap();
    assert_eq!(posts() - before, 1, "found by name, not created again");
    let named: Vec<_> = c
        .servers()
        .into_iter()
        .filter(|s| s["name"] == req.token.as_str())
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0]["id"], i.id.as_str());
    clean(&mut p);
}

#[test]
fn each_failure_is_classified() {
    let _t = turn();
    let Some((mut p, c)) = provider(None, "pool-faults", 200) else {
        return;
    };
    let nova = |status: u16, key: &str, msg: &str| {
        Fault::Reply(
            status,
            "application/json",
            format!("{{\"{key}\": {{\"code\": {status}, \"message\": \"{msg}\"}}}}"),
        )
    };
    let cases = vec![
        (
            "rate limit",
            nova(429, "overLimit", "This request was rate-limited."),
            ErrorKind::Throttled,
        ),
        (
            "quota 403",
            nova(
                403,
                "forbidden",
                "Quota exceeded for cores: Requested 2, but already used 20 of 20 cores",
            ),
            ErrorKind::Quota,
        ),
        (
            "quota 413",
            nova(413, "overLimit", "Quota exceeded for instances"),
            ErrorKind::Quota,
        ),
        (
            "policy",
            nova(
                403,
                "forbidden",
                "Policy doesn't allow os_compute_api:servers:create to be performed.",
            ),
            ErrorKind::Auth,
        ),
        (
            "bad request",
            nova(400, "badRequest", "Invalid flavorRef provided."),
            ErrorKind::Invalid,
        ),
        (
            "conflict",
            nova(409, "conflictingRequest", "Cannot create"),
            ErrorKind::Invalid,
        ),
        (
            "internal",
            nova(500, "computeFault", "Unexpected API Error."),
            ErrorKind::Transient,
        ),
        (
            "unavailable",
            Fault::Reply(503, "text/html", "<html>Service Unavailable</html>".into()),
            ErrorKind::Transient,
        ),
        (
            "bad gateway",
            Fault::Reply(502, "text/html", "<html>502</html>".into()),
            ErrorKind::Transient,
        ),
        ("dropped", Fault::Drop, ErrorKind::Transient),
    ];
    for (n, (name, fault, want)) in cases.into_iter().enumerate() {
        c.proxy.inject("POST /compute/v2.1/servers", fault, 1);
        let err = p
            .launch(&request("pool-faults", &format!("f{n}")))
            .unwrap_err();
        assert_eq!(err.kind, want, "{name}: {}", err.message);
        assert!(!err.message.contains(SECRET), "{name}: {}", err.message);
    }
    let mut short = OpenstackProvider::new(
        &site(None, "Featured-AlmaLinux9", ""),
        "pool-faults",
        OpenstackOptions {
            page_size: 200,
            call_timeout: Duration::from_secs(5),
        },
    )
    .unwrap();
    c.proxy.inject(
        "POST /compute/v2.1/servers",
        Fault::Hang(Duration::from_secs(60)),
        1,
    );
    let err = short.launch(&request("pool-faults", "hang")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "hang: {}", err.message);
    c.proxy.inject(
        "GET /compute/v2.1/servers/detail",
        nova(429, "overLimit", "slow down"),
        1,
    );
    assert_eq!(p.inventory().unwrap_err().kind, ErrorKind::Throttled);
    c.proxy.inject(
        "DELETE /compute/v2.1/servers",
        nova(500, "computeFault", "Unexpected API Error."),
        1,
    );
    assert_eq!(
        p.terminate("764e369e-a874-4401-b7ce-43e4760888da")
            .unwrap_err()
            .kind,
        ErrorKind::Transient
    );
    clean(&mut p);

    // Names that do not resolve are the admin's to fix.
    let c2 = Cloud::shared().unwrap();
    for (image, says) in [
        ("No-Such-Image", "no image named"),
        ("duplicate", "2 images are named"),
    ] {
        let mut q = OpenstackProvider::new(
            &site(None, image, ""),
            "pool-faults",
            OpenstackOptions::default(),
        )
        .unwrap();
        let err = q.launch(&request("pool-faults", "img")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains(says), "{}", err.message);
    }
    assert!(c2
        .servers()
        .iter()
        .all(|s| s["metadata"][TAG_POOL] != "pool-faults"));
}
