//! The EC2 provider against a real EC2 API (moto_server on loopback), with
//! the failures moto never produces injected by a proxy in front of it.
//! Each test uses its own pool name, so they share one server.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use cloudburst::cloud::clouds::Clouds;
use cloudburst::cloud::ec2::{Ec2Options, Ec2Provider};
use cloudburst::cloud::retry::Backoff;
use cloudburst::cloud::{ErrorKind, InstanceState, LaunchRequest, Provider, TAG_NODE, TAG_POOL};
use cloudburst::config::Site;
use cloudburst::cycle::CloudPort;
use cloudburst::observed::Observed;
use cloudburst::secret::Secret;
use support::faultproxy::{Fault, FaultProxy};
use support::moto::Moto;

const SECRET: &str = "eyJhbGciOiJFUzI1NiJ9.PILOT-TOKEN-MUST-NOT-LEAK";

fn site(endpoint: &str) -> Site {
    let text = format!(
        r#"
[pool]
name = "ec2test"
[[sites]]
name = "aws"
provider = "ec2"
image = "ami-0123456789abcdef0"
[sites.ec2]
region = "us-east-1"
endpoint_url = "{endpoint}"
subnet_id = "subnet-not-checked"
tags = {{ Project = "cms-burst" }}
[[sites.flavors]]
name = "c7i.large"
cpus = 2
memory_mb = 4096
disk_gb = 50
price_per_hour = 0.089
"#
    );
    let mut cfg = cloudburst::config::parse("ec2test.toml", &text).unwrap();
    let mut s = cfg.sites.remove(0);
    // moto checks subnets exist; the default VPC's are not known here.
    s.ec2.as_mut().unwrap().subnet_id = None;
    s
}

/// A provider for `pool`, through a fault proxy in front of moto. Its
/// calls get a generous deadline: a local server on a loaded machine is
/// slow, not gone (a 2 s deadline once failed CI under another build).
fn provider(pool: &str, page_size: i32) -> Option<(Ec2Provider, FaultProxy)> {
    let moto = Moto::shared()?;
    let proxy = FaultProxy::start(moto.port);
    let opts = Ec2Options {
        page_size,
        call_timeout: GENEROUS,
    };
    let p = Ec2Provider::new(&site(&proxy.url()), pool, opts).unwrap();
    Some((p, proxy))
}

const GENEROUS: Duration = Duration::from_secs(60);

fn request(pool: &str, node: &str, spot: bool) -> LaunchRequest {
    LaunchRequest {
        site: "aws".into(),
        flavor: "c7i.large".into(),
        node_id: node.into(),
        token: format!("{pool}-{node}"),
        spot,
        tags: vec![
            (TAG_POOL.into(), pool.into()),
            (TAG_NODE.into(), node.into()),
        ],
        user_data: Secret::new(format!("#cloud-config\nwrite_files:\n- path: /etc/condor/tokens.d/pilot\n  content: {SECRET}\n")),
    }
}

/// The SDK, straight at moto, for what the provider does not read back.
fn sdk() -> aws_sdk_ec2::Client {
    support::moto::ec2_client(Moto::shared().unwrap().port)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn launch_list_and_terminate() {
    let Some((mut p, _proxy)) = provider("pool-basic", 500) else {
        return;
    };
    let a = p.launch(&request("pool-basic", "n1", false)).unwrap();
    let b = p.launch(&request("pool-basic", "n2", false)).unwrap();
    assert!(a.id.starts_with("i-") && a.id != b.id);
    assert_eq!(a.flavor, "c7i.large");

    let inv = p.inventory().unwrap();
    let mut nodes: Vec<_> = inv
        .instances
        .iter()
        .map(|i| i.node_id.clone().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"]);
    for i in &inv.instances {
        assert_eq!(i.pool.as_deref(), Some("pool-basic"));
        assert_eq!(i.flavor, "c7i.large");
        assert_eq!(
            i.token.as_deref(),
            Some(format!("pool-basic-{}", i.node_id.as_ref().unwrap()).as_str())
        );
        assert!(matches!(
            i.state,
            InstanceState::Running | InstanceState::Pending
        ));
        assert!(
            i.launched_at > 1_600_000_000,
            "launch time read: {}",
            i.launched_at
        );
    }

    // The user-data reached EC2 intact (the pilot reads it back).
    let attr = block_on(
        sdk()
            .describe_instance_attribute()
            .instance_id(&a.id)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send(),
    )
    .unwrap();
    let b64 = attr.user_data().and_then(|v| v.value()).unwrap();
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert!(String::from_utf8(text).unwrap().contains(SECRET));

    p.terminate(&a.id).unwrap();
    // Terminating again (a retry after a lost reply) is not an error.
    p.terminate(&a.id).unwrap();
    let inv = p.inventory().unwrap();
    let gone = inv.instances.iter().find(|i| i.id == a.id).unwrap();
    assert!(
        matches!(
            gone.state,
            InstanceState::Terminated | InstanceState::Stopping
        ),
        "{:?}",
        gone.state
    );
    assert!(inv.instances.iter().any(|i| i.id == b.id && i.is_alive()));
}

#[test]
fn the_same_client_token_yields_one_instance() {
    let Some((mut p, proxy)) = provider("pool-idem", 500) else {
        return;
    };
    let req = request("pool-idem", "n1", false);
    // The first RunInstances reaches EC2 but its reply is lost: the call
    // fails as transient and the retry (same token) gets the same instance.
    proxy.inject("RunInstances", Fault::LoseReply, 1);
    let err = p.launch(&req).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    let again = p.launch(&req).unwrap();
    let inv = p.inventory().unwrap();
    assert_eq!(inv.instances.len(), 1, "{:?}", inv.instances);
    assert_eq!(inv.instances[0].id, again.id);
    assert_eq!(again.token.as_deref(), Some(req.token.as_str()));
    // moto 5 does not enforce ClientToken (EC2 does): the provider found
    // the first call's instance by its node tag instead of launching again.
    assert_eq!(proxy.count("RunInstances"), 1, "{:?}", proxy.log());

    // A retry after a lost request (nothing launched) launches once.
    let req2 = request("pool-idem", "n2", false);
    proxy.inject("RunInstances", Fault::Drop, 1);
    assert_eq!(p.launch(&req2).unwrap_err().kind, ErrorKind::Transient);
    p.launch(&req2).unwrap();
    assert_eq!(p.inventory().unwrap().instances.len(), 2);
    assert_eq!(proxy.count("RunInstances"), 3);
}

#[test]
fn volumes_carry_our_tags() {
    let Some((mut p, _proxy)) = provider("pool-vol", 500) else {
        return;
    };
    let i = p.launch(&request("pool-vol", "v1", false)).unwrap();
    let vols = block_on(
        sdk()
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .values(&i.id)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    let vols = vols.volumes();
    assert!(!vols.is_empty(), "the instance has a root volume");
    for v in vols {
        let tags: BTreeMap<_, _> = v
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(tags.get(TAG_POOL), Some(&"pool-vol"), "{tags:?}");
        assert_eq!(tags.get(TAG_NODE), Some(&"v1"));
        assert_eq!(
            tags.get("Project"),
            Some(&"cms-burst"),
            "the site's own tags too"
        );
    }
}

#[test]
fn inventory_follows_pagination() {
    let Some((mut p, proxy)) = provider("pool-pages", 5) else {
        return;
    };
    for n in 0..12 {
        p.launch(&request("pool-pages", &format!("p{n}"), false))
            .unwrap();
    }
    let inv = p.inventory().unwrap();
    assert_eq!(inv.instances.len(), 12);
    assert!(
        proxy.count("DescribeInstances") >= 3,
        "12 instances at 5 a page take 3 pages: {:?}",
        proxy.log()
    );
}

#[test]
fn spot_requests_are_marked_spot() {
    let Some((mut p, _proxy)) = provider("pool-spot", 500) else {
        return;
    };
    let i = p.launch(&request("pool-spot", "s1", true)).unwrap();
    assert!(i.spot);
    let inv = p.inventory().unwrap();
    assert!(
        inv.instances[0].spot,
        "EC2 lists it as a spot instance: {:?}",
        inv.instances[0]
    );
}

#[test]
fn each_failure_is_classified() {
    let Some((mut p, proxy)) = provider("pool-faults", 500) else {
        return;
    };
    let cases: Vec<(&str, Fault, ErrorKind)> = vec![
        (
            "throttled",
            Fault::ec2(503, "RequestLimitExceeded"),
            ErrorKind::Throttled,
        ),
        (
            "capacity",
            Fault::ec2(500, "InsufficientInstanceCapacity"),
            ErrorKind::Capacity,
        ),
        (
            "spot price",
            Fault::ec2(400, "SpotMaxPriceTooLow"),
            ErrorKind::Capacity,
        ),
        (
            "instance quota",
            Fault::ec2(400, "InstanceLimitExceeded"),
            ErrorKind::Quota,
        ),
        (
            "vcpu quota",
            Fault::ec2(400, "VcpuLimitExceeded"),
            ErrorKind::Quota,
        ),
        ("auth", Fault::ec2(401, "AuthFailure"), ErrorKind::Auth),
        (
            "unauthorized",
            Fault::ec2(403, "UnauthorizedOperation"),
            ErrorKind::Auth,
        ),
        (
            "invalid",
            Fault::ec2(400, "InvalidParameterValue"),
            ErrorKind::Invalid,
        ),
        (
            "bad ami",
            Fault::ec2(400, "InvalidAMIID.NotFound"),
            ErrorKind::Invalid,
        ),
        (
            "internal",
            Fault::ec2(500, "InternalError"),
            ErrorKind::Transient,
        ),
        (
            "unavailable",
            Fault::ec2(503, "Unavailable"),
            ErrorKind::Transient,
        ),
        (
            "bad gateway",
            Fault::Reply(502, "text/html", "<html>502 Bad Gateway</html>".into()),
            ErrorKind::Transient,
        ),
        (
            "html 503",
            Fault::Reply(503, "text/html", "<html>Service Unavailable</html>".into()),
            ErrorKind::Throttled,
        ),
        ("dropped", Fault::Drop, ErrorKind::Transient),
        ("lost reply", Fault::LoseReply, ErrorKind::Transient),
    ];
    let mut n = 0;
    for (name, fault, want) in cases {
        n += 1;
        proxy.inject("RunInstances", fault, 1);
        let err = p
            .launch(&request("pool-faults", &format!("f{n}"), false))
            .unwrap_err();
        assert_eq!(err.kind, want, "{name}: {}", err.message);
        assert!(
            !err.message.contains(SECRET),
            "{name}: the user-data leaked into {}",
            err.message
        );
        assert!(
            err.message.starts_with("ec2 RunInstances"),
            "{name}: {}",
            err.message
        );
    }
    // A hang outlives the call's deadline (a provider with a short one;
    // the proxy stays silent far longer, so load cannot make it answer).
    let mut short = Ec2Provider::new(
        &site(&proxy.url()),
        "pool-faults",
        Ec2Options {
            page_size: 500,
            call_timeout: Duration::from_secs(2),
        },
    )
    .unwrap();
    proxy.inject("RunInstances", Fault::Hang(Duration::from_secs(60)), 1);
    let err = short
        .launch(&request("pool-faults", "hang", false))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "hang: {}", err.message);
    // A slow reply within the deadline is just slow.
    proxy.inject("RunInstances", Fault::Slow(Duration::from_millis(300)), 1);
    p.launch(&request("pool-faults", "slow", false)).unwrap();
    // Inventory and terminate are classified the same way.
    proxy.inject(
        "DescribeInstances",
        Fault::ec2(503, "RequestLimitExceeded"),
        1,
    );
    assert_eq!(p.inventory().unwrap_err().kind, ErrorKind::Throttled);
    proxy.inject("TerminateInstances", Fault::ec2(500, "InternalError"), 1);
    assert_eq!(
        p.terminate("i-0123456789abcdef0").unwrap_err().kind,
        ErrorKind::Transient
    );
}

#[test]
fn retries_ride_out_throttling_and_lost_replies_without_duplicates() {
    let Some((p, proxy)) = provider("pool-retry", 500) else {
        return;
    };
    let mut providers: BTreeMap<String, Box<dyn Provider>> = BTreeMap::new();
    providers.insert("aws".into(), Box::new(p));
    let slept = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let s = slept.clone();
    let mut clouds =
        Clouds::new(providers, Backoff::default(), 7).with_sleep(move |d| s.borrow_mut().push(d));

    proxy.inject("RunInstances", Fault::ec2(503, "RequestLimitExceeded"), 2);
    proxy.inject("RunInstances", Fault::LoseReply, 1);
    let inst = clouds.launch(&request("pool-retry", "r1", false)).unwrap();
    assert_eq!(
        proxy.count("RunInstances"),
        3,
        "two throttled, one lost: {:?}",
        proxy.log()
    );
    assert_eq!(
        proxy.count("DescribeInstances"),
        1,
        "the lost one found by its tags"
    );
    assert_eq!(slept.borrow().len(), 3, "one back-off before each retry");

    proxy.inject("DescribeInstances", Fault::Drop, 1);
    let Observed::Known(inv) = clouds.inventory("aws") else {
        panic!("inventory after a retry")
    };
    assert_eq!(
        inv.instances.len(),
        1,
        "the lost reply made no second instance"
    );
    assert_eq!(inv.instances[0].id, inst.id);

    // A final failure is not retried.
    proxy.inject(
        "RunInstances",
        Fault::ec2(500, "InsufficientInstanceCapacity"),
        1,
    );
    let before = proxy.count("RunInstances");
    let err = clouds
        .launch(&request("pool-retry", "r2", false))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Capacity);
    assert_eq!(proxy.count("RunInstances"), before + 1);

    // An inventory that keeps failing is Unknown, never empty.
    proxy.inject("DescribeInstances", Fault::ec2(500, "InternalError"), 1000);
    assert!(matches!(clouds.inventory("aws"), Observed::Unknown(_)));
}

#[test]
fn quota_reads_the_account_limit() {
    let Some((mut p, _proxy)) = provider("pool-quota", 500) else {
        return;
    };
    let q = p.quota().unwrap();
    // moto reports the legacy account attribute as 20.
    assert_eq!(q.and_then(|q| q.instances), Some(20), "{q:?}");
}
