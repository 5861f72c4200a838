//! The Docker sandbox backend, through bollard.
//!
//! Every container is created locked down — no network unless asked, `no-new-privileges`, every
//! capability dropped, CPU / memory / pids limits — and labelled with the worker and episode that
//! own it, so a worker can find and reap its orphans after a crash. Commands run through
//! `docker exec` under GNU `timeout`, which kills the command's whole process group when the
//! deadline passes; output past a cap is counted and dropped, never buffered.
//!
//! # Disk limits
//!
//! A task's disk limit is passed as `--storage-opt size=N`, which the engine enforces with a
//! real ENOSPC inside the container — but only some storage drivers can (overlay2 over xfs with
//! `pquota`, btrfs, zfs, devicemapper); the others (overlay2 over ext4, fuse-overlayfs, vfs, ...)
//! refuse to create the container. When the engine refuses, the container is created again
//! without it, the [`DockerEngine`] remembers that its engine cannot (later containers skip the
//! failed attempt), and the limit is enforced in two other ways:
//!
//! - a per-file size limit (`RLIMIT_FSIZE`, the container's `fsize` ulimit) of the disk limit,
//!   enforced by the kernel at once: no single file outgrows the limit, so a runaway `dd` stops
//!   there (SIGXFSZ / EFBIG) however fast it writes;
//! - a watchdog task per container that polls the writable layer's size (`SizeRw` of an
//!   inspect with `size=true`) about every second and, once it passes the limit, kills and
//!   removes the container, so a runaway writer cannot fill the host's disk. Every in-flight and
//!   later operation on that sandbox then fails with [`SandboxError::DiskLimit`], which ends the
//!   episode as `sandbox_error` (see there why not as a model result), and
//!   [`crate::metrics::disk_limit_kills`] counts it.
//!
//! What the watchdog costs depends on the driver: where it measures the upper directory directly
//! (overlay2 on most kernels) a poll grows with the files the container wrote; where it falls
//! back to the naive diff (fuse-overlayfs, vfs, overlay2 with `redirect_dir`) the engine walks
//! the whole container filesystem against its image (measured on Docker 20.10 with
//! fuse-overlayfs and the ~270 MB sandbox image: 1.3–2.9 s and about one CPU-second of dockerd
//! plus fuse-overlayfs per poll, whether the container wrote 3000 files or none). A poll is
//! therefore never started sooner than its predecessor's own duration after it ended (at most
//! half the time polling), and a slow poll is logged once per engine. Between polls a writer can
//! still spread past the limit over many files at disk speed; the per-file limit bounds each file.
//!
//! # Where things are
//!
//! This file holds the engine connection ([`DockerEngine`]: connecting, its pull settings, image
//! queries); `create.rs` a container's creation, locked down ([`DockerEngine::start`]);
//! `disk.rs` the disk limit's fallback (the storage-opt refusal, the per-file limit, the
//! watchdog); `container.rs` the [`DockerContainer`] handle (its files, liveness, removal);
//! `exec.rs` commands under a deadline and attached processes ([`DockerContainer::exec`],
//! [`DockerContainer::attach`]); `egress.rs` an episode's network and egress proxy ([`Egress`]);
//! `reap.rs` finding and removing containers and networks by label (orphan reaping).

use std::sync::Arc;

use bollard::Docker;

use super::SandboxError;

mod container;
mod create;
mod disk;
mod egress;
mod exec;
mod reap;

pub use container::DockerContainer;
pub use disk::DISK_POLL_INTERVAL;
pub use egress::Egress;
pub use exec::Attached;
pub use reap::owning_episode;

/// Label naming the worker that owns a container.
pub const LABEL_WORKER: &str = "org.agentmill.worker";
/// Label naming the episode a container serves.
pub const LABEL_EPISODE: &str = "org.agentmill.episode";
/// Label marking every agentmill container.
pub const LABEL_MANAGED: &str = "org.agentmill.managed";

/// A connection to a Docker engine. Clones share what they learned about the engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    learned: Arc<disk::EngineFacts>,
    /// What [`DockerEngine::pull`] may fetch, and how long it may take.
    pull_policy: Arc<super::images::PullPolicy>,
    /// The pulls under way, the pre-pull bound and the pull metrics ([`super::pull`]).
    pulls: Arc<super::pull::Pulls>,
}

impl DockerEngine {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) and agrees on an API
    /// version with it. Fails with a clear error when no engine answers.
    pub async fn connect() -> Result<DockerEngine, SandboxError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| SandboxError::EngineUnavailable(e.to_string()))?;
        let docker = docker.negotiate_version().await.map_err(|e| SandboxError::EngineUnavailable(e.to_string()))?;
        docker.ping().await.map_err(|e| SandboxError::EngineUnavailable(e.to_string()))?;
        let pull_policy: Arc<super::images::PullPolicy> = Arc::default();
        let pulls = Arc::new(super::pull::Pulls::new(pull_policy.prefetch, crate::metrics::PullMetrics::default()));
        Ok(DockerEngine { docker, learned: Arc::new(disk::EngineFacts::default()), pull_policy, pulls })
    }

    /// This engine, pulling only what `policy` allows, within its timeout (the default:
    /// `[images]`'s defaults).
    pub fn with_pull_policy(mut self, policy: super::images::PullPolicy) -> DockerEngine {
        self.pulls = Arc::new(super::pull::Pulls::new(policy.prefetch, self.pulls.metrics().clone()));
        self.pull_policy = Arc::new(policy);
        self
    }

    /// This engine, counting its pulls into `metrics` (the worker's registered ones). Like
    /// [`DockerEngine::with_pull_policy`], call it before the engine pulls: it starts a fresh
    /// table of pulls under way.
    pub fn with_pull_metrics(mut self, metrics: crate::metrics::PullMetrics) -> DockerEngine {
        self.pulls = Arc::new(super::pull::Pulls::new(self.pull_policy.prefetch, metrics));
        self
    }

    /// The pulls of this engine (and its metrics).
    pub fn pulls(&self) -> &super::pull::Pulls {
        &self.pulls
    }

    /// What this engine may pull.
    pub fn pull_policy(&self) -> &super::images::PullPolicy {
        &self.pull_policy
    }

    /// The bollard client, for callers that need an API this type does not wrap.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The image's digest: for a reference pinned by digest, Docker's `repo@sha256:…` entry
    /// holding that digest (none: [`SandboxError::DigestMismatch`]); for a tag, the registry
    /// digest of its repository, else the first one, else the content id. `ImageMissing` when the
    /// engine does not have the image.
    pub async fn image_digest(&self, image: &str) -> Result<String, SandboxError> {
        match self.docker.inspect_image(image).await {
            Ok(info) => {
                let digests = info.repo_digests.unwrap_or_default();
                let reference = super::pull::ImageRef::parse(image);
                if let Some(pinned) = reference.digest {
                    // A pinned image runs only when Docker lists the pinned digest for it.
                    return match digests.iter().find(|d| d.rsplit_once('@').is_some_and(|(_, d)| d == pinned)) {
                        Some(d) => Ok(d.clone()),
                        None => Err(SandboxError::DigestMismatch {
                            image: image.to_string(),
                            expected: pinned.to_string(),
                            actual: if digests.is_empty() { format!("no registry digest (id {})", info.id.unwrap_or_default()) } else { digests.join(", ") },
                        }),
                    };
                }
                // For a tag, the registry digest of its own repository (an image pulled from two
                // repositories lists both).
                let repository = normalize_repository(reference.repository);
                let own = digests.iter().find(|d| d.rsplit_once('@').is_some_and(|(r, _)| normalize_repository(r) == repository));
                Ok(own.or(digests.first()).cloned().or(info.id).unwrap_or_default())
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Err(SandboxError::ImageMissing(image.to_string()))
            }
            Err(e) => Err(SandboxError::Engine(format!("inspect image {image}: {e}"))),
        }
    }

    /// The tags of every image on this host (what the worker tells the coordinator it holds).
    pub async fn local_images(&self) -> Result<Vec<String>, SandboxError> {
        let list = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(|e| SandboxError::Engine(format!("list images: {e}")))?;
        Ok(list.into_iter().flat_map(|i| i.repo_tags).filter(|t| t != "<none>:<none>").collect())
    }
}

/// A repository as Docker lists it (`docker.io/library/python` is `python`).
fn normalize_repository(repository: &str) -> &str {
    let r = repository.strip_prefix("docker.io/").or_else(|| repository.strip_prefix("index.docker.io/")).unwrap_or(repository);
    r.strip_prefix("library/").unwrap_or(r)
}
