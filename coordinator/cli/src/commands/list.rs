//! `agentmill list`: tasks by state and label, oldest first.

use std::io::Write;

use agentmill_proto::json::to_json;
use agentmill_proto::v1::TaskState;
use anyhow::Context;
use clap::Args;

use super::print_task;
use crate::client::{Client, print_json};
use crate::report;

/// The flags of `agentmill list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks in these states (queued, leased, running, done, failed, cancelled).
    #[arg(long = "state", value_delimiter = ',')]
    pub states: Vec<String>,
    /// Only tasks carrying this label (key=value); repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// At most this many tasks (all pages are followed up to it).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// Lists the tasks the flags pick.
pub async fn run(client: &mut Client, args: &ListArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let states = args.states.iter().map(|s| parse_state(s)).collect::<anyhow::Result<Vec<_>>>()?;
    for t in report::list(client, &states, &report::parse_pairs("--label", &args.labels)?, args.limit).await? {
        if json {
            print_json(out, &to_json(&t)?)?;
        } else {
            print_task(out, &t)?;
        }
    }
    Ok(0)
}

/// A state as people write it (`queued`), as the wire's number.
fn parse_state(s: &str) -> anyhow::Result<i32> {
    let upper = format!("TASK_STATE_{}", s.to_ascii_uppercase());
    TaskState::from_str_name(&upper).map(|s| s as i32).with_context(|| format!("unknown state {s:?}; use queued, leased, running, done, failed or cancelled"))
}
