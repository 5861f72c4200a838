//! Sandboxes: where an episode's commands really run.
//!
//! [`docker`] is the default backend; [`process`] runs commands as child processes (under
//! bubblewrap where it can) on hosts without Docker. Both share the request / output / error
//! types here, so the episode code and the tools do not care which backend runs a command. The
//! [`Sandbox`] trait is what the agent layer holds (`&dyn Sandbox`): run a command, read and write
//! a file byte for byte, say whether it is alive.
//!
//! Around the Docker backend: [`pull`] brings task images from registries (pinned digests,
//! logins, a deadline, pre-pulls); [`build`] builds task environments from a Dockerfile, once per
//! host; [`images`] keeps the host's task images within a budget; [`network`] decides whether a
//! sandbox may use the network and the egress policy it then lives under (the proxy,
//! `egress_proxy.py`, runs in a container of its own beside the sandbox).

pub mod build;
pub mod docker;
pub mod images;
pub mod network;
pub mod process;
pub mod pull;

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
    /// Writable-layer size in bytes. Docker `--storage-opt size=` where the engine's storage
    /// driver supports it (overlay2 on xfs with `pquota`, btrfs, zfs, devicemapper: a real ENOSPC
    /// in the container); on any other driver a watchdog that polls the writable layer and kills
    /// the container past the limit, plus a per-file size limit (see [`docker`]). Ignored by the
    /// process backend.
    pub disk_bytes: Option<u64>,
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
    /// The Docker network a container with `network` joins (default: `bridge`). Episodes
    /// that may use the network join their own internal network, whose only way out is the
    /// egress proxy ([`network`]).
    pub network_name: Option<String>,
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
            network_name: None,
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
    /// Which end of a longer output is kept.
    pub keep: Keep,
    /// Folder to run in; default: the sandbox's workdir.
    pub workdir: Option<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// The user to run as (a name or a UID; Docker only); default: the container's.
    pub user: Option<String>,
}

impl ExecRequest {
    /// A command with a 60 s timeout and the default output cap.
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest {
            command: command.into(),
            timeout: Duration::from_secs(60),
            max_output: DEFAULT_MAX_OUTPUT,
            keep: Keep::Head,
            workdir: None,
            env: BTreeMap::new(),
            user: None,
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

    /// Keeps `keep` of an output longer than `max_output`.
    pub fn keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
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
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    /// No engine answers.
    #[error("no Docker engine answers ({0}); start dockerd, set DOCKER_HOST, or choose the process sandbox")]
    EngineUnavailable(String),
    /// The image is not on this host and could not be pulled.
    #[error("image {0} is not on this host and could not be pulled; build or load it (deploy/setup.sh builds the sandbox image)")]
    ImageMissing(String),
    /// The image is not on this host and the worker's `[images] pull` list does not allow pulling it.
    #[error("image {0} is not on this host, and the worker's images.pull allows no pull of it; add a pattern matching it to [images] pull in the worker's configuration, or build or load the image on this host")]
    PullRefused(String),
    /// Pulling the image took longer than the worker's `images.pull_timeout`.
    #[error("pulling image {image} did not finish within {} (the worker's images.pull_timeout); check that its registry answers, or raise images.pull_timeout", humantime_serde::re::humantime::format_duration(*timeout))]
    PullTimeout {
        /// The image.
        image: String,
        /// The deadline it passed.
        timeout: Duration,
    },
    /// The image a task pins by digest (`repo@sha256:…`) is not the one on the host after the
    /// pull: the registry answered with another manifest, and the image does not run.
    #[error("image {image} is pinned to {expected}, but the image on this host has {actual}; it will not run (pin the digest the registry serves, or fix the registry)")]
    DigestMismatch {
        /// The image as the task names it.
        image: String,
        /// The digest the task pins.
        expected: String,
        /// The registry digests Docker lists for the image (or its id when none).
        actual: String,
    },
    /// The task's image reference cannot be one (a malformed pinned digest).
    #[error("image {image}: {reason}; fix the task's image field")]
    BadReference {
        /// The image as the task names it.
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The engine refused or failed a call.
    #[error("docker: {0}")]
    Engine(String),
    /// The container stopped answering.
    #[error("the container did not answer within {0:?}")]
    Unresponsive(Duration),
    /// The task asks for something this worker's configuration does not allow (the network):
    /// a sandbox error, not the model's failure; the message names the configuration key.
    #[error("{0}")]
    NetworkRefused(String),
    /// A local I/O problem.
    #[error("{0}")]
    Io(String),
    /// A path that was to be read does not exist.
    #[error("{0} does not exist in the sandbox")]
    NotFound(String),
    /// A path that was to be read as a file is a folder or a special file.
    #[error("{0} is not a regular file (it is a directory or a special file)")]
    NotAFile(String),
    /// A file too large to read whole.
    #[error("{path} is larger than {limit} bytes; read it in parts (e.g. `sed -n 1,200p {path}`)")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit it passed.
        limit: u64,
    },
    /// A path could not be written (a read-only place, a parent that is a file, ...).
    #[error("cannot write {path}: {reason}")]
    WriteRefused {
        /// The file.
        path: String,
        /// What the sandbox said.
        reason: String,
    },
    /// The container's writable layer outgrew the task's disk limit and the disk watchdog killed
    /// and removed the container (engines whose storage driver cannot enforce `--storage-opt
    /// size`). Every later — and in-flight — operation on that sandbox fails with this.
    ///
    /// Like every variant this ends the episode as `sandbox_error` (the exit reasons are fixed:
    /// `submitted, max_steps, context_overflow, step_timeout, episode_timeout, policy_error,
    /// sandbox_error, infra_error, cancelled`), with this message in the record's `error`. It is
    /// not scored as a model result: the container was stopped to protect the host's disk, not
    /// because the model's work was judged, and on an engine with `--storage-opt` the same write
    /// would have been an ENOSPC the model could see and react to.
    #[error("disk limit exceeded: the container wrote {}, its limit is {}; it was stopped to protect the host", human_bytes(*written), human_bytes(*limit))]
    DiskLimit {
        /// The writable layer's size when the watchdog saw it past the limit, in bytes.
        written: u64,
        /// The limit, in bytes.
        limit: u64,
    },
}

/// Bytes for a message: `812 bytes`, `3.5 KB`, `50 MB`, `1.2 GB` (binary units, as task limits
/// such as `disk: 50m` are read).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (size, unit) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            let rounded = (v * 10.0).round() / 10.0;
            return if rounded.fract() == 0.0 { format!("{rounded:.0} {unit}") } else { format!("{rounded:.1} {unit}") };
        }
    }
    format!("{n} bytes")
}

impl SandboxError {
    /// True when the error is about the path the caller named rather than about the sandbox
    /// (missing, a folder, too large, not writable): the sandbox is healthy, and a tool reports
    /// such an error to the model instead of ending the episode.
    pub fn is_path_error(&self) -> bool {
        matches!(
            self,
            SandboxError::NotFound(_) | SandboxError::NotAFile(_) | SandboxError::TooLarge { .. } | SandboxError::WriteRefused { .. }
        )
    }
}

/// The most a [`Sandbox::read_file`] reads (64 MiB): files beyond it are read in parts with
/// commands instead of being pulled into the worker's memory.
pub const MAX_READ_FILE_BYTES: u64 = 64 << 20;

/// Where an episode's commands run and its files live, whatever the backend.
///
/// Object-safe, so the agent loop and the tools hold a `&dyn Sandbox`. [`docker::DockerContainer`]
/// implements it; a process backend implements the same four operations.
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// The episode this sandbox serves (for logs and spans).
    fn episode(&self) -> &str;

    /// The repository's folder inside the sandbox.
    fn workdir(&self) -> &str;

    /// Where agentmill's own files (patches, scripts) go inside the sandbox: outside the workdir,
    /// so they never show up in the model's diff.
    fn agentmill_dir(&self) -> &str {
        AGENTMILL_DIR
    }

    /// Runs `bash -c <command>` and returns its real output and exit code. The deadline kills
    /// the command's whole process group; output past the cap is counted and dropped.
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError>;

    /// Reads a regular file byte for byte (a symlink is followed). [`SandboxError::NotFound`],
    /// [`SandboxError::NotAFile`] and [`SandboxError::TooLarge`] say what is wrong with the path.
    async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError>;

    /// Writes a file byte for byte, creating its parent folders. An existing file keeps its
    /// permission bits, and a symlink is written through, not replaced.
    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError>;

    /// Whether the sandbox still answers (false once its container died).
    async fn is_alive(&self) -> bool;
}

/// Cuts `text` to at most `max` bytes (at a char boundary) and appends [`TRUNCATION_MARKER`] with
/// the number of bytes left out; returns the text and whether it was cut.
pub fn truncate_output(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_string(), false);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let omitted = text.len() - cut;
    let mut out = String::with_capacity(cut + TRUNCATION_MARKER.len() + 16);
    out.push_str(&text[..cut]);
    out.push_str(&TRUNCATION_MARKER.replace("{omitted}", &omitted.to_string()));
    (out, true)
}

/// Which part of an output longer than its cap is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Keep {
    /// The first bytes (a tool call's output: what the agent would read first).
    #[default]
    Head,
    /// An eighth of the cap from the start and the rest from the end (a test log: the start
    /// marker and the patch application are at the top, the summary, the end marker and the exit
    /// code at the bottom).
    HeadAndTail,
}

/// Reads an output stream, keeping at most `max` bytes as `keep` says (cut at char boundaries,
/// with a marker where bytes were left out) and counting the rest. Returns (text, truncated,
/// total bytes).
pub async fn collect_output<S, E>(mut chunks: S, max: usize, keep: Keep) -> Result<(String, bool, u64), E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let head_max = match keep {
        Keep::Head => max,
        Keep::HeadAndTail => max / 8,
    };
    let tail_max = max - head_max;
    let mut kept: Vec<u8> = Vec::with_capacity(head_max.min(64 * 1024));
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut total: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        total += chunk.len() as u64;
        let room = head_max.saturating_sub(kept.len());
        let (to_head, rest) = chunk.split_at(chunk.len().min(room));
        kept.extend_from_slice(to_head);
        if tail_max > 0 && !rest.is_empty() {
            let rest = &rest[rest.len().saturating_sub(tail_max)..];
            let overflow = (tail.len() + rest.len()).saturating_sub(tail_max);
            tail.drain(..overflow);
            tail.extend(rest);
        }
    }
    if !tail.is_empty() {
        let head = String::from_utf8_lossy(&kept).into_owned();
        let tail: Vec<u8> = tail.into_iter().collect();
        // Start the tail at a char boundary (a UTF-8 continuation byte is 10xxxxxx).
        let start = tail.iter().position(|b| b & 0xC0 != 0x80).unwrap_or(tail.len());
        let tail = String::from_utf8_lossy(&tail[start..]).into_owned();
        let mut head = head;
        while head.ends_with('\u{FFFD}') {
            head.pop();
        }
        let omitted = total - head.len() as u64 - tail.len() as u64;
        if omitted == 0 {
            return Ok((head + &tail, false, total));
        }
        let text = format!("{head}{}{tail}", TRUNCATION_MARKER.replace("{omitted}", &omitted.to_string()));
        return Ok((text, true, total));
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
        let (text, truncated, total) = collect_output(chunks, 8, Keep::Head).await.expect("collected");
        assert!(truncated);
        assert_eq!(total, 11);
        assert!(text.starts_with("hello wo"));
        assert!(text.contains("3 bytes omitted"), "{text}");
    }

    #[tokio::test]
    async fn output_under_the_cap_is_kept_whole() {
        let chunks = futures::stream::iter(vec![Ok::<_, ()>(Bytes::from("ok\n"))]);
        let (text, truncated, total) = collect_output(chunks, 8, Keep::Head).await.expect("collected");
        assert_eq!((text.as_str(), truncated, total), ("ok\n", false, 3));
    }

    #[test]
    fn disk_limit_message_names_what_was_written_and_the_limit() {
        let e = SandboxError::DiskLimit { written: 212 << 20, limit: 50 << 20 };
        assert!(e.to_string().starts_with("disk limit exceeded: the container wrote 212 MB, its limit is 50 MB"), "{e}");
        assert!(!e.is_path_error());
        assert_eq!(human_bytes(812), "812 bytes");
        assert_eq!(human_bytes(2560), "2.5 KB");
        assert_eq!(human_bytes((70 << 20) + (1 << 19)), "70.5 MB");
        assert_eq!(human_bytes(3 << 30), "3 GB");
    }

    #[tokio::test]
    async fn a_long_log_keeps_its_beginning_and_its_end() {
        let body: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let chunks = futures::stream::iter(body.as_bytes().chunks(77).map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c))).collect::<Vec<_>>());
        let (text, truncated, total) = collect_output(chunks, 800, Keep::HeadAndTail).await.expect("collected");
        assert!(truncated);
        assert_eq!(total, body.len() as u64);
        assert!(text.starts_with("line 0\nline 1\n"), "{text}");
        assert!(text.ends_with("line 9998\nline 9999\n"), "{text}");
        let omitted = body.len() - 100 - 700;
        assert!(text.contains(&format!("{omitted} bytes omitted")), "{text}");
        let short = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"short"))]);
        assert_eq!(collect_output(short, 800, Keep::HeadAndTail).await.expect("collected"), ("short".to_string(), false, 5));
    }

    #[test]
    fn truncate_output_cuts_at_a_char_boundary_and_counts_the_rest() {
        assert_eq!(truncate_output("short", 8), ("short".to_string(), false));
        let (text, truncated) = truncate_output("aéb", 2);
        assert!(truncated);
        assert!(text.starts_with('a') && !text.starts_with("aé"), "{text:?}");
        assert!(text.contains("3 bytes omitted"), "{text:?}");
    }

    #[tokio::test]
    async fn a_cut_inside_a_multibyte_char_leaves_no_replacement_char() {
        let chunks = futures::stream::iter(vec![Ok::<_, ()>(Bytes::from("aé"))]);
        let (text, truncated, _) = collect_output(chunks, 2, Keep::Head).await.expect("collected");
        assert!(truncated);
        assert!(text.starts_with('a') && !text.contains('\u{FFFD}'), "{text:?}");
    }
}
