//! The bodies of `agentmill-learner`'s commands, one file each; the binary
//! (`src/bin/agentmill-learner.rs`) parses the flags and calls them.

pub mod doctor;
pub mod eval;
pub mod export;
pub mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::records::RecordSource;

/// Where records come from: JSONL files or a stream (read without a consumer group).
#[derive(Debug, Args)]
pub struct RecordInput {
    /// JSONL files of records (repeatable).
    #[arg(long, required_unless_present = "stream")]
    pub input: Vec<PathBuf>,
    /// A Redis stream of records (read with XRANGE: nothing is claimed or acknowledged).
    #[arg(long, conflicts_with = "input")]
    pub stream: Option<String>,
    /// Redis URL for --stream.
    #[arg(long, env = "AGENTMILL_REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// At most this many records.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl RecordInput {
    pub fn source(&self) -> RecordSource {
        match &self.stream {
            Some(stream) => RecordSource::Stream { redis_url: self.redis_url.clone(), stream: stream.clone() },
            None => RecordSource::Files(self.input.clone()),
        }
    }
}

/// Writes `text` to stdout. A reader that went away early (`| head`, a closed pager) ends the
/// output quietly, where `print!` would panic.
pub fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
