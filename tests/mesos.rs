//! The Mesos side's reads over HTTP against the stand-in
//! (tests/standin/mesos_standin.py), whose answers follow the official API
//! documentation of the Mesos master (1.11.0), Marathon (1.x) and Aurora
//! (0.22.0): fixtures read as documented, empty queues are known and
//! empty, delayed launches are not demand, and every failure (refused
//! connection, 5xx, garbage, a hang, a refusal in the body) is Unknown,
//! never empty.

mod support;

use std::time::Duration;

use serde_json::json;

use cloudburst::config::MesosSource;
use cloudburst::demand::Resources;
use cloudburst::mesos::client::MesosClient;
use cloudburst::mesos::constraint::{Constraint, Rule};
use cloudburst::mesos::{Agent, MesosView, Unit};
use cloudburst::observed::Unknown;
use support::mesos::{serve, MesosStandIn};

fn source(s: &MesosStandIn, marathon: bool, aurora: bool, timeout: Duration) -> MesosSource {
    MesosSource {
        master: vec![s.url()],
        marathon: marathon.then(|| s.url()),
        aurora: aurora.then(|| s.url()),
        required: false,
        credentials: None,
        timeout,
    }
}

fn observe(s: &MesosStandIn, marathon: bool, aurora: bool) -> MesosView {
    MesosClient::new(&source(s, marathon, aurora, Duration::from_secs(5)))
        .unwrap()
        .observe()
}

/// An address where nothing listens: a port below the ephemeral range,
/// which no other test is handed by bind(0).
fn closed_address() -> String {
    format!("http://127.0.0.1:{}", support::service_port())
}

fn res(cpus: u64, memory: u64, disk: u64) -> Resources {
    Resources {
        cpus,
        memory,
        disk,
        gpus: 0,
    }
}

#[test]
fn documented_answers_read_as_agents_tasks_and_waiting_units() {
    let s = MesosStandIn::start(json!({
        "master": serve("master_state.json"),
        "marathon": serve("marathon_queue.json"),
        "aurora": serve("aurora_pending.json"),
    }));
    let v = observe(&s, true, true);
    let agents = v.agents.known().expect("the master was read");
    let find = |id: &str| -> &Agent {
        agents
            .iter()
            .find(|a| a.id.ends_with(id))
            .unwrap_or_else(|| panic!("{id} in {agents:?}"))
    };
    // Ours with a running task: 2 cpus less the 1.5 allocated.
    let s0 = find("-S0");
    assert_eq!(
        (s0.node.as_deref(), s0.registered, s0.tasks, s0.free),
        (Some("site-000001"), true, 1, res(500, 2048, 9728))
    );
    // Ours, its only task finished: idle.
    assert!(s0.offered);
    let s1 = find("-S1");
    assert_eq!(
        (s1.node.as_deref(), s1.tasks, s1.offered),
        (Some("site-000002"), 0, false),
        "deactivated"
    );
    // Not ours (no cloudburst_node attribute), busy.
    assert_eq!((find("-S2").node.as_deref(), find("-S2").tasks), (None, 1));
    // Known from before a master fail-over.
    let s3 = find("-S3");
    assert_eq!(
        (s3.node.as_deref(), s3.registered),
        (Some("site-000003"), false)
    );

    let queue = v.queue.known().expect("both frameworks were read");
    let unit = |name: &str| -> &Unit {
        queue
            .iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("{name} in {queue:?}"))
    };
    let g = unit("/airavata/gromacs");
    assert_eq!(
        (g.source, g.count, g.request, g.delayed, g.per_host()),
        ("marathon", 3, res(1500, 2048, 512), false, Some(1))
    );
    assert_eq!(
        g.constraints[1],
        Constraint::new("cloud_site", Rule::OneOf(vec!["aws".into()]))
    );
    let c = unit("/airavata/crashing");
    assert_eq!((c.count, c.delayed), (2, true), "time left in its back-off");
    // A pod: its containers and its executor together (0.25 + 1.5 + 0.1).
    let p = unit("/airavata/pipeline");
    assert_eq!(
        (p.count, p.request, p.delayed),
        (4, res(1850, 1184, 266), false)
    );
    assert_eq!(
        p.constraints,
        [Constraint::new(
            "cloud_flavor",
            Rule::Like("c5\\..*".into())
        )]
    );
    let e = unit("airavata/prod/ensemble");
    assert_eq!(
        (e.source, e.count, e.request, e.delayed, e.per_host()),
        ("aurora", 2, res(2000, 4096, 2048), false, Some(1))
    );
    assert_eq!(
        e.constraints,
        [
            Constraint::new("hostname", Rule::PerValue(Some(1))),
            Constraint::new("dedicated", Rule::NoneOf(vec!["www-data/hello".into()])),
        ]
    );
    let f = unit("airavata/devel/flaky");
    assert_eq!((f.count, f.delayed), (1, true), "THROTTLED");
    assert_eq!(queue.len(), 5, "{queue:?}");
}

#[test]
fn empty_queues_are_known_and_empty() {
    let s = MesosStandIn::start(json!({
        "master": {"world": {"agents": [], "tasks": []}},
        "marathon": serve("marathon_queue_empty.json"),
    }));
    let v = observe(&s, true, false);
    assert_eq!(v.agents.known(), Some(&vec![]));
    assert_eq!(v.queue.known(), Some(&vec![]));
}

#[test]
fn an_unreachable_master_is_unknown_and_the_queue_still_read() {
    let s = MesosStandIn::start(json!({"marathon": serve("marathon_queue_empty.json")}));
    let closed = closed_address();
    let mut src = source(&s, true, false, Duration::from_secs(5));
    src.master = vec![closed.clone()];
    let v = MesosClient::new(&src).unwrap().observe();
    match v.agents.unknown() {
        Some(Unknown::Failed { status, message }) => {
            assert_eq!(status, "unreachable");
            assert!(message.contains(&format!("{closed}/api/v1")), "{message}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert_eq!(v.queue.known(), Some(&vec![]));
}

#[test]
fn every_failure_is_unknown_never_empty() {
    let s = MesosStandIn::start(json!({}));
    let cases = [
        ("master", json!({"fault": "500"}), "HTTP 500"),
        (
            "master",
            json!({"fault": "garbage"}),
            "not the documented JSON",
        ),
        ("master", json!({"fault": "hang"}), "timed out"),
        ("marathon", json!({"fault": "500"}), "HTTP 500"),
        (
            "marathon",
            json!({"fault": "garbage"}),
            "marathon GET /v2/queue: not the documented JSON",
        ),
        ("aurora", json!({"fault": "hang"}), "timed out"),
        (
            "aurora",
            serve("aurora_refused.json"),
            "ERROR_TRANSIENT: Storage is not READY",
        ),
        // The wrong document at the right address.
        (
            "aurora",
            serve("marathon_queue.json"),
            "no \"responseCode\"",
        ),
        (
            "master",
            serve("aurora_pending.json"),
            "\"type\" is not \"GET_STATE\"",
        ),
    ];
    for (service, conf, expect) in cases {
        // The others answer well: one failing framework is enough to make
        // the whole queue unknown (a partial queue looks like less demand).
        let mut state = json!({
            "master": {"world": {"agents": [], "tasks": []}},
            "marathon": serve("marathon_queue_empty.json"),
            "aurora": serve("aurora_pending.json"),
        });
        state[service] = conf;
        s.set(state);
        let v = MesosClient::new(&source(&s, true, true, Duration::from_secs(1)))
            .unwrap()
            .observe();
        let (failed, other) = if service == "master" {
            (v.agents.unknown(), v.queue.is_known())
        } else {
            (v.queue.unknown(), v.agents.is_known())
        };
        let failed = failed.unwrap_or_else(|| panic!("{service} {expect}: read as known"));
        assert!(failed.to_string().contains(expect), "{service}: {failed}");
        assert!(other, "{service} {expect}: the other side is unaffected");
    }
}

#[test]
fn a_standby_master_redirects_to_the_leader() {
    let s = MesosStandIn::start(json!({
        "master": {"fault": "redirect", "world": {
            "agents": [{"id": "A-S0", "hostname": "ip-10-0-0-21", "cpus": 2, "mem": 4096, "disk": 10240,
                        "attributes": "cloud_node:true;cloud_site:aws;cloudburst_node:e2e-000004"}],
            "tasks": [{"id": "t1", "agent": "A-S0", "state": "TASK_RUNNING", "cpus": 0.5, "mem": 256},
                      {"id": "t0", "agent": "A-S0", "state": "TASK_KILLED", "cpus": 1, "mem": 256}]
        }},
    }));
    let v = observe(&s, false, false);
    let agents = v.agents.known().expect("read from the leader");
    assert_eq!(agents.len(), 1);
    let a = &agents[0];
    assert_eq!(
        (a.node.as_deref(), a.tasks, a.free),
        (Some("e2e-000004"), 1, res(1500, 3840, 10240))
    );
    assert_eq!(v.queue.known(), Some(&vec![]), "no framework configured");
}

#[test]
fn credentials_from_a_private_file_authenticate_and_never_show() {
    use std::os::unix::fs::PermissionsExt;
    let s = MesosStandIn::start(json!({
        "auth": "cloudburst:s3cret-Mesos",
        "master": {"world": {"agents": [], "tasks": []}},
        "marathon": serve("marathon_queue_empty.json"),
    }));
    let file = s.dir.path().join("mesos.credentials");
    let observe_with = |text: &str, mode: u32| {
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut src = source(&s, true, false, Duration::from_secs(5));
        src.credentials = Some(file.clone());
        MesosClient::new(&src).unwrap().observe()
    };
    let v = observe_with("cloudburst:s3cret-Mesos\n", 0o600);
    assert!(v.agents.is_known() && v.queue.is_known(), "{v:?}");

    for (text, mode, expect) in [
        ("cloudburst:wrong", 0o600, "HTTP 401"),
        (
            "cloudburst:s3cret-Mesos",
            0o644,
            "readable by everyone (mode 644)",
        ),
        ("no-colon-here", 0o600, "not principal:secret"),
    ] {
        let v = observe_with(text, mode);
        for u in [v.agents.unknown(), v.queue.unknown()] {
            let u = u
                .unwrap_or_else(|| panic!("{expect}: read as known"))
                .to_string();
            assert!(u.contains(expect), "{u}");
            assert!(
                !u.contains("s3cret") && !u.contains("wrong"),
                "a secret in {u}"
            );
        }
    }
    // Without credentials the master refuses: unknown, not empty.
    let v = observe(&s, true, false);
    assert!(v.agents.unknown().unwrap().to_string().contains("HTTP 401"));
}

#[test]
fn a_deactivated_agent_is_no_longer_offered() {
    let s = MesosStandIn::start(json!({
        "master": {"world": {
            "agents": [{"id": "A-S7", "hostname": "ip-10-0-0-27", "cpus": 2, "mem": 4096, "disk": 10240,
                        "attributes": "cloudburst_node:e2e-000007"}],
            "tasks": []
        }},
    }));
    let client = MesosClient::new(&source(&s, false, false, Duration::from_secs(5))).unwrap();
    let offered = |v: &MesosView| v.agents.known().unwrap()[0].offered;
    assert!(offered(&client.observe()));
    client.deactivate_agent("A-S7").unwrap();
    assert!(!offered(&client.observe()), "GET_STATE says deactivated");
    // A master that cannot be reached: an error saying so, not a panic.
    let mut src = source(&s, false, false, Duration::from_secs(5));
    src.master = vec![closed_address()];
    let e = MesosClient::new(&src)
        .unwrap()
        .deactivate_agent("A-S7")
        .unwrap_err();
    assert!(e.contains("unreachable"), "{e}");
}

#[test]
fn one_master_down_leaves_the_side_readable_through_the_next() {
    let leader = MesosStandIn::start(json!({
        "master": {"world": {
            "agents": [{"id": "A-S7", "hostname": "ip-10-0-0-27", "cpus": 2, "mem": 4096, "disk": 10240,
                        "attributes": "cloudburst_node:e2e-000007"}],
            "tasks": [{"id": "t1", "agent": "A-S7", "state": "TASK_RUNNING", "cpus": 0.5, "mem": 256}]
        }},
    }));
    let broken = MesosStandIn::start(json!({"master": {"fault": "500"}}));
    let closed = closed_address();
    let mut src = source(&leader, false, false, Duration::from_secs(5));
    src.master = vec![closed.clone(), broken.url(), leader.url()];
    let client = MesosClient::new(&src).unwrap();
    let v = client.observe();
    let agents = v.agents.known().expect("read from the third master");
    assert_eq!(
        (agents.len(), agents[0].tasks, agents[0].offered),
        (1, 1, true)
    );
    // The one write reaches a master that answers too.
    client.deactivate_agent("A-S7").unwrap();
    assert!(!client.observe().agents.known().unwrap()[0].offered);

    // None answers: unknown, naming each master and why.
    src.master = vec![closed.clone(), broken.url()];
    let client = MesosClient::new(&src).unwrap();
    match client.observe().agents.unknown() {
        Some(Unknown::Failed { status, message }) => {
            assert_eq!(status, "none of 2 masters answered");
            assert!(
                message.contains(&format!("{closed}: failed (unreachable)"))
                    && message.contains(&format!("{}: failed (HTTP 500)", broken.url())),
                "{message}"
            );
        }
        other => panic!("expected no master to answer, got {other:?}"),
    }
    let e = client.deactivate_agent("A-S7").unwrap_err();
    assert!(e.contains("none of 2 masters answered"), "{e}");
}

/// The agent keeps its Mesos client from cycle to cycle: a broken first
/// master is asked in the first cycle only, and the later cycles go
/// straight to the master that answered. A reload makes a new client,
/// which asks the first master again. (Before, each cycle made a client
/// of its own and asked the broken master every time: 3 requests here.)
#[test]
fn the_agents_client_is_kept_so_a_broken_first_master_is_asked_once() {
    let leader = MesosStandIn::start(json!({
        "master": {"world": {"agents": [], "tasks": []}},
    }));
    let broken = MesosStandIn::start(json!({"master": {"fault": "500"}}));
    let mut src = source(&leader, false, false, Duration::from_secs(5));
    src.master = vec![broken.url(), leader.url()];
    let side = cloudburst::agent::MesosSide::new(Some(&src));
    for cycle in 0..3 {
        let (view, client) = side.observe().expect("[mesos] is configured");
        assert!(view.agents.known().is_some(), "cycle {cycle}: {view:?}");
        assert_eq!(client.map(|c| c.answered()), Some(1), "cycle {cycle}");
    }
    assert_eq!((broken.requests(), leader.requests()), (1, 3));
    let reloaded = cloudburst::agent::MesosSide::new(Some(&src));
    assert!(reloaded.observe().unwrap().0.agents.known().is_some());
    assert_eq!(
        broken.requests(),
        2,
        "a new client starts from the first master"
    );
    assert!(cloudburst::agent::MesosSide::new(None).observe().is_none());
}
