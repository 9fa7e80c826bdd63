//! The condor stand-in against the real captures: for every captured
//! command the stand-in, given the same pool state, prints the same stdout
//! and stderr and exits with the same status, byte for byte. This is what
//! lets the adapter tests (tests/condor_adapter.rs) trust it.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::standin::StandIn;

struct Capture {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    rc: i32,
}

fn capture(name: &str) -> Capture {
    let dir = support::data_dir().join("condor/live/cli");
    let read = |ext: &str| std::fs::read(dir.join(format!("{name}.{ext}"))).unwrap();
    let rc_text = String::from_utf8(read("rc")).unwrap();
    let rc = rc_text.trim().trim_start_matches("rc=").parse().unwrap();
    Capture {
        stdout: read("stdout"),
        stderr: read("stderr"),
        rc,
    }
}

fn captured_ads(name: &str) -> Value {
    serde_json::from_slice(&capture(name).stdout).unwrap()
}

fn run(s: &StandIn, tool: &str, args: &[&str]) -> Capture {
    let out = Command::new(s.bin.join(tool)).args(args).output().unwrap();
    Capture {
        stdout: out.stdout,
        stderr: out.stderr,
        rc: out.status.code().unwrap_or(-1),
    }
}

fn assert_same(name: &str, got: Capture) {
    let want = capture(name);
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(show(&got.stdout), show(&want.stdout), "{name}: stdout");
    assert_eq!(show(&got.stderr), show(&want.stderr), "{name}: stderr");
    assert_eq!(got.rc, want.rc, "{name}: exit status");
}

const ATTRS: &str = "ClusterId,ProcId,JobStatus,RequestCpus,RequestMemory,RequestDisk,RequestGPUs,Requirements,WantCloud,QDate,Owner,AcctGroup,JobUniverse,GlobalJobId,EnteredCurrentStatus";

fn keys_of(ads: &Value) -> String {
    let mut keys: Vec<String> = ads
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a.as_object().unwrap().keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys.join(",")
}

#[test]
fn queue_answers_match_the_captures() {
    let Some(s) = StandIn::new() else { return };
    // Each capture's own ads as the queue: projection, constraint and the
    // -json layout must reproduce it exactly.
    for (name, args) in [
        (
            "q_json_projection_idle",
            vec![
                "-allusers",
                "-json",
                "-attributes",
                ATTRS,
                "-constraint",
                "JobStatus == 1",
            ],
        ),
        (
            "q_json_global",
            vec![
                "-global",
                "-allusers",
                "-json",
                "-attributes",
                "ClusterId,ProcId,JobStatus",
            ],
        ),
        (
            "q_running_on_cloud",
            vec![
                "-allusers",
                "-json",
                "-attributes",
                "ClusterId,ProcId,JobStatus,RemoteHost,WantCloud",
            ],
        ),
    ] {
        let ads = captured_ads(name);
        s.edit(|v| v["schedds"]["alice@vm"]["jobs"] = ads.clone());
        assert_same(name, run(&s, "condor_q", &args));
    }
    assert_same(
        "q_json_projection_nomatch",
        run(
            &s,
            "condor_q",
            &[
                "-allusers",
                "-json",
                "-attributes",
                ATTRS,
                "-constraint",
                "Owner == \"nobody\"",
            ],
        ),
    );
    assert_same(
        "q_bad_constraint",
        run(
            &s,
            "condor_q",
            &["-allusers", "-json", "-constraint", "JobStatus == (("],
        ),
    );
    assert_same(
        "q_no_such_schedd",
        run(&s, "condor_q", &["-name", "nosuch@nowhere", "-json"]),
    );
    s.edit(|v| v["schedds"]["alice@vm"]["up"] = json!(false));
    assert_same(
        "q_schedd_down",
        run(
            &s,
            "condor_q",
            &["-allusers", "-json", "-attributes", ATTRS],
        ),
    );
    assert_same(
        "q_schedd_down_global",
        run(&s, "condor_q", &["-global", "-allusers", "-json"]),
    );
}

#[test]
fn status_answers_match_the_captures() {
    let Some(s) = StandIn::new() else { return };
    let ads = captured_ads("slots_cloud_json");
    let attrs = keys_of(&ads);
    s.edit(|v| {
        v["startds"]["cloudpilot@vm"]["slots"] = ads.clone();
    });
    assert_same(
        "slots_cloud_json",
        run(
            &s,
            "condor_status",
            &[
                "-json",
                "-constraint",
                "CloudNode =?= true",
                "-attributes",
                &attrs,
            ],
        ),
    );
    s.edit(|v| {
        v["startds"]
            .as_object_mut()
            .unwrap()
            .remove("cloudpilot@vm");
    });
    assert_same(
        "status_cloud_none",
        run(
            &s,
            "condor_status",
            &[
                "-json",
                "-constraint",
                "CloudNode =?= true",
                "-attributes",
                &attrs,
            ],
        ),
    );
    s.edit(|v| v["collector"]["up"] = json!(false));
    assert_same(
        "status_collector_down",
        run(&s, "condor_status", &["-json"]),
    );
}

#[test]
fn startd_commands_match_the_captures() {
    let Some(s) = StandIn::new() else { return };
    // The pilot idle, as it was when the drain was captured.
    s.edit(|v| {
        let slots = v["startds"]["cloudpilot@vm"]["slots"]
            .as_array_mut()
            .unwrap();
        slots.retain(|a| a["SlotType"] != "Dynamic");
    });
    assert_same(
        "drain_daemon_name",
        run(&s, "condor_drain", &["-graceful", "cloudpilot@vm"]),
    );
    assert_same(
        "drain_slot",
        run(
            &s,
            "condor_drain",
            &["-graceful", "-reason", "retire", "slot1@cloudpilot@vm"],
        ),
    );
    let slot = &s.read()["startds"]["cloudpilot@vm"]["slots"][0];
    assert_eq!(
        (slot["State"].as_str(), slot["Draining"].as_bool()),
        (Some("Drained"), Some(true))
    );
    assert_same(
        "drain_cancel",
        run(&s, "condor_drain", &["-cancel", "slot1@cloudpilot@vm"]),
    );
    assert_same(
        "off_peaceful",
        run(
            &s,
            "condor_off",
            &["-peaceful", "-startd", "-name", "cloudpilot@vm"],
        ),
    );
    assert_same(
        "off_master",
        run(&s, "condor_off", &["-master", "-name", "cloudpilot@vm"]),
    );
    assert!(s.read()["startds"].get("cloudpilot@vm").is_none());

    // A pilot that has left but whose ads the collector still holds.
    let Some(s) = StandIn::new() else { return };
    s.edit(|v| v["startds"]["cloudpilot@vm"]["gone"] = json!(true));
    assert_same(
        "drain_gone",
        run(&s, "condor_drain", &["-graceful", "slot1@cloudpilot@vm"]),
    );
    assert_same(
        "off_gone",
        run(
            &s,
            "condor_off",
            &["-peaceful", "-startd", "-name", "cloudpilot@vm"],
        ),
    );
}
