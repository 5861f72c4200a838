//! `agentmill-worker`: runs sandboxed agent episodes for a coordinator.

use std::path::PathBuf;

use agentmill_worker::config::WorkerConfig;
use clap::Parser;

/// agentmill's worker: attaches to the coordinator, runs leased episodes in Docker sandboxes,
/// grades them with the repository's tests and publishes the trajectories to Redis.
///
/// Settings come from defaults, then --config FILE, then AGENTMILL_* environment variables, then
/// these flags. SIGTERM or Ctrl-C drains: no new leases, running episodes finish (or are handed
/// back after drain_grace), containers are removed.
#[derive(Debug, Parser)]
#[command(name = "agentmill-worker", version)]
struct Cli {
    /// TOML configuration file (see deploy/config/worker.toml).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Coordinator address.
    #[arg(long)]
    coordinator: Option<String>,
    /// Worker id (default: the host name).
    #[arg(long)]
    worker_id: Option<String>,
    /// Redis URL for publishing trajectories.
    #[arg(long)]
    redis_url: Option<String>,
    /// Trajectory stream key.
    #[arg(long)]
    stream: Option<String>,
    /// Concurrent episodes.
    #[arg(long)]
    episodes: Option<u32>,
    /// A label (key=value) for task affinity; repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a task file's episodes here, without a coordinator or Redis: one line per episode on
    /// stderr, the records as JSONL (--out, else stdout). Uses the sandbox, limits, capacity and
    /// policies of --config; --episodes sets how many run at once.
    Run {
        /// A JSONL task file (SWE-bench rows as they are); not with --harbor.
        #[arg(required_unless_present = "harbor")]
        tasks: Option<PathBuf>,
        /// Harbor task directories, or folders of them (repeatable), instead of a task file. With
        /// --validate and no --policy, each task's oracle (solution/solve.sh) runs and must
        /// resolve it.
        #[arg(long, conflicts_with = "tasks")]
        harbor: Vec<PathBuf>,
        /// Only these instance ids (repeatable, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// The policy of every task (replay, openai), over the rows' own.
        #[arg(long)]
        policy: Option<String>,
        /// Rollouts per task, over the rows' own.
        #[arg(long)]
        rollouts: Option<u32>,
        /// Where the records go (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit 1 unless every episode resolves its task (FULL) and every row parses: with
        /// --policy replay, a check that each gold patch resolves its environment. (Exit 2: rows
        /// refused; 130: stopped by Ctrl-C, the running episodes cancelled.)
        #[arg(long)]
        validate: bool,
        /// A folder whose files (archives) the rows may name, beyond the task file's own folder
        /// (repeatable); rows naming a path anywhere else are refused.
        #[arg(long = "host-root")]
        host_roots: Vec<PathBuf>,
    },
    /// Build the environments of task files' rows and Harbor task directories here, ahead of a
    /// run, as their episodes would (the same build context, the same tag), `[build]
    /// concurrency` at once: one line per task (built, cached, failed with the step and the log's
    /// end, or nothing to build), then a summary. Exit 1 when a build failed (with --validate, or
    /// a task did not resolve), 2 when rows were refused.
    Build {
        /// JSONL task files (rows with a Dockerfile: OpenSWE).
        tasks: Vec<PathBuf>,
        /// Harbor task directories, or folders of them (repeatable).
        #[arg(long)]
        harbor: Vec<PathBuf>,
        /// After building, run each task's gold patch (Harbor: its oracle) as `run --validate`
        /// does; every task must resolve.
        #[arg(long)]
        validate: bool,
        /// A folder whose files the rows may name, beyond the task file's own folder (repeatable).
        #[arg(long = "host-root")]
        host_roots: Vec<PathBuf>,
    },
    /// Grade a saved test log for a task row, as the row's own harness grades it, and print the
    /// verdict (or, with --json, the reference's report.json shape). A SWE-bench log without the
    /// test-output markers was written by a harness before 3.0.15 and is read by its 2.x rules.
    /// Exit 0 when resolved, 1 when not, 2 when the row or log cannot be read.
    Grade {
        /// The task row: a JSON file, or a JSONL file (with --instance when it has several rows).
        row: PathBuf,
        /// The test log the eval script wrote (the harness's test_output.txt).
        #[arg(long)]
        log: PathBuf,
        /// The model patch that was graded (an empty one is not run by the harness: NO).
        #[arg(long)]
        patch: Option<PathBuf>,
        /// Which row of a JSONL file.
        #[arg(long)]
        instance: Option<String>,
        /// Read the log by these rules instead (swe-bench-2, swe-bench-4, swe-bench-5,
        /// swe-rebench, swe-gym, swe-smith, r2e-gym, agentmill).
        #[arg(long)]
        rules: Option<String>,
        /// Print the reference's report.json shape.
        #[arg(long)]
        json: bool,
    },
    /// Print the script the worker runs to grade a task row (for agentmill's own rows, the test
    /// command).
    EvalScript {
        /// The task row: a JSON file, or a JSONL file (with --instance when it has several rows).
        row: PathBuf,
        /// Which row of a JSONL file.
        #[arg(long)]
        instance: Option<String>,
        /// The script for an image without conda (SWE-bench's images have it at /opt/miniconda3).
        #[arg(long)]
        no_conda: bool,
    },
    /// Run a contextual-synthesis job here, offline: ctx records as JSONL for inspection, the
    /// drop report as JSON on stderr. Uses the [synth] settings of --config.
    Synth {
        /// The job's input.
        #[command(flatten)]
        input: agentmill_proto::synth_input::SynthInput,
        /// Rows: first row (0-based).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Rows: how many (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: u64,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Grade { row, log, patch, instance, rules, json }) => {
            let code = agentmill_worker::grading::cli::grade(row, log, patch.as_deref(), instance.as_deref(), rules.as_deref(), *json);
            std::process::exit(code);
        }
        Some(Command::EvalScript { row, instance, no_conda }) => {
            let code = agentmill_worker::grading::cli::eval_script(row, instance.as_deref(), !*no_conda);
            std::process::exit(code);
        }
        _ => {}
    }
    let mut o = figment::value::Dict::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            o.insert(k.into(), v.into());
        }
    };
    set("coordinator", cli.coordinator);
    set("worker_id", cli.worker_id);
    set("redis_url", cli.redis_url);
    set("stream", cli.stream);
    let mut cfg = WorkerConfig::load(cli.config.as_deref(), &o)?;
    if let Some(Command::Synth { input, offset, limit, out }) = cli.command {
        let as_typed = |p: &std::path::Path| Ok::<_, std::convert::Infallible>(p.to_string_lossy().into_owned());
        let Ok(Some(spec)) = input.spec(offset, limit, as_typed) else { anyhow::bail!("name the input: --git PATH or --rows FILE") };
        let repo = input.repo.clone();
        return agentmill_worker::synth_offline(&cfg, &spec, &repo, out.as_deref());
    }
    if let Some(n) = cli.episodes {
        cfg.capacity.episodes = n;
        cfg.capacity.run = cfg.capacity.run.max(n);
        cfg.capacity.init = cfg.capacity.init.max(n);
    }
    if let Some(Command::Run { tasks, harbor, only, mut policy, rollouts, out, validate, host_roots }) = cli.command {
        if validate && !harbor.is_empty() && policy.is_none() {
            // A Harbor dataset is proved by its oracles.
            policy = Some("replay".into());
        }
        let run = agentmill_worker::local::LocalRun { tasks: tasks.unwrap_or_default(), only, policy, rollouts, out, host_roots, harbor };
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let summary = runtime.block_on(agentmill_worker::local::run_local(&cfg, &run, async {
            let _ = tokio::signal::ctrl_c().await;
        }))?;
        // Exit codes: 0 done (with --validate: everything resolved), 1 not all resolved, 2 rows
        // refused, 130 interrupted (Ctrl-C).
        let code = if summary.interrupted {
            130
        } else if summary.rows_refused > 0 {
            2
        } else if validate && !summary.all_resolved() {
            1
        } else {
            0
        };
        std::process::exit(code);
    }
    if let Some(Command::Build { tasks, harbor, validate, host_roots }) = cli.command {
        anyhow::ensure!(!tasks.is_empty() || !harbor.is_empty(), "name what to build: task files, or --harbor DIR");
        // One run per task file (its rows' paths resolve against its folder), one for --harbor.
        let mut runs: Vec<agentmill_worker::local::LocalRun> =
            tasks.into_iter().map(|t| agentmill_worker::local::LocalRun { tasks: t, host_roots: host_roots.clone(), ..Default::default() }).collect();
        if !harbor.is_empty() {
            runs.push(agentmill_worker::local::LocalRun { harbor, host_roots, ..Default::default() });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let (mut failed, mut refused) = (false, false);
        for run in &runs {
            let s = runtime.block_on(agentmill_worker::local::build_local(&cfg, run))?;
            failed |= s.failed > 0;
            refused |= s.rows_refused > 0;
        }
        if validate && !failed {
            for run in &mut runs {
                // Gold patches (Harbor: oracles) must resolve every task.
                run.policy = Some("replay".into());
                let summary = runtime.block_on(agentmill_worker::local::run_local(&cfg, run, async {
                    let _ = tokio::signal::ctrl_c().await;
                }))?;
                if summary.interrupted {
                    std::process::exit(130);
                }
                failed |= !summary.all_resolved();
            }
        }
        std::process::exit(if failed { 1 } else if refused { 2 } else { 0 });
    }
    for l in &cli.labels {
        let (k, v) = l.split_once('=').ok_or_else(|| anyhow::anyhow!("--label {l:?}: write key=value"))?;
        cfg.labels.insert(k.into(), v.into());
    }
    // One actix System on a multi-threaded tokio runtime: actors on the system arbiter,
    // episodes, bollard and tonic futures on the runtime's worker threads.
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("agentmill-worker").build().expect("build the tokio runtime")
    });
    system.block_on(agentmill_worker::host::run(cfg))
}
