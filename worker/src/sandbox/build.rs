//! Task environments built on the worker from a Dockerfile, through the engine's build API.
//!
//! The build context (a task's `environment/` folder, as a tar that travelled with the task)
//! names the image: `agentmill-env/<first 16 hex of its sha256>`, so a host builds an
//! environment once and every later episode of it (or of any task with the same context)
//! finds the image and skips the build. Builds take a permit of their own ([`Builder`]'s limit,
//! `capacity.build`), two episodes of one environment wait for one build, and each build has a
//! deadline (the task's `build_timeout_sec`, at most the worker's `build.max_timeout`).
//!
//! Builds use the legacy builder with no pull (a `FROM` image must be on the host, or be pulled
//! by the worker's image policy first) and the network the worker's `build.network` names
//! (`none` by default: a Dockerfile's `RUN` reaches nothing). The log is kept (its head and
//! tail); a failed build is a [`SandboxError`] naming the step that failed and carrying the
//! log's tail — the task's fault, never the model's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::SandboxError;
use super::docker::DockerEngine;

/// The repository of built environments.
pub const ENV_REPO: &str = "agentmill-env";
/// The log kept of one build: its first bytes...
const LOG_HEAD: usize = 4 * 1024;
/// ...and its last.
const LOG_TAIL: usize = 12 * 1024;
/// The log's tail an error carries.
const ERROR_TAIL: usize = 3 * 1024;

/// The tag of the environment whose build context is `context_tar`.
pub fn context_tag(context_tar: &[u8]) -> String {
    let hash: String = Sha256::digest(context_tar).iter().map(|b| format!("{b:02x}")).collect();
    format!("{ENV_REPO}/{}:latest", &hash[..16])
}

/// Builds environments on one host.
#[derive(Debug)]
pub struct Builder {
    engine: DockerEngine,
    limit: Semaphore,
    max_timeout: Duration,
    network: String,
    /// One lock per tag: episodes of the same environment wait for its one build.
    building: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    builds: AtomicU64,
    failures: AtomicU64,
    hits: AtomicU64,
}

/// What [`Builder::ensure`] did.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image's tag.
    pub tag: String,
    /// False: the image was already on the host (no build).
    pub built: bool,
    /// Time spent building (0 on a cache hit).
    pub build_ms: u64,
    /// The build log, its head and tail (empty on a cache hit).
    pub log: String,
}

impl Builder {
    /// A builder on `engine`: `concurrency` builds at once, each at most `max_timeout`, on the
    /// Docker network `network` (`none`: RUN steps have no network).
    pub fn new(engine: DockerEngine, concurrency: usize, max_timeout: Duration, network: impl Into<String>) -> Builder {
        Builder {
            engine,
            limit: Semaphore::new(concurrency.max(1)),
            max_timeout,
            network: network.into(),
            building: std::sync::Mutex::new(HashMap::new()),
            builds: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// Builds run to completion (successful or not) since start.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// Builds that failed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Environments found already built.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The image of the environment whose context is `context_tar` (`dockerfile` relative to
    /// it), built unless this host has it. `timeout`: the task's; at most the worker's maximum.
    /// `what` names the task in errors.
    pub async fn ensure(&self, what: &str, context_tar: Vec<u8>, dockerfile: &str, timeout: Duration) -> Result<Built, SandboxError> {
        let tag = context_tag(&context_tar);
        let lock = {
            let mut map = self.building.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(tag.clone()).or_default().clone()
        };
        let _one = lock.lock().await;
        if self.engine.image_digest(&tag).await.is_ok() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            crate::metrics::env_builds().with_label_values(&["cached"]).inc();
            return Ok(Built { tag, built: false, build_ms: 0, log: String::new() });
        }
        let _permit = self.limit.acquire().await.map_err(|_| SandboxError::Engine("the build limit closed".into()))?;
        let timeout = timeout.min(self.max_timeout);
        let t = Instant::now();
        let result = tokio::time::timeout(timeout, self.build(&tag, context_tar, dockerfile)).await;
        self.builds.fetch_add(1, Ordering::Relaxed);
        let build_ms = t.elapsed().as_millis() as u64;
        match result {
            Ok(Ok(log)) => {
                crate::metrics::env_builds().with_label_values(&["built"]).inc();
                info!(%tag, build_ms, "built the environment of {what}");
                Ok(Built { tag, built: true, build_ms, log: log.text() })
            }
            Ok(Err((log, why))) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                crate::metrics::env_builds().with_label_values(&["failed"]).inc();
                let step = log.step.clone().unwrap_or_else(|| "before its first step".into());
                warn!(%tag, "building the environment of {what} failed at {step}: {why}");
                Err(SandboxError::Engine(format!(
                    "building the environment of {what} (its Dockerfile, {dockerfile}) failed at {step}: {why}; fix the task's Dockerfile. The build log's end:\n{}",
                    tail(&log.text(), ERROR_TAIL)
                )))
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                crate::metrics::env_builds().with_label_values(&["failed"]).inc();
                Err(SandboxError::Engine(format!(
                    "building the environment of {what} did not finish within {}s (the task's build_timeout_sec, at most the worker's build.max_timeout); the build was abandoned",
                    timeout.as_secs()
                )))
            }
        }
    }

    async fn build(&self, tag: &str, context_tar: Vec<u8>, dockerfile: &str) -> Result<BuildLog, (BuildLog, String)> {
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .pull("")
            .networkmode(&self.network)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut log = BuildLog::default();
        let mut stream = self.engine.client().build_image(options, None, Some(bollard::body_full(context_tar.into())));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = &info.stream {
                        log.push(s);
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err((log, detail));
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => return Err((log, error)),
                Err(e) => return Err((log, e.to_string())),
            }
        }
        if self.engine.image_digest(tag).await.is_err() {
            return Err((log, "the engine reported no error but the image is not there".into()));
        }
        Ok(log)
    }
}

/// A build's log: its head, its tail, and the last step the builder started.
#[derive(Debug, Default)]
struct BuildLog {
    head: String,
    tail: String,
    omitted: u64,
    step: Option<String>,
}

impl BuildLog {
    fn push(&mut self, s: &str) {
        for line in s.lines() {
            // The legacy builder announces each step: `Step 2/4 : RUN make`.
            if line.starts_with("Step ") && line.contains(" : ") {
                self.step = Some(line.trim().to_string());
            }
        }
        if self.head.len() < LOG_HEAD {
            let room = LOG_HEAD - self.head.len();
            let cut = floor_boundary(s, room.min(s.len()));
            self.head.push_str(&s[..cut]);
            self.push_tail(&s[cut..]);
        } else {
            self.push_tail(s);
        }
    }

    fn push_tail(&mut self, s: &str) {
        self.tail.push_str(s);
        if self.tail.len() > LOG_TAIL {
            let drop = floor_boundary(&self.tail, self.tail.len() - LOG_TAIL);
            self.omitted += drop as u64;
            self.tail.drain(..drop);
        }
    }

    fn text(&self) -> String {
        if self.omitted == 0 {
            format!("{}{}", self.head, self.tail)
        } else {
            format!("{}\n<build log: {} bytes omitted>\n{}", self.head, self.omitted, self.tail)
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn tail(s: &str, n: usize) -> &str {
    super::super::episode::init::tail(s, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_its_head_its_tail_and_the_last_step() {
        let mut log = BuildLog::default();
        log.push("Step 1/2 : FROM x\n");
        for i in 0..5000 {
            log.push(&format!("line {i}\n"));
        }
        log.push("Step 2/2 : RUN false\n");
        let text = log.text();
        assert!(text.starts_with("Step 1/2 : FROM x\nline 0\n"), "{}", &text[..100]);
        assert!(text.ends_with("line 4999\nStep 2/2 : RUN false\n"));
        assert!(text.contains("bytes omitted"));
        assert_eq!(log.step.as_deref(), Some("Step 2/2 : RUN false"));
    }

    #[test]
    fn the_tag_is_the_contexts_hash() {
        assert_eq!(context_tag(b"abc"), "agentmill-env/ba7816bf8f01cfea:latest");
        assert_ne!(context_tag(b"abc"), context_tag(b"abd"));
    }
}
