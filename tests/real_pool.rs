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
