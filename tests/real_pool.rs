//! Against a real HTCondor 25 personal pool (`support::condor_pool`): what
//! the stand-in can only imitate. The site files loaded by the real
//! daemons; the pilot's retirement on a real startd, drained through the
//! agent's own adapter.

mod support;

use std::time::Duration;

use cloudburst::condor::{Condor, Live};
use support::condor_pool::{release, text, Pool};

const LONG: Duration = Duration::from_secs(90);

/// `condor_q -af` of every job, one line each.
fn jobs(pool: &Pool, attrs: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-allusers", "-af:rt"];
    args.extend_from_slice(attrs);
    let out = pool.run("condor_q", &args);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The schedd transform (`condor-config/50-cloudburst-schedd.conf`) loaded
/// by a real schedd marks exactly the jobs whose Requirements require a
/// cloud node, and gives every cloud job a cloud-only Requirements.
#[test]
fn the_real_schedd_marks_exactly_the_jobs_that_require_the_cloud() {
    let Some(release) = release() else {
        return;
    };
    let pool = Pool::start(
        &release,
        "transform",
        "",
        &[support::repo().join("condor-config/50-cloudburst-schedd.conf")],
    );
    let cases = [
        ("TARGET.CloudNode =?= true", true),
        (
            "(TARGET.CloudNode is true) && (TARGET.Arch == \"X86_64\")",
            true,
        ),
        ("TARGET.CloudNode", true),
        ("TARGET.CloudNode =!= true", false),
        ("TARGET.CloudNode isnt true", false),
        ("!TARGET.CloudNode", false),
        ("TARGET.Arch == \"X86_64\"", false),
    ];
    let mut submit = String::from("executable = /bin/true\nhold = true\n");
    for (req, _) in &cases {
        submit.push_str(&format!("requirements = {req}\nqueue 1\n"));
    }
    // A job that only says +WantCloud gets CloudNode in its Requirements.
    submit.push_str("requirements = TARGET.Arch == \"X86_64\"\n+WantCloud = true\nqueue 1\n");
    let file = pool.write("jobs.sub", &submit);
    let out = pool.run("condor_submit", &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = jobs(&pool, &["ProcId", "WantCloud", "Requirements"]);
    assert_eq!(rows.len(), cases.len() + 1, "{rows:?}");
    for (i, (req, cloud)) in cases.iter().enumerate() {
        let row = &rows[i];
        let marked = row[1] == "true";
        assert_eq!(marked, *cloud, "Requirements {req}: WantCloud = {}", row[1]);
    }
    let last = &rows[cases.len()];
    assert_eq!(last[1], "true");
    assert!(
        last[2].contains("TARGET.CloudNode =?= true"),
        "a +WantCloud job runs only on cloud nodes: {}",
        last[2]
    );
}

/// The pilot's retirement on a real startd: a busy node drained through
/// the agent's adapter (as at `max_lifetime` or an admin's drain) keeps
/// its job until it completes (never evicted: `NumJobStarts` 1, no
/// `LastVacateTime`), then is drained.
#[test]
fn a_busy_pilot_drained_by_the_agent_lets_its_job_finish() {
    let Some(release) = release() else {
        return;
    };
    // The rendered pilot's retirement lines, on a startd whose hard stop
    // is an hour away (what the pilot's runcmd writes at boot).
    let cfg = cloudburst::config::parse(
        "real.toml",
        r#"
[pilot]
central_manager = "127.0.0.1"
[[sites]]
name = "aws"
provider = "ec2"
[[sites.flavors]]
name = "small"
cpus = 2
memory_mb = 2048
disk_gb = 10
price_per_hour = 0.1
"#,
    )
    .unwrap();
    let token = cloudburst::secret::Secret::new("eyJ.token".into());
    let rendered = cloudburst::pilot::condor_config(&cloudburst::pilot::PilotSpec {
        config: &cfg,
        site: cfg.site("aws").unwrap(),
        flavor: cfg.flavor("aws", "small").unwrap(),
        group: None,
        node_id: "real-1",
        token: &token,
        ca_pem: None,
    })
    .unwrap();
    let retirement: String = rendered
        .lines()
        .filter(|l| l.starts_with("MAXJOBRETIREMENTTIME") || l.starts_with("MachineMaxVacateTime"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(retirement.lines().count(), 2, "{rendered}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let extra = format!(
        "{retirement}CLOUDBURST_HARD_STOP = {}\nCloudNode = True\nSTARTD_ATTRS = $(STARTD_ATTRS) CloudNode\n\
         NUM_SLOTS = 1\nNUM_SLOTS_TYPE_1 = 1\nSLOT_TYPE_1 = cpus=2, memory=1024\nSLOT_TYPE_1_PARTITIONABLE = True\n",
        now + 3600
    );
    let pool = Pool::start(&release, "retire", &extra, &[]);
    let file = pool.write(
        "sleep.sub",
        "executable = /bin/sleep\narguments = 15\nrequest_memory = 64\nqueue 1\n",
    );
    let out = pool.run("condor_submit", &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    pool.wait_for("the job to run", LONG, |p| {
        jobs(p, &["JobStatus"]).first().is_some_and(|r| r[0] == "2")
    });
    let agent_cfg = cloudburst::config::parse(
        "agent.toml",
        &format!(
            "[pool]\ncollector = \"127.0.0.1:{}\"\n[condor]\nbin_dir = \"{}\"\n",
            pool.port,
            pool.tool_dir().display()
        ),
    )
    .unwrap();
    let condor = Condor::new(&agent_cfg, &Live);
    // The d-slot's ad reaches the collector a moment after the claim.
    let mut startd = None;
    pool.wait_for("the claim in the collector", LONG, |_| {
        let snap = condor.snapshot(now as i64);
        startd = snap.pool.known().and_then(|p| {
            p.startds
                .values()
                .find(|s| s.claims > 0 && s.retirement_time.is_some_and(|r| r > 0))
                .cloned()
        });
        startd.is_some()
    });
    let s = startd.unwrap();
    assert!(
        s.retirement_time.unwrap() > 3000,
        "retirement up to the hard stop, less the margins: {:?}",
        s.retirement_time
    );
    let outcomes = condor.drain(&s, "cloudburst: test").unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| *o == cloudburst::condor::commands::Outcome::Sent),
        "{outcomes:?}"
    );
    pool.wait_for("the job to complete", LONG, |p| {
        jobs(p, &["ClusterId"]).is_empty()
    });
    let out = pool.run(
        "condor_history",
        &["-af", "JobStatus", "NumJobStarts", "LastVacateTime"],
    );
    let hist = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(hist, "4 1 undefined", "completed once, never vacated");
}

/// A pilot as the agent renders it, on the real pool: its condor config
/// (adapted only as `pilot_adaptations` lists) and an IDTOKEN minted by
/// the agent's adapter. It authenticates with the token, is admitted by
/// the central manager's snippet as a cloud node, is read by the agent
/// as its node, runs a real `+WantCloud` job through the schedd
/// transform, and is drained and turned off by the agent's own calls.
#[test]
fn a_rendered_pilot_joins_with_its_token_runs_a_cloud_job_and_is_retired() {
    let Some(release) = release() else {
        return;
    };
    let repo = support::repo();
    let pool = Pool::start(
        &release,
        "pilot",
        "TRUST_DOMAIN = cloudburst.test\n",
        &[
            repo.join("condor-config/50-cloudburst-central-manager.conf"),
            repo.join("condor-config/50-cloudburst-schedd.conf"),
        ],
    );
    let agent_cfg = pilot_agent_config(&pool, 2, 2048);
    let condor = Condor::new(&agent_cfg, &Live);
    let node = "real-000001";
    let identity = cloudburst::pilot::token_identity(&agent_cfg, node);
    assert_eq!(identity, "cloudburst-pilot-real-000001@cloudburst.test");
    let token = condor
        .token(&identity, 3600, None)
        .expect("the agent mints a pilot token");
    let rendered = render(&agent_cfg, node, &token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let _pilot = pool.start_pilot(node, &rendered, token.expose(), now + 3600);
    let cloud_slots = |p: &Pool| {
        jobs_like(
            p,
            "condor_status",
            &[
                "-constraint",
                "CloudNode =?= true",
                "-af:t",
                "Name",
                "AuthenticatedIdentity",
                "AuthenticationMethod",
                "CloudburstNodeId",
            ],
        )
    };
    pool.wait_for("the pilot's slot", LONG, |p| !cloud_slots(p).is_empty());
    let slot = &cloud_slots(&pool)[0];
    assert_eq!(slot[1], identity, "{slot:?}");
    assert_eq!(slot[3], node, "{slot:?}");
    eprintln!("real pool: the pilot's slot {slot:?}");
    // The agent reads it as its node.
    let snap = condor.snapshot(now as i64);
    let pool_view = snap.pool.known().expect("the agent reads the real pool");
    let s = pool_view
        .startds
        .values()
        .find(|s| s.node_id.as_deref() == Some(node))
        .unwrap_or_else(|| panic!("{:?}", pool_view.startds.keys()));
    assert_eq!(
        (
            s.site.as_deref(),
            s.flavor.as_deref(),
            s.identity.as_deref()
        ),
        (Some("aws"), Some("small"), Some(identity.as_str()))
    );
    // A cloud job runs on it (marked by the transform from its
    // Requirements, matched by the real negotiator).
    let file = pool.write(
        "cloud.sub",
        "executable = /bin/sleep\narguments = 2\nrequirements = TARGET.CloudNode =?= true\n\
         should_transfer_files = YES\nrequest_memory = 64\nqueue 1\n",
    );
    let out = pool.run("condor_submit", &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    pool.wait_for("the cloud job to complete", LONG, |p| {
        jobs(p, &["ClusterId"]).is_empty()
    });
    let hist = jobs_like(
        &pool,
        "condor_history",
        &[
            "-af:t",
            "JobStatus",
            "NumJobStarts",
            "LastRemoteHost",
            "WantCloud",
        ],
    );
    assert_eq!(hist[0][0], "4", "{hist:?}");
    assert_eq!(hist[0][1], "1", "{hist:?}");
    assert!(hist[0][2].contains(node), "ran on the pilot: {hist:?}");
    assert_eq!(hist[0][3], "true", "{hist:?}");
    // Idle: the agent drains it (with its startd-side check) and turns
    // it off; its ads leave the collector. Right after a job the schedd
    // may still hold the claim (Claimed/Idle) while the collector shows
    // the slot free: the real startd then refuses the drain (the -check),
    // and the agent tries again at a later look, as here.
    let mut drained = None;
    let mut refusals = 0;
    pool.wait_for(
        "the agent's drain of the idle pilot to be accepted",
        LONG,
        |_| {
            let Some(s) = condor.snapshot(now as i64).pool.known().and_then(|p| {
                p.startds
                    .values()
                    .find(|s| s.node_id.as_deref() == Some(node) && s.claims == 0)
                    .cloned()
            }) else {
                return false;
            };
            let outcomes = condor.drain(&s, "cloudburst: idle").unwrap();
            if outcomes
                .iter()
                .all(|o| *o == cloudburst::condor::commands::Outcome::Sent)
            {
                drained = Some(s);
                return true;
            }
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, cloudburst::condor::commands::Outcome::BecameBusy { .. })),
                "{outcomes:?}"
            );
            refusals += 1;
            false
        },
    );
    eprintln!("real pool: the startd refused {refusals} idle drain(s) while the claim was held");
    let s = drained.unwrap();
    pool.wait_for("the pilot drained", LONG, |p| {
        cloud_state(p).iter().any(|st| st == "Drained")
    });
    let (startd_off, master_off) = condor.retire(&s.name).unwrap();
    let masters = jobs_like(&pool, "condor_status", &["-master", "-af", "Name"]);
    assert_eq!(
        startd_off,
        cloudburst::condor::commands::Outcome::Sent,
        "the masters the collector knows: {masters:?}"
    );
    assert_eq!(master_off, cloudburst::condor::commands::Outcome::Sent);
    pool.wait_for("the pilot's ads to leave the collector", LONG, |p| {
        cloud_slots(p).is_empty()
    });
}

fn cloud_state(pool: &Pool) -> Vec<String> {
    jobs_like(
        pool,
        "condor_status",
        &["-constraint", "CloudNode =?= true", "-af", "State"],
    )
    .into_iter()
    .map(|r| r.join(""))
    .collect()
}

/// A tool's `-af:t` lines, split at tabs.
fn jobs_like(pool: &Pool, tool: &str, args: &[&str]) -> Vec<Vec<String>> {
    let out = pool.run(tool, args);
    assert!(out.status.success(), "{tool}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The central manager's snippet on the real collector: a pilot holding
/// node A's token that advertises itself as node B is refused (a leaked
/// token cannot pose as another cloud node), while node A's own pilot
/// with the same kind of token is taken.
#[test]
fn a_pilots_token_advertises_only_its_own_node() {
    let Some(release) = release() else {
        return;
    };
    let repo = support::repo();
    let pool = Pool::start(
        &release,
        "impostor",
        "TRUST_DOMAIN = cloudburst.test\n",
        &[repo.join("condor-config/50-cloudburst-central-manager.conf")],
    );
    let agent_cfg = pilot_agent_config(&pool, 1, 512);
    let condor = Condor::new(&agent_cfg, &Live);

    let token_a = condor
        .token(
            &cloudburst::pilot::token_identity(&agent_cfg, "real-a"),
            3600,
            None,
        )
        .unwrap();
    let token_c = condor
        .token(
            &cloudburst::pilot::token_identity(&agent_cfg, "real-c"),
            3600,
            None,
        )
        .unwrap();
    let _own = pool.start_pilot(
        "real-a",
        &render(&agent_cfg, "real-a", &token_a),
        token_a.expose(),
        0,
    );
    // Node C's token, advertising as node B.
    let _impostor = pool.start_pilot(
        "real-b",
        &render(&agent_cfg, "real-b", &token_c),
        token_c.expose(),
        0,
    );
    let node_ids = |p: &Pool| {
        jobs_like(
            p,
            "condor_status",
            &[
                "-any",
                "-constraint",
                "CloudNode =?= true",
                "-af",
                "CloudburstNodeId",
            ],
        )
        .into_iter()
        .map(|r| r.join(""))
        .collect::<Vec<_>>()
    };
    pool.wait_for("node A's own pilot", LONG, |p| {
        node_ids(p).iter().any(|n| n == "real-a")
    });
    // The collector takes the impostor's connection and drops it: its
    // startd logs the failed update (the refusal itself is not logged by
    // the collector, even at D_FULLDEBUG).
    let start_log = impostor_log(&pool, "real-b");
    pool.wait_for("the collector to refuse node B's updates", LONG, |_| {
        std::fs::read_to_string(&start_log)
            .unwrap_or_default()
            .contains("Failed to send update")
    });
    let ids = node_ids(&pool);
    assert!(!ids.iter().any(|n| n == "real-b"), "{ids:?}");
    let mut types = jobs_like(
        &pool,
        "condor_status",
        &[
            "-any",
            "-constraint",
            "CloudburstNodeId =?= \"real-a\"",
            "-af",
            "MyType",
        ],
    )
    .concat();
    types.sort();
    types.dedup();
    assert!(types.contains(&"Machine".to_string()), "{types:?}");
    eprintln!("real pool: node C's token advertising node B: every ad refused; node A's own ads listed ({types:?})");
}

/// The central manager's snippet with the revocation list the agent
/// keeps: after the agent writes it and runs `condor_reconfig
/// -collector`, the real collector refuses the token of a retired node
/// ("has been revoked", its own words at D_SECURITY) while a live node's
/// token, minted the same way, still advertises.
#[test]
fn a_retired_nodes_token_is_refused_by_the_real_collector() {
    use cloudburst::agent::revocation::{Revocations, Update};
    use cloudburst::lifecycle::{Node, State};
    let Some(release) = release() else {
        return;
    };
    // The snippet as shipped, its include pointed at a file of this test
    // (in a folder the pool's unprivileged user can read).
    let files = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let list = files.path().join("revoked-pilots.conf");
    let shipped = "/var/lib/cloudburst-condor/revoked-pilots.conf";
    let snippet = std::fs::read_to_string(
        support::repo().join("condor-config/50-cloudburst-central-manager.conf"),
    )
    .unwrap();
    assert!(snippet.contains(shipped));
    let cm = files.path().join("50-cloudburst-central-manager.conf");
    std::fs::write(&cm, snippet.replace(shipped, &list.display().to_string())).unwrap();
    let pool = Pool::start(
        &release,
        "revoked",
        "TRUST_DOMAIN = cloudburst.test\nCOLLECTOR_DEBUG = D_SECURITY\n",
        &[cm],
    );
    let mut agent_cfg = pilot_agent_config(&pool, 1, 512);
    agent_cfg.pilot.revocation_file = Some(list.clone());
    let condor = Condor::new(&agent_cfg, &Live);
    let mint = |node: &str| {
        condor
            .token(
                &cloudburst::pilot::token_identity(&agent_cfg, node),
                3600,
                None,
            )
            .unwrap()
    };
    let (retired, live) = (mint("real-r"), mint("real-s"));

    // The agent's view: real-r terminated, real-s working.
    let now = cloudburst::agent::now();
    let node = |id: &str, state: State| Node {
        state,
        ..Node::requested(id, "aws", "small", &format!("t-{id}"), now)
    };
    let nodes = [node("real-r", State::Gone), node("real-s", State::Busy)];
    let applied = Revocations::default()
        .update(&agent_cfg, &nodes, cloudburst::agent::now(), || {
            condor.reconfig_collector()
        })
        .unwrap();
    assert_eq!(applied, Update::Applied { identities: 1 });

    let collector_log = pool.dir.path().join("local/log/CollectorLog");
    // The reconfig is done once the running collector holds the list.
    pool.wait_for("the collector to read the list", LONG, |p| {
        let out = p.run(
            "condor_config_val",
            &["-collector", "CLOUDBURST_REVOKED_PILOTS"],
        );
        String::from_utf8_lossy(&out.stdout).contains("cloudburst-pilot-real-r")
    });
    let _live = pool.start_pilot(
        "real-s",
        &render(&agent_cfg, "real-s", &live),
        live.expose(),
        0,
    );
    let _stolen = pool.start_pilot(
        "real-r",
        &render(&agent_cfg, "real-r", &retired),
        retired.expose(),
        0,
    );
    let node_ids = |p: &Pool| {
        jobs_like(
            p,
            "condor_status",
            &[
                "-constraint",
                "CloudNode =?= true",
                "-af",
                "CloudburstNodeId",
            ],
        )
        .concat()
    };
    pool.wait_for("the live node's pilot", LONG, |p| {
        node_ids(p).iter().any(|n| n == "real-s")
    });
    pool.wait_for(
        "the collector to refuse the retired node's token",
        LONG,
        |_| {
            std::fs::read_to_string(&collector_log)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("has been revoked") && l.contains("cloudburst-pilot-real-r@"))
        },
    );
    let ids = node_ids(&pool);
    assert!(!ids.iter().any(|n| n == "real-r"), "{ids:?}");
    eprintln!("real pool: the retired node's token revoked by the collector; the live node's pilot listed ({ids:?})");
}

fn impostor_log(pool: &Pool, node: &str) -> std::path::PathBuf {
    pool.dir.path().join(format!("pilot-{node}/log/StartLog"))
}

/// The agent's config for pilots of one small flavour joining `pool`.
fn pilot_agent_config(pool: &Pool, cpus: u32, memory_mb: u64) -> cloudburst::config::Config {
    cloudburst::config::parse(
        "agent.toml",
        &format!(
            "[pool]\ncollector = \"127.0.0.1:{port}\"\n[condor]\nbin_dir = \"{bin}\"\n\
             [pilot]\ncentral_manager = \"127.0.0.1:{port}\"\ntrust_domain = \"cloudburst.test\"\n\
             [[sites]]\nname = \"aws\"\nprovider = \"ec2\"\n\
             [[sites.flavors]]\nname = \"small\"\ncpus = {cpus}\nmemory_mb = {memory_mb}\ndisk_gb = 10\nprice_per_hour = 0.1\n",
            port = pool.port,
            bin = pool.tool_dir().display()
        ),
    )
    .unwrap()
}

/// The condor config the agent renders for `node` of that flavour.
fn render(
    cfg: &cloudburst::config::Config,
    node: &str,
    token: &cloudburst::secret::Secret,
) -> String {
    cloudburst::pilot::condor_config(&cloudburst::pilot::PilotSpec {
        config: cfg,
        site: cfg.site("aws").unwrap(),
        flavor: cfg.flavor("aws", "small").unwrap(),
        group: None,
        node_id: node,
        token,
        ca_pem: None,
    })
    .unwrap()
}

/// Matches each job ad against each slot ad as the negotiator does (both
/// Requirements), with the official library: argv[1] and argv[2] are
/// `condor_q -long` and `condor_status -long` output (`-json` writes
/// expressions as strings the library's JSON reader keeps as strings).
const SYMMETRIC_MATCH: &str = r#"
import json, sys, classad2
jobs = list(classad2.parseAds(sys.argv[1], classad2.ParserType.Old))
slots = list(classad2.parseAds(sys.argv[2], classad2.ParserType.Old))
print(json.dumps([[j.get("CloudburstCase"), s.get("Name"), bool(j.symmetricMatch(s))] for j in jobs for s in slots]))
"#;

/// The CE's three routes (`jobmanager/htcondor-ce/`), applied by a real
/// schedd as the job router would, with the schedd snippet after them:
/// each routed job's ad, matched by the official library against a real
/// cloud pilot's slot and the site's own slot, runs exactly where its
/// route says.
#[test]
fn the_ce_routes_send_each_job_to_exactly_the_slots_it_should() {
    let Some(release) = release() else {
        return;
    };
    if support::python().is_none() {
        support::skip("a Python with PyPI htcondor");
        return;
    }
    let repo = support::repo();
    let routes = {
        let text =
            std::fs::read_to_string(repo.join("jobmanager/htcondor-ce/50-cloudburst-route.conf"))
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("60-cloudburst-ce-routes.conf");
        std::fs::write(&path, support::ce_routes_as_schedd_transforms(&text)).unwrap();
        (dir, path)
    };
    let pool = Pool::start(
        &release,
        "routes",
        "TRUST_DOMAIN = cloudburst.test\n",
        &[
            repo.join("condor-config/50-cloudburst-central-manager.conf"),
            repo.join("condor-config/50-cloudburst-schedd.conf"),
            routes.1.clone(),
        ],
    );
    let agent_cfg = pilot_agent_config(&pool, 2, 2048);
    let node = "real-routes";
    let identity = cloudburst::pilot::token_identity(&agent_cfg, node);
    let token = Condor::new(&agent_cfg, &Live)
        .token(&identity, 3600, None)
        .expect("the agent mints a pilot token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A day to its hard stop: the GRAM jobs state two hours of wall time,
    // which the pilot's START holds against the hard stop.
    let _pilot = pool.start_pilot(
        node,
        &render(&agent_cfg, node, &token),
        token.expose(),
        now + 86_400,
    );
    pool.wait_for("the pilot's slot and the site's", LONG, |p| {
        let names = jobs_like(p, "condor_status", &["-af", "Name"]);
        names.len() >= 2
    });
    // (the job's queue, runs on the pilot, runs on the site's slot)
    let table: [(&str, Option<&str>, bool, bool); 3] = [
        ("cloud only", Some("cloud"), true, false),
        ("transparent", Some("cloud_or_local"), true, true),
        ("never on the cloud", None, false, true),
    ];
    let mut submit = String::from(
        "executable = /bin/true\nhold = true\nrequest_cpus = 1\nrequest_memory = 64\n",
    );
    for (case, queue, _, _) in &table {
        submit.push_str(&format!("+CloudburstCase = \"{case}\"\n"));
        match queue {
            Some(q) => submit.push_str(&format!("+queue = \"{q}\"\n")),
            None => submit.push_str("+queue = undefined\n"),
        }
        submit.push_str("queue 1\n");
    }
    let file = pool.write("routes.sub", &submit);
    let out = pool.run("condor_submit", &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    // The GRAM queues' modules: the description each writes, submitted
    // as written (held, a real executable for condor_submit to find, and
    // a request the test's slots hold).
    let gram_work = tempfile::tempdir().unwrap();
    let gram = support::gram_submit_descriptions(gram_work.path()).unwrap_or_default();
    for (module, path) in &gram {
        let written = std::fs::read_to_string(path).unwrap();
        let held = written
            .replace("executable = /bin/cmsRun", "executable = /bin/true")
            .replace("request_cpus = 4", "request_cpus = 1")
            .replace("request_memory = 8000", "request_memory = 64")
            .replace(
                "\nqueue 1\n",
                &format!("\nhold = true\n+CloudburstCase = \"jobmanager-{module}\"\nqueue 1\n"),
            );
        let file = pool.write(&format!("gram-{module}.sub"), &held);
        let out = pool.run("condor_submit", &[file.to_str().unwrap()]);
        assert!(out.status.success(), "{module}: {}", text(&out));
    }
    let mut table = table.to_vec();
    for (module, on_pilot, on_site) in [
        ("jobmanager-cloud", true, false),
        ("jobmanager-cloudorlocal", true, true),
        ("jobmanager-localonly", false, true),
    ] {
        if gram.iter().any(|(m, _)| module.ends_with(m.as_str())) {
            table.push((module, None, on_pilot, on_site));
        }
    }
    let job_ads = pool.run("condor_q", &["-allusers", "-long"]);
    let slot_ads = pool.run("condor_status", &["-long"]);
    assert!(job_ads.status.success() && slot_ads.status.success());
    let routed = jobs(&pool, &["CloudburstCase", "CloudburstRoute", "WantCloud"]);
    let verdicts = support::py(
        SYMMETRIC_MATCH,
        &[
            String::from_utf8_lossy(&job_ads.stdout).as_ref(),
            String::from_utf8_lossy(&slot_ads.stdout).as_ref(),
        ],
    );
    let verdicts: Vec<(String, String, bool)> = serde_json::from_value(verdicts).unwrap();
    let mut wrong = Vec::new();
    for (case, _, on_pilot, on_site) in &table {
        for (c, slot, matched) in verdicts.iter().filter(|v| v.0 == *case) {
            let pilot = slot.contains(node);
            let expected = if pilot { *on_pilot } else { *on_site };
            if *matched != expected {
                wrong.push(format!(
                    "{c} on {slot}: matched {matched}, expected {expected}"
                ));
            }
        }
        let slots = verdicts.iter().filter(|v| v.0 == *case).count();
        assert!(slots >= 2, "{case}: {verdicts:?}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}\nroutes applied: {routed:?}");
    eprintln!(
        "real pool: CE routes: {} job x slot verdicts as the table says ({routed:?})",
        verdicts.len()
    );
}
