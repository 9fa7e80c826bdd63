//! The lifecycle's promises through the real cycle (reconcile, demand,
//! planner, SQLite registry) in the simulated world, whose pilots stop
//! themselves as ours do: never kill running work, never strand a node.
//! Each test is a hole that once was open (issue 18).

use cloudburst::condor::job::JobReader;
use cloudburst::condor::Job;
use cloudburst::config::Config;
use cloudburst::cycle::{Agent, NoPilot, Report};
use cloudburst::demand::flavor_options;
use cloudburst::lifecycle::State;
use cloudburst::registry::Registry;
use cloudburst::sim::policy::Kind;
use cloudburst::sim::trace::TraceJob;
use cloudburst::sim::{compare, CloudModel, Faults, Setup, SimCloud, SimCondor, World};

const START: i64 = 1_796_169_600;

fn config(extra: &str) -> Config {
    let text = format!(
        r#"
[pool]
name = "life"
startd_missing_grace = "2m"
[timers]
cycle = "60s"
idle_timeout = "5m"
boot_timeout = "10m"
max_lifetime = "2h"
drain_grace = "1h"
terminate_timeout = "30m"
[limits]
max_nodes = 10
ramp = 1.0
launches_per_cycle = 10
removals_per_cycle = 10
removal_share = 1.0
backoff_initial = "2m"
backoff_max = "20m"
{extra}
[[sites]]
name = "aws"
provider = "ec2"
[[sites.flavors]]
name = "small"
cpus = 2
memory_mb = 8192
disk_gb = 50
price_per_hour = 0.10
"#
    );
    cloudburst::config::parse("life.toml", &text).unwrap()
}

/// A one-core cloud job as a 25.x schedd writes it, `extra` added.
fn job(r: &mut JobReader, cluster: i64, proc: i64, extra: &str) -> Job {
    let text = format!(
        r#"[ClusterId = {cluster}; ProcId = {proc}; JobStatus = 1; QDate = {cluster}; Owner = "u";
           WantCloud = true; RequestCpus = 1; RequestMemory = 1024; RequestDisk = 1048576; {extra}
           Requirements = ((TARGET.CloudNode is true)) && (TARGET.Memory >= RequestMemory)]"#
    );
    r.job(cloudburst::classad::parse_ad(text.as_bytes()).unwrap(), 0)
        .unwrap()
}

struct Run {
    world: World,
    registry: Registry,
    config: Config,
    tokens: u64,
}

impl Run {
    fn new(config: Config, cloud: CloudModel) -> Run {
        let world = World::new(flavor_options(&config), cloud, 7, START);
        world.set_pilot(&config);
        Run {
            world,
            registry: Registry::in_memory().unwrap(),
            config,
            tokens: 0,
        }
    }

    /// One agent cycle now, then the world runs a minute.
    fn cycle(&mut self) -> Report {
        let now = self.world.now();
        let tokens = &mut self.tokens;
        let mut agent = Agent::new(
            &self.config,
            &mut self.registry,
            Box::new(move |id: &str| {
                *tokens += 1;
                format!("{id}-{tokens}")
            }),
        );
        let r = agent
            .cycle(
                &mut SimCondor(self.world.clone()),
                &mut SimCloud(self.world.clone()),
                &NoPilot,
                now,
            )
            .unwrap();
        self.world.advance(now + 60);
        r
    }

    fn node(&mut self, state: State) -> Option<cloudburst::lifecycle::Node> {
        self.registry
            .nodes()
            .unwrap()
            .into_iter()
            .find(|n| n.state == state)
    }
}

/// Item 1: a steady stream of 40-minute jobs with `max_lifetime = 2h`
/// and `drain_grace = 1h` (the issue's scenario: 2,000 one-core jobs 20 s
/// apart). Nodes are drained at their lifetime busy or not and replaced;
/// the pilots' hard stop kills nothing. Before the fix busy nodes took new
/// jobs past their lifetime and ~150 launches served the whole stream.
#[test]
fn busy_nodes_are_drained_at_their_lifetime_and_replaced() {
    let mut config = cloudburst::config::parse("sim", cloudburst::sim::DEFAULT_CONFIG).unwrap();
    config.timers.max_lifetime = std::time::Duration::from_secs(7200);
    config.timers.drain_grace = std::time::Duration::from_secs(3600);
    let jobs: Vec<TraceJob> = (0..2000)
        .map(|i| TraceJob {
            submit: i * 20,
            runtime: 2400,
            cpus: 1,
            memory_mb: 1024,
            cloud: true,
            requested: None,
        })
        .collect();
    let r = compare(
        &Setup {
            config,
            jobs,
            cloud: CloudModel::default(),
            seed: 2026,
            local_cores: 0,
            policies: vec![Kind::Cloudburst],
        },
        |_, _| {},
    )
    .unwrap();
    let cb = &r.outcomes[0];
    println!(
        "sim: lifetime scenario: {} launches, {} killed, {} completed",
        cb.launches, cb.jobs_killed, cb.completed
    );
    assert_eq!(cb.jobs_killed, 0, "no job may be killed");
    assert_eq!(cb.completed, 2000);
    assert!(
        cb.launches >= 250,
        "nodes must be replaced at their lifetime: {} launches",
        cb.launches
    );
}

/// The simulated pilots stop themselves at `max_lifetime + drain_grace`
/// and what runs then is killed, so a policy that lets a node reach its
/// hard stop shows it in `killed`.
#[test]
fn a_pilot_at_its_hard_stop_kills_what_runs() {
    let config = config("");
    let world = World::new(flavor_options(&config), CloudModel::default(), 1, START);
    world.set_pilot(&config);
    let mut r = JobReader::new();
    world.submit(START, job(&mut r, 1, 0, ""), 10 * 3600);
    use cloudburst::cycle::CloudPort;
    SimCloud(world.clone())
        .launch(&cloudburst::cloud::LaunchRequest {
            site: "aws".into(),
            flavor: "small".into(),
            node_id: "life-1".into(),
            token: "t".into(),
            spot: false,
            tags: vec![],
            user_data: cloudburst::secret::Secret::new(String::new()),
        })
        .unwrap();
    world.advance(START + 3 * 3600 - 60);
    assert_eq!(world.score().jobs_killed_by_hard_stop, 0);
    assert_eq!(world.alive(), 1);
    world.advance(START + 3 * 3600 + 60);
    assert_eq!(world.score().jobs_killed_by_hard_stop, 1);
    assert_eq!(world.alive(), 0, "the pilot powered itself off");
}

/// Item 2: a job that states its run time is not placed on a node that
/// would reach its hard stop first (the plan says so), and a new node is
/// bought for it.
#[test]
fn jobs_go_only_where_they_can_finish() {
    let mut run = Run::new(config(""), CloudModel::default());
    let mut r = JobReader::new();
    run.world.submit(START, job(&mut r, 1, 0, ""), 6600);
    // The first node joins and runs the first job, one core of two.
    for _ in 0..10 {
        run.cycle();
    }
    let first = run.node(State::Busy).or(run.node(State::Idle)).unwrap();
    // 100 minutes in, a 2-hour job arrives: the node's life (3 h less the
    // margins) is too short for it.
    let at = START + 100 * 60;
    while run.world.now() < at {
        run.cycle();
    }
    run.world.submit(
        run.world.now(),
        job(&mut r, 2, 0, "MaxJobRuntime = 7200;"),
        7000,
    );
    run.world.advance(run.world.now() + 1);
    let report = run.cycle();
    let note = report
        .plan
        .notes
        .iter()
        .find(|n| n.contains("kept off"))
        .unwrap_or_else(|| panic!("{:?}", report.plan.notes));
    assert!(note.contains(&first.id), "{note}");
    assert!(
        report
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, cloudburst::planner::Action::Launch { .. })),
        "a new node for the long job: {:?}",
        report.plan.actions
    );
    for _ in 0..400 {
        run.cycle();
    }
    let score = run.world.score();
    assert_eq!(score.completed, 2);
    assert_eq!(
        score.jobs_killed_by_hard_stop + score.jobs_killed_by_terminate,
        0
    );
}

/// Item 3: an admin's drain of a busy node survives the cycles that see
/// it busy: the node finishes its job, takes no new one, and is
/// terminated. Before, the Busy→Busy refresh cleared it.
#[test]
fn an_admins_drain_of_a_busy_node_is_kept_until_it_is_gone() {
    let mut run = Run::new(config(""), CloudModel::default());
    let mut r = JobReader::new();
    run.world.submit(START, job(&mut r, 1, 0, ""), 1800);
    while run.node(State::Busy).is_none() {
        assert!(run.world.now() < START + 3600, "no node got busy");
        run.cycle();
    }
    let busy = run.node(State::Busy).unwrap();
    assert!(run
        .registry
        .request_admin_drain(&busy.id, run.world.now())
        .unwrap());
    // More work arrives while it drains: it must go elsewhere.
    run.world
        .submit(run.world.now() + 120, job(&mut r, 2, 0, ""), 600);
    let mut drained = false;
    for _ in 0..200 {
        run.cycle();
        let n = run.registry.node(&busy.id).unwrap().unwrap();
        assert!(
            n.admin_drain.is_some(),
            "the request was lost in {}",
            n.state
        );
        drained |= n.state == State::Draining;
        if n.state == State::Gone {
            break;
        }
    }
    let n = run.registry.node(&busy.id).unwrap().unwrap();
    assert!(drained, "it was never drained");
    assert_eq!(n.state, State::Gone);
    let score = run.world.score();
    assert_eq!(score.completed, 2, "both jobs ran");
    assert_eq!(
        score.jobs_killed_by_terminate + score.jobs_killed_by_hard_stop,
        0
    );
    // The second job ran on another node.
    assert!(score.launches >= 2);
}

/// Item 4: a node whose terminate is accepted but whose instance stays
/// has the call re-sent with back-off, is reported stuck past
/// `terminate_timeout`, and ends once the cloud lets it go.
#[test]
fn a_terminate_that_does_nothing_is_resent_and_reported() {
    let mut run = Run::new(config(""), CloudModel::default());
    let mut r = JobReader::new();
    run.world.submit(START, job(&mut r, 1, 0, ""), 300);
    while run.node(State::Idle).is_none() || run.world.score().completed == 0 {
        assert!(run.world.now() < START + 3600);
        run.cycle();
    }
    run.world.set_cloud(CloudModel {
        terminate_ignored: 1.0,
        ..CloudModel::default()
    });
    while run.node(State::Terminating).is_none() {
        assert!(run.world.now() < START + 2 * 3600, "never terminated");
        run.cycle();
    }
    let id = run.node(State::Terminating).unwrap().id;
    let mut stuck_note = false;
    for _ in 0..45 {
        let report = run.cycle();
        stuck_note |= report
            .plan
            .notes
            .iter()
            .any(|n| n.contains(&id) && n.contains("stuck terminating"));
    }
    let n = run.registry.node(&id).unwrap().unwrap();
    assert_eq!(n.state, State::Terminating);
    assert!(stuck_note, "never reported stuck");
    // Re-sent with back-off: more than once, far fewer than every cycle.
    assert!(
        (3..15).contains(&n.terminate_attempts),
        "{} terminate calls in 45 cycles",
        n.terminate_attempts
    );
    assert_eq!(run.registry.live_nodes().unwrap().len(), 1, "counted once");
    run.world.set_cloud(CloudModel::default());
    for _ in 0..90 {
        run.cycle();
    }
    assert_eq!(run.registry.node(&id).unwrap().unwrap().state, State::Gone);
    assert_eq!(run.world.alive(), 0);
}

/// Item 6: a refused credential pauses the site (with the reason) instead
/// of a launch call every cycle; lifting the pause (a reload) tries again.
#[test]
fn a_refused_credential_pauses_the_site() {
    let mut run = Run::new(config(""), CloudModel::default());
    let mut r = JobReader::new();
    for p in 0..4 {
        run.world.submit(START, job(&mut r, 1, p, ""), 600);
    }
    run.world.set_faults(Faults {
        launch_auth: true,
        ..Faults::default()
    });
    run.world.advance(START + 1);
    for _ in 0..10 {
        run.cycle();
    }
    assert_eq!(
        run.world.score().launch_calls,
        1,
        "one refusal, then paused"
    );
    let pauses = run.registry.site_pauses().unwrap();
    let (until, why) = &pauses["aws"];
    assert!(why.contains("credentials refused"), "{why}");
    assert!(*until > run.world.now());
    run.world.set_faults(Faults::default());
    assert_eq!(run.registry.clear_site_pauses().unwrap(), 1);
    for _ in 0..30 {
        run.cycle();
    }
    assert!(run.world.score().launches >= 1);
    assert_eq!(run.world.score().completed, 4);
}
