//! The `init` phase: the image, a locked-down sandbox, and the repository at its base commit.
//!
//! The sandbox is a Docker container ([`Backend::Docker`], the default) or, on hosts without a
//! Docker engine, a process sandbox ([`Backend::Process`]: bubblewrap when installed, rlimits —
//! weaker isolation, see [`crate::sandbox::process`]). The process backend has no image: the
//! repository must come from an archive or git, and the host's Python runs the tests.

use std::time::{Duration, Instant};

use agentmill_proto::{Source, Task};
use sha2::{Digest, Sha256};

use crate::inputs::Inputs;
use crate::repo::{MISSING_BASE_COMMIT, archive_repo_script};
use crate::sandbox::docker::{DockerContainer, DockerEngine};
use crate::sandbox::images::ImageCache;
use crate::sandbox::network::{NetworkPolicy, PROXY_ALIAS, PROXY_PORT};
use crate::sandbox::process::{HostPython, ProcessSandbox, ProcessSpec};
use crate::sandbox::{ExecRequest, Sandbox, SandboxError, SandboxLimits, SandboxSpec};
use crate::shell::quote;

/// Where episodes run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Docker containers through bollard.
    Docker(DockerEngine),
    /// Local processes (bubblewrap when installed), with the host Python made visible.
    Process {
        /// The interpreter tests run with (`python` in the sandbox).
        python: Option<HostPython>,
    },
}

impl Backend {
    /// The Docker engine, when episodes run in containers.
    pub fn engine(&self) -> Option<&DockerEngine> {
        match self {
            Backend::Docker(e) => Some(e),
            Backend::Process { .. } => None,
        }
    }
}

/// A started sandbox of either backend.
#[derive(Debug)]
pub enum PreparedSandbox {
    /// A container.
    Docker(DockerContainer),
    /// A process sandbox.
    Process(ProcessSandbox),
}

impl PreparedSandbox {
    /// The sandbox, as the agent and the grader use it.
    pub fn as_sandbox(&self) -> &dyn Sandbox {
        match self {
            PreparedSandbox::Docker(c) => c,
            PreparedSandbox::Process(p) => p,
        }
    }

    /// Removes it (container, or the process sandbox's folder). Never fails.
    pub async fn remove(&self) {
        match self {
            PreparedSandbox::Docker(c) => c.remove().await,
            PreparedSandbox::Process(p) => p.remove().await,
        }
    }

    async fn upload_tar(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        match self {
            PreparedSandbox::Docker(c) => c.upload_tar(dest, tar).await,
            PreparedSandbox::Process(p) => p.upload_tar(dest, tar).await,
        }
    }
}

/// How long putting the repository in place may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// A started sandbox with the repository ready.
#[derive(Debug)]
pub struct Prepared {
    /// The sandbox.
    pub sandbox: PreparedSandbox,
    /// Time spent making sure the image is here.
    pub image_ms: u64,
    /// Time spent starting the container and placing the repository.
    pub start_ms: u64,
}

/// Makes sure the image is on this host and returns its digest. A missing image is pulled; a
/// failed pull is a sandbox error carrying the registry's own message (never a model failure).
/// With the host's image `cache`, the image's use is recorded and a pull is followed by an
/// eviction pass in the background (the caller holds the image's pin: [`ImageCache::pin`]).
/// An image pinned by digest (`repo@sha256:…`) must list that digest after the pull (else
/// [`SandboxError::DigestMismatch`]); the digest returned is the one that runs.
pub async fn ensure_image(engine: &DockerEngine, image: &str, cache: Option<&ImageCache>) -> Result<String, SandboxError> {
    if let Some(reason) = crate::sandbox::pull::ImageRef::parse(image).bad_digest() {
        return Err(SandboxError::BadReference { image: image.to_string(), reason });
    }
    let (digest, pulled) = match engine.image_digest(image).await {
        Ok(d) => (d, false),
        Err(SandboxError::ImageMissing(_)) => {
            engine.pull(image).await?;
            (engine.image_digest(image).await?, true)
        }
        Err(e) => return Err(e),
    };
    if let Some(cache) = cache {
        cache.record_use(image);
        if pulled {
            cache.spawn_pass();
        }
    }
    Ok(digest)
}

/// Starts a sandbox for `task` and puts its repository at the base commit. With Docker, the
/// caller pins `task.image` in `images` (when it has a cache) before and until the sandbox is
/// removed.
///
/// The worker decides whether the sandbox has a network: a task's `allow_network` is refused
/// ([`SandboxError::NetworkRefused`], naming `sandbox_network.mode`) unless `network` allows it,
/// and then the sandbox reaches out only through its egress proxy ([`start_with_egress`]).
#[allow(clippy::too_many_arguments)]
pub async fn prepare(
    backend: &Backend,
    images: Option<&ImageCache>,
    inputs: &Inputs,
    network: &NetworkPolicy,
    task: &Task,
    worker: &str,
    episode: &str,
    limits: &SandboxLimits,
) -> Result<Prepared, SandboxError> {
    let t0 = Instant::now();
    let mut spec = SandboxSpec::new(task.image.clone(), task.workdir.clone(), worker, episode);
    spec.limits = limits.clone();
    if task.allow_network
        && let Some(refused) = network.refusal(&task.instance_id)
    {
        return Err(refused);
    }
    let sandbox = match backend {
        Backend::Docker(engine) => {
            ensure_image(engine, &task.image, images).await?;
            if task.allow_network {
                PreparedSandbox::Docker(start_with_egress(engine, network, &mut spec).await?)
            } else {
                PreparedSandbox::Docker(engine.start(&spec).await?)
            }
        }
        Backend::Process { python } => {
            if task.allow_network {
                return Err(SandboxError::NetworkRefused(format!(
                    "task {} asks for the network (allow_network: true), which this worker gives only through the Docker backend's \
                     egress proxy (sandbox_network.mode = \"allow\"); the process sandbox cannot enforce the egress policy. \
                     Run it on a worker with sandbox = \"docker\", or drop allow_network from the task",
                    task.instance_id
                )));
            }
            if matches!(task.source, Source::Image) {
                return Err(SandboxError::Io(format!(
                    "task {} keeps its repository in the image {}, which the process sandbox cannot run; give it an archive or git source, or run this worker with Docker",
                    task.instance_id, task.image
                )));
            }
            let mut pspec = ProcessSpec::from_sandbox_spec(&spec);
            if let Some(py) = python {
                pspec = pspec.with_python(py);
            }
            PreparedSandbox::Process(ProcessSandbox::start(&pspec).await.map_err(SandboxError::from)?)
        }
    };
    let image_ms = t0.elapsed().as_millis() as u64;
    let t1 = Instant::now();
    if let Err(e) = place_repository(backend, &sandbox, inputs, network, task, &spec).await {
        sandbox.remove().await;
        return Err(e);
    }
    Ok(Prepared { sandbox, image_ms, start_ms: t1.elapsed().as_millis() as u64 })
}

/// Starts a container on an internal network of its own whose only way out is an egress proxy
/// under `policy` (see [`crate::sandbox::network`]), and waits until the proxy answers.
pub async fn start_with_egress(engine: &DockerEngine, policy: &NetworkPolicy, spec: &mut SandboxSpec) -> Result<DockerContainer, SandboxError> {
    let egress = engine.start_egress(policy, &spec.worker, &spec.episode).await?;
    spec.network = true;
    spec.network_name = Some(egress.network.clone());
    spec.env.extend(policy.proxy_env());
    let mut container = match engine.start(spec).await {
        Ok(c) => c,
        Err(e) => {
            engine.remove_egress(&egress).await;
            return Err(e);
        }
    };
    container.attach_egress(&egress);
    let wait = format!(
        "for i in $(seq 1 200); do (exec 3<>/dev/tcp/{PROXY_ALIAS}/{PROXY_PORT}) 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
    );
    match container.exec(&ExecRequest::new(wait).timeout(Duration::from_secs(60))).await {
        Ok(out) if out.exit_code == 0 => Ok(container),
        Ok(out) => {
            container.remove().await;
            Err(SandboxError::Engine(format!(
                "the egress proxy ({}, sandbox_network.proxy_image) did not answer the sandbox within 20 s: {}",
                policy.proxy_image,
                tail(&out.output, 500)
            )))
        }
        Err(e) => {
            container.remove().await;
            Err(e)
        }
    }
}

async fn run_setup(c: &dyn Sandbox, what: &str, script: String) -> Result<String, SandboxError> {
    let out = c.exec(&ExecRequest::new(script).timeout(SETUP_TIMEOUT).max_output(256 * 1024)).await?;
    if out.exit_code != 0 {
        return Err(SandboxError::Engine(format!("{what} failed (exit {}): {}", out.exit_code, tail(&out.output, 2000))));
    }
    Ok(out.output)
}

async fn place_repository(backend: &Backend, sandbox: &PreparedSandbox, inputs: &Inputs, network: &NetworkPolicy, task: &Task, spec: &SandboxSpec) -> Result<(), SandboxError> {
    let c = sandbox.as_sandbox();
    let workdir = c.workdir().to_string();
    match &task.source {
        Source::Image => {
            // The image carries the repository; make sure it is a git checkout we can diff.
            // SWE-bench's images commit their installed state on top of base_commit, so HEAD is
            // base_commit or a descendant; an image that lacks it is stale or the wrong one.
            let check = if task.family == agentmill_proto::dataset::Family::R2eGym {
                // R2E-Gym's environment setup: the tests and their runner moved to /root.
                format!("{}\ncd {} && git rev-parse HEAD", agentmill_proto::dataset::r2e_setup().join("\n"), quote(&workdir))
            } else if task.family == agentmill_proto::dataset::Family::SweSmith {
                // SWE-smith: every instance is a branch of the mirror in the image; the agent
                // starts from its tip (the bug in, its tests taken out).
                format!("cd {} && git checkout -q {} && git rev-parse HEAD", quote(&workdir), quote(&task.instance_id))
            } else if task.base_commit.is_empty() {
                format!("cd {} && git rev-parse HEAD", quote(&workdir))
            } else {
                format!(
                    "cd {wd} && git rev-parse HEAD && {{ git merge-base --is-ancestor {base} HEAD 2>/dev/null || {{ echo 'the repository in the image does not contain base_commit '{base}' at or before its HEAD' >&2; exit 1; }}; }}",
                    wd = quote(&workdir),
                    base = quote(&task.base_commit)
                )
            };
            run_setup(c, &format!("checking the repository in the image {}", task.image), check).await?;
        }
        Source::Archive { path, sha256 } => {
            // Content the task carried, or a host path under the allowed roots; capped, and
            // unpacked once here against the caps before a sandbox sees it.
            let bytes = inputs.read("archive", path).await.map_err(|e| SandboxError::Io(e.to_string()))?;
            if let Some(want) = sha256 {
                let got = hex(&Sha256::digest(&bytes));
                if !got.eq_ignore_ascii_case(want) {
                    return Err(SandboxError::Io("archive: the archive does not match the task's archive_sha256; rebuild the archive or fix the row".into()));
                }
            }
            let (checked, caps) = (bytes.clone(), inputs.clone());
            tokio::task::spawn_blocking(move || caps.check_archive("archive", &checked))
                .await
                .map_err(|e| SandboxError::Io(format!("checking the archive: {e}")))?
                .map_err(|e| SandboxError::Io(e.to_string()))?;
            let local = if agentmill_proto::content_ref(path).is_some() { "the task's content" } else { path.as_str() };
            sandbox.upload_tar(&workdir, bytes).await?;
            let script = archive_repo_script(&task.base_commit);
            let out = c.exec(&ExecRequest::new(script).timeout(SETUP_TIMEOUT).max_output(256 * 1024)).await?;
            if out.exit_code == MISSING_BASE_COMMIT {
                return Err(SandboxError::Io(format!(
                    "archive {local} is a git checkout whose history does not contain base_commit {}; pack the checkout at (or after) that commit, or fix the row",
                    task.base_commit
                )));
            }
            if out.exit_code != 0 {
                return Err(SandboxError::Engine(format!("placing the archive's repository failed (exit {}): {}", out.exit_code, tail(&out.output, 2000))));
            }
            let out = out.output;
            let head = out.lines().last().unwrap_or_default().trim();
            if !task.base_commit.is_empty() && head != task.base_commit {
                return Err(SandboxError::Io(format!(
                    "archive {local} does not reproduce base_commit {} (got {head}); rebuild the archive or fix the row",
                    task.base_commit
                )));
            }
        }
        Source::Git { url } => {
            let tar = clone_in_its_own_sandbox(backend, network, inputs, task, url, spec).await?;
            match sandbox {
                // Docker's archive of the clone's workdir holds the folder itself.
                PreparedSandbox::Docker(d) => d.upload_tar(parent_dir(&workdir), tar).await?,
                PreparedSandbox::Process(p) => p.upload_tar(&workdir, tar).await?,
            }
        }
    }
    Ok(())
}

/// The script that clones `url` at `commit` into `workdir`, git run with `config` (`-c` settings
/// that pin where it connects) and without any proxy from the environment.
fn clone_script(workdir: &str, url: &str, commit: &str, config: &[String]) -> String {
    let git: String = std::iter::once("git".to_string()).chain(config.iter().map(|c| format!("-c {}", quote(c)))).collect::<Vec<_>>().join(" ");
    format!(
        "set -e\nunset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy GIT_PROXY_COMMAND GIT_SSH GIT_SSH_COMMAND\n\
         mkdir -p {wd}\ncd {wd}\ngit init -q\ngit remote add origin {url}\n{git} fetch -q --depth 1 origin {commit} || {git} fetch -q origin\ngit checkout -q {commit}\n",
        wd = quote(workdir),
        url = quote(url),
        commit = quote(commit)
    )
}

/// Clones a `git` source in a short-lived sandbox of its own — the only step that has the
/// network the clone needs (Docker: a container of `sandbox_network.clone_image` on
/// `sandbox_network.clone_network`; the process backend: the host's git on the host's network,
/// or none for a repository on this host), connecting only to the address the worker checked
/// ([`NetworkPolicy::check_clone_url`]) — and returns its workdir as a tar (Docker:
/// the folder itself; the process backend: its contents), at most `cap` bytes. The episode's
/// sandbox never joins that network: it receives the files.
async fn clone_in_its_own_sandbox(backend: &Backend, network: &NetworkPolicy, inputs: &Inputs, task: &Task, url: &str, spec: &SandboxSpec) -> Result<Vec<u8>, SandboxError> {
    let cap = inputs.max_bytes;
    // A repository on this host is read only under the configured roots (canonical, no link
    // on the way, a folder), like every other host path a task names.
    let local = if is_local_git_url(url) {
        Some(inputs.host_path("git_url", url, true).map_err(|e| SandboxError::Io(e.to_string()))?)
    } else {
        None
    };
    // A remote one connects only where the worker's egress policy permits, to the address the
    // worker resolved and checked (the task's URL decides nothing else), before anything starts.
    let (url, git_config) = match &local {
        Some(_) => (url.to_string(), vec!["protocol.allow=never".to_string(), "protocol.file.allow=always".to_string()]),
        None => {
            let target = network.check_clone_url(url).await?;
            (target.url, target.git_config)
        }
    };
    let url = url.as_str();
    // The worker's own clone image, never the task's: no task code, and the task's image (and its
    // git) never runs with network.
    let mut cspec = SandboxSpec::new(network.clone_image.clone(), spec.workdir.clone(), spec.worker.clone(), format!("{}-clone", spec.episode));
    cspec.limits = spec.limits.clone();
    cspec.network = local.is_none();
    match backend {
        Backend::Docker(engine) => {
            cspec.network_name = Some(network.clone_network.clone());
            ensure_image(engine, &network.clone_image, None)
                .await
                .map_err(|e| SandboxError::Engine(format!("the clone image {} (sandbox_network.clone_image): {e}", network.clone_image)))?;
            let clone = engine.start(&cspec).await.map_err(|e| SandboxError::Engine(format!("starting the clone's container (sandbox_network.clone_network = {:?}): {e}", network.clone_network)))?;
            let result = async {
                if let Some(dir) = &local {
                    // The container sees none of the host's folders: the checked repository is
                    // copied in (links stored as links, capped), at the same path.
                    let (src, at) = (dir.clone(), dir.to_string_lossy().into_owned());
                    let tar = tokio::task::spawn_blocking(move || tar_folder(&src, cap)).await.map_err(|e| SandboxError::Io(format!("packing the repository: {e}")))??;
                    run_setup(&clone, "preparing the repository's folder", format!("mkdir -p {}", quote(&at))).await?;
                    clone.upload_tar(&at, tar).await?;
                }
                run_setup(&clone, "cloning the repository", clone_script(clone.workdir(), url, &task.base_commit, &git_config)).await?;
                clone.download_tar(clone.workdir(), cap).await
            }
            .await;
            clone.remove().await;
            result
        }
        Backend::Process { .. } => {
            let mut pspec = ProcessSpec::from_sandbox_spec(&cspec);
            if let Some(dir) = &local {
                // A repository on this host: bubblewrap shows the sandbox only its own folders,
                // so the clone needs it bound (read-only, at the same path), and no network.
                pspec.ro_binds.push(dir.clone());
                pspec.network = false;
            }
            let clone = ProcessSandbox::start(&pspec).await.map_err(SandboxError::from)?;
            let result = async {
                run_setup(&clone, "cloning the repository", clone_script(clone.workdir(), url, &task.base_commit, &git_config)).await?;
                let dir = clone.host_root().join("workdir");
                tokio::task::spawn_blocking(move || tar_folder(&dir, cap))
                    .await
                    .map_err(|e| SandboxError::Io(format!("packing the clone: {e}")))?
            }
            .await;
            clone.remove().await;
            result
        }
    }
}

/// The contents of `dir` as a tar (symbolic links stored as links, never followed), at most
/// `cap` bytes.
fn tar_folder(dir: &std::path::Path, cap: u64) -> Result<Vec<u8>, SandboxError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).map_err(|e| SandboxError::Io(format!("packing the clone: {e}")))?;
    let tar = builder.into_inner().map_err(|e| SandboxError::Io(format!("packing the clone: {e}")))?;
    if tar.len() as u64 > cap {
        return Err(SandboxError::Io(format!("the cloned repository is larger than inputs.max_bytes ({})", crate::sandbox::human_bytes(cap))));
    }
    Ok(tar)
}

/// The folder that holds `path` (`/` for a top-level folder).
fn parent_dir(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    }
}

/// Whether a git URL names a repository on this host (`file://…` or an absolute path).
fn is_local_git_url(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/')
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
