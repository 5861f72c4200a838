//! `agentmill watch`: state changes as they happen, one line each.

use std::io::Write;

use agentmill_proto::json::to_json;
use agentmill_proto::v1;
use clap::Args;
use futures::StreamExt;

use super::{result_names, state_name, status_error};
use crate::client::{Client, print_json};

/// The flags of `agentmill watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Task ids to follow.
    pub ids: Vec<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<usize>,
}

/// Follows the events of the tasks named (all when none) until `--count` or the stream ends.
pub async fn run(client: &mut Client, args: &WatchArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let mut stream = client.watch_events(v1::WatchEventsRequest { task_ids: args.ids.clone() }).await.map_err(status_error)?.into_inner();
    let mut n = 0;
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(status_error)?;
        if json {
            print_json(out, &to_json(&ev)?)?;
        } else {
            if ev.dropped_before > 0 {
                writeln!(out, "… {} events skipped (this watcher fell behind)", ev.dropped_before)?;
            }
            write!(out, "{} r{} a{}  {} → {}", ev.task_id, ev.rollout, ev.attempt, state_name(ev.previous_state), state_name(ev.state))?;
            if !ev.worker_id.is_empty() {
                write!(out, "  on {}", ev.worker_id)?;
            }
            if let Some(res) = &ev.result {
                let (resolution, exit) = result_names(res);
                write!(out, "  {resolution} {exit}")?;
            }
            if !ev.reason.is_empty() && ev.result.is_none() {
                write!(out, "  ({})", ev.reason)?;
            }
            writeln!(out)?;
        }
        out.flush()?;
        n += 1;
        if args.count.is_some_and(|c| n >= c) {
            break;
        }
    }
    Ok(0)
}
