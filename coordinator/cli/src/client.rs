//! The `agentmill` CLI's commands as a library: connecting (address, token, TLS), submitting a
//! JSONL file in batches with progress, and printing messages for people or, with `--json`, as
//! canonical proto3 JSON for scripts.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentmill_proto::v1::{self, task_input::Input};
use anyhow::{Context, bail};
use serde::Deserialize;
use agentmill_proto::connect::{ConnectError, Target};

use crate::report::RowOverrides;

/// Where and how to reach the coordinator (from flags, `AGENTMILL_*` variables or the CLI's
/// config file `~/.config/agentmill/cli.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port` (a bare `host:port` means http).
    pub addr: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// PEM CA certificate to trust for https.
    pub ca_cert: Option<PathBuf>,
}

impl ClientConfig {
    /// Reads a config file.
    pub fn from_file(path: &Path) -> anyhow::Result<ClientConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not a valid agentmill CLI config", path.display()))
    }

    /// The config the CLI starts from: `explicit` (`--config`, which must exist), else
    /// `~/.config/agentmill/cli.toml` where there is one, else an empty config.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<ClientConfig> {
        let path = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/agentmill/cli.toml")));
        match path {
            Some(p) if p.is_file() => ClientConfig::from_file(&p),
            Some(p) if explicit.is_some() => bail!("--config {} does not exist", p.display()),
            _ => Ok(ClientConfig::default()),
        }
    }
}

/// A connected client.
pub type Client = agentmill_proto::connect::Client;

/// The default coordinator address.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// Connects to the coordinator.
pub async fn connect(cfg: &ClientConfig) -> anyhow::Result<Client> {
    let addr = cfg.addr.as_deref().unwrap_or(DEFAULT_ADDR);
    let target = Target { addr, ca_cert: cfg.ca_cert.as_deref(), token: cfg.token.as_deref(), connect_timeout: Duration::from_secs(10) };
    agentmill_proto::connect::connect(target).await.map_err(|e| match e {
        ConnectError::Unreachable { .. } => anyhow::anyhow!("{e} (is agentmill-coordinator running? set --addr or AGENTMILL_ADDR)"),
        e => anyhow::Error::new(e),
    })
}

/// A row refused by the coordinator, with its line in the submitted file.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedLine {
    /// Line number in the file (1-based).
    pub line: usize,
    /// The task id, when readable.
    pub task_id: String,
    /// The field.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What a file submission did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubmitSummary {
    /// Newly queued.
    pub accepted: Vec<String>,
    /// Already known.
    pub existing: Vec<String>,
    /// Refused rows.
    pub rejected: Vec<RejectedLine>,
}

/// Submits a JSONL file in batches of `batch` rows, with `overrides` applied to each row; the
/// files rows name on this machine (archives, relative to the file's folder) are uploaded with
/// the tasks and named as `content:<sha256>` ([`crate::upload`]). `progress` is told how many
/// rows have been sent.
pub async fn submit_file(client: &mut Client, path: &Path, batch: usize, overrides: &RowOverrides, mut progress: impl FnMut(u64)) -> anyhow::Result<SubmitSummary> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let base_dir = std::fs::canonicalize(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    let mut summary = SubmitSummary::default();
    let mut uploads = crate::upload::Uploads::default();
    let mut rows: Vec<(usize, String)> = Vec::with_capacity(batch);
    let mut lines = std::io::BufReader::new(file).lines().enumerate();
    loop {
        rows.clear();
        for (i, line) in lines.by_ref() {
            let line = line.with_context(|| format!("{}: line {} is not readable text", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let row = overrides.apply(&line);
            let row = uploads.localise_row(client, &base_dir, &row).await.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
            rows.push((i + 1, row));
            if rows.len() == batch {
                break;
            }
        }
        if rows.is_empty() {
            break;
        }
        submit_batch(client, &rows, &mut summary).await?;
        progress(rows.len() as u64);
    }
    Ok(summary)
}

/// Submits Harbor task directories (`paths`: task directories or folders of them, picked as the
/// `harbor` package picks them): each is read and made a row as the package reads it, its
/// directory packed ([`agentmill_proto::dataset::harbor::pack_task`]: a link out of it is
/// refused) and uploaded with `PutContent`, the row naming it as `harbor.content`. A directory
/// refused is listed (its `line` is its place among the directories, from 1) and the others are
/// still sent.
pub async fn submit_harbor(client: &mut Client, paths: &[std::path::PathBuf], overrides: &RowOverrides) -> anyhow::Result<SubmitSummary> {
    use agentmill_proto::dataset::harbor;
    let mut summary = SubmitSummary::default();
    let mut rows: Vec<(usize, String)> = Vec::new();
    let mut n = 0;
    for path in paths {
        let (dirs, skipped) = harbor::task_dirs(path).map_err(|e| anyhow::anyhow!("--harbor {}: {e}", path.display()))?;
        for e in skipped {
            n += 1;
            summary.rejected.push(RejectedLine { line: n, task_id: e.task_dir.clone(), field: e.at.clone(), reason: e.message.clone() });
        }
        for dir in dirs {
            n += 1;
            let made = harbor::read_task(&dir).and_then(|t| Ok((harbor::task_row(&t)?, harbor::pack_task(&dir)?)));
            let (mut row, tar) = match made {
                Ok(m) => m,
                Err(e) => {
                    summary.rejected.push(RejectedLine { line: n, task_id: e.task_dir.clone(), field: e.at.clone(), reason: e.message.clone() });
                    continue;
                }
            };
            let content = crate::upload::put_content(client, tar).await.with_context(|| format!("uploading the task directory {}", dir.display()))?;
            if let Some(serde_json::Value::Object(h)) = row.get_mut("harbor") {
                h.insert("content".into(), serde_json::Value::String(content));
            }
            rows.push((n, overrides.apply(&serde_json::Value::Object(row).to_string())));
        }
    }
    for chunk in rows.chunks(1000) {
        submit_batch(client, chunk, &mut summary).await?;
    }
    Ok(summary)
}

/// Submits one batch of `(line, row)` and adds the answer to `summary`, each refused row
/// under its line.
async fn submit_batch(client: &mut Client, rows: &[(usize, String)], summary: &mut SubmitSummary) -> anyhow::Result<()> {
    let req = v1::SubmitTasksRequest { tasks: rows.iter().map(|(_, r)| v1::TaskInput { input: Some(Input::JsonRow(r.clone())) }).collect(), base_dir: String::new() };
    let resp = match client.submit_tasks(req).await {
        Ok(r) => r.into_inner(),
        // Every row of the batch was refused: the details carry the full list.
        Err(status) if status.code() == tonic::Code::InvalidArgument && !status.details().is_empty() => {
            prost::Message::decode(status.details()).context("decoding the refused rows")?
        }
        Err(status) => bail!("SubmitTasks failed: {}: {}", status.code(), status.message()),
    };
    summary.accepted.extend(resp.accepted);
    summary.existing.extend(resp.existing);
    for e in resp.rejected {
        let line = rows.get(e.row.saturating_sub(1) as usize).map(|(l, _)| *l).unwrap_or(0);
        summary.rejected.push(RejectedLine { line, task_id: e.task_id, field: e.field, reason: e.reason });
    }
    Ok(())
}

/// Writes one JSON value per line.
pub fn print_json(out: &mut impl Write, value: &serde_json::Value) -> std::io::Result<()> {
    writeln!(out, "{value}")
}
