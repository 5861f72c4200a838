//! Sandboxes: where an episode's commands really run.
//!
//! [`docker`] is the default backend. Its types share the request / output / error types here,
//! so the episode code and the tools do not care which backend runs a command.

pub mod docker;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

/// Where agentmill puts its own files in a sandbox (patches, scripts): outside the workdir, so
/// they never show up in the model's `git diff`.
pub const AGENTMILL_DIR: &str = "/agentmill";

/// Default cap on the output kept from one command.
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024;

/// The marker put where output was cut.
pub const TRUNCATION_MARKER: &str = "\n<output truncated by agentmill: {omitted} bytes omitted>\n";

/// Resource limits of one sandbox; `None` is "no limit from us".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxLimits {
    /// CPUs (fractional allowed).
    pub cpus: Option<f64>,
    /// Memory in bytes (swap is pinned to the same value).
    pub memory_bytes: Option<u64>,
    /// Processes.
    pub pids: Option<u32>,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// The image to run.
    pub image: String,
    /// The repository's folder in the container.
    pub workdir: String,
    /// Environment of the container (and of every exec).
    pub env: BTreeMap<String, String>,
    /// Whether the container may use the network.
    pub network: bool,
    /// Limits.
    pub limits: SandboxLimits,
    /// The worker that owns the container (a label, for reaping).
    pub worker: String,
    /// The episode the container serves (a label and the container's name).
    pub episode: String,
}

impl SandboxSpec {
    /// A spec with the environment every episode gets: `TZ=UTC`, `PYTHONHASHSEED=0` (graded runs
    /// must not depend on the host's zone or hash seed), no bytecode files in the repo.
    pub fn new(image: impl Into<String>, workdir: impl Into<String>, worker: impl Into<String>, episode: impl Into<String>) -> Self {
        let env = [("TZ", "UTC"), ("PYTHONHASHSEED", "0"), ("PYTHONDONTWRITEBYTECODE", "1"), ("LANG", "C.UTF-8")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SandboxSpec {
            image: image.into(),
            workdir: workdir.into(),
            env,
            network: false,
            limits: SandboxLimits::default(),
            worker: worker.into(),
            episode: episode.into(),
        }
    }
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Run as `bash -c <command>`.
    pub command: String,
    /// Killed (whole process group) after this long.
    pub timeout: Duration,
    /// Output kept; the rest is counted and dropped.
    pub max_output: usize,
    /// Folder to run in; default: the sandbox's workdir.
    pub workdir: Option<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

impl ExecRequest {
    /// A command with a 60 s timeout and the default output cap.
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest {
            command: command.into(),
            timeout: Duration::from_secs(60),
            max_output: DEFAULT_MAX_OUTPUT,
            workdir: None,
            env: BTreeMap::new(),
        }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the output cap.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }
}

/// The real result of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutput {
    /// Exit code (137 when killed).
    pub exit_code: i64,
    /// stdout and stderr interleaved as produced, cut at the cap with a marker.
    pub output: String,
    /// Whether output was cut.
    pub truncated: bool,
    /// Bytes the command wrote in all.
    pub total_bytes: u64,
    /// Wall time.
    pub duration: Duration,
    /// Killed at its deadline.
    pub timed_out: bool,
}

/// Why a sandbox operation failed. Every variant is an infra / sandbox failure, never the model's.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No engine answers.
    #[error("no Docker engine answers ({0}); start dockerd, set DOCKER_HOST, or choose the process sandbox")]
    EngineUnavailable(String),
    /// The image is not on this host and could not be pulled.
    #[error("image {0} is not on this host and could not be pulled; build or load it (deploy/setup.sh builds the sandbox image)")]
    ImageMissing(String),
    /// The engine refused or failed a call.
    #[error("docker: {0}")]
    Engine(String),
    /// The container stopped answering.
    #[error("the container did not answer within {0:?}")]
    Unresponsive(Duration),
    /// A local I/O problem.
    #[error("{0}")]
    Io(String),
}

/// Reads an output stream, keeping the first `max` bytes (cut at a char boundary, with a marker)
/// and counting the rest. Returns (text, truncated, total bytes).
pub async fn collect_output<S, E>(mut chunks: S, max: usize) -> Result<(String, bool, u64), E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut kept: Vec<u8> = Vec::with_capacity(max.min(64 * 1024));
    let mut total: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        total += chunk.len() as u64;
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    let truncated = total > kept.len() as u64;
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if truncated {
        // A cut may split a multi-byte char; lossy decoding turned it into U+FFFD, drop it.
        while text.ends_with('\u{FFFD}') {
            text.pop();
        }
        let omitted = total - text.len() as u64;
        text.push_str(&TRUNCATION_MARKER.replace("{omitted}", &omitted.to_string()));
    }
    Ok((text, truncated, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_past_the_cap_is_counted_and_marked() {
        let chunks = futures::stream::iter(vec![Ok::<_, ()>(Bytes::from("hello ")), Ok(Bytes::from("world"))]);
        let (text, truncated, total) = collect_output(chunks, 8).await.unwrap();
        assert!(truncated);
        assert_eq!(total, 11);
        assert!(text.starts_with("hello wo"));
        assert!(text.contains("3 bytes omitted"), "{text}");
    }

    #[tokio::test]
    async fn output_under_the_cap_is_kept_whole() {
        let chunks = futures::stream::iter(vec![Ok::<_, ()>(Bytes::from("ok\n"))]);
        let (text, truncated, total) = collect_output(chunks, 8).await.unwrap();
        assert_eq!((text.as_str(), truncated, total), ("ok\n", false, 3));
    }

    #[tokio::test]
    async fn a_cut_inside_a_multibyte_char_leaves_no_replacement_char() {
        let chunks = futures::stream::iter(vec![Ok::<_, ()>(Bytes::from("aé"))]);
        let (text, truncated, _) = collect_output(chunks, 2).await.unwrap();
        assert!(truncated);
        assert!(text.starts_with('a') && !text.contains('\u{FFFD}'), "{text:?}");
    }
}
