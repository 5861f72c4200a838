//! `agentmill cordon` / `uncordon`: no new leases to these workers (what they run finishes), or
//! leases again.

use std::io::Write;

use agentmill_proto::json::to_json;
use agentmill_proto::v1;
use clap::Args;

use super::status_error;
use crate::client::{Client, print_json};

/// The flags of `agentmill cordon`.
#[derive(Debug, Args)]
pub struct CordonArgs {
    /// Worker ids (as `agentmill stats` shows them); none: list the cordoned ones.
    pub ids: Vec<String>,
}

/// The flags of `agentmill uncordon`.
#[derive(Debug, Args)]
pub struct UncordonArgs {
    /// Worker ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Cordons the workers `ids` (or lifts their cordon, `uncordon`), then shows every cordoned one.
pub async fn run(client: &mut Client, ids: &[String], uncordon: bool, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let r = client.cordon_workers(v1::CordonWorkersRequest { worker_ids: ids.to_vec(), uncordon }).await.map_err(status_error)?.into_inner();
    if json {
        print_json(out, &to_json(&r)?)?;
    } else if r.cordoned.is_empty() {
        writeln!(out, "cordoned: none")?;
    } else {
        writeln!(out, "cordoned: {}", r.cordoned.join(", "))?;
    }
    Ok(0)
}
