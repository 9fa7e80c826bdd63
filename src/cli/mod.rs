//! The command line: argument definitions and dispatch. Each command lives
//! in its own module; this file only wires them.

pub mod bench;
pub mod bench_plan;
pub mod bench_reaction;
pub mod bench_sim;
pub mod classad_cmd;
pub mod demo;
pub mod man;
pub mod render_pilot;
pub mod simulate;
pub mod snapshot_cmd;

use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use classad_cmd::{AdFormat, AdOutput};

/// cloudburst: burst an HTCondor pool onto clouds.
///
/// Exit codes: 0 success; 1 the command ran and found a problem (for
/// example a parse error in an input file); 2 bad usage.
#[derive(Parser, Debug)]
#[command(name = "cloudburst", version, about, long_about = None)]
pub struct Cli {
    /// After the command, print its wall time and peak memory to stderr
    #[arg(long, global = true)]
    pub stats: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// This process's peak resident memory in KiB (`VmHWM`), if the kernel
/// tells.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay a workload (built-in, or a trace) against cloudburst and
    /// baseline policies on a simulated pool and cloud; print the
    /// comparison and write report.html
    Simulate {
        /// A trace: SWF (Parallel Workloads Archive, .swf or .swf.gz),
        /// condor_history -json/-jsonl, the schedd's history file, or CSV
        /// (submit,runtime,cpus,memory_mb[,cloud])
        #[arg(long)]
        trace: Option<PathBuf>,
        /// The site to simulate (default: the embedded one)
        #[arg(long)]
        config: Option<PathBuf>,
        /// cloudburst, static, feedback, annex, a comma list, or all
        #[arg(long, default_value = "all")]
        policy: String,
        /// Where to write report.html
        #[arg(long, default_value = "target/simulate")]
        report: PathBuf,
        /// Seed of the workload and the cloud's randomness
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Days to replay (built-in workload: 1; a trace: all of it)
        #[arg(long)]
        days: Option<f64>,
        /// Days of the trace to skip first
        #[arg(long, default_value_t = 0.0)]
        skip_days: f64,
        /// Share of jobs marked for the cloud (traces without a marking,
        /// and the built-in workload)
        #[arg(long, default_value_t = 0.6)]
        cloud_share: f64,
        /// Jobs per day of the built-in workload
        #[arg(long, default_value_t = 6000.0)]
        jobs_per_day: f64,
        /// The site's own cores, for jobs not marked for the cloud
        #[arg(long, default_value_t = 256)]
        local_cores: u64,
        /// Seconds from launch to a pilot joining, drawn uniformly
        #[arg(long, default_value = "90-240")]
        boot_secs: String,
        /// Share of launches whose pilot never joins
        #[arg(long, default_value_t = 0.02)]
        boot_failure: f64,
        /// Share of launch calls refused for capacity
        #[arg(long, default_value_t = 0.0)]
        capacity_errors: f64,
        /// Spot reclaims per spot instance-hour
        #[arg(long, default_value_t = 0.0)]
        spot_reclaim_per_hour: f64,
        /// Also run cloudburst with each combination of its main knobs
        /// (idle_timeout 1/5/15 m, cycle 30/60/120 s, sized starts on or
        /// off: 18 runs) and plot cost against wait with the Pareto front
        #[arg(long)]
        sweep: bool,
    },
    /// Match an embedded example site's idle jobs to cloud flavours
    Demo,
    /// Work with ClassAds: evaluate, convert, match
    #[command(subcommand)]
    Classad(ClassadCommand),
    /// Measure performance against the reference implementations
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Read the pool once (queues, cloud startds, collector) and save
    /// exactly what the condor tools printed, for `plan --snapshot` and bug
    /// reports
    Snapshot {
        /// Configuration file (default: /etc/cloudburst/cloudburst.toml if
        /// it exists, else built-in defaults)
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory to write (created, mode 0700)
        #[arg(long)]
        out: PathBuf,
    },
    /// Show what a cycle would see and decide, offline, from a snapshot
    Plan {
        /// A directory written by `cloudburst snapshot`
        #[arg(long)]
        snapshot: PathBuf,
        /// Configuration file (as for `snapshot`)
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the agent: watch the queue, launch, drain and terminate nodes
    /// (systemd runs this; SIGHUP or a change of the file reloads the
    /// config, SIGTERM stops it and leaves the nodes running)
    Agent {
        /// Configuration file
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Run one cycle and exit
        #[arg(long)]
        once: bool,
        /// The registry was lost or is damaged: move a damaged one aside
        /// and adopt the instances that carry this pool's tags
        #[arg(long)]
        rebuild_registry: bool,
    },
    /// Show sites, nodes by state, demand, unmatched jobs and spend
    /// (works while the agent runs)
    Status {
        /// Configuration file
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print JSON instead of the tables
        #[arg(long)]
        json: bool,
    },
    /// List the live nodes: site, flavour, state, time in state, age,
    /// instance (works while the agent runs)
    Nodes {
        /// Configuration file
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print JSON instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Ask the agent to drain a node at its next cycle: gracefully
    /// (running jobs finish, no new ones start), then terminate it
    Drain {
        /// Configuration file
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The node id (see `cloudburst nodes`)
        node: String,
    },
    /// Print the user-data (#cloud-config) a node of this site and
    /// flavour boots with; the node's token is redacted unless
    /// --show-secrets
    RenderPilot {
        /// Configuration file
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        site: String,
        #[arg(long)]
        flavor: String,
        /// A protected group's node (see [[groups]])
        #[arg(long)]
        group: Option<String>,
        /// The node id to render for
        #[arg(long, default_value = "example-node")]
        node_id: String,
        /// A file holding the node's IDTOKEN (default: a placeholder; the
        /// agent creates one per node)
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Print the token instead of <redacted>
        #[arg(long)]
        show_secrets: bool,
        /// Print only the condor config part
        #[arg(long)]
        condor_config: bool,
    },
    /// Print the manual page (roff), generated from this definition
    #[command(hide = true)]
    Man,
    /// Validate a configuration file; errors name file:line:column
    CheckConfig {
        /// Configuration file
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// Where the RPM installs the configuration.
pub const DEFAULT_CONFIG: &str = "/etc/cloudburst/cloudburst.toml";

/// Loads and validates a configuration file; `None` means the default
/// path if it exists, else the built-in defaults.
pub fn load_config(path: Option<&std::path::Path>) -> Result<crate::config::Config> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok(crate::config::Config::default()),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::config::parse(&path.display().to_string(), &text)?)
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Parse and match speed against the official ClassAd library
    Classad {
        /// Directory of HTCondor captures (condor/live/... below it)
        #[arg(long, default_value = "tests/data")]
        fixtures: PathBuf,
        /// Job ads in the generated dump
        #[arg(long, default_value_t = 100_000)]
        ads: usize,
        /// Runs of each measurement (the best counts)
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Python with PyPI htcondor, for the reference timings
        #[arg(long)]
        python: Option<PathBuf>,
        /// Where to write the generated inputs
        #[arg(long, default_value = "target/bench")]
        workdir: PathBuf,
    },
    /// One decision cycle at scale: jobs read, demand matched, nodes
    /// reconciled and planned; time, peak memory, and the matching against
    /// the official library
    Plan {
        /// Idle jobs (in 300 shapes)
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        /// Nodes in the registry and the pool
        #[arg(long, default_value_t = 5_000)]
        nodes: usize,
        /// Runs (the best counts)
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Python with PyPI htcondor, for the reference timing
        #[arg(long)]
        python: Option<PathBuf>,
        /// Where to write the generated inputs
        #[arg(long, default_value = "target/bench")]
        workdir: PathBuf,
    },
    /// Seconds from a cloud job's submit to its launch, with the job log
    /// followed and with condor_q polling alone (moto and the condor
    /// stand-in)
    Reaction {
        /// Python with PyPI htcondor (the condor stand-in runs on it)
        #[arg(long, default_value = ".venv/bin/python")]
        python: PathBuf,
        /// moto's server (PyPI moto[server])
        #[arg(long, default_value = ".venv/bin/moto_server")]
        moto: PathBuf,
        /// The condor stand-in
        #[arg(long, default_value = "tests/standin/condor_standin.py")]
        standin: PathBuf,
        /// Directory of HTCondor captures (condor/live/... below it)
        #[arg(long, default_value = "tests/data")]
        fixtures: PathBuf,
        /// Cloud jobs submitted in each mode
        #[arg(long, default_value_t = 50)]
        submits: usize,
        /// The agent's cycle, condor_q's interval (e.g. 3s)
        #[arg(long, default_value = "3s")]
        cycle: String,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Where the worlds' files go
        #[arg(long, default_value = "target/bench/reaction")]
        workdir: PathBuf,
    },
    /// The simulator's speed on a real trace: all four policies on its
    /// first 20,000 jobs (and, with --whole, on all of it)
    Simulate {
        #[arg(long, default_value = "tests/data/traces/LPC-EGEE-2004-1.2-cln.swf.gz")]
        trace: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        #[arg(long)]
        whole: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClassadCommand {
    /// Evaluate cases in the differential oracle's JSON-lines protocol
    /// (stdin to stdout): {"expr", "my", "target", "op", "id"} per line.
    Eval {
        /// Seconds since the epoch that time() returns (default: now)
        #[arg(long)]
        now: Option<i64>,
    },
    /// Read ads (streaming) and print them in another form, or count them
    Parse {
        /// Input file, or - for stdin
        file: PathBuf,
        /// Input form (default: guessed from the first bytes)
        #[arg(long, value_enum)]
        from: Option<AdFormat>,
        /// Output form
        #[arg(long, value_enum, default_value = "new")]
        to: AdOutput,
    },
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let stats = cli.stats;
    let code = run_command(cli.command)?;
    if stats {
        eprintln!(
            "stats: {:.3} s wall, peak RSS {} KiB",
            started.elapsed().as_secs_f64(),
            peak_rss_kib().map_or("unknown".to_string(), |k| k.to_string())
        );
    }
    Ok(code)
}

fn run_command(command: Command) -> Result<ExitCode> {
    match command {
        Command::Simulate {
            trace,
            config,
            policy,
            report,
            seed,
            days,
            skip_days,
            cloud_share,
            jobs_per_day,
            local_cores,
            boot_secs,
            boot_failure,
            capacity_errors,
            spot_reclaim_per_hour,
            sweep,
        } => {
            let args = simulate::Args {
                trace,
                format: None,
                config,
                policy,
                report,
                seed,
                days,
                skip_days,
                cloud_share,
                jobs_per_day,
                local_cores,
                cloud: crate::sim::CloudModel {
                    boot_secs: simulate::parse_range(&boot_secs)?,
                    boot_failure,
                    capacity_error: capacity_errors,
                    spot_reclaim_per_hour,
                    ..crate::sim::CloudModel::default()
                },
                sweep,
            };
            simulate::run(&args, io::stdout().lock())?;
        }
        Command::Demo => demo::run(io::stdout().lock())?,
        Command::Classad(ClassadCommand::Eval { now }) => {
            let stdin = io::stdin();
            classad_cmd::eval_cases(
                BufReader::new(stdin.lock()),
                io::stdout().lock(),
                now.unwrap_or_else(crate::agent::now),
            )?;
        }
        Command::Classad(ClassadCommand::Parse { file, from, to }) => {
            let from = match from {
                Some(f) => f,
                None if file.as_os_str() == "-" => AdFormat::Long,
                None => classad_cmd::sniff_format(&file)?,
            };
            classad_cmd::parse_command(&file, from, to, io::stdout().lock())?;
        }
        Command::Bench(BenchCommand::Classad {
            fixtures,
            ads,
            runs,
            python,
            workdir,
        }) => {
            let cfg = bench::ClassadBench {
                fixtures,
                ads,
                runs,
                python,
                workdir,
            };
            bench::run_classad(&cfg, io::stdout().lock())?;
        }
        Command::Bench(BenchCommand::Plan {
            jobs,
            nodes,
            runs,
            python,
            workdir,
        }) => {
            let cfg = bench_plan::PlanBench {
                jobs,
                nodes,
                runs,
                python,
                workdir,
            };
            bench_plan::run(&cfg, io::stdout().lock())?;
        }
        Command::Bench(BenchCommand::Reaction {
            python,
            moto,
            standin,
            fixtures,
            submits,
            cycle,
            seed,
            workdir,
        }) => {
            let cycle = crate::config::parse_duration(&cycle)
                .map_err(|e| anyhow::anyhow!("--cycle {cycle:?}: {e}"))?;
            let cfg = bench_reaction::ReactionBench {
                python,
                moto,
                standin,
                fixtures,
                submits,
                cycle,
                seed,
                workdir,
            };
            bench_reaction::run(&cfg, io::stdout().lock())?;
        }
        Command::Bench(BenchCommand::Simulate { trace, jobs, whole }) => {
            let cfg = bench_sim::SimBench { trace, jobs, whole };
            bench_sim::run(&cfg, io::stdout().lock())?;
        }
        Command::Snapshot { config, out } => {
            let config = load_config(config.as_deref())?;
            snapshot_cmd::take(&config, &out, crate::agent::now(), io::stdout().lock())?;
        }
        Command::Plan { snapshot, config } => {
            let config = load_config(config.as_deref())?;
            snapshot_cmd::replay(&config, &snapshot, io::stdout().lock())?;
        }
        Command::Agent {
            config,
            once,
            rebuild_registry,
        } => {
            crate::agent::run(
                &config,
                crate::agent::Options {
                    once,
                    rebuild_registry,
                },
            )?;
        }
        Command::Status { config, json } => {
            let cfg = load_config(Some(&config))?;
            let st = crate::agent::status::gather(&cfg, crate::agent::now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", crate::agent::status::render(&st, &cfg));
            }
        }
        Command::Drain { config, node } => {
            let cfg = load_config(Some(&config))?;
            let mut reg = crate::registry::Registry::open(&cfg.agent.registry)?;
            let n = reg.node(&node)?.ok_or_else(|| {
                anyhow::anyhow!("no node {node:?} in {}", cfg.agent.registry.display())
            })?;
            use crate::lifecycle::State;
            if !matches!(
                n.state,
                State::Idle | State::Busy | State::Booting | State::Requested | State::Draining
            ) {
                anyhow::bail!("node {node} is {}: nothing to drain", n.state.name());
            }
            if n.admin_drain.is_some() {
                println!(
                    "{node} ({}): an admin drain was already asked for",
                    n.state.name()
                );
            } else {
                reg.request_admin_drain(&node, crate::agent::now())?;
                println!(
                    "{node} ({}) will be drained at the agent's next cycle: running jobs finish, take no new job, then it is terminated",
                    n.state.name()
                );
            }
        }
        Command::Nodes { config, json } => {
            let cfg = load_config(Some(&config))?;
            let st = crate::agent::status::gather(&cfg, crate::agent::now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st.nodes)?);
            } else {
                print!("{}", crate::agent::status::node_table(&st));
            }
        }
        Command::RenderPilot {
            config,
            site,
            flavor,
            group,
            node_id,
            token_file,
            show_secrets,
            condor_config,
        } => {
            let cfg = load_config(Some(&config))?;
            let token = match &token_file {
                Some(f) => crate::secret::Secret::new(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("reading the token file {}", f.display()))?
                        .trim()
                        .to_string(),
                ),
                None => crate::secret::Secret::new(
                    "PLACEHOLDER.IDTOKEN.created-by-the-agent-per-node".into(),
                ),
            };
            let text = render_pilot::render(
                &cfg,
                &site,
                &flavor,
                group.as_deref(),
                &node_id,
                &token,
                condor_config,
            )?;
            if show_secrets {
                print!("{}", text.expose());
            } else {
                print!("{}", crate::pilot::redact(&text, &token));
            }
        }
        Command::Man => print!("{}", man::page()),
        Command::CheckConfig { config } => {
            load_config(Some(&config))?;
            println!("{}: ok", config.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
