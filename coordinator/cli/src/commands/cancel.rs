//! `agentmill cancel`: queued rollouts never run, running episodes are stopped.

use std::io::Write;

use agentmill_proto::v1;
use clap::Args;

use super::{batch_reply, status_error};
use crate::client::Client;

/// The flags of `agentmill cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Task ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Why (recorded with the task).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Cancels the tasks; exit code 2 when an id is unknown.
pub async fn run(client: &mut Client, args: &CancelArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let r = client.cancel_tasks(v1::CancelTasksRequest { task_ids: args.ids.clone(), reason: args.reason.clone() }).await.map_err(status_error)?.into_inner();
    let skipped = r.already_finished.iter().map(|id| (id, "already finished"));
    batch_reply(out, json, &r, ("cancelled", r.cancelled.len()), skipped, &r.not_found)
}
