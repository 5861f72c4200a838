//! `agentmill retry`: failed and cancelled rollouts run again (next attempt, failures reset).

use std::io::Write;

use agentmill_proto::v1::{self, TaskState};
use clap::Args;

use super::{batch_reply, status_error};
use crate::client::Client;
use crate::report;

/// The flags of `agentmill retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Task ids.
    #[arg(required_unless_present = "failed")]
    pub ids: Vec<String>,
    /// Every failed task (with --label: those carrying the labels).
    #[arg(long)]
    pub failed: bool,
    /// With --failed: only tasks carrying this label (key=value); repeatable.
    #[arg(long = "label", requires = "failed")]
    pub labels: Vec<String>,
    /// Why (recorded with the task).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Retries the tasks named (and with `--failed`, every failed one), a thousand ids per call;
/// exit code 2 when an id is unknown.
pub async fn run(client: &mut Client, args: &RetryArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let mut ids = args.ids.clone();
    if args.failed {
        let labels = report::parse_pairs("--label", &args.labels)?;
        let listed = report::list(client, &[TaskState::Failed as i32], &labels, usize::MAX).await?;
        ids.extend(listed.into_iter().filter_map(|t| t.task.map(|spec| spec.instance_id)));
    }
    let mut r = v1::RetryTasksResponse::default();
    for batch in ids.chunks(1000) {
        let part = client.retry_tasks(v1::RetryTasksRequest { task_ids: batch.to_vec(), reason: args.reason.clone() }).await.map_err(status_error)?.into_inner();
        r.retried.extend(part.retried);
        r.not_found.extend(part.not_found);
        r.nothing_to_retry.extend(part.nothing_to_retry);
    }
    let skipped = r.nothing_to_retry.iter().map(|id| (id, "nothing to retry (no failed or cancelled rollout)"));
    batch_reply(out, json, &r, ("retried", r.retried.len()), skipped, &r.not_found)
}
