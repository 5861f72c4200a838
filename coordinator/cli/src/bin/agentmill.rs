//! `agentmill`: the command-line client of the coordinator.

use std::io::Write;
use std::path::{Path, PathBuf};

use agentmill_cli::client::{self, ClientConfig, print_json};
use agentmill_proto::json::{ProtoName, to_json};
use agentmill_proto::SynthSpec;
use agentmill_proto::synth_input::SynthInput;
use agentmill_cli::report;
use agentmill_proto::v1::{self, TaskState};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;

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
    Submit {
        /// The JSONL file (not with --harbor).
        #[arg(required_unless_present = "harbor")]
        file: Option<PathBuf>,
        /// Harbor task directories, or folders of them (repeatable), instead of a file: each
        /// task's directory is packed and uploaded with it (a link out of it is refused).
        #[arg(long, conflicts_with = "file")]
        harbor: Vec<PathBuf>,
        /// Rows per SubmitTasks call.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Rollouts per task, over the rows' own `rollouts`.
        #[arg(long)]
        rollouts: Option<u32>,
        /// The policy of every task ("replay" or an endpoint the workers know), over the rows'.
        #[arg(long)]
        policy: Option<String>,
        /// A label added to every task (key=value); repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// A worker label every task requires (key=value, merged into worker_selector); repeatable.
        #[arg(long = "selector")]
        selectors: Vec<String>,
    },
    /// Wait until every task (or every task with the given labels) is done, failed or
    /// cancelled, with a progress line. Exits 0 when they all finished, 1 on --timeout.
    Wait {
        /// Only tasks carrying this label (key=value); repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Give up after this long (e.g. 90s, 10m).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// How often to ask.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        poll: std::time::Duration,
    },
    /// The end-of-run report: tasks by resolution, rollouts by exit, synthesis, the stream and,
    /// given the learner's output directory, records trained by kind, tokens, loss first → last.
    Report {
        /// Only tasks carrying this label (key=value); repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// The learner's output directory (or its summary.json).
        #[arg(long)]
        learner: Option<PathBuf>,
        /// Show the episode tasks side by side by the value of this label (e.g. `round`, as
        /// `deploy/quickstart.sh --closed-loop` labels its rounds): resolution, exits, steps,
        /// the model's tokens and the policy, model and weight version the records name.
        #[arg(long, value_name = "LABEL_KEY")]
        compare: Option<String>,
    },
    /// Show one task and its rollouts.
    Get {
        /// Task id.
        id: String,
    },
    /// Show what an episode did: its trajectory record from the stream, as a transcript (with
    /// --json, the record itself).
    Trajectory {
        /// Task id.
        id: String,
        /// Rollout (0-based).
        #[arg(long, default_value_t = 0)]
        rollout: u32,
        /// Attempt (1-based; default: the latest that published).
        #[arg(long, default_value_t = 0)]
        attempt: u32,
        /// Lines shown of each message before the middle is elided (0: all).
        #[arg(long, default_value_t = 40)]
        lines: usize,
    },
    /// List tasks, oldest first.
    List {
        /// Only tasks in these states (queued, leased, running, done, failed, cancelled).
        #[arg(long = "state", value_delimiter = ',')]
        states: Vec<String>,
        /// Only tasks carrying this label (key=value); repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// At most this many tasks (all pages are followed up to it).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Cancel tasks: queued rollouts never run, running episodes are stopped.
    Cancel {
        /// Task ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Why (recorded with the task).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Run failed and cancelled rollouts again (next attempt, failures reset); done ones are kept.
    Retry {
        /// Task ids.
        #[arg(required_unless_present = "failed")]
        ids: Vec<String>,
        /// Every failed task (with --label: those carrying the labels).
        #[arg(long)]
        failed: bool,
        /// With --failed: only tasks carrying this label (key=value); repeatable.
        #[arg(long = "label", requires = "failed")]
        labels: Vec<String>,
        /// Why (recorded with the task).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Send no new leases to these workers (by worker id); what they run finishes.
    Cordon {
        /// Worker ids (as `agentmill stats` shows them); none: list the cordoned ones.
        ids: Vec<String>,
    },
    /// Lift a cordon.
    Uncordon {
        /// Worker ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Follow state changes live (all tasks, or the ones named).
    Watch {
        /// Task ids to follow.
        ids: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Cluster counts and rates.
    Stats,
    /// A live terminal view for operators: tasks by state, throughput, the learner, the stream
    /// and the workers, refreshed every --interval; q, Esc or Ctrl-C quits. A failed poll shows
    /// in the header and is retried. With --once, one frame is printed as text (exit 1 when the
    /// poll failed).
    Top {
        /// How often to ask the coordinator (e.g. 1s, 500ms).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Print one frame as plain text and exit (for scripts and CI logs).
        #[arg(long)]
        once: bool,
        /// With --once: the frame's width in columns.
        #[arg(long, default_value_t = 120, requires = "once", value_parser = clap::value_parser!(u16).range(40..=1000))]
        width: u16,
        /// With --once: the frame's height in rows.
        #[arg(long, default_value_t = 40, requires = "once", value_parser = clap::value_parser!(u16).range(10..=1000))]
        height: u16,
    },
    /// Submit a contextual-synthesis job: a git history (first-parent merges become PRs) or a
    /// file of PR rows, split into shards that workers take like episodes. Records land in the
    /// trajectory stream as kind "ctx". (To run one offline, see `agentmill-worker synth`.)
    Synth {
        /// The job's input (paths on this machine: the repository travels as a bundle, the files
        /// as they are).
        #[command(flatten)]
        input: SynthInput,
        /// Rows (JSONL): rows per shard (0 = one shard).
        #[arg(long, default_value_t = 0)]
        shard_size: u64,
        /// Task id (shards get -0, -1, ...). Default: synth-<name>.
        #[arg(long)]
        id: Option<String>,
        /// Priority of the job.
        #[arg(long, default_value_t = 0)]
        priority: i32,
        /// Run the job here instead of submitting it: ctx records as JSONL on stdout (or --out),
        /// the drop report on stderr. Runs `agentmill-worker synth` (which holds the synthesis
        /// code) from beside this program or from PATH.
        #[arg(long)]
        offline: bool,
        /// With --offline: write the records to this file.
        #[arg(long, requires = "offline")]
        out: Option<PathBuf>,
    },
}

/// `agentmill synth --offline`: the same job run here by `agentmill-worker synth`.
fn synth_offline(command: &Command) -> anyhow::Result<i32> {
    let Command::Synth { input, out, .. } = command else { return Ok(2) };
    let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("agentmill-worker"))).filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("agentmill-worker"));
    let mut cmd = std::process::Command::new(&program);
    cmd.arg("synth").args(input.to_args());
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    let status = cmd.status().with_context(|| format!("running {} (install agentmill-worker beside agentmill or on PATH)", program.display()))?;
    Ok(status.code().unwrap_or(1))
}

fn absolute(p: &std::path::Path) -> anyhow::Result<String> {
    Ok(std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))?.to_string_lossy().into_owned())
}

/// The task rows of a synthesis job: one, or one per `shard_size` rows of a JSONL file.
fn synth_rows(input: &SynthInput, shard_size: u64, id: &Option<String>, priority: i32) -> anyhow::Result<Vec<serde_json::Value>> {
    let spec = input.spec(0, 0, absolute)?.context("name the input: --git PATH or --rows FILE")?;
    let name = input.name();
    let id = id.clone().unwrap_or_else(|| format!("synth-{}", name.replace('/', "_")));
    let base = serde_json::json!({"kind": "synth", "repo": name, "priority": priority, "labels": {"job": "synth"}});
    let with = |task_id: String, synth: &SynthSpec| -> anyhow::Result<serde_json::Value> {
        let mut row = base.clone();
        row["instance_id"] = task_id.into();
        row["synth"] = serde_json::to_value(synth)?;
        Ok(row)
    };
    let file = match &spec {
        SynthSpec::Rows { path, .. } if shard_size > 0 => path.clone(),
        _ => return Ok(vec![with(id, &spec)?]),
    };
    let text = std::fs::read(&file).with_context(|| format!("reading {file}"))?;
    if text.starts_with(b"PAR1") {
        bail!("--shard-size splits JSONL files; submit a Parquet file as one shard (leave --shard-size out)");
    }
    let n = text.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count() as u64;
    (0..n.div_ceil(shard_size))
        .map(|i| with(format!("{id}-{i}"), &SynthSpec::Rows { path: file.clone(), offset: i * shard_size, limit: shard_size }))
        .collect()
}

fn parse_state(s: &str) -> anyhow::Result<i32> {
    let upper = format!("TASK_STATE_{}", s.to_ascii_uppercase());
    TaskState::from_str_name(&upper).map(|s| s as i32).with_context(|| format!("unknown state {s:?}; use queued, leased, running, done, failed or cancelled"))
}

fn client_config(cli: &Cli) -> anyhow::Result<ClientConfig> {
    let path = cli.config.clone().or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/agentmill/cli.toml")));
    let mut cfg = match path {
        Some(p) if p.is_file() => ClientConfig::from_file(&p)?,
        Some(p) if cli.config.is_some() => bail!("--config {} does not exist", p.display()),
        _ => ClientConfig::default(),
    };
    if cli.addr.is_some() {
        cfg.addr = cli.addr.clone();
    }
    if cli.token.is_some() {
        cfg.token = cli.token.clone();
    }
    if cli.ca_cert.is_some() {
        cfg.ca_cert = cli.ca_cert.clone();
    }
    Ok(cfg)
}

fn resolution_name(r: i32) -> String {
    v1::Resolution::try_from(r).map(|r| r.name().to_string()).unwrap_or_default()
}

fn exit_name(r: i32) -> String {
    v1::ExitReason::try_from(r).map(|r| r.name().to_string()).unwrap_or_default()
}

fn state_of(s: i32) -> String {
    TaskState::try_from(s).map(|s| s.name().to_string()).unwrap_or_else(|_| "?".into())
}

/// The answer to a call on a list of task ids (cancel, retry): `<verb>: N`, then each id left
/// alone with why and each unknown id; or the reply as JSON. Exit code 2 when an id is unknown.
fn batch_reply<'a, M: prost::Message + ProtoName>(
    out: &mut impl Write,
    json: bool,
    reply: &M,
    (verb, acted_on): (&str, usize),
    skipped: impl Iterator<Item = (&'a String, &'a str)>,
    not_found: &[String],
) -> anyhow::Result<i32> {
    if json {
        print_json(out, &to_json(reply)?)?;
    } else {
        writeln!(out, "{verb}: {acted_on}")?;
        for (id, why) in skipped {
            writeln!(out, "  {id}: {why}")?;
        }
        for id in not_found {
            writeln!(out, "  {id}: not found")?;
        }
    }
    Ok(if not_found.is_empty() { 0 } else { 2 })
}

fn print_task(out: &mut impl Write, t: &v1::TaskStatus) -> std::io::Result<()> {
    let id = t.task.as_ref().map(|s| s.instance_id.as_str()).unwrap_or("?");
    writeln!(out, "{id}  {}", state_of(t.state))?;
    for r in &t.rollouts {
        write!(out, "  rollout {}  {}  attempt {}", r.rollout, state_of(r.state), r.attempt)?;
        if r.failures > 0 {
            write!(out, " ({} failed)", r.failures)?;
        }
        if !r.worker_id.is_empty() {
            write!(out, "  worker {}", r.worker_id)?;
        }
        if let Some(res) = &r.result {
            write!(out, "  {}  {}", resolution_name(res.resolution), exit_name(res.exit_reason))?;
        }
        if !r.last_error.is_empty() {
            write!(out, "  ({})", r.last_error)?;
        }
        writeln!(out)?;
    }
    Ok(())
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
    if matches!(cli.command, Command::Synth { offline: true, .. }) {
        return synth_offline(&cli.command);
    }
    let cfg = client_config(&cli)?;
    let mut client = client::connect(&cfg).await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Command::Submit { file, harbor, batch, rollouts, policy, labels, selectors } => {
            if *batch == 0 {
                bail!("--batch must be at least 1");
            }
            let overrides = report::RowOverrides {
                rollouts: *rollouts,
                policy: policy.clone(),
                labels: report::parse_pairs("--label", labels)?,
                worker_selector: report::parse_pairs("--selector", selectors)?,
            };
            let file = match file {
                Some(f) => f,
                None => {
                    let summary = client::submit_harbor(&mut client, harbor, &overrides).await?;
                    if cli.json {
                        let v = serde_json::json!({
                            "accepted": summary.accepted,
                            "existing": summary.existing,
                            "rejected": summary.rejected.iter().map(|r| serde_json::json!({"taskDir": r.task_id, "at": r.field, "reason": r.reason})).collect::<Vec<_>>(),
                        });
                        print_json(&mut out, &v)?;
                    } else {
                        writeln!(out, "Harbor tasks: {} accepted, {} already known, {} refused", summary.accepted.len(), summary.existing.len(), summary.rejected.len())?;
                        for r in &summary.rejected {
                            writeln!(out, "  {}: {}: {}", r.task_id, r.field, r.reason)?;
                        }
                    }
                    return Ok(if summary.rejected.is_empty() { 0 } else { 2 });
                }
            };
            let total = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(indicatif::ProgressStyle::with_template("{spinner} submitting [{bar:30}] {pos}/{len} rows {per_sec}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
            if cli.json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let summary = client::submit_file(&mut client, file, (*batch).min(10_000), &overrides, |n| bar.inc(n)).await?;
            bar.finish_and_clear();
            if cli.json {
                let v = serde_json::json!({
                    "accepted": summary.accepted,
                    "existing": summary.existing,
                    "rejected": summary.rejected.iter().map(|r| serde_json::json!({"line": r.line, "taskId": r.task_id, "field": r.field, "reason": r.reason})).collect::<Vec<_>>(),
                });
                print_json(&mut out, &v)?;
            } else {
                writeln!(out, "{}: {} accepted, {} already known, {} rows rejected", file.display(), summary.accepted.len(), summary.existing.len(), summary.rejected.len())?;
                for r in &summary.rejected {
                    let id = if r.task_id.is_empty() { String::new() } else { format!(" ({})", r.task_id) };
                    writeln!(out, "  line {}{id}: {}: {}", r.line, r.field, r.reason)?;
                }
            }
            return Ok(if summary.rejected.is_empty() { 0 } else { 2 });
        }
        Command::Get { id } => {
            let t = client.get_task(v1::GetTaskRequest { task_id: id.clone() }).await.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();
            if cli.json {
                print_json(&mut out, &to_json(&t)?)?;
            } else {
                print_task(&mut out, &t)?;
            }
        }
        Command::Trajectory { id, rollout, attempt, lines } => {
            let t = client
                .get_trajectory(v1::GetTrajectoryRequest { task_id: id.clone(), rollout: *rollout, attempt: *attempt })
                .await
                .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
                .into_inner();
            let record: agentmill_proto::TrajectoryRecord =
                serde_json::from_str(&t.record_json).with_context(|| format!("{}: the coordinator sent a record this build cannot read", t.record_id))?;
            if cli.json {
                print_json(&mut out, &serde_json::to_value(&record)?)?;
            } else {
                write!(out, "{}", agentmill_cli::transcript::transcript(&record, agentmill_cli::transcript::Shown { max_lines: *lines }))?;
                writeln!(out, "\n({} · stream entry {})", t.record_id, t.stream_id)?;
            }
        }
        Command::List { states, labels, limit } => {
            let states = states.iter().map(|s| parse_state(s)).collect::<anyhow::Result<Vec<_>>>()?;
            for t in report::list(&mut client, &states, &report::parse_pairs("--label", labels)?, *limit).await? {
                if cli.json {
                    print_json(&mut out, &to_json(&t)?)?;
                } else {
                    print_task(&mut out, &t)?;
                }
            }
        }
        Command::Cancel { ids, reason } => {
            let r = client
                .cancel_tasks(v1::CancelTasksRequest { task_ids: ids.clone(), reason: reason.clone() })
                .await
                .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
                .into_inner();
            let skipped = r.already_finished.iter().map(|id| (id, "already finished"));
            return batch_reply(&mut out, cli.json, &r, ("cancelled", r.cancelled.len()), skipped, &r.not_found);
        }
        Command::Retry { ids, failed, labels, reason } => {
            let mut ids = ids.clone();
            if *failed {
                let labels = report::parse_pairs("--label", labels)?;
                let listed = report::list(&mut client, &[TaskState::Failed as i32], &labels, usize::MAX).await?;
                ids.extend(listed.into_iter().filter_map(|t| t.task.map(|spec| spec.instance_id)));
            }
            let mut r = v1::RetryTasksResponse::default();
            for batch in ids.chunks(1000) {
                let part = client
                    .retry_tasks(v1::RetryTasksRequest { task_ids: batch.to_vec(), reason: reason.clone() })
                    .await
                    .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
                    .into_inner();
                r.retried.extend(part.retried);
                r.not_found.extend(part.not_found);
                r.nothing_to_retry.extend(part.nothing_to_retry);
            }
            let skipped = r.nothing_to_retry.iter().map(|id| (id, "nothing to retry (no failed or cancelled rollout)"));
            return batch_reply(&mut out, cli.json, &r, ("retried", r.retried.len()), skipped, &r.not_found);
        }
        Command::Cordon { ids } | Command::Uncordon { ids } => {
            let uncordon = matches!(cli.command, Command::Uncordon { .. });
            let r = client
                .cordon_workers(v1::CordonWorkersRequest { worker_ids: ids.clone(), uncordon })
                .await
                .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
                .into_inner();
            if cli.json {
                print_json(&mut out, &to_json(&r)?)?;
            } else if r.cordoned.is_empty() {
                writeln!(out, "cordoned: none")?;
            } else {
                writeln!(out, "cordoned: {}", r.cordoned.join(", "))?;
            }
        }
        Command::Watch { ids, count } => {
            let mut stream = client.watch_events(v1::WatchEventsRequest { task_ids: ids.clone() }).await.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();
            let mut n = 0;
            while let Some(ev) = stream.next().await {
                let ev = ev.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?;
                if cli.json {
                    print_json(&mut out, &to_json(&ev)?)?;
                } else {
                    if ev.dropped_before > 0 {
                        writeln!(out, "… {} events skipped (this watcher fell behind)", ev.dropped_before)?;
                    }
                    write!(out, "{} r{} a{}  {} → {}", ev.task_id, ev.rollout, ev.attempt, state_of(ev.previous_state), state_of(ev.state))?;
                    if !ev.worker_id.is_empty() {
                        write!(out, "  on {}", ev.worker_id)?;
                    }
                    if let Some(res) = &ev.result {
                        write!(out, "  {} {}", resolution_name(res.resolution), exit_name(res.exit_reason))?;
                    }
                    if !ev.reason.is_empty() && ev.result.is_none() {
                        write!(out, "  ({})", ev.reason)?;
                    }
                    writeln!(out)?;
                }
                out.flush()?;
                n += 1;
                if count.is_some_and(|c| n >= c) {
                    break;
                }
            }
        }
        Command::Synth { input, shard_size, id, priority, .. } => {
            let tasks = synth_rows(input, *shard_size, id, *priority)?;
            // The job's inputs travel with it: the repository as a bundle, the files as they are.
            let mut uploads = agentmill_cli::upload::Uploads::default();
            let mut inputs = Vec::with_capacity(tasks.len());
            for t in &tasks {
                let row = uploads.localise_row(&mut client, Path::new("/"), &t.to_string()).await?;
                inputs.push(v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) });
            }
            let req = v1::SubmitTasksRequest { tasks: inputs, base_dir: String::new() };
            let resp = client.submit_tasks(req).await.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();
            if cli.json {
                print_json(&mut out, &to_json(&resp)?)?;
            } else {
                writeln!(out, "synthesis job: {} shard(s) accepted, {} already known", resp.accepted.len(), resp.existing.len())?;
                for id in resp.accepted.iter().chain(&resp.existing) {
                    writeln!(out, "  {id}")?;
                }
                for e in &resp.rejected {
                    writeln!(out, "  refused: {}: {}", e.field, e.reason)?;
                }
            }
            return Ok(if resp.rejected.is_empty() { 0 } else { 2 });
        }
        Command::Wait { labels, timeout, poll } => {
            let labels = report::parse_pairs("--label", labels)?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} rollouts  {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
            if cli.json {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let tasks = report::wait_finished(&mut client, &labels, *poll, *timeout, |p, s| {
                bar.set_length(p.rollouts);
                bar.set_position(p.rollouts_finished);
                let learner = s.learner.as_ref().map(|l| format!("  learner step {} loss {:.3} {:.0} tok/s", l.step, l.loss, l.tokens_per_s)).unwrap_or_default();
                bar.set_message(format!("{}/{} tasks  {:.2} episodes/s  stream {} (lag {}){learner}", p.tasks_finished, p.tasks, s.episodes_per_s_1m, s.stream_length, s.stream_lag));
                bar.tick();
            })
            .await;
            bar.finish();
            let tasks = tasks?;
            let p = report::Progress::of(&tasks);
            if cli.json {
                print_json(&mut out, &serde_json::json!({"tasks": p.tasks, "rollouts": p.rollouts}))?;
            } else {
                writeln!(out, "{} tasks ({} rollouts) finished", p.tasks, p.rollouts)?;
            }
        }
        Command::Report { labels, learner, compare } => {
            let labels = report::parse_pairs("--label", labels)?;
            let learner = learner.as_deref().map(report::LearnerReport::read).transpose()?;
            if let Some(key) = compare {
                let columns = agentmill_cli::rounds::compare(&mut client, key, &labels).await?;
                if cli.json {
                    print_json(&mut out, &serde_json::json!({"compare": key, "columns": columns, "learner": learner}))?;
                } else {
                    agentmill_cli::rounds::print(key, &columns, &mut out)?;
                    if let Some(l) = learner {
                        report::Report { learner: Some(l), ..Default::default() }.print_learner(&mut out)?;
                    }
                }
                return Ok(0);
            }
            let tasks = report::list_all(&mut client, &labels).await?;
            let stats = client.cluster_stats(v1::ClusterStatsRequest {}).await.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();
            let r = report::Report::build(&tasks, &stats, learner);
            if cli.json {
                print_json(&mut out, &serde_json::to_value(&r)?)?;
            } else {
                r.print(&mut out)?;
            }
        }
        Command::Top { interval, once, width, height } => {
            let addr = cfg.addr.clone().unwrap_or_else(|| client::DEFAULT_ADDR.to_string());
            if *once {
                let app = agentmill_cli::top::snapshot(&mut client, &addr).await;
                write!(out, "{}", agentmill_cli::top::render_text(&app, *width, *height))?;
                return Ok(if app.error.is_some() { 1 } else { 0 });
            }
            // The live view draws to stdout itself.
            drop(out);
            agentmill_cli::top::run(client, addr, *interval).await?;
            return Ok(0);
        }
        Command::Stats => {
            let s = client.cluster_stats(v1::ClusterStatsRequest {}).await.map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?.into_inner();
            if cli.json {
                print_json(&mut out, &to_json(&s)?)?;
            } else {
                let mut states: Vec<_> = s.tasks_by_state.iter().collect();
                states.sort();
                writeln!(out, "tasks: {}", states.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))?;
                writeln!(out, "episodes/s: {:.2} (1 min), {:.2} (10 min)", s.episodes_per_s_1m, s.episodes_per_s_10m)?;
                let mut res: Vec<_> = s.results_by_resolution.iter().collect();
                res.sort();
                writeln!(out, "results: {}", res.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))?;
                writeln!(out, "leases: {} granted, {} expired, {} stale results refused", s.leases_granted, s.leases_expired, s.stale_results_refused)?;
                writeln!(out, "workers: {}", s.workers.len())?;
                for w in &s.workers {
                    let cap = w.capacity.map(|c| c.episodes).unwrap_or(0);
                    writeln!(out, "  {} ({})  {}/{} episodes  credits {}  images {}{}", w.worker_id, w.host, w.active_leases, cap, w.credits, w.cached_images, if w.cordoned { "  cordoned" } else if w.draining { "  draining" } else if w.backpressured { "  back-pressured" } else { "" })?;
                }
                if !s.cordoned_workers.is_empty() {
                    writeln!(out, "cordoned: {}", s.cordoned_workers.join(", "))?;
                }
            }
        }
    }
    Ok(0)
}
