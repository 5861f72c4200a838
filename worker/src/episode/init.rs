//! The `init` stage: the image, a locked-down container, and the repository at its base commit.

use std::time::{Duration, Instant};

use agentmill_proto::{Source, Task};
use sha2::{Digest, Sha256};

use crate::repo::init_archive_repo_script;
use crate::sandbox::docker::{DockerContainer, DockerEngine};
use crate::sandbox::{ExecRequest, SandboxError, SandboxLimits, SandboxSpec};
use crate::shell::quote;

/// How long putting the repository in place may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// A started container with the repository ready.
#[derive(Debug)]
pub struct Prepared {
    /// The container.
    pub container: DockerContainer,
    /// Time spent making sure the image is here.
    pub image_ms: u64,
    /// Time spent starting the container and placing the repository.
    pub start_ms: u64,
}

/// Makes sure the image is on this host and returns its digest. A missing image is pulled; a
/// failed pull is a sandbox error carrying the registry's own message (never a model failure).
pub async fn ensure_image(engine: &DockerEngine, image: &str) -> Result<String, SandboxError> {
    match engine.image_digest(image).await {
        Ok(d) => Ok(d),
        Err(SandboxError::ImageMissing(_)) => {
            engine.pull(image).await?;
            engine.image_digest(image).await
        }
        Err(e) => Err(e),
    }
}

/// Starts a container for `task` and puts its repository at the base commit.
pub async fn prepare(engine: &DockerEngine, task: &Task, worker: &str, episode: &str, limits: &SandboxLimits) -> Result<Prepared, SandboxError> {
    let t0 = Instant::now();
    ensure_image(engine, &task.image).await?;
    let image_ms = t0.elapsed().as_millis() as u64;
    let t1 = Instant::now();
    let mut spec = SandboxSpec::new(task.image.clone(), task.workdir.clone(), worker, episode);
    spec.limits = limits.clone();
    spec.network = task.allow_network || matches!(task.source, Source::Git { .. });
    let container = engine.start(&spec).await?;
    if let Err(e) = place_repository(&container, task).await {
        container.remove().await;
        return Err(e);
    }
    if matches!(task.source, Source::Git { .. }) && !task.allow_network {
        // The clone needed the network; the episode does not get it.
        if let Err(e) = engine.disconnect_all_networks(&container).await {
            container.remove().await;
            return Err(e);
        }
    }
    Ok(Prepared { container, image_ms, start_ms: t1.elapsed().as_millis() as u64 })
}

async fn run_setup(c: &DockerContainer, what: &str, script: String) -> Result<String, SandboxError> {
    let out = c.exec(&ExecRequest::new(script).timeout(SETUP_TIMEOUT).max_output(256 * 1024)).await?;
    if out.exit_code != 0 {
        return Err(SandboxError::Engine(format!("{what} failed (exit {}): {}", out.exit_code, tail(&out.output, 2000))));
    }
    Ok(out.output)
}

async fn place_repository(c: &DockerContainer, task: &Task) -> Result<(), SandboxError> {
    match &task.source {
        Source::Image => {
            // The image carries the repository; make sure it is a git checkout we can diff.
            run_setup(c, "checking the repository in the image", format!("cd {} && git rev-parse HEAD", quote(&task.workdir))).await?;
        }
        Source::Archive { path, sha256 } => {
            let local = path.strip_prefix("file://").unwrap_or(path);
            let bytes = tokio::fs::read(local).await.map_err(|e| SandboxError::Io(format!("reading archive {local}: {e} (the worker must be able to read the task's archive path)")))?;
            if let Some(want) = sha256 {
                let got = hex(&Sha256::digest(&bytes));
                if !got.eq_ignore_ascii_case(want) {
                    return Err(SandboxError::Io(format!("archive {local} has sha256 {got}, the task says {want}")));
                }
            }
            c.upload_tar(&task.workdir, bytes).await?;
            let out = run_setup(c, "committing the archive as the base commit", init_archive_repo_script()).await?;
            let head = out.lines().last().unwrap_or_default().trim();
            if !task.base_commit.is_empty() && head != task.base_commit {
                return Err(SandboxError::Io(format!(
                    "archive {local} does not reproduce base_commit {} (got {head}); rebuild the archive or fix the row",
                    task.base_commit
                )));
            }
        }
        Source::Git { url } => {
            let script = format!(
                "set -e\nmkdir -p {wd}\ncd {wd}\ngit init -q\ngit remote add origin {url}\ngit fetch -q --depth 1 origin {commit} || git fetch -q origin\ngit checkout -q {commit}\n",
                wd = quote(&task.workdir),
                url = quote(url),
                commit = quote(&task.base_commit)
            );
            run_setup(c, "cloning the repository", script).await?;
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last `n` bytes of a text (at a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
