//! The pilot and the site files, read by the real readers: cloud-init's
//! own schema validator for every rendered user-data, HTCondor's config
//! reader (`htcondor2.param`) for the rendered condor config and every
//! file in condor-config/ and jobmanager/, HTCondor's submit parser for
//! what the GRAM module writes, `perl -c` and `shellcheck`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cloudburst::config::Config;
use cloudburst::pilot::{condor_config, render, PilotSpec, CLOUD_CONFIG_KEYS};
use cloudburst::secret::Secret;
use serde_json::Value;
use support::py;

const TOKEN: &str =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.eyJzdWIiOiJjbG91ZGJ1cnN0LXBpbG90In0.SECRET-SIGNATURE";

const BASE: &str = r#"
[pool]
name = "cms-t2"
collector = "cm.example.edu:9618"
[pilot]
trust_domain = "example.edu"
[[sites]]
name = "aws"
provider = "ec2"
image = "ami-0123456789abcdef0"
[[sites.flavors]]
name = "c7i.2xlarge"
cpus = 8
memory_mb = 16384
disk_gb = 100
price_per_hour = 0.357
start = "TARGET.WantCloud =?= true"
attributes = { HAS_CVMFS = "true" }
[[sites.flavors]]
name = "g5.xlarge"
cpus = 4
memory_mb = 16384
disk_gb = 250
gpus = 1
price_per_hour = 1.006
[[sites]]
name = "jetstream2"
provider = "openstack"
image = "Featured-AlmaLinux9"
[[sites.flavors]]
name = "m3.medium"
cpus = 8
memory_mb = 30720
disk_gb = 60
price_per_hour = 0.3
[[groups]]
name = "lhcb"
token = "lhcb-burst"
sites = ["jetstream2"]
"#;

/// The option blocks the matrix combines (each inserted after [pilot]).
const CVMFS: &str = "[pilot.cvmfs]\nrepositories = [\"cms.cern.ch\", \"oasis.opensciencegrid.org\"]\nhttp_proxy = \"http://squid.example.edu:3128\"\nquota_mb = 30000\n";
const STAGEOUT: &str =
    "[pilot.stageout]\nendpoint = \"davs://se.example.edu:1094/store/user\"\nprotocol = \"davs\"\n";
const MESOS: &str = "[pilot.mesos]\nmaster = \"zk://zk1.example.edu:2181/mesos\"\ncpus = 2\nmemory_mb = 4096\ndisk_gb = 20\nattributes = { rack = \"cloud\" }\n";

fn config(ccb: bool, install: bool, blocks: &[&str]) -> Config {
    let mut pilot = String::new();
    if ccb {
        pilot += "ccb = true\ntcp_forwarding_host = \"gw.example.edu\"\n";
    }
    if install {
        pilot += "install_packages = true\n";
    }
    let text = BASE.replace(
        "[pilot]\ntrust_domain = \"example.edu\"\n",
        &format!(
            "[pilot]\ntrust_domain = \"example.edu\"\n{pilot}{}",
            blocks.concat()
        ),
    );
    cloudburst::config::parse("pilot.toml", &text).unwrap()
}

/// Every combination worth checking: (name, config, site, flavour, group).
fn matrix() -> Vec<(
    String,
    Config,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    let mut out = Vec::new();
    let options: [(&str, &[&str]); 5] = [
        ("plain", &[]),
        ("cvmfs", &[CVMFS]),
        ("stageout", &[STAGEOUT]),
        ("mesos", &[MESOS]),
        ("all", &[CVMFS, STAGEOUT, MESOS]),
    ];
    for (name, blocks) in options {
        for ccb in [false, true] {
            for install in [false, true] {
                for (site, flavor, group) in [
                    ("aws", "c7i.2xlarge", None),
                    ("aws", "g5.xlarge", None),
                    ("jetstream2", "m3.medium", Some("lhcb")),
                ] {
                    out.push((
                        format!("{name}-ccb{ccb}-install{install}-{site}-{flavor}"),
                        config(ccb, install, blocks),
                        site,
                        flavor,
                        group,
                    ));
                }
            }
        }
    }
    out
}

fn spec<'a>(
    cfg: &'a Config,
    site: &str,
    flavor: &str,
    group: Option<&str>,
    token: &'a Secret,
) -> PilotSpec<'a> {
    PilotSpec {
        config: cfg,
        site: cfg.site(site).unwrap(),
        flavor: cfg.flavor(site, flavor).unwrap(),
        group: group.map(|g| cfg.group(g).unwrap()),
        node_id: "n-0042",
        token,
        ca_pem: None,
    }
}

#[test]
fn every_rendered_user_data_passes_cloud_inits_schema() {
    if !support::have("cloud-init") || !Path::new("/usr/bin/python3").exists() {
        support::skip("cloud-init (Debian package) for its schema validator");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = Secret::new(TOKEN.into());
    let mut files = Vec::new();
    for (name, cfg, site, flavor, group) in matrix() {
        let ud = render(&spec(&cfg, site, flavor, group, &token)).unwrap();
        assert!(ud.expose().starts_with("#cloud-config\n"), "{name}");
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, ud.expose()).unwrap();
        files.push(path);
    }
    // The Python schema API, strict, for every document; and our own key
    // allow-list (the schema accepts unknown top-level keys).
    let program = format!(
        r#"
import json, sys, yaml
from cloudinit.config.schema import validate_cloudconfig_schema, get_schema
schema = get_schema()
allowed = set({keys:?})
out = {{}}
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path))
    try:
        validate_cloudconfig_schema(doc, schema=schema, strict=True)
        err = None
    except Exception as e:
        err = str(e)
    files = {{f["path"]: f for f in doc.get("write_files", [])}}
    out[path] = {{"error": err, "unknown_keys": sorted(set(doc) - allowed),
                  "files": {{p: {{"mode": f.get("permissions"), "content": f.get("content", "")}} for p, f in files.items()}},
                  "runcmd": doc.get("runcmd", [])}}
json.dump(out, sys.stdout)
"#,
        keys = CLOUD_CONFIG_KEYS
    );
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(&program)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in &files {
        let r = &results[path.to_str().unwrap()];
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(r["error"].is_null(), "{name}: {}", r["error"]);
        assert_eq!(r["unknown_keys"], serde_json::json!([]), "{name}");
        let token_file = &r["files"]["/etc/condor/tokens.d/cloudburst-pilot.token"];
        assert_eq!(token_file["mode"], "0600", "{name}");
        assert_eq!(
            token_file["content"].as_str().unwrap().trim(),
            TOKEN,
            "{name}"
        );
        let cmds = r["runcmd"].to_string();
        assert!(
            cmds.contains("169.254.169.254"),
            "{name}: metadata closed to jobs"
        );
        // The metadata rule comes before condor starts.
        assert!(
            cmds.find("169.254.169.254").unwrap() < cmds.find("condor.service").unwrap(),
            "{name}"
        );
        let has = |p: &str| !r["files"][p].is_null();
        assert_eq!(
            has("/etc/cvmfs/default.local"),
            name.starts_with("cvmfs") || name.starts_with("all"),
            "{name}"
        );
        assert_eq!(
            has("/etc/cloudburst/stage-out.json"),
            name.starts_with("stageout") || name.starts_with("all"),
            "{name}"
        );
        assert_eq!(
            has("/etc/systemd/system/cloudburst-mesos-agent.service"),
            name.starts_with("mesos") || name.starts_with("all"),
            "{name}"
        );
    }
    // And cloud-init's own command line on a few.
    for path in files.iter().step_by(17) {
        let out = Command::new("cloud-init")
            .args(["schema", "--config-file"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The validator does catch mistakes (the test could fail).
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "#cloud-config\nwrite_files:\n  - path: 7\n    bogus: x\n",
    )
    .unwrap();
    let out = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    eprintln!(
        "pilot: {} rendered user-data documents valid for cloud-init",
        files.len()
    );
}

const PARAMS: &str = r#"
import json, os, sys, htcondor2, classad2
out = []
for path in sys.argv[1:]:
    os.environ["CONDOR_CONFIG"] = path
    htcondor2.reload_config()
    p = htcondor2.param
    keys = ["CONDOR_HOST", "COLLECTOR_HOST", "DAEMON_LIST", "STARTD_ATTRS", "MASTER_ATTRS", "START", "CloudNode",
            "CloudSite", "CloudProvider", "CloudFlavor", "CloudburstNodeId", "CloudburstGroup", "HAS_CVMFS",
            "NUM_CPUS", "MEMORY", "RESERVED_DISK", "SLOT_TYPE_1_PARTITIONABLE", "STARTD_NOCLAIM_SHUTDOWN", "MASTER.DAEMON_SHUTDOWN",
            "SEC_DEFAULT_AUTHENTICATION_METHODS", "SEC_DEFAULT_ENCRYPTION", "CCB_ADDRESS", "TCP_FORWARDING_HOST",
            "ALLOW_ADMINISTRATOR", "FILESYSTEM_DOMAIN", "JOB_TRANSFORM_NAMES", "JOB_TRANSFORM_CloudburstMark",
            "JOB_TRANSFORM_CloudburstRequire", "COLLECTOR_REQUIREMENTS", "COLLECTOR.ALLOW_ADVERTISE_STARTD",
            "COLLECTOR.ALLOW_ADVERTISE_MASTER", "JOB_ROUTER_ROUTE_NAMES", "JOB_ROUTER_ROUTE_Cloud",
            "JOB_ROUTER_ROUTE_CloudOrLocal", "JOB_ROUTER_POST_ROUTE_TRANSFORM_NAMES", "JOB_ROUTER_TRANSFORM_CloudburstLocalOnly",
            "MAXJOBRETIREMENTTIME", "MachineMaxVacateTime", "CLOUDBURST_HARD_STOP"]
    # Some knobs come back typed (NUM_CPUS as int): compare as text.
    vals = {k: (None if p.get(k) is None else str(p.get(k))) for k in keys}
    # Expressions HTCondor will evaluate must parse as ClassAds.
    for k in ["START", "MASTER.DAEMON_SHUTDOWN", "COLLECTOR_REQUIREMENTS", "MAXJOBRETIREMENTTIME"]:
        if vals[k] is not None:
            classad2.ExprTree(vals[k])
    out.append(vals)
print(json.dumps(out))
"#;

#[test]
fn the_rendered_condor_config_reads_as_intended_in_htcondor() {
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = Secret::new(TOKEN.into());
    let cases = [
        (
            "plain",
            config(false, false, &[]),
            "aws",
            "c7i.2xlarge",
            None,
        ),
        (
            "ccb-mesos",
            config(true, false, &[MESOS]),
            "aws",
            "c7i.2xlarge",
            None,
        ),
        (
            "group",
            config(false, false, &[]),
            "jetstream2",
            "m3.medium",
            Some("lhcb"),
        ),
    ];
    let mut paths = Vec::new();
    for (name, cfg, site, flavor, group) in &cases {
        let text = condor_config(&spec(cfg, site, flavor, *group, &token)).unwrap();
        let p = dir.path().join(format!("{name}.conf"));
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let v = py(PARAMS, &refs);
    let plain = &v[0];
    assert_eq!(plain["CONDOR_HOST"], "cm.example.edu");
    assert_eq!(plain["COLLECTOR_HOST"], "cm.example.edu:9618");
    assert_eq!(plain["DAEMON_LIST"], "MASTER, STARTD");
    assert_eq!(plain["CloudNode"], "True");
    assert_eq!(plain["CloudSite"], "\"aws\"");
    assert_eq!(plain["CloudProvider"], "\"ec2\"");
    assert_eq!(plain["CloudFlavor"], "\"c7i.2xlarge\"");
    assert_eq!(plain["CloudburstNodeId"], "\"n-0042\"");
    assert_eq!(plain["HAS_CVMFS"], "true");
    let attrs: Vec<&str> = plain["STARTD_ATTRS"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    for a in [
        "CloudNode",
        "CloudSite",
        "CloudProvider",
        "CloudFlavor",
        "CloudInstanceID",
        "CloudburstNodeId",
        "HAS_CVMFS",
    ] {
        assert!(attrs.contains(&a), "STARTD_ATTRS lacks {a}: {attrs:?}");
    }
    assert!(plain["MASTER_ATTRS"]
        .as_str()
        .unwrap()
        .contains("CloudNode"));
    // The flavour's START, and the hard stop's: a job stating its run time
    // starts only if it ends in time (no hard stop before boot writes it).
    let start = plain["START"].as_str().unwrap();
    assert!(
        start.starts_with("(TARGET.WantCloud =?= true) && (0 <= 0 || time() + ifThenElse(TARGET.AllowedJobDuration"),
        "{start}"
    );
    // Sized starts: a smaller flavour (g5.xlarge) exists at the site.
    assert!(
        start.ends_with("&& (MY.Cpus < MY.TotalSlotCpus || (((TARGET.RequestCpus ?: 1) > 4 || (TARGET.RequestMemory ?: 0) > 16384 || (TARGET.RequestDisk ?: 0) > 262144000 || (TARGET.RequestGpus ?: 0) > 1)))"),
        "{start}"
    );
    assert_eq!(plain["CLOUDBURST_HARD_STOP"], "0");
    assert_eq!(plain["MachineMaxVacateTime"], "120");
    assert_eq!(
        plain["MAXJOBRETIREMENTTIME"],
        "ifThenElse(isUndefined(JobStart) || 0 <= 0, 0, 0 - 180 - JobStart)"
    );
    assert_eq!(
        (plain["NUM_CPUS"].as_str(), plain["MEMORY"].as_str()),
        (Some("8"), Some("16384"))
    );
    assert_eq!(plain["SLOT_TYPE_1_PARTITIONABLE"], "True");
    assert_eq!(
        plain["STARTD_NOCLAIM_SHUTDOWN"], "1800",
        "2 x idle_timeout (10 m default) + 10 m"
    );
    assert!(plain["MASTER.DAEMON_SHUTDOWN"]
        .as_str()
        .unwrap()
        .contains("STARTD_StartTime =?= 0"));
    assert_eq!(plain["SEC_DEFAULT_AUTHENTICATION_METHODS"], "FS, IDTOKENS");
    assert_eq!(plain["SEC_DEFAULT_ENCRYPTION"], "REQUIRED");
    assert_eq!(plain["FILESYSTEM_DOMAIN"], "aws.cloudburst");
    assert!(plain["CCB_ADDRESS"].is_null(), "no CCB unless asked");
    assert_eq!(
        plain["ALLOW_ADMINISTRATOR"],
        "condor@*/cm.example.edu, root@localhost, condor@localhost"
    );

    let ccb = &v[1];
    assert_eq!(ccb["CCB_ADDRESS"], "cm.example.edu:9618");
    assert_eq!(ccb["TCP_FORWARDING_HOST"], "gw.example.edu");
    // Mesos gets its share; condor the rest (the disk in MiB).
    assert_eq!(
        (
            ccb["NUM_CPUS"].as_str(),
            ccb["MEMORY"].as_str(),
            ccb["RESERVED_DISK"].as_str()
        ),
        (Some("6"), Some("12288"), Some("20480"))
    );

    let group = &v[2];
    assert_eq!(group["CloudburstGroup"], "\"lhcb\"");
    assert!(
        group["START"]
            .as_str()
            .unwrap()
            .starts_with("true && (TARGET.CloudburstToken =?= \"lhcb-burst\") && (0 <= 0 ||"),
        "{}",
        group["START"]
    );
    assert_eq!(group["CloudProvider"], "\"openstack\"");
}

/// The central manager's `COLLECTOR_REQUIREMENTS`, as HTCondor's config
/// reader expands it (with `TRUST_DOMAIN = cloudburst.test`), evaluated by
/// the official ClassAd library against the ads a collector is sent:
/// each cloud ad only from its own node's identity, nothing else from a
/// pilot identity.
const COLLECTOR_VERDICTS: &str = r#"
import json, os, sys, htcondor2, classad2
os.environ["CONDOR_CONFIG"] = sys.argv[1]
os.environ["_CONDOR_TRUST_DOMAIN"] = "cloudburst.test"
htcondor2.reload_config()
req = classad2.ExprTree(htcondor2.param["COLLECTOR_REQUIREMENTS"])
out = []
for ad in json.loads(sys.argv[2]):
    c = classad2.ClassAd(ad)
    c["R"] = req
    out.append(c.eval("R") is True)
print(json.dumps(out))
"#;

#[test]
fn the_collector_takes_cloud_ads_only_from_the_node_they_name() {
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let cm = support::repo().join("condor-config/50-cloudburst-central-manager.conf");
    let own = "cloudburst-pilot-aws-000001@cloudburst.test";
    let cases = serde_json::json!([
        // (ad, taken?)
        [{"MyType": "Machine", "CloudNode": true, "CloudburstNodeId": "aws-000001", "AuthenticatedIdentity": own}, true],
        [{"MyType": "Master", "CloudNode": true, "CloudburstNodeId": "aws-000001", "AuthenticatedIdentity": own}, true],
        [{"MyType": "Machine", "CloudNode": true, "CloudburstNodeId": "aws-000002", "AuthenticatedIdentity": own}, false],
        [{"MyType": "Machine", "CloudNode": true, "AuthenticatedIdentity": own}, false],
        [{"MyType": "Machine", "CloudNode": true, "CloudburstNodeId": "aws-000001", "AuthenticatedIdentity": "condor@cm.example.edu"}, false],
        [{"MyType": "Machine", "CloudNode": true, "CloudburstNodeId": "aws-000001"}, false],
        [{"MyType": "Machine", "AuthenticatedIdentity": own}, false],
        [{"MyType": "Machine", "CloudNode": false, "AuthenticatedIdentity": own}, false],
        [{"MyType": "Machine", "AuthenticatedIdentity": "condor@cm.example.edu"}, true],
        [{"MyType": "Machine"}, true],
        // No ad type is exempt: a pilot's master and startd daemon ads are
        // tied to its node too, and a pilot identity sends nothing else.
        [{"MyType": "DaemonMaster", "CloudNode": true, "CloudburstNodeId": "aws-000002", "AuthenticatedIdentity": own}, false],
        [{"MyType": "StartD", "CloudNode": true, "CloudburstNodeId": "aws-000001", "AuthenticatedIdentity": own}, true],
        [{"MyType": "Scheduler", "AuthenticatedIdentity": own}, false],
        [{"MyType": "Scheduler", "AuthenticatedIdentity": "condor@cm.example.edu"}, true],
    ]);
    let ads: Vec<&Value> = cases.as_array().unwrap().iter().map(|c| &c[0]).collect();
    let want: Vec<bool> = cases
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[1].as_bool().unwrap())
        .collect();
    let got = py(
        COLLECTOR_VERDICTS,
        &[
            cm.display().to_string(),
            serde_json::to_string(&ads).unwrap(),
        ],
    );
    let got: Vec<bool> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    for ((ad, w), g) in ads.iter().zip(&want).zip(&got) {
        assert_eq!(w, g, "COLLECTOR_REQUIREMENTS on {ad}");
    }
}

#[test]
fn the_condor_config_files_read_as_intended_in_htcondor() {
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let root = support::repo();
    let files = [
        root.join("condor-config/50-cloudburst-central-manager.conf"),
        root.join("condor-config/50-cloudburst-schedd.conf"),
        root.join("condor-config/50-cloudburst-pilot.conf"),
        root.join("jobmanager/htcondor-ce/50-cloudburst-route.conf"),
    ];
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let v = py(PARAMS, &refs);
    let (cm, schedd, pilot, ce) = (&v[0], &v[1], &v[2], &v[3]);

    let req = cm["COLLECTOR_REQUIREMENTS"].as_str().unwrap();
    assert!(
        req.contains("strcat(\"cloudburst-pilot-\", CloudburstNodeId"),
        "{req}"
    );
    for k in [
        "COLLECTOR.ALLOW_ADVERTISE_STARTD",
        "COLLECTOR.ALLOW_ADVERTISE_MASTER",
    ] {
        let allow = cm[k].as_str().unwrap();
        assert!(
            allow.contains("cloudburst-pilot-*@") && allow.ends_with("/*"),
            "{k} = {allow}"
        );
    }
    assert!(cm["SEC_DEFAULT_AUTHENTICATION_METHODS"]
        .as_str()
        .unwrap()
        .contains("IDTOKENS"));

    // Transforms: `param` expands $(MY.Requirements) to nothing, so the
    // structure is checked, not the expanded text.
    let names: Vec<&str> = schedd["JOB_TRANSFORM_NAMES"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(names, ["CloudburstMark", "CloudburstRequire"]);
    let mark = schedd["JOB_TRANSFORM_CloudburstMark"].as_str().unwrap();
    assert!(
        mark.contains("REQUIREMENTS") && mark.contains("SET WantCloud true"),
        "{mark}"
    );
    let require = schedd["JOB_TRANSFORM_CloudburstRequire"].as_str().unwrap();
    assert!(
        require.contains("SET Requirements") && require.contains("(TARGET.CloudNode =?= True)"),
        "{require}"
    );

    assert_eq!(pilot["DAEMON_LIST"], "MASTER, STARTD");
    assert_eq!(pilot["CloudNode"], "True");
    assert_eq!(pilot["START"], "False");
    assert_eq!(pilot["SEC_DEFAULT_AUTHENTICATION_METHODS"], "FS, IDTOKENS");

    // The two cloud routes first, then the site's; every other routed
    // job is kept off cloud nodes after its route.
    let routes: Vec<&str> = ce["JOB_ROUTER_ROUTE_NAMES"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(routes, ["Cloud", "CloudOrLocal"]);
    assert_eq!(
        ce["JOB_ROUTER_POST_ROUTE_TRANSFORM_NAMES"]
            .as_str()
            .map(str::trim),
        Some("CloudburstLocalOnly")
    );
    let either = ce["JOB_ROUTER_ROUTE_CloudOrLocal"].as_str().unwrap();
    assert!(
        either.contains("SET CloudburstAnywhere true") && !either.contains("CloudNode"),
        "{either}"
    );
    let local = ce["JOB_ROUTER_TRANSFORM_CloudburstLocalOnly"]
        .as_str()
        .unwrap();
    assert!(local.contains("(TARGET.CloudNode =!= true)"), "{local}");
    let route = ce["JOB_ROUTER_ROUTE_Cloud"].as_str().unwrap();
    for line in [
        "UNIVERSE VANILLA",
        "SET WantCloud true",
        "SET Requirements (TARGET.CloudNode =?= True)",
    ] {
        assert!(
            route.lines().any(|l| l.trim() == line),
            "route lacks {line:?}:\n{route}"
        );
    }
    assert!(route.contains("REQUIREMENTS (queue =?= \"cloud\")"));
}

#[test]
fn the_gram_modules_write_the_submit_description_of_their_queue() {
    let work = tempfile::tempdir().unwrap();
    let Some(written) = support::gram_submit_descriptions(work.path()) else {
        return;
    };
    // Each description, read by HTCondor's own submit parser.
    let Some(_) = support::python() else { return };
    for ((module, path), (_, want_cloud, anywhere, requirements)) in
        written.iter().zip(support::GRAM_QUEUES)
    {
        let v = py(
            r#"
import json, sys, htcondor2
s = htcondor2.Submit(open(sys.argv[1]).read())
print(json.dumps({k: s.get(k) for k in ["universe", "executable", "arguments", "environment", "request_cpus",
                                         "request_memory", "+WantCloud", "MY.WantCloud", "+CloudburstAnywhere",
                                         "MY.CloudburstAnywhere", "requirements", "periodic_remove", "MY.GlobusQueue"]}))
"#,
            &[path],
        );
        assert_eq!(v["universe"], "vanilla", "{module}");
        assert_eq!(v["executable"], "/bin/cmsRun");
        assert_eq!(v["request_cpus"], "4");
        assert_eq!(v["request_memory"], "8000");
        let got = |k: &str| {
            v[format!("MY.{k}")]
                .as_str()
                .or(v[format!("+{k}")].as_str())
        };
        assert_eq!(got("WantCloud"), want_cloud, "{module}: {v}");
        assert_eq!(got("CloudburstAnywhere"), anywhere, "{module}: {v}");
        assert_eq!(v["requirements"].as_str(), requirements, "{module}: {v}");
        assert_eq!(v["arguments"], "\"-j FrameworkJobReport.xml 'it''s here'\"");
        assert!(v["periodic_remove"].as_str().unwrap().contains("7200"));
    }
}

#[test]
fn the_image_recipe_passes_shellcheck() {
    if !support::have("shellcheck") {
        support::skip("shellcheck (Debian package)");
        return;
    }
    let root = support::repo();
    let out = Command::new("shellcheck")
        .arg("-x")
        .arg(root.join("images/build-pilot-image.sh"))
        .arg(root.join("tests/run.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn render_pilot_never_prints_the_token_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("{BASE}\n{CVMFS}")).unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, format!("{TOKEN}\n")).unwrap();
    let bin = env!("CARGO_BIN_EXE_cloudburst");
    let run = |extra: &[&str]| {
        Command::new(bin)
            .args(["render-pilot", "--config"])
            .arg(&cfg)
            .args(["--site", "aws", "--flavor", "c7i.2xlarge", "--token-file"])
            .arg(&tok)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("#cloud-config"));
    assert!(
        !text.contains("SECRET-SIGNATURE")
            && !String::from_utf8_lossy(&out.stderr).contains("SECRET-SIGNATURE")
    );
    assert!(text.contains("<redacted"));
    let shown = run(&["--show-secrets"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains(TOKEN));
    // A wrong site is a clear error, not a panic.
    let bad = Command::new(bin)
        .args(["render-pilot", "--config"])
        .arg(&cfg)
        .args(["--site", "nowhere", "--flavor", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no site named \"nowhere\""));
}

/// The schedd transform's REQUIREMENTS, as HTCondor reads the file, run by
/// libclassad on job ads: each job's own Requirements says whether it wants
/// the cloud, and only those that require it are marked.
const TRANSFORM_MARKS: &str = r#"
import json, os, sys, htcondor2, classad2
os.environ["CONDOR_CONFIG"] = sys.argv[1]
htcondor2.reload_config()
mark = htcondor2.param["JOB_TRANSFORM_CloudburstMark"]
line = next(l.strip() for l in mark.splitlines() if l.strip().startswith("REQUIREMENTS"))
cond = classad2.ExprTree(line[len("REQUIREMENTS"):].strip())
out = {}
for req in json.loads(sys.argv[2]):
    ad = classad2.ClassAd()
    ad["Requirements"] = classad2.ExprTree(req)
    out[req] = cond.eval(ad) is True
print(json.dumps(out))
"#;

#[test]
fn the_schedd_transform_marks_only_jobs_that_require_the_cloud() {
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let wants = [
        "(TARGET.CloudNode =?= true)",
        "((TARGET.CloudNode is true)) && (TARGET.Arch == \"X86_64\")",
        "TARGET.CloudNode == true && TARGET.Memory >= 1024",
        "TARGET.CloudNode",
        "(TARGET.OpSys == \"LINUX\") && TARGET.CloudNode",
        "CloudNode =?= True",
    ];
    let refuses = [
        "(TARGET.CloudNode =!= true)",
        "TARGET.CloudNode isnt true && TARGET.Arch == \"X86_64\"",
        "TARGET.CloudNode != true",
        "!TARGET.CloudNode",
        "!(TARGET.CloudNode =?= true)",
        "(TARGET.CloudNode =?= false)",
        "TARGET.CloudNode is false",
        "(TARGET.Arch == \"X86_64\")",
        "TARGET.CloudNodeCount > 0",
        "true",
    ];
    let all: Vec<&str> = wants.iter().chain(refuses.iter()).copied().collect();
    let args = [
        support::repo()
            .join("condor-config/50-cloudburst-schedd.conf")
            .into_os_string(),
        serde_json::to_string(&all).unwrap().into(),
    ];
    let marked: std::collections::BTreeMap<String, bool> =
        serde_json::from_value(py(TRANSFORM_MARKS, &args)).unwrap();
    for r in wants {
        assert!(
            marked[r],
            "a job with Requirements {r} requires the cloud: marked"
        );
    }
    for r in refuses {
        assert!(
            !marked[r],
            "a job with Requirements {r} does not require the cloud: not marked"
        );
    }
}

/// Loads a central manager config with HTCondor's reader and evaluates
/// its `SEC_TOKEN_REVOCATION_EXPR` against each token's claims as the
/// collector does (`Condor_Auth_Passwd::isTokenRevoked`): the claims as
/// a ClassAd, and anything but a boolean-like value is a revocation.
const REVOCATION_VERDICTS: &str = r#"
import json, os, sys, htcondor2, classad2
os.environ["CONDOR_CONFIG"] = sys.argv[1]
os.environ["_CONDOR_TRUST_DOMAIN"] = "cloudburst.test"
htcondor2.reload_config()
expr = classad2.ExprTree(htcondor2.param["SEC_TOKEN_REVOCATION_EXPR"])
out = []
for claims in json.loads(sys.argv[2]):
    c = classad2.ClassAd(claims)
    c["Revoked"] = expr
    v = c.eval("Revoked")
    if isinstance(v, bool):
        out.append(v)
    elif isinstance(v, (int, float)):
        out.append(v != 0)
    else:
        out.append(True)
print(json.dumps(out))
"#;

/// A retired node's token is refused by the expression the central
/// manager loads (its snippet with the file the agent keeps), while a
/// live node's, a user's, a capability's and the pool's own are not; with
/// no file yet nothing is refused. Two nodes have two identities.
#[test]
fn a_retired_nodes_token_is_refused_by_the_central_managers_revocation_expression() {
    use cloudburst::agent::revocation::{Revocations, Update};
    use cloudburst::condor::commands::Outcome;
    use cloudburst::lifecycle::{Node, State};
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("revoked-pilots.conf");
    // The shipped snippet, including the agent's file from here.
    let snippet = std::fs::read_to_string(
        support::repo().join("condor-config/50-cloudburst-central-manager.conf"),
    )
    .unwrap();
    let shipped = "/var/lib/cloudburst-condor/revoked-pilots.conf";
    assert!(snippet.contains(shipped), "the snippet includes {shipped}");
    let cm = dir.path().join("condor_config");
    std::fs::write(&cm, snippet.replace(shipped, &file.display().to_string())).unwrap();

    let mut cfg = config(false, false, &[]);
    cfg.pilot.trust_domain = Some("cloudburst.test".into());
    cfg.pilot.revocation_file = Some(file.clone());
    let node = |id: &str, state: State| Node {
        state,
        ..Node::requested(id, "aws", "c7i.2xlarge", &format!("t-{id}"), 1_000)
    };
    let retired = cloudburst::pilot::token_identity(&cfg, "cms-t2-000001");
    let live = cloudburst::pilot::token_identity(&cfg, "cms-t2-000002");
    assert_ne!(retired, live, "each node its own identity");
    let claims = |sub: Option<&str>| {
        let mut c = serde_json::json!({
            "iss": "cloudburst.test", "iat": 1_000, "exp": 90_000,
            "jti": "c760c2af193a1fd4e40bc9c53c96ee7c",
            "scope": "condor:/ADVERTISE_STARTD condor:/ADVERTISE_MASTER condor:/READ",
        });
        if let Some(s) = sub {
            c["sub"] = s.into();
        }
        c
    };
    let tokens = serde_json::json!([
        claims(Some(&retired)),
        claims(Some(&live)),
        // A node whose id extends the retired one's.
        claims(Some(&cloudburst::pilot::token_identity(
            &cfg,
            "cms-t2-0000011"
        ))),
        claims(Some("alice@cloudburst.test")),
        claims(Some("condor@cloudburst.test")),
        claims(None),
    ]);
    let verdicts = |cm: &Path| -> Vec<bool> {
        serde_json::from_value(py(
            REVOCATION_VERDICTS,
            &[cm.display().to_string(), tokens.to_string()],
        ))
        .unwrap()
    };
    assert_eq!(verdicts(&cm), [false; 6], "no file yet: nothing refused");

    let nodes = [
        node("cms-t2-000001", State::Gone),
        node("cms-t2-000002", State::Busy),
    ];
    let mut r = Revocations::default();
    let applied = r.update(&cfg, &nodes, 1_100, || Outcome::Sent).unwrap();
    assert_eq!(applied, Update::Applied { identities: 1 });
    assert_eq!(
        verdicts(&cm),
        [true, false, false, false, false, false],
        "only the retired node's token is refused"
    );
}

/// Evaluates each case's `START` (as HTCondor's reader expands it from the
/// rendered file) with the official ClassAd library: the slot ad's
/// Requirements against the job ad.
const START_VERDICTS: &str = r#"
import json, os, sys, htcondor2, classad2
out = []
for case in json.loads(sys.argv[1]):
    os.environ["CONDOR_CONFIG"] = case["config"]
    htcondor2.reload_config()
    slot = classad2.ClassAd(case["slot"])
    slot["Requirements"] = classad2.ExprTree(htcondor2.param["START"])
    # matches(): the given ad's Requirements, evaluated against this one.
    out.append([classad2.ClassAd(case["job"]).matches(slot), htcondor2.param["START"]])
print(json.dumps(out))
"#;

/// Sized starts: the rendered `START` opens an empty pilot exactly for the
/// jobs the planner (and the simulator) expects to open it, and lets any
/// job onto a pilot already running one.
#[test]
fn an_empty_pilot_starts_only_the_jobs_the_planner_expects() {
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = Secret::new(TOKEN.into());
    let cfg = config(false, false, &[]);
    let options = cloudburst::demand::flavor_options(&cfg);
    let sizes = cloudburst::sizing::Sizes::of(&options, true);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for (i, o) in options
        .iter()
        .enumerate()
        .filter(|(_, o)| o.group.is_none())
    {
        let text = condor_config(&spec(&cfg, &o.site, &o.flavor, None, &token)).unwrap();
        let path = dir.path().join(format!("{}-{}.conf", o.site, o.flavor));
        std::fs::write(&path, text).unwrap();
        let total = o.capacity.cpus;
        for cpus in [1u64, 2, 4, 6, 8] {
            for memory in [1024u64, 8192, 20000] {
                for (left, waited) in [(total, 0), (total, 1000), (total - 1, 0)] {
                    // QDate: now, or long enough ago for the any-site wait.
                    let job = serde_json::json!({
                        "WantCloud": true, "RequestCpus": cpus, "RequestMemory": memory,
                        "RequestDisk": 1024, "QDate": now - waited,
                    });
                    let slot = serde_json::json!({
                        "Cpus": left, "TotalSlotCpus": total, "Memory": o.capacity.memory,
                    });
                    cases.push(serde_json::json!({
                        "config": path, "slot": slot, "job": job,
                    }));
                    let req = cloudburst::model::Resources {
                        cpus,
                        memory,
                        disk: 1024,
                        gpus: 0,
                    };
                    // START's time() is a second or two after `now`.
                    expected.push(left < total || sizes.opens_after(i, &req, waited));
                }
            }
        }
    }
    let got = py(START_VERDICTS, &[serde_json::to_string(&cases).unwrap()]);
    let got: Vec<(bool, String)> = serde_json::from_value(got).unwrap();
    assert_eq!(got.len(), expected.len());
    let wrong: Vec<_> = cases
        .iter()
        .zip(got.iter().zip(&expected))
        .filter(|(_, ((g, _), e))| g != *e)
        .map(|(c, ((g, start), e))| format!("{c}: HTCondor {g}, planner {e}; START = {start}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The rule decides something: some empty pilot refuses some job, and
    // the wait lets some job in that a fresh one is refused.
    assert!(expected.iter().any(|e| !e), "no case is refused");
    let escapes = (0..options.len()).any(|i| {
        let one = cloudburst::model::Resources {
            cpus: 1,
            memory: 1024,
            disk: 1024,
            gpus: 0,
        };
        !sizes.opens_at_once(i, &one) && sizes.opens_after(i, &one, 1000)
    });
    assert!(escapes, "no flavour has a smaller one at another site");
    eprintln!("pilot: {} sized-start cases agree", got.len());
}

/// The CVMFS boot probe, taken from the rendered user-data (read by a
/// YAML parser) and run with stand-ins for `cvmfs_config` (cms.cern.ch
/// mounts at revision 4242, oasis does not), `attr`, `logger` and
/// `systemctl`; what it writes, read with the rendered condor config by
/// HTCondor's own reader: the pilot advertises `HAS_CVMFS_*` and the
/// revision, and a required repository that does not mount keeps condor
/// from starting and powers the node off.
#[test]
fn the_cvmfs_probe_advertises_each_repository_and_fails_the_boot_without_a_required_one() {
    let Some(_) = support::python() else {
        support::skip("a Python with PyPI htcondor");
        return;
    };
    let token = Secret::new(TOKEN.into());
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = work.path().join("calls");
    let stub = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = bin.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> {}\n{body}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    stub("cvmfs_config", "[ \"$2\" = cms.cern.ch ]");
    stub("attr", "echo 4242");
    stub("logger", "true");
    stub("systemctl", "true");
    for (required, joins) in [("required = [\"cms.cern.ch\"]\n", true), ("", false)] {
        let cfg = cloudburst::config::parse(
            "pilot.toml",
            &BASE.replace(
                "[pilot]\ntrust_domain = \"example.edu\"\n",
                &format!("[pilot]\ntrust_domain = \"example.edu\"\n{CVMFS}{required}"),
            ),
        )
        .unwrap();
        let s = spec(&cfg, "aws", "c7i.2xlarge", None, &token);
        let ud = work.path().join("user-data.yaml");
        std::fs::write(&ud, render(&s).unwrap().expose()).unwrap();
        let probe = py(
            r#"
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
files = {f["path"]: f["content"] for f in doc["write_files"]}
print(json.dumps({"probe": files["/usr/libexec/cloudburst/cvmfs-probe"],
                  "runcmd": doc["runcmd"]}))
"#,
            &[&ud],
        );
        let runcmd = probe["runcmd"].to_string();
        assert!(
            runcmd.find("cvmfs-probe").unwrap() < runcmd.find("condor.service").unwrap(),
            "the probe runs before condor starts: {runcmd}"
        );
        let script = work.path().join("cvmfs-probe");
        std::fs::write(&script, probe["probe"].as_str().unwrap()).unwrap();
        if support::have("shellcheck") {
            let sc = Command::new("shellcheck").arg(&script).output().unwrap();
            assert!(
                sc.status.success(),
                "{}",
                String::from_utf8_lossy(&sc.stdout)
            );
        }
        let _ = std::fs::remove_file(&log);
        let out_conf = work.path().join("52-cloudburst-cvmfs.conf");
        let failed = work.path().join("run/boot-failed");
        let _ = std::fs::remove_file(&failed);
        let ran = Command::new("sh")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("CLOUDBURST_CVMFS_CONFIG", &out_conf)
            .env("CLOUDBURST_BOOT_FAILED", &failed)
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(ran.status.success(), joins, "{calls}");
        assert_eq!(failed.exists(), !joins, "{calls}");
        assert_eq!(
            calls.contains("systemctl --no-block poweroff"),
            !joins,
            "{calls}"
        );
        if !joins {
            let why = std::fs::read_to_string(&failed).unwrap();
            assert!(why.contains("oasis.opensciencegrid.org"), "{why}");
        }
        // The rendered condor config and the probe's file, as condor reads
        // them in config.d order.
        let both = work.path().join("both.conf");
        std::fs::write(
            &both,
            condor_config(&s).unwrap() + &std::fs::read_to_string(&out_conf).unwrap(),
        )
        .unwrap();
        let v = py(
            r#"
import json, os, sys, htcondor2
os.environ["CONDOR_CONFIG"] = sys.argv[1]
htcondor2.reload_config()
p = htcondor2.param
print(json.dumps({k: p.get(k) for k in ["STARTD_ATTRS", "HAS_CVMFS_cms_cern_ch", "CVMFS_cms_cern_ch_REVISION",
                                         "HAS_CVMFS_oasis_opensciencegrid_org"]}))
"#,
            &[&both],
        );
        assert_eq!(v["HAS_CVMFS_cms_cern_ch"], "True", "{v}");
        assert_eq!(v["CVMFS_cms_cern_ch_REVISION"], "4242", "{v}");
        assert_eq!(v["HAS_CVMFS_oasis_opensciencegrid_org"], "False", "{v}");
        let advertised = v["STARTD_ATTRS"].as_str().unwrap();
        for a in [
            "HAS_CVMFS_cms_cern_ch",
            "CVMFS_cms_cern_ch_REVISION",
            "HAS_CVMFS_oasis_opensciencegrid_org",
        ] {
            assert!(
                advertised.split_whitespace().any(|x| x == a),
                "{a}: {advertised}"
            );
        }
    }
    // Condor's unit does not start on a node boot found unfit.
    let cfg = config(false, false, &[CVMFS]);
    let ud = render(&spec(&cfg, "aws", "c7i.2xlarge", None, &token)).unwrap();
    assert!(ud
        .expose()
        .contains("ConditionPathExists=!/run/cloudburst/boot-failed"));
}
