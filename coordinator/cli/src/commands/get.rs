//! `agentmill get`: one task and its rollouts.

use std::io::Write;

use agentmill_proto::json::to_json;
use agentmill_proto::v1;

use super::{print_task, status_error};
use crate::client::{Client, print_json};

/// Shows task `id`.
pub async fn run(client: &mut Client, id: &str, out: &mut impl Write, json: bool) -> anyhow::Result<i32> {
    let t = client.get_task(v1::GetTaskRequest { task_id: id.to_string() }).await.map_err(status_error)?.into_inner();
    if json {
        print_json(out, &to_json(&t)?)?;
    } else {
        print_task(out, &t)?;
    }
    Ok(0)
}
