//! `agentmill`: the command-line client of the coordinator. Flags and dispatch only; each
//! command's body is a file of `agentmill_cli::commands`.

use std::path::PathBuf;

use agentmill_cli::client::{self, ClientConfig};
use agentmill_cli::commands::{self, cancel, cordon, list, report, retry, submit, synth, top, trajectory, wait, watch};
use clap::{Parser, Subcommand};

/// Submit and follow agentmill tasks.
///
/// The coordinator's address and token come from --addr / --token, else AGENTMILL_ADDR /
/// AGENTMILL_TOKEN, else the config file (~/.config/agentmill/cli.toml: addr, token, ca_cert).
#[derive(Debug, Parser)]
#[command(name = "agentmill", version)]
struct Cli {
    /// Coordinator address (http://host:port or https://host:port).
    #[arg(long, global = true, env = "AGENTMILL_ADDR")]
    addr: Option<String>,
    /// Bearer token.
    #[arg(long, global = true, env = "AGENTMILL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate to trust for https.
    #[arg(long, global = true, env = "AGENTMILL_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// CLI config file.
    #[arg(long, global = true, env = "AGENTMILL_CLI_CONFIG")]
    config: Option<PathBuf>,
    /// Print canonical proto3 JSON, one object per line, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Submit a JSONL file of tasks (SWE-bench rows as they are, plus agentmill's fields).
    ///
    /// Exits 0 when every row was accepted or already known, 2 when some rows were refused
    /// (each is listed with its line, field and reason).
    Submit(submit::SubmitArgs),
    /// Wait until every task (or every task with the given labels) is done, failed or
    /// cancelled, with a progress line. Exits 0 when they all finished, 1 on --timeout.
    Wait(wait::WaitArgs),
    /// The end-of-run report: tasks by resolution, rollouts by exit, synthesis, the stream and,
    /// given the learner's output directory, records trained by kind, tokens, loss first → last.
    Report(report::ReportArgs),
    /// Show one task and its rollouts.
    Get {
        /// Task id.
        id: String,
    },
    /// Show what an episode did: its trajectory record from the stream, as a transcript (with
    /// --json, the record itself).
    Trajectory(trajectory::TrajectoryArgs),
    /// List tasks, oldest first.
    List(list::ListArgs),
    /// Cancel tasks: queued rollouts never run, running episodes are stopped.
    Cancel(cancel::CancelArgs),
    /// Run failed and cancelled rollouts again (next attempt, failures reset); done ones are kept.
    Retry(retry::RetryArgs),
    /// Send no new leases to these workers (by worker id); what they run finishes.
    Cordon(cordon::CordonArgs),
    /// Lift a cordon.
    Uncordon(cordon::UncordonArgs),
    /// Follow state changes live (all tasks, or the ones named).
    Watch(watch::WatchArgs),
    /// Cluster counts and rates.
    Stats,
    /// A live terminal view for operators: tasks by state, throughput, the learner, the stream
    /// and the workers, refreshed every --interval; q, Esc or Ctrl-C quits. A failed poll shows
    /// in the header and is retried. With --once, one frame is printed as text (exit 1 when the
    /// poll failed).
    Top(top::TopArgs),
    /// Submit a contextual-synthesis job: a git history (first-parent merges become PRs) or a
    /// file of PR rows, split into shards that workers take like episodes. Records land in the
    /// trajectory stream as kind "ctx". (To run one offline, see `agentmill-worker synth`.)
    Synth(synth::SynthArgs),
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(code) => std::process::exit(code),
        // The reader went away (`agentmill list | head`): what it wanted was written.
        Err(e) if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) => std::process::exit(0),
        Err(e) => {
            eprintln!("agentmill: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    if let Command::Synth(args) = &cli.command
        && args.offline
    {
        return synth::offline(args);
    }
    let mut cfg = ClientConfig::load(cli.config.as_deref())?;
    cfg.addr = cli.addr.or(cfg.addr);
    cfg.token = cli.token.or(cfg.token);
    cfg.ca_cert = cli.ca_cert.or(cfg.ca_cert);
    let mut client = client::connect(&cfg).await?;
    let json = cli.json;
    let mut stdout = std::io::stdout().lock();
    let out = &mut stdout;
    match &cli.command {
        Command::Submit(args) => submit::run(&mut client, args, out, json).await,
        Command::Wait(args) => wait::run(&mut client, args, out, json).await,
        Command::Report(args) => report::run(&mut client, args, out, json).await,
        Command::Get { id } => commands::get::run(&mut client, id, out, json).await,
        Command::Trajectory(args) => trajectory::run(&mut client, args, out, json).await,
        Command::List(args) => list::run(&mut client, args, out, json).await,
        Command::Cancel(args) => cancel::run(&mut client, args, out, json).await,
        Command::Retry(args) => retry::run(&mut client, args, out, json).await,
        Command::Cordon(args) => cordon::run(&mut client, &args.ids, false, out, json).await,
        Command::Uncordon(args) => cordon::run(&mut client, &args.ids, true, out, json).await,
        Command::Watch(args) => watch::run(&mut client, args, out, json).await,
        Command::Stats => commands::stats::run(&mut client, out, json).await,
        // The live view lets go of stdout's lock: it draws to the terminal itself.
        Command::Top(args) => top::run(client, cfg.addr.as_deref().unwrap_or(client::DEFAULT_ADDR), args, stdout).await,
        Command::Synth(args) => synth::run(&mut client, args, out, json).await,
    }
}
