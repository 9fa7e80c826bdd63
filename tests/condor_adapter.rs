//! The condor adapter through real processes: the stand-in tools
//! (tests/standin/, checked against the real captures by
//! tests/condor_standin.rs) in normal and failure states. Every way a
//! source can fail must come back as `Unknown` with a reason, never as an
//! empty queue or an empty pool.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;

use cloudburst::condor::commands::Outcome;
use cloudburst::condor::job::JobReader;
use cloudburst::condor::presence::{Presence, Seen};
use cloudburst::condor::{Activity, Condor, JobStatus, Live};
use cloudburst::observed::{Observed, Unknown};
use cloudburst::snapshot::{Recorder, Replay};
use support::standin::StandIn;

const NOW: i64 = 1_795_313_300;
const TIMEOUT: Duration = Duration::from_secs(20);

fn unknown<T: std::fmt::Debug>(o: &Observed<T>) -> &Unknown {
    o.unknown()
        .unwrap_or_else(|| panic!("expected Unknown, got {o:?}"))
}

#[test]
fn a_healthy_pool_reads_as_jobs_and_cloud_startds() {
    let Some(s) = StandIn::new() else { return };
    let config = s.config(TIMEOUT);
    let snap = Condor::new(&config, &Live).snapshot(NOW);
    assert_eq!(snap.schedds, Observed::Known(vec!["alice@vm".to_string()]));
    let jobs = snap.queues[0].jobs.known().expect("queue known");
    // The live capture: cloud jobs 7.0 (running on the pilot) and 8.0/9.0
    // are not all there at once; whatever is there is a WantCloud job in
    // state 1 or 2, with its requests evaluated.
    assert!(!jobs.is_empty());
    for j in jobs {
        assert!(matches!(j.status, JobStatus::Idle | JobStatus::Running));
        assert_eq!(
            j.ad().get(b"WantCloud"),
            Some(&cloudburst::classad::Expr::Bool(true))
        );
        assert!(j.request().memory.is_some(), "job {} memory", j.id);
    }
    // Only the pilot is a cloud node; it runs a job, so it is busy even
    // though its partitionable slot says Unclaimed/Idle.
    let pool = snap.pool.known().expect("pool known");
    assert_eq!(pool.startds.len(), 1);
    let pilot = &pool.startds["cloudpilot@vm"];
    assert_eq!(pilot.activity, Activity::Busy);
    assert_eq!(pilot.slots, ["slot1@cloudpilot@vm"]);
    assert_eq!(pilot.instance_id.as_deref(), Some("i-0123456789abcdef0"));
    assert!(snap.collector.known().unwrap().start_time.is_some());
    assert!(snap.queue_known());
    // Never -global; one named query per schedd; slot ads, not -startd.
    let log = s.log();
    let q = log.iter().find(|c| c[0] == "condor_q").unwrap();
    assert!(q.windows(2).any(|w| w == ["-name", "alice@vm"]), "{q:?}");
    assert!(
        !log.iter()
            .flatten()
            .any(|a| a == "-global" || a == "-startd"),
        "{log:?}"
    );
}

#[test]
fn a_schedd_that_is_down_is_unknown_not_empty() {
    let Some(s) = StandIn::new() else { return };
    s.edit(|v| v["schedds"]["alice@vm"]["up"] = json!(false));
    let snap = Condor::new(&s.config(TIMEOUT), &Live).snapshot(NOW);
    let u = unknown(&snap.queues[0].jobs);
    assert!(
        u.to_string().contains("Can't find address for schedd vm"),
        "{u}"
    );
    assert!(!snap.queue_known());
}

#[test]
fn a_schedd_the_collector_does_not_know_is_unknown() {
    let Some(s) = StandIn::new() else { return };
    let mut config = s.config(TIMEOUT);
    config.pool.schedds = vec!["alice@vm".into(), "bob@elsewhere".into()];
    let snap = Condor::new(&config, &Live).snapshot(NOW);
    assert!(snap.queues[0].jobs.is_known());
    let u = unknown(&snap.queues[1].jobs);
    assert!(u.to_string().contains("Collector has no record"), "{u}");
    assert!(
        !snap.queue_known(),
        "one silent schedd makes the whole queue unknown"
    );
}

#[test]
fn a_constraint_the_schedd_rejects_is_unknown() {
    let Some(s) = StandIn::new() else { return };
    let mut config = s.config(TIMEOUT);
    // Config validation rejects this; set directly, it shows what the
    // schedd does with a constraint it cannot parse (q_bad_constraint).
    config.pool.cloud_job_constraint = toml::Spanned::new(0..0, "WantCloud == ((".to_string());
    let snap = Condor::new(&config, &Live).snapshot(NOW);
    let u = unknown(&snap.queues[0].jobs);
    assert!(u.to_string().contains("Failed to fetch ads"), "{u}");
}

#[test]
fn a_collector_that_is_down_leaves_the_pool_and_schedd_list_unknown() {
    let Some(s) = StandIn::new() else { return };
    s.edit(|v| v["collector"]["up"] = json!(false));
    let snap = Condor::new(&s.config(TIMEOUT), &Live).snapshot(NOW);
    for u in [
        unknown(&snap.pool),
        unknown(&snap.collector),
        unknown(&snap.schedds),
    ] {
        assert!(u.to_string().contains("communication error"), "{u}");
    }
    assert!(snap.queues.is_empty());
    assert!(!snap.queue_known());
}

#[test]
fn hung_tools_are_killed_at_the_deadline() {
    let Some(s) = StandIn::new() else { return };
    s.fault("condor_q", "hang");
    s.fault("condor_status", "hang");
    let config = s.config(Duration::from_millis(1500));
    let started = Instant::now();
    let snap = Condor::new(&config, &Live).snapshot(NOW);
    assert!(matches!(unknown(&snap.schedds), Unknown::TimedOut { .. }));
    assert!(matches!(unknown(&snap.pool), Unknown::TimedOut { .. }));
    // Bounded by the deadline (pool and collector run concurrently with
    // the schedd list), not by the hang.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let mut config = s.config(Duration::from_millis(1500));
    config.pool.schedds = vec!["alice@vm".into()];
    let q = Condor::new(&config, &Live).queue("alice@vm", &mut JobReader::new(), NOW);
    assert!(matches!(unknown(&q), Unknown::TimedOut { .. }));
}

#[test]
fn garbage_truncated_or_failing_output_is_unknown() {
    for (mode, expect) in [
        ("garbage", "unreadable output"),
        ("truncate", "unreadable output"),
        ("fail", "injected failure"),
    ] {
        let Some(s) = StandIn::new() else { return };
        s.fault("condor_q", mode);
        s.fault("condor_status", mode);
        let snap = Condor::new(&s.config(TIMEOUT), &Live).snapshot(NOW);
        for o in [unknown(&snap.pool), unknown(&snap.schedds)] {
            assert!(o.to_string().contains(expect), "{mode}: {o}");
        }
        let mut config = s.config(TIMEOUT);
        config.pool.schedds = vec!["alice@vm".into()];
        let q = Condor::new(&config, &Live).queue("alice@vm", &mut JobReader::new(), NOW);
        assert!(unknown(&q).to_string().contains(expect), "{mode}");
    }
}

#[test]
fn a_global_query_with_a_dead_schedd_is_recognised_as_a_refusal() {
    // We never run -global, but if a wrapper or an old config did, its
    // "All queues are empty" with exit 0 must not read as an empty queue.
    let Some(s) = StandIn::new() else { return };
    s.edit(|v| v["schedds"]["alice@vm"]["up"] = json!(false));
    let inv = cloudburst::process::Invocation::new(s.bin.join("condor_q"), TIMEOUT).args([
        "-global",
        "-allusers",
        "-json",
    ]);
    let run = cloudburst::process::run(&inv, |r| {
        cloudburst::condor::queue::read_jobs(r, &mut JobReader::new(), NOW)
    });
    let u = cloudburst::condor::outcome::classify(run).unwrap_err();
    assert!(matches!(u, Unknown::Refused { .. }), "{u}");
}

#[test]
fn a_restarted_collector_is_not_read_as_lost_nodes() {
    let Some(s) = StandIn::new() else { return };
    let config = s.config(TIMEOUT);
    let condor = Condor::new(&config, &Live);
    let mut presence = Presence::new(300);
    let observe = |presence: &mut Presence, now: i64| {
        let snap = condor.snapshot(now);
        let keys: Option<Vec<String>> = snap
            .pool
            .known()
            .map(|p| p.startds.values().map(|s| s.key().to_string()).collect());
        let start = snap.collector.known().and_then(|c| c.start_time);
        presence.record(
            keys.as_ref().map(|k| k.iter().map(String::as_str)),
            start,
            now,
        );
    };
    let real_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    observe(&mut presence, real_now());
    assert_eq!(presence.status("i-0123456789abcdef0"), Seen::Present);
    // The collector restarts: it answers, but with no startd ads yet.
    s.edit(|v| v["collector"]["fresh"] = json!(true));
    observe(&mut presence, real_now());
    observe(&mut presence, real_now() + 60);
    assert_eq!(presence.status("i-0123456789abcdef0"), Seen::Present);
}

#[test]
fn drains_never_reach_a_busy_node_and_catch_a_racing_claim() {
    let Some(s) = StandIn::new() else { return };
    let config = s.config(TIMEOUT);
    let condor = Condor::new(&config, &Live);
    let pool = condor.pool();
    let pilot = pool.known().unwrap().startds["cloudpilot@vm"].clone();
    assert_eq!(pilot.activity, Activity::Busy);
    let e = condor.drain(&pilot, "cloudburst: idle").unwrap_err();
    assert!(e.to_string().contains("claim"), "{e}");
    assert!(
        !s.log().iter().any(|c| c[0] == "condor_drain"),
        "no command was run"
    );

    // Our snapshot says idle, but a job was claimed since: the startd-side
    // -check refuses the drain, and nothing is evicted.
    let mut stale_view = pilot.clone();
    stale_view.claims = 0;
    stale_view.activity = Activity::Idle;
    let outcomes = condor.drain(&stale_view, "cloudburst: idle").unwrap();
    assert!(
        matches!(outcomes[0], Outcome::BecameBusy { .. }),
        "{outcomes:?}"
    );
    let slots = &s.read()["startds"]["cloudpilot@vm"]["slots"];
    assert!(slots
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a.get("Draining").is_none()));

    // Once the job is gone, the drain goes through, by slot name.
    s.edit(|v| {
        let slots = v["startds"]["cloudpilot@vm"]["slots"]
            .as_array_mut()
            .unwrap();
        slots.retain(|a| a["SlotType"] != "Dynamic");
        slots[0]["NumDynamicSlots"] = json!(0);
        slots[0]["ChildState"] = json!([]);
    });
    let idle = condor.pool().known().unwrap().startds["cloudpilot@vm"].clone();
    assert_eq!(idle.activity, Activity::Idle);
    assert_eq!(
        condor.drain(&idle, "cloudburst: idle").unwrap(),
        [Outcome::Sent]
    );
    let drained = condor.pool().known().unwrap().startds["cloudpilot@vm"].clone();
    assert_eq!(drained.activity, Activity::Drained);
    assert_eq!(drained.drain_reason.as_deref(), Some("cloudburst: idle"));
    let drain_cmd = s
        .log()
        .into_iter()
        .rev()
        .find(|c| c[0] == "condor_drain")
        .unwrap();
    assert_eq!(drain_cmd.last().unwrap(), "slot1@cloudpilot@vm");
    assert!(drain_cmd.contains(&"-check".to_string()));

    // Retire: peaceful off, then the master; a second time it is gone.
    let (a, b) = condor.retire("cloudpilot@vm").unwrap();
    assert_eq!((a, b), (Outcome::Sent, Outcome::Sent));
    assert!(condor.pool().known().unwrap().startds.is_empty());
    let (a, _) = condor.retire("cloudpilot@vm").unwrap();
    assert_eq!(a, Outcome::Gone);
    assert_eq!(
        condor.cancel_drain("slot1@cloudpilot@vm").unwrap(),
        Outcome::Gone
    );
}

#[test]
fn a_stale_ad_of_a_departed_pilot_makes_commands_look_sent() {
    // As captured (drain_gone): success is not proof that the node exists.
    let Some(s) = StandIn::new() else { return };
    s.edit(|v| {
        let p = &mut v["startds"]["cloudpilot@vm"];
        p["gone"] = json!(true);
        let slots = p["slots"].as_array_mut().unwrap();
        slots.retain(|a| a["SlotType"] != "Dynamic");
        slots[0]["NumDynamicSlots"] = json!(0);
        slots[0]["ChildState"] = json!([]);
    });
    let config = s.config(TIMEOUT);
    let condor = Condor::new(&config, &Live);
    let pilot = condor.pool().known().unwrap().startds["cloudpilot@vm"].clone();
    assert_eq!(condor.drain(&pilot, "r").unwrap(), [Outcome::Sent]);
    let (off, master) = condor.retire("cloudpilot@vm").unwrap();
    assert_eq!((off, master), (Outcome::Gone, Outcome::Gone));
}

#[test]
fn bad_names_never_reach_a_command_line() {
    let Some(s) = StandIn::new() else { return };
    let config = s.config(TIMEOUT);
    let condor = Condor::new(&config, &Live);
    assert!(condor.retire("-pool evil").is_err());
    assert!(condor.cancel_drain("slot1@x; rm -rf /").is_err());
    assert!(condor.token("-authz ADMINISTRATOR", 60, None).is_err());
    assert!(s.log().is_empty(), "{:?}", s.log());
}

#[test]
fn pilot_tokens_are_scoped_expiring_and_kept_secret() {
    let Some(s) = StandIn::new() else { return };
    let config = s.config(TIMEOUT);
    let token = Condor::new(&config, &Live)
        .token("pilot-0001@cloud.example.org", 7200, Some("POOL"))
        .unwrap();
    assert_eq!(format!("{token:?}"), "Secret(<redacted>)");
    let state = s.read();
    assert_eq!(
        state["tokens"][0],
        json!({"identity": "pilot-0001@cloud.example.org",
               "authz": ["ADVERTISE_STARTD", "ADVERTISE_MASTER", "READ"],
               "lifetime": "7200", "key": "POOL"})
    );
    // The secret went only to our pipe: not into any argument vector.
    let text = std::fs::read_to_string(&s.state).unwrap();
    assert!(!text.contains(token.expose()));
}

#[test]
fn a_snapshot_replays_to_the_same_observations() {
    let Some(s) = StandIn::new() else { return };
    let config = s.config(TIMEOUT);
    // A mixed state: the queue answers, the pool query fails.
    s.fault("condor_status", "garbage");
    s.edit(|v| v["faults"]["condor_status"]["not_with"] = json!("-collector"));
    let dir = tempfile::tempdir().unwrap();
    let snap_dir = dir.path().join("snap");
    let recorder = Recorder::create(&snap_dir).unwrap();
    let mut config_named = config.clone();
    config_named.pool.schedds = vec!["alice@vm".into()];
    let live = Condor::new(&config_named, &recorder).snapshot(NOW);
    recorder.finish(NOW).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&snap_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    let replay = Replay::open(&snap_dir).unwrap();
    let again = Condor::new(&config_named, &replay).snapshot(NOW);
    assert_eq!(again.schedds, live.schedds);
    assert_eq!(again.pool, live.pool);
    assert_eq!(again.collector, live.collector);
    assert_eq!(again.queues[0].jobs, live.queues[0].jobs);
    assert!(live.queues[0].jobs.is_known());
    assert!(unknown(&again.pool)
        .to_string()
        .contains("unreadable output"));
    // A snapshot directory is never overwritten.
    assert!(Recorder::create(&snap_dir).is_err());
}
