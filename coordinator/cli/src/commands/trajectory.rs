//! `agentmill trajectory`: what an episode did, from its trajectory record in the stream.

use std::io::Write;

use agentmill_proto::v1;
use anyhow::Context;
use clap::Args;

use super::status_error;
use crate::client::{Client, print_json};
use crate::transcript::{Shown, transcript};

/// The flags of `agentmill trajectory`.
#[derive(Debug, Args)]
pub struct TrajectoryArgs {
    /// Task id.
    pub id: String,
    /// Rollout (0-based).
    #[arg(long, default_value_t = 0)]
    pub rollout: u32,
    /// Attempt (1-based; default: the latest that published).
    #[arg(long, default_value_t = 0)]
    pub attempt: u32,
    /// Lines shown of each message before the middle is elided (0: all).
    #[arg(long, default_value_t = 40)]
    pub lines: usize,
}

/// Shows the record as a transcript ([`crate::transcript`]), or with `json` the record itself.
pub async fn run(client: &mut Client, args: &TrajectoryArgs, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let t = client
        .get_trajectory(v1::GetTrajectoryRequest { task_id: args.id.clone(), rollout: args.rollout, attempt: args.attempt })
        .await
        .map_err(status_error)?
        .into_inner();
    let record: agentmill_proto::TrajectoryRecord = serde_json::from_str(&t.record_json).with_context(|| format!("{}: the coordinator sent a record this build cannot read", t.record_id))?;
    if json {
        print_json(out, &serde_json::to_value(&record)?)?;
    } else {
        write!(out, "{}", transcript(&record, Shown { max_lines: args.lines }))?;
        writeln!(out, "\n({} · stream entry {})", t.record_id, t.stream_id)?;
    }
    Ok(0)
}
