//! Demand: which idle cloud jobs could run on which flavours, decided by
//! real matchmaking between each job and the slot ad a pilot of that
//! flavour would advertise.
//!
//! Jobs that ask for the same thing share one ad (`condor::job`), so they
//! are grouped by that ad, as the negotiator's autoclusters group them:
//! 100,000 jobs in a few hundred shapes cost a few hundred matches per
//! flavour. A shape that no flavour can run is reported with the clause
//! that fails, and never causes a launch. Pure.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::classad::ast::{BinOp, ClassAd, Expr};
use crate::classad::unparse::to_text;
use crate::classad::{parse_expr, Matcher, Value};
use crate::condor::job::JobShape;
use crate::condor::{Job, JobId, JobStatus};
use crate::config::{Config, Flavor, Group, MesosConfig, Site};
use crate::model::attrs;
pub use crate::model::Resources;

/// A job's request as the planner packs it. Undefined requests take
/// HTCondor's usual defaults: 1 cpu, 128 MB, no disk, no GPU.
pub fn request_of(job: &Job) -> Resources {
    Resources {
        cpus: job.request().cpus.unwrap_or(1).max(1),
        memory: job.request().memory.unwrap_or(128),
        disk: job.request().disk.unwrap_or(0),
        gpus: job.request().gpus.unwrap_or(0),
    }
}

/// What the startd computes for a partitionable slot, as a 25.14 pilot
/// advertised it (`tests/data/condor/live/condor_status-long.txt`).
pub const WITHIN_RESOURCE_LIMITS: &str = "MY.Cpus > 0 && TARGET.RequestCpus <= MY.Cpus && MY.Memory > 0 && TARGET.RequestMemory <= MY.Memory && MY.Disk > 0 && (TARGET.RequestDisk - ifthenelse(MappingMethod ?: \"\" != \"Copy\",ifthenelse(RequestedCatalogs =?= undefined || catalogs =?= undefined,0,sum(evalInEachContext(member(CatalogID,RequestedCatalogIDs) ? CatalogSize : 0,catalogs))),0)) <= MY.Disk && (TARGET.RequestGPUs =?= undefined || MY.GPUs >= TARGET.RequestGPUs)";

/// A flavour at a site, for the general pool or for one protected group,
/// with the slot ad its pilot would advertise.
#[derive(Clone, Debug)]
pub struct FlavorOption {
    pub site: String,
    pub flavor: String,
    pub group: Option<String>,
    pub capacity: Resources,
    /// What its pilot offers Mesos (`crate::mesos::share`; none without
    /// `[pilot.mesos]`).
    pub mesos_share: Resources,
    pub price_per_hour: f64,
    pub priority: i32,
    pub spot: bool,
    pub ad: ClassAd,
}

impl FlavorOption {
    pub fn label(&self) -> String {
        match &self.group {
            Some(g) => format!("{}/{} (group {g})", self.site, self.flavor),
            None => format!("{}/{}", self.site, self.flavor),
        }
    }
}

fn expr(text: &str) -> Expr {
    // Config validation has parsed every expression that reaches here.
    parse_expr(text.as_bytes()).unwrap_or(Expr::Error)
}

/// The partitionable slot a fresh pilot of this flavour advertises, as the
/// pilot config of `src/pilot` writes it.
pub fn template_ad(
    site: &Site,
    flavor: &Flavor,
    group: Option<&Group>,
    mesos: Option<&MesosConfig>,
    cvmfs: Option<&crate::config::CvmfsConfig>,
) -> ClassAd {
    let mut ad = ClassAd::new();
    let cap = capacity(flavor, mesos);
    let int = |v: u64| Expr::Int(v as i64);
    ad.insert_str("MyType", Expr::string("Machine"));
    ad.insert_str("SlotType", Expr::string("Partitionable"));
    ad.insert_str("PartitionableSlot", Expr::Bool(true));
    for (name, v) in [
        ("Cpus", cap.cpus),
        ("TotalCpus", cap.cpus),
        ("TotalSlotCpus", cap.cpus),
        ("Memory", cap.memory),
        ("TotalMemory", cap.memory),
        ("TotalSlotMemory", cap.memory),
        ("Disk", cap.disk),
        ("TotalDisk", cap.disk),
        ("TotalSlotDisk", cap.disk),
        ("GPUs", cap.gpus),
        ("TotalGPUs", cap.gpus),
    ] {
        ad.insert_str(name, int(v));
    }
    ad.insert_str("OpSys", Expr::string(&site.opsys));
    ad.insert_str("Arch", Expr::string(&site.arch));
    if let Some(v) = &site.opsys_and_ver {
        ad.insert_str("OpSysAndVer", Expr::string(v));
    }
    ad.insert_str(
        "CondorVersion",
        Expr::string(&format!("$CondorVersion: {} $", site.condor_version)),
    );
    ad.insert_str("HasFileTransfer", Expr::Bool(true));
    // Each pilot is its own file system domain: jobs that need the
    // submit host's shared file system cannot run there.
    ad.insert_str(
        "FileSystemDomain",
        Expr::string(&format!("{}.cloudburst", site.name.get_ref())),
    );
    ad.insert_str(attrs::CLOUD_NODE, Expr::Bool(true));
    ad.insert_str(attrs::CLOUD_SITE, Expr::string(site.name.get_ref()));
    ad.insert_str(attrs::CLOUD_PROVIDER, Expr::string(site.provider.name()));
    ad.insert_str(attrs::CLOUD_FLAVOR, Expr::string(flavor.name.get_ref()));
    if let Some(g) = group {
        ad.insert_str(attrs::GROUP, Expr::string(g.name.get_ref()));
    }
    for (name, value) in &flavor.attributes {
        ad.insert_str(name, expr(value.get_ref()));
    }
    // A node joins only with its required repositories mounted; an
    // optional one is planned for as mounted too.
    for repo in cvmfs.iter().flat_map(|c| &c.repositories) {
        ad.insert_str(&crate::config::has_cvmfs_attr(repo), Expr::Bool(true));
    }
    let start = flavor
        .start
        .as_ref()
        .map_or("true".to_string(), |s| format!("({})", s.get_ref()));
    let start = match group {
        Some(g) => format!("{start} && ({})", g.start_clause()),
        None => start,
    };
    ad.insert_str("Start", expr(&start));
    ad.insert_str("WithinResourceLimits", expr(WITHIN_RESOURCE_LIMITS));
    ad.insert_str("Requirements", expr("Start && WithinResourceLimits"));
    ad
}

/// What condor gets of a node of this flavour: all of it, less the share
/// a Mesos agent on the same pilot may offer (`pilot.mesos`). The pilot's
/// condor config advertises exactly this (`pilot::condor`).
pub fn capacity(f: &Flavor, mesos: Option<&MesosConfig>) -> Resources {
    let (mesos_cpus, mesos_memory, mesos_disk) =
        mesos.map_or((0, 0, 0), |m| (m.cpus, m.memory_mb, m.disk_gb.unwrap_or(0)));
    Resources {
        cpus: f.cpus.saturating_sub(mesos_cpus).max(1) as u64,
        memory: f.memory_mb.saturating_sub(mesos_memory).max(1),
        disk: f.disk_gb.saturating_sub(mesos_disk).max(1) * 1024 * 1024,
        gpus: f.gpus as u64,
    }
}

/// Every way a node can be launched: each flavour for the general pool,
/// and for each protected group allowed at its site.
pub fn flavor_options(config: &Config) -> Vec<FlavorOption> {
    let mut out = Vec::new();
    for site in &config.sites {
        for f in &site.flavors {
            let groups = std::iter::once(None).chain(
                config
                    .groups
                    .iter()
                    .filter(|g| {
                        g.sites.is_empty() || g.sites.iter().any(|s| s == site.name.get_ref())
                    })
                    .map(Some),
            );
            for g in groups {
                out.push(FlavorOption {
                    site: site.name.get_ref().clone(),
                    flavor: f.name.get_ref().clone(),
                    group: g.map(|g| g.name.get_ref().clone()),
                    capacity: capacity(f, config.pilot.mesos.as_ref()),
                    mesos_share: config
                        .pilot
                        .mesos
                        .as_ref()
                        .map(|m| crate::mesos::share(f, m))
                        .unwrap_or_default(),
                    price_per_hour: f.price_per_hour,
                    priority: site.priority,
                    spot: f.spot,
                    ad: template_ad(
                        site,
                        f,
                        g,
                        config.pilot.mesos.as_ref(),
                        config.pilot.cvmfs.as_ref(),
                    ),
                });
            }
        }
    }
    out
}

/// Idle jobs that ask for the same thing.
#[derive(Clone, Debug, Serialize)]
pub struct Shape {
    /// A few of its jobs, for messages.
    pub examples: Vec<JobId>,
    pub idle: u64,
    /// When its oldest job was submitted.
    pub oldest: i64,
    pub request: Resources,
    pub group: Option<String>,
    /// Indices into the options that can run it.
    pub options: Vec<usize>,
    /// Why no option can run it.
    pub unmatched: Option<String>,
    #[serde(skip)]
    pub shape: Arc<JobShape>,
}

/// The demand of one cycle.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Demand {
    pub shapes: Vec<Shape>,
    pub idle_jobs: u64,
    pub running_jobs: u64,
    /// Jobs whose requests could not be evaluated.
    pub problems: Vec<(JobId, String)>,
}

impl Demand {
    pub fn unmatched(&self) -> impl Iterator<Item = &Shape> {
        self.shapes.iter().filter(|s| s.options.is_empty())
    }
}

/// Groups idle jobs by shape and matches each shape against every option.
pub fn compute<'a>(
    jobs: impl IntoIterator<Item = &'a Job>,
    options: &[FlavorOption],
    groups: &[Group],
    now: i64,
) -> Demand {
    let mut demand = Demand::default();
    let mut by_ad: HashMap<*const JobShape, usize> = HashMap::new();
    for job in jobs {
        match job.status {
            JobStatus::Running => {
                demand.running_jobs += 1;
                continue;
            }
            JobStatus::Idle => {}
            _ => continue,
        }
        if let Some(p) = job.request_problem() {
            demand.problems.push((job.id, p.to_string()));
            continue;
        }
        demand.idle_jobs += 1;
        let i = *by_ad.entry(Arc::as_ptr(&job.shape)).or_insert_with(|| {
            demand.shapes.push(Shape {
                examples: Vec::new(),
                idle: 0,
                oldest: job.qdate,
                request: request_of(job),
                group: None,
                options: Vec::new(),
                unmatched: None,
                shape: Arc::clone(&job.shape),
            });
            demand.shapes.len() - 1
        });
        let s = &mut demand.shapes[i];
        s.idle += 1;
        s.oldest = s.oldest.min(job.qdate);
        if s.examples.len() < 3 {
            s.examples.push(job.id);
        }
    }
    let m = Matcher::new(now);
    let group_exprs: Vec<(String, Expr)> = groups
        .iter()
        .map(|g| (g.name.get_ref().clone(), expr(&g.job_constraint())))
        .collect();
    for s in &mut demand.shapes {
        s.group = group_exprs
            .iter()
            .find(|(_, e)| {
                crate::classad::matching::with_value(e, Some(&s.shape.ad), None, now, |v| {
                    matches!(v, Ok(Value::Bool(true)))
                })
            })
            .map(|(n, _)| n.clone());
        s.options = options
            .iter()
            .enumerate()
            .filter(|(_, o)| o.group == s.group && m.symmetric_match(&s.shape.ad, &o.ad))
            .map(|(i, _)| i)
            .collect();
        if s.options.is_empty() {
            let eligible: Vec<&FlavorOption> =
                options.iter().filter(|o| o.group == s.group).collect();
            s.unmatched = Some(explain(&m, &s.shape.ad, &eligible, s.group.as_deref()));
        }
    }
    // Oldest demand first: it is served first when launches are capped.
    demand
        .shapes
        .sort_by(|a, b| a.oldest.cmp(&b.oldest).then(a.examples.cmp(&b.examples)));
    demand
}

/// The top-level `&&` clauses of an expression.
fn clauses(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Binary(BinOp::And, lr) => {
            let mut v = clauses(&lr.0);
            v.extend(clauses(&lr.1));
            v
        }
        Expr::Paren(inner) if matches!(**inner, Expr::Binary(BinOp::And, _)) => clauses(inner),
        other => vec![other],
    }
}

fn is_true(m: &Matcher, e: &Expr, my: &ClassAd, target: &ClassAd) -> bool {
    m.eval_with(e, my, target, |v| matches!(v, Value::Bool(true)))
        .unwrap_or(false)
}

/// Why a job shape matches no option: the first of its own Requirements
/// clauses that every option fails, else the machine side that refuses.
pub fn explain(
    m: &Matcher,
    job: &ClassAd,
    options: &[&FlavorOption],
    group: Option<&str>,
) -> String {
    if options.is_empty() {
        return match group {
            Some(g) => format!("no flavour is configured for group {g}"),
            None => "no flavour is configured".to_string(),
        };
    }
    if let Some(req) = job.get(b"Requirements") {
        for c in clauses(req) {
            if options.iter().all(|o| !is_true(m, c, job, &o.ad)) {
                let text = to_text(c);
                // A CVMFS repository no pilot mounts says which setting.
                let hint = if text.contains("HAS_CVMFS_") {
                    " (a pilot advertises HAS_CVMFS_<repo> for each of pilot.cvmfs.repositories; this one is not among them)"
                } else {
                    ""
                };
                return format!("no flavour satisfies its Requirements clause {text}{hint}");
            }
        }
    }
    let accepting: Vec<&&FlavorOption> = options
        .iter()
        .filter(|o| m.requirements_accept(job, &o.ad))
        .collect();
    let limits = expr(WITHIN_RESOURCE_LIMITS);
    // A flavour it would fit but whose START refuses it says the most.
    for o in &accepting {
        let start = o.ad.get(b"Start").cloned().unwrap_or(Expr::Bool(true));
        if is_true(m, &limits, &o.ad, job) && !is_true(m, &start, &o.ad, job) {
            return format!(
                "{} does not start it: START = {}",
                o.label(),
                to_text(&start)
            );
        }
    }
    if let Some(o) = accepting
        .iter()
        .max_by_key(|o| (o.capacity.memory, o.capacity.cpus))
    {
        return format!(
            "its requests exceed every flavour it could use (largest: {}, {})",
            o.label(),
            o.capacity
        );
    }
    "each flavour fails a different clause of its Requirements".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condor::job::JobReader;

    const CONFIG: &str = r#"
[[sites]]
name = "aws"
provider = "ec2"
[[sites.flavors]]
name = "small"
cpus = 2
memory_mb = 4096
disk_gb = 50
price_per_hour = 0.1
[[sites.flavors]]
name = "big"
cpus = 16
memory_mb = 65536
disk_gb = 200
price_per_hour = 0.8
[[sites.flavors]]
name = "gpu"
cpus = 8
memory_mb = 131072
disk_gb = 200
gpus = 1
price_per_hour = 3.0
start = "TARGET.RequestGPUs >= 1"

[[groups]]
name = "cms"
accounting_group = "group_cms"
"#;

    /// The Requirements a 25.x schedd writes, as in the live capture.
    fn job(r: &mut JobReader, id: i64, extra: &str) -> Job {
        let text = format!(
            r#"[ClusterId = {id}; ProcId = 0; JobStatus = 1; QDate = {id}; Owner = "alice"; WantCloud = true;
               RequestCpus = 1; RequestMemory = 2048; RequestDisk = 1048576; FileSystemDomain = "submit.example.org";
               Requirements = ((TARGET.CloudNode is true)) && (TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (versionGE(split(TARGET.CondorVersion)[1],"25.12.0") || (TARGET.Disk >= RequestDisk)) && (TARGET.Memory >= RequestMemory) && ((TARGET.FileSystemDomain == MY.FileSystemDomain) || (TARGET.HasFileTransfer));
               {extra}]"#
        );
        r.job(crate::classad::parse_ad(text.as_bytes()).unwrap(), 0)
            .unwrap()
    }

    fn setup() -> (Config, Vec<FlavorOption>) {
        let c = crate::config::parse("c.toml", CONFIG).unwrap();
        let o = flavor_options(&c);
        (c, o)
    }

    #[test]
    fn a_real_25x_job_matches_the_pilot_template() {
        let (c, options) = setup();
        let mut r = JobReader::new();
        let jobs = vec![job(&mut r, 1, "")];
        let d = compute(&jobs, &options, &c.groups, 0);
        let names: Vec<_> = d.shapes[0]
            .options
            .iter()
            .map(|&i| options[i].label())
            .collect();
        // The GPU flavour's START wants GPU jobs only.
        assert_eq!(names, ["aws/small", "aws/big"]);
    }

    #[test]
    fn a_mesos_share_is_not_offered_to_condor_jobs() {
        // The pilot advertises the flavour less what Mesos may offer, so
        // a job wanting the whole big flavour matches nothing.
        let text = format!(
            "[pilot]\ncentral_manager = \"cm\"\n[pilot.mesos]\nmaster = \"m:5050\"\ncpus = 1\nmemory_mb = 1024\n{CONFIG}"
        );
        let c = crate::config::parse("c.toml", &text).unwrap();
        let options = flavor_options(&c);
        let big = options
            .iter()
            .find(|o| o.flavor == "big" && o.group.is_none())
            .unwrap();
        assert_eq!((big.capacity.cpus, big.capacity.memory), (15, 65536 - 1024));
        let mut r = JobReader::new();
        let jobs = vec![
            job(&mut r, 1, "RequestCpus = 16"),
            job(&mut r, 2, "RequestCpus = 15"),
        ];
        let d = compute(&jobs, &options, &c.groups, 0);
        let fits: Vec<(i64, usize)> = d
            .shapes
            .iter()
            .map(|s| (s.request.cpus as i64, s.options.len()))
            .collect();
        assert!(fits.contains(&(16, 0)), "{fits:?}");
        assert!(fits.contains(&(15, 1)), "{fits:?}");
    }

    #[test]
    fn jobs_group_by_shape() {
        let (c, options) = setup();
        let mut r = JobReader::new();
        let mut jobs: Vec<Job> = (0..1000).map(|i| job(&mut r, i, "")).collect();
        jobs.extend((1000..1010).map(|i| job(&mut r, i, "RequestMemory = 30000")));
        let d = compute(&jobs, &options, &c.groups, 0);
        assert_eq!(d.shapes.len(), 2);
        assert_eq!(d.idle_jobs, 1010);
        assert_eq!(d.shapes[0].idle, 1000);
        assert_eq!(d.shapes[1].request.memory, 30000);
        let big: Vec<_> = d.shapes[1]
            .options
            .iter()
            .map(|&i| options[i].flavor.as_str())
            .collect();
        assert_eq!(big, ["big"]);
    }

    #[test]
    fn unmatchable_jobs_say_which_clause_fails() {
        let (c, options) = setup();
        let mut r = JobReader::new();
        let jobs = vec![
            job(&mut r, 1, "RequestMemory = 512000"),
            job(&mut r, 2, "Requirements = TARGET.OpSys == \"WINDOWS\""),
            job(
                &mut r,
                3,
                "RequestGPUs = 2; Requirements = TARGET.GPUs >= RequestGPUs",
            ),
        ];
        let d = compute(&jobs, &options, &c.groups, 0);
        let reasons: Vec<_> = d
            .shapes
            .iter()
            .map(|s| s.unmatched.clone().unwrap())
            .collect();
        assert_eq!(
            reasons[0],
            "no flavour satisfies its Requirements clause (TARGET.Memory >= RequestMemory)"
        );
        assert_eq!(
            reasons[1],
            "no flavour satisfies its Requirements clause TARGET.OpSys == \"WINDOWS\""
        );
        assert_eq!(
            reasons[2],
            "no flavour satisfies its Requirements clause TARGET.GPUs >= RequestGPUs"
        );
    }

    #[test]
    fn the_machine_side_can_refuse_too() {
        let (c, options) = setup();
        let mut r = JobReader::new();
        // Fits memory-wise only on "gpu", whose START wants GPU jobs.
        let jobs = vec![job(
            &mut r,
            1,
            "RequestMemory = 65537; Requirements = TARGET.Memory >= 1",
        )];
        let d = compute(&jobs, &options, &c.groups, 0);
        let why = d.shapes[0].unmatched.clone().unwrap();
        assert_eq!(
            why,
            "aws/gpu does not start it: START = (TARGET.RequestGPUs >= 1)"
        );
        let jobs = vec![job(&mut r, 2, "RequestCpus = 64; Requirements = true")];
        let d = compute(&jobs, &options, &c.groups, 0);
        let why = d.shapes[0].unmatched.clone().unwrap();
        assert_eq!(why, "its requests exceed every flavour it could use (largest: aws/gpu, 8 cpu, 131072 MB, 1 gpu)");
    }

    #[test]
    fn a_job_can_require_a_configured_cvmfs_repository_and_is_told_of_another() {
        let text = format!(
            "{CONFIG}\n[pilot.cvmfs]\nrepositories = [\"cms.cern.ch\", \"oasis.opensciencegrid.org\"]\nhttp_proxy = \"DIRECT\"\n"
        );
        let c = crate::config::parse("c.toml", &text).unwrap();
        let options = flavor_options(&c);
        let mut r = JobReader::new();
        let jobs = vec![
            job(&mut r, 1, "Requirements = TARGET.HAS_CVMFS_cms_cern_ch =?= true"),
            job(
                &mut r,
                2,
                "Requirements = (TARGET.HAS_CVMFS_atlas_cern_ch =?= true) && (TARGET.Memory >= RequestMemory)",
            ),
        ];
        let d = compute(&jobs, &options, &c.groups, 0);
        assert!(
            d.shapes[0].unmatched.is_none(),
            "{:?}",
            d.shapes[0].unmatched
        );
        assert!(!d.shapes[0].options.is_empty());
        assert_eq!(
            d.shapes[1].unmatched.as_deref(),
            Some("no flavour satisfies its Requirements clause (TARGET.HAS_CVMFS_atlas_cern_ch is true) (a pilot advertises HAS_CVMFS_<repo> for each of pilot.cvmfs.repositories; this one is not among them)")
        );
        // Without [pilot.cvmfs] nothing advertises a repository.
        let (c, options) = setup();
        let d = compute(&jobs[..1], &options, &c.groups, 0);
        assert!(d.shapes[0].unmatched.is_some());
    }

    #[test]
    fn protected_groups_get_their_own_options() {
        let (c, options) = setup();
        let mut r = JobReader::new();
        let jobs = vec![
            job(&mut r, 1, "AcctGroup = \"group_cms\""),
            job(&mut r, 2, ""),
        ];
        let d = compute(&jobs, &options, &c.groups, 0);
        for s in &d.shapes {
            for &i in &s.options {
                assert_eq!(options[i].group, s.group);
            }
        }
        assert_eq!(d.shapes[0].group.as_deref(), Some("cms"));
        assert_eq!(d.shapes[1].group, None);
        // The group's nodes start only the group's jobs.
        let cms_small = options.iter().find(|o| o.group.is_some()).unwrap();
        let m = Matcher::new(0);
        assert!(!m.symmetric_match(&d.shapes[1].shape.ad, &cms_small.ad));
    }

    #[test]
    fn fits_counts_the_tightest_resource() {
        let node = Resources {
            cpus: 16,
            memory: 65536,
            disk: 1 << 30,
            gpus: 0,
        };
        let r = Resources {
            cpus: 1,
            memory: 8192,
            disk: 0,
            gpus: 0,
        };
        assert_eq!(node.fits(&r), 8);
        assert_eq!(node.fits(&Resources { gpus: 1, ..r }), 0);
    }
}
