//! The bodies of `agentmill`'s commands, one file each (uv's `commands/`): the binary
//! (`src/bin/agentmill.rs`) parses the global flags, connects, and calls the `run` of the
//! command's file with its arguments (each file's `*Args`, which the binary flattens into its
//! subcommands), the connection and where to write. Each answers the process's exit code: 0 when
//! it did what was asked, 2 when the coordinator refused part of it (rows, ids), 1 for the others
//! (an error, which the binary prints).
//!
//! With `--json` (the `json` argument) a command prints canonical proto3 JSON, one object per
//! line, instead of text for people.

pub mod cancel;
pub mod cordon;
pub mod get;
pub mod list;
pub mod report;
pub mod retry;
pub mod stats;
pub mod submit;
pub mod synth;
pub mod top;
pub mod trajectory;
pub mod wait;
pub mod watch;

use std::io::Write;

use agentmill_proto::json::{ProtoName, to_json};
use agentmill_proto::v1::{self, TaskState};

use crate::client::print_json;

/// A failed call, as the coordinator answered it (`not found: rollout 0 of ...`).
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", s.code(), s.message())
}

/// A task state's name, `?` for one this build does not know.
fn state_name(s: i32) -> &'static str {
    TaskState::try_from(s).map(TaskState::name).unwrap_or("?")
}

/// A result's resolution and exit reason (`FULL  submitted`), as `get`, `list` and `watch` show them.
fn result_names(res: &v1::EpisodeResult) -> (&'static str, &'static str) {
    let resolution = v1::Resolution::try_from(res.resolution).map(v1::Resolution::name).unwrap_or_default();
    let exit = v1::ExitReason::try_from(res.exit_reason).map(v1::ExitReason::name).unwrap_or_default();
    (resolution, exit)
}

/// One task and its rollouts, for people (`get`, `list`).
fn print_task(out: &mut impl Write, t: &v1::TaskStatus) -> std::io::Result<()> {
    let id = t.task.as_ref().map(|s| s.instance_id.as_str()).unwrap_or("?");
    writeln!(out, "{id}  {}", state_name(t.state))?;
    for r in &t.rollouts {
        write!(out, "  rollout {}  {}  attempt {}", r.rollout, state_name(r.state), r.attempt)?;
        if r.failures > 0 {
            write!(out, " ({} failed)", r.failures)?;
        }
        if !r.worker_id.is_empty() {
            write!(out, "  worker {}", r.worker_id)?;
        }
        if let Some(res) = &r.result {
            let (resolution, exit) = result_names(res);
            write!(out, "  {resolution}  {exit}")?;
        }
        if !r.last_error.is_empty() {
            write!(out, "  ({})", r.last_error)?;
        }
        writeln!(out)?;
    }
    Ok(())
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
