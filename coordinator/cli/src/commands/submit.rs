//! `agentmill submit`: a JSONL file of task rows, or Harbor task folders, sent in batches with
//! the files they name uploaded; every refused row is listed with its line, field and reason.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use crate::client::{self, Client, SubmitSummary, print_json};
use crate::report::{RowOverrides, parse_pairs};

/// The flags of `agentmill submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The JSONL file (not with --harbor).
    #[arg(required_unless_present = "harbor")]
    pub file: Option<PathBuf>,
    /// Harbor task directories, or folders of them (repeatable), instead of a file: each
    /// task's directory is packed and uploaded with it (a link out of it is refused).
    #[arg(long, conflicts_with = "file")]
    pub harbor: Vec<PathBuf>,
    /// Rows per SubmitTasks call.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Rollouts per task, over the rows' own `rollouts`.
    #[arg(long)]
    pub rollouts: Option<u32>,
    /// The policy of every task ("replay" or an endpoint the workers know), over the rows'.
    #[arg(long)]
    pub policy: Option<String>,
    /// A label added to every task (key=value); repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// A worker label every task requires (key=value, merged into worker_selector); repeatable.
    #[arg(long = "selector")]
    pub selectors: Vec<String>,
}

/// Submits the file (with a progress bar on stderr unless `json`) or the Harbor folders. Exit
/// code 2 when some rows were refused.
pub async fn run(client: &mut Client, args: &SubmitArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let overrides = RowOverrides {
        rollouts: args.rollouts,
        policy: args.policy.clone(),
        labels: parse_pairs("--label", &args.labels)?,
        worker_selector: parse_pairs("--selector", &args.selectors)?,
    };
    let Some(file) = &args.file else {
        let summary = client::submit_harbor(client, &args.harbor, &overrides).await?;
        if json {
            let v = serde_json::json!({
                "accepted": summary.accepted,
                "existing": summary.existing,
                "rejected": summary.rejected.iter().map(|r| serde_json::json!({"taskDir": r.task_id, "at": r.field, "reason": r.reason})).collect::<Vec<_>>(),
            });
            print_json(out, &v)?;
        } else {
            writeln!(out, "Harbor tasks: {} accepted, {} already known, {} refused", summary.accepted.len(), summary.existing.len(), summary.rejected.len())?;
            for r in &summary.rejected {
                writeln!(out, "  {}: {}: {}", r.task_id, r.field, r.reason)?;
            }
        }
        return Ok(exit_code(&summary));
    };
    let total = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} submitting [{bar:30}] {pos}/{len} rows {per_sec}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let summary = client::submit_file(client, file, args.batch.min(10_000), &overrides, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    if json {
        let v = serde_json::json!({
            "accepted": summary.accepted,
            "existing": summary.existing,
            "rejected": summary.rejected.iter().map(|r| serde_json::json!({"line": r.line, "taskId": r.task_id, "field": r.field, "reason": r.reason})).collect::<Vec<_>>(),
        });
        print_json(out, &v)?;
    } else {
        writeln!(out, "{}: {} accepted, {} already known, {} rows rejected", file.display(), summary.accepted.len(), summary.existing.len(), summary.rejected.len())?;
        for r in &summary.rejected {
            let id = if r.task_id.is_empty() { String::new() } else { format!(" ({})", r.task_id) };
            writeln!(out, "  line {}{id}: {}: {}", r.line, r.field, r.reason)?;
        }
    }
    Ok(exit_code(&summary))
}

fn exit_code(summary: &SubmitSummary) -> i32 {
    if summary.rejected.is_empty() { 0 } else { 2 }
}
