//! `agentmill synth`: a contextual-synthesis job — a git history or a file of PR rows, split
//! into shards that workers take like episodes — submitted with its inputs uploaded, or with
//! `--offline` run here by `agentmill-worker synth`.

use std::io::Write;
use std::path::{Path, PathBuf};

use agentmill_proto::json::to_json;
use agentmill_proto::synth_input::SynthInput;
use agentmill_proto::{SynthSpec, v1};
use anyhow::{Context, bail};
use clap::Args;

use super::status_error;
use crate::client::{Client, print_json};
use crate::upload::Uploads;

/// The flags of `agentmill synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The job's input (paths on this machine: the repository travels as a bundle, the files
    /// as they are).
    #[command(flatten)]
    pub input: SynthInput,
    /// Rows (JSONL): rows per shard (0 = one shard).
    #[arg(long, default_value_t = 0)]
    pub shard_size: u64,
    /// Task id (shards get -0, -1, ...). Default: synth-<name>.
    #[arg(long)]
    pub id: Option<String>,
    /// Priority of the job.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    /// Run the job here instead of submitting it: ctx records as JSONL on stdout (or --out),
    /// the drop report on stderr. Runs `agentmill-worker synth` (which holds the synthesis
    /// code) from beside this program or from PATH.
    #[arg(long)]
    pub offline: bool,
    /// With --offline: write the records to this file.
    #[arg(long, requires = "offline")]
    pub out: Option<PathBuf>,
}

/// Submits the job's shards; exit code 2 when the coordinator refused some.
pub async fn run(client: &mut Client, args: &SynthArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let tasks = rows(&args.input, args.shard_size, args.id.as_deref(), args.priority)?;
    // The job's inputs travel with it: the repository as a bundle, the files as they are.
    let mut uploads = Uploads::default();
    let mut inputs = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let row = uploads.localise_row(client, Path::new("/"), &t.to_string()).await?;
        inputs.push(v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) });
    }
    let req = v1::SubmitTasksRequest { tasks: inputs, base_dir: String::new() };
    let resp = client.submit_tasks(req).await.map_err(status_error)?.into_inner();
    if json {
        print_json(out, &to_json(&resp)?)?;
    } else {
        writeln!(out, "synthesis job: {} shard(s) accepted, {} already known", resp.accepted.len(), resp.existing.len())?;
        for id in resp.accepted.iter().chain(&resp.existing) {
            writeln!(out, "  {id}")?;
        }
        for e in &resp.rejected {
            writeln!(out, "  refused: {}: {}", e.field, e.reason)?;
        }
    }
    Ok(if resp.rejected.is_empty() { 0 } else { 2 })
}

/// `agentmill synth --offline`: the same job run here by `agentmill-worker synth`; its exit code.
pub fn offline(args: &SynthArgs) -> anyhow::Result<i32> {
    let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("agentmill-worker"))).filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("agentmill-worker"));
    let mut cmd = std::process::Command::new(&program);
    cmd.arg("synth").args(args.input.to_args());
    if let Some(o) = &args.out {
        cmd.arg("--out").arg(o);
    }
    let status = cmd.status().with_context(|| format!("running {} (install agentmill-worker beside agentmill or on PATH)", program.display()))?;
    Ok(status.code().unwrap_or(1))
}

fn absolute(p: &Path) -> anyhow::Result<String> {
    Ok(std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))?.to_string_lossy().into_owned())
}

/// The task rows of a synthesis job: one, or one per `shard_size` rows of a JSONL file.
fn rows(input: &SynthInput, shard_size: u64, id: Option<&str>, priority: i32) -> anyhow::Result<Vec<serde_json::Value>> {
    let spec = input.spec(0, 0, absolute)?.context("name the input: --git PATH or --rows FILE")?;
    let name = input.name();
    let id = id.map(str::to_string).unwrap_or_else(|| format!("synth-{}", name.replace('/', "_")));
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
