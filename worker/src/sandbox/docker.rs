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

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, InspectContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::network::{NetworkPolicy, PROXY_ALIAS, PROXY_PORT, PROXY_SCRIPT, join_nets};
use super::{ExecOutput, ExecRequest, MAX_READ_FILE_BYTES, Sandbox, SandboxError, SandboxSpec, collect_output};
use crate::shell::quote;

/// Label naming the worker that owns a container.
pub const LABEL_WORKER: &str = "org.agentmill.worker";
/// Label naming the episode a container serves.
pub const LABEL_EPISODE: &str = "org.agentmill.episode";
/// Label marking every agentmill container.
pub const LABEL_MANAGED: &str = "org.agentmill.managed";

/// How often the disk watchdog looks at a container's writable layer (at most; see the module
/// docs for how a slow poll stretches it).
pub const DISK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A poll slower than this is worth one warning per engine: the driver computes sizes the slow way.
const SLOW_DISK_POLL: Duration = Duration::from_millis(500);

/// A connection to a Docker engine. Clones share what they learned about the engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    learned: Arc<EngineFacts>,
    /// What [`DockerEngine::pull`] may fetch, and how long it may take.
    pull_policy: Arc<super::images::PullPolicy>,
    /// The pulls under way, the pre-pull bound and the pull metrics ([`super::pull`]).
    pulls: Arc<super::pull::Pulls>,
}

/// What a [`DockerEngine`] learned about its engine while creating containers.
#[derive(Debug, Default)]
struct EngineFacts {
    /// The engine refused `--storage-opt size`: disk limits go to the watchdog from then on.
    storage_opt_unsupported: AtomicBool,
    /// A disk poll was slow (warned once).
    slow_poll_warned: AtomicBool,
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
        Ok(DockerEngine { docker, learned: Arc::new(EngineFacts::default()), pull_policy, pulls })
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

    /// Whether this engine enforces disk limits with the watchdog (it refused `--storage-opt
    /// size` once) rather than with the storage driver. False until a container with a disk
    /// limit was created.
    pub fn disk_limits_by_watchdog(&self) -> bool {
        self.learned.storage_opt_unsupported.load(Ordering::Relaxed)
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

    /// Creates and starts a container for `spec`. The container idles (`sleep infinity`) and
    /// every command runs through [`DockerContainer::exec`].
    pub async fn start(&self, spec: &SandboxSpec) -> Result<DockerContainer, SandboxError> {
        let labels: HashMap<String, String> = [
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_WORKER.to_string(), spec.worker.clone()),
            (LABEL_EPISODE.to_string(), spec.episode.clone()),
        ]
        .into_iter()
        .collect();
        let network_mode = match (&spec.network, &spec.network_name) {
            (false, _) => "none".to_string(),
            (true, Some(name)) => name.clone(),
            (true, None) => "bridge".to_string(),
        };
        // On an episode's own (internal, IPv4-only) network the container gets no IPv6 either:
        // no link-local route to the host's bridge (Docker does this by default on networks
        // without IPv6; this makes sure). Not on a kernel without IPv6, where the sysctl does not
        // exist and the engine would refuse the container.
        let kernel_has_ipv6 = std::path::Path::new("/proc/sys/net/ipv6").exists();
        let sysctls = spec.network_name.as_ref().filter(|_| spec.network && kernel_has_ipv6).map(|_| {
            [("net.ipv6.conf.all.disable_ipv6".to_string(), "1".to_string()), ("net.ipv6.conf.default.disable_ipv6".to_string(), "1".to_string())]
                .into_iter()
                .collect()
        });
        let host_config = HostConfig {
            network_mode: Some(network_mode),
            sysctls,
            security_opt: Some(vec!["no-new-privileges".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            nano_cpus: spec.limits.cpus.map(|c| (c * 1e9) as i64),
            memory: spec.limits.memory_bytes.map(|m| m as i64),
            // Swap would let a memory hog crawl instead of dying: pin it to the memory limit.
            memory_swap: spec.limits.memory_bytes.map(|m| m as i64),
            pids_limit: spec.limits.pids.map(i64::from),
            init: Some(true),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(vec!["sleep".into(), "infinity".into()]),
            working_dir: Some(spec.workdir.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            host_config: Some(host_config),
            network_disabled: Some(!spec.network),
            ..Default::default()
        };
        // The disk limit: the storage driver's where it can, else the watchdog's (module docs).
        let mut watched: Option<u64> = None;
        let created = match spec.limits.disk_bytes {
            None => self.create(&spec.episode, body).await,
            Some(limit) if self.disk_limits_by_watchdog() => {
                watched = Some(limit);
                self.create(&spec.episode, watchdog_body(body, limit)).await
            }
            Some(limit) => {
                let mut with_opt = body.clone();
                if let Some(h) = with_opt.host_config.as_mut() {
                    h.storage_opt = Some([("size".to_string(), limit.to_string())].into_iter().collect());
                }
                match self.create(&spec.episode, with_opt).await {
                    Err(bollard::errors::Error::DockerResponseServerError { status_code, message })
                        if status_code != 404 && refuses_storage_opt(&message) =>
                    {
                        self.storage_opt_refused(&message).await;
                        watched = Some(limit);
                        self.create(&spec.episode, watchdog_body(body, limit)).await
                    }
                    other => other,
                }
            }
        };
        let id = created.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => {
                SandboxError::ImageMissing(spec.image.clone())
            }
            other => SandboxError::Engine(format!("create container for {}: {other}", spec.image)),
        })?;
        let disk = watched.map(|limit| Arc::new(DiskWatch::new(limit)));
        let container = DockerContainer {
            docker: self.docker.clone(),
            id,
            workdir: spec.workdir.clone(),
            episode: spec.episode.clone(),
            disk: disk.clone(),
            companions: Vec::new(),
            networks: Vec::new(),
        };
        if let Err(e) = self.docker.start_container(&container.id, None).await {
            container.remove().await;
            return Err(SandboxError::Engine(format!("start container: {e}")));
        }
        if let Some(watch) = disk {
            // The task holds the client, the id and the shared state — never a `DockerContainer`
            // — and ends when the container is removed (by `remove`, the reaper or itself) or
            // stops, so it neither leaks nor keeps the container alive.
            tokio::spawn(watch_disk(self.docker.clone(), container.id.clone(), watch, self.learned.clone()));
        }
        debug!(container = %container.id, image = %spec.image, disk_watchdog = container.disk.is_some(), "container started");
        Ok(container)
    }

    /// Creates a container (under a fresh name each time: a refused attempt leaves nothing, but
    /// a retry must not depend on that); returns its id.
    async fn create(&self, episode: &str, body: ContainerCreateBody) -> Result<String, bollard::errors::Error> {
        let name = container_name(episode);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        Ok(self.docker.create_container(Some(options), body).await?.id)
    }

    /// Remembers that the engine refused `--storage-opt size` and says so once, naming the
    /// storage driver.
    async fn storage_opt_refused(&self, message: &str) {
        if self.learned.storage_opt_unsupported.swap(true, Ordering::Relaxed) {
            return;
        }
        let driver = match self.docker.info().await {
            Ok(info) => info.driver.unwrap_or_else(|| "unknown".into()),
            Err(e) => format!("unknown: {e}"),
        };
        warn!(
            storage_driver = %driver,
            "the Docker engine cannot limit a container's disk with its storage driver ({driver}: \"{}\"); \
             disk limits are enforced by watching each container's writable layer (polled about every {:?}, \
             the container killed past its limit) and by a per-file size limit",
            message.trim(),
            DISK_POLL_INTERVAL
        );
    }

    /// Ids of the containers that carry `worker`'s label (running or not).
    pub async fn containers_of(&self, worker: &str) -> Result<Vec<String>, SandboxError> {
        self.containers_labelled(&[format!("{LABEL_WORKER}={worker}")]).await
    }

    async fn containers_labelled(&self, labels: &[String]) -> Result<Vec<String>, SandboxError> {
        let filters: HashMap<&str, Vec<String>> = [("label", labels.to_vec())].into_iter().collect();
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let list = self.docker.list_containers(Some(options)).await.map_err(|e| SandboxError::Engine(format!("list containers: {e}")))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Force-removes the containers of one episode of `worker` (every label must match, so
    /// another process with the same worker id keeps its own); returns how many went.
    pub async fn reap_episode(&self, worker: &str, episode: &str) -> Result<usize, SandboxError> {
        let labels = [format!("{LABEL_WORKER}={worker}"), format!("{LABEL_EPISODE}={episode}")];
        let ids = self.containers_labelled(&labels).await?;
        for id in &ids {
            remove_container(&self.docker, id).await;
        }
        self.remove_networks_labelled(&labels).await?;
        Ok(ids.len())
    }

    /// Removes the networks that carry every one of `labels` (episodes' egress networks).
    async fn remove_networks_labelled(&self, labels: &[String]) -> Result<(), SandboxError> {
        for name in self.networks_labelled(labels).await? {
            remove_network(&self.docker, &name).await;
        }
        Ok(())
    }

    /// Names of the networks that carry every one of `labels`.
    pub async fn networks_labelled(&self, labels: &[String]) -> Result<Vec<String>, SandboxError> {
        let filters: HashMap<&str, Vec<String>> = [("label", labels.to_vec())].into_iter().collect();
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
        let list = self.docker.list_networks(Some(options)).await.map_err(|e| SandboxError::Engine(format!("list networks: {e}")))?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }

    /// `worker`'s episode networks as (name, episode label) pairs.
    pub async fn networks_by_episode(&self, worker: &str) -> Result<Vec<(String, String)>, SandboxError> {
        let filters: HashMap<&str, Vec<String>> = [("label", vec![format!("{LABEL_WORKER}={worker}")])].into_iter().collect();
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
        let list = self.docker.list_networks(Some(options)).await.map_err(|e| SandboxError::Engine(format!("list networks: {e}")))?;
        Ok(list
            .into_iter()
            .filter_map(|n| {
                let episode = n.labels.as_ref().and_then(|l| l.get(LABEL_EPISODE)).cloned().unwrap_or_default();
                n.name.map(|name| (name, episode))
            })
            .collect())
    }

    /// Removes a network by name (never fails; an error is logged).
    pub async fn remove_network_by_name(&self, name: &str) {
        remove_network(&self.docker, name).await;
    }

    /// The networks `worker`'s episodes created (and not yet removed).
    pub async fn networks_of(&self, worker: &str) -> Result<Vec<String>, SandboxError> {
        self.networks_labelled(&[format!("{LABEL_WORKER}={worker}")]).await
    }

    /// Force-removes every container labelled with `worker`; returns how many went.
    pub async fn reap(&self, worker: &str) -> Result<usize, SandboxError> {
        let ids = self.containers_of(worker).await?;
        for id in &ids {
            remove_container(&self.docker, id).await;
        }
        self.remove_networks_labelled(&[format!("{LABEL_WORKER}={worker}")]).await?;
        Ok(ids.len())
    }
}

/// Whether the engine's refusal of a container is its "this storage driver cannot do
/// `--storage-opt`" answer, in any of its wordings across drivers and versions ("--storage-opt is
/// not supported", "--storage-opt is supported only for overlay over xfs with 'pquota' mount
/// option", "Storage option overlay2.size only supported for backingFS XFS", ...), as opposed
/// to an unrelated failure (a name conflict, a bad image) that must not be retried without it.
fn refuses_storage_opt(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let about_storage =
        ["storage-opt", "storage opt", "storage_opt", "storageopt", "storage option", "storage driver", "quota", "backingfs", "backing filesystem"]
            .iter()
            .any(|k| m.contains(k));
    about_storage && (m.contains("support") || m.contains("quota"))
}

/// `body` made ready for the watchdog: no `storage_opt`, and a per-file size limit of `limit`.
fn watchdog_body(mut body: ContainerCreateBody, limit: u64) -> ContainerCreateBody {
    let host = body.host_config.get_or_insert_with(HostConfig::default);
    host.storage_opt = None;
    let fsize = i64::try_from(limit).unwrap_or(i64::MAX);
    let ulimit = ResourcesUlimits { name: Some("fsize".into()), soft: Some(fsize), hard: Some(fsize) };
    host.ulimits.get_or_insert_with(Vec::new).push(ulimit);
    body
}

/// The disk watchdog's state, shared by a container's handles and its watchdog task.
#[derive(Debug)]
struct DiskWatch {
    /// The limit in bytes.
    limit: u64,
    /// The writable layer's size when the limit was found exceeded.
    tripped: OnceLock<u64>,
    /// Fires once `tripped` is set (and before the container is killed).
    trip: CancellationToken,
    /// Fires when the container is removed through a handle: the watchdog ends.
    stop: CancellationToken,
    /// Set when the watchdog task has ended (for whatever reason).
    ended: AtomicBool,
}

impl DiskWatch {
    fn new(limit: u64) -> DiskWatch {
        DiskWatch { limit, tripped: OnceLock::new(), trip: CancellationToken::new(), stop: CancellationToken::new(), ended: AtomicBool::new(false) }
    }

    fn error(&self) -> Option<SandboxError> {
        self.tripped.get().map(|&written| SandboxError::DiskLimit { written, limit: self.limit })
    }
}

/// Polls `id`'s writable layer until the container is gone, stopped, or past `watch.limit`; in
/// the last case marks the sandbox tripped, then kills and removes the container.
async fn watch_disk(docker: Docker, id: String, watch: Arc<DiskWatch>, learned: Arc<EngineFacts>) {
    /// Marks the watchdog ended however its task ends (returned, or dropped with its runtime).
    struct Ended(Arc<DiskWatch>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.ended.store(true, Ordering::Relaxed);
        }
    }
    let _ended = Ended(watch.clone());
    let options = InspectContainerOptionsBuilder::new().size(true).build();
    let mut no_size_warned = false;
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let polled = tokio::select! {
            biased;
            _ = watch.stop.cancelled() => return,
            r = docker.inspect_container(&id, Some(options.clone())) => r,
        };
        let cost = started.elapsed();
        match polled {
            Ok(info) => {
                failures = 0;
                if !info.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                    // Stopped (or dying): nothing in it writes any more.
                    debug!(container = %id, "disk watchdog: the container stopped; watchdog ends");
                    return;
                }
                match info.size_rw {
                    Some(written) if written > 0 && written as u64 > watch.limit => {
                        trip(&docker, &id, &watch, written as u64).await;
                        return;
                    }
                    Some(_) => {}
                    None if !no_size_warned => {
                        no_size_warned = true;
                        warn!(container = %id, "the engine reports no writable-layer size; only the per-file limit bounds this container's disk");
                    }
                    None => {}
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                debug!(container = %id, "disk watchdog: the container is gone; watchdog ends");
                return;
            }
            Err(e) => {
                failures += 1;
                if failures == 5 {
                    warn!(container = %id, "disk watchdog: 5 polls in a row failed, the last with: {e}");
                } else {
                    debug!(container = %id, "disk watchdog: poll failed: {e}");
                }
            }
        }
        if cost > SLOW_DISK_POLL && !learned.slow_poll_warned.swap(true, Ordering::Relaxed) {
            warn!(
                container = %id,
                "one look at a container's writable-layer size took {cost:?} of the engine's time (its storage driver \
                 diffs the whole filesystem); the disk watchdog polls each limited container no more often than that"
            );
        }
        tokio::select! {
            biased;
            _ = watch.stop.cancelled() => return,
            _ = tokio::time::sleep(DISK_POLL_INTERVAL.max(cost)) => {}
        }
    }
}

/// The limit is exceeded: fail every operation on the sandbox, then kill the container at once
/// (a runaway writer stops now) and remove it (its writable layer leaves the host's disk).
async fn trip(docker: &Docker, id: &str, watch: &DiskWatch, written: u64) {
    let _ = watch.tripped.set(written);
    watch.trip.cancel();
    crate::metrics::disk_limit_kills().inc();
    warn!(container = %id, written, limit = watch.limit, "the container outgrew its disk limit; killing it");
    let kill = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    if let Err(e) = docker.kill_container(id, Some(kill)).await {
        debug!(container = %id, "kill after the disk limit: {e}");
    }
    remove_container(docker, id).await;
}

/// A running sandbox container. Call [`DockerContainer::remove`] on every path; the worker's
/// reaper removes what a crash left behind.
#[derive(Debug, Clone)]
pub struct DockerContainer {
    docker: Docker,
    id: String,
    workdir: String,
    episode: String,
    /// The disk watchdog's state, when it enforces this container's disk limit.
    disk: Option<Arc<DiskWatch>>,
    /// Containers that live and go with this one (its egress proxy).
    companions: Vec<String>,
    /// Networks removed after this container and its companions (its egress network).
    networks: Vec<String>,
}

impl DockerContainer {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a disk watchdog enforces this container's disk limit (a limit on an engine whose
    /// storage driver cannot).
    pub fn has_disk_watchdog(&self) -> bool {
        self.disk.is_some()
    }

    /// Whether this container's disk watchdog task is still running (false without one). It
    /// ends once the container is removed — through [`DockerContainer::remove`] at once, through
    /// anything else (the reaper, `docker rm`) at its next poll — stops, or outgrows its limit.
    pub fn disk_watchdog_running(&self) -> bool {
        self.disk.as_ref().is_some_and(|w| !w.ended.load(Ordering::Relaxed))
    }

    /// Runs `op` unless the disk watchdog stopped the container, and fails it with
    /// [`SandboxError::DiskLimit`] when the watchdog stops the container while it runs (the
    /// container's death would otherwise surface as a confusing engine error or exit 137).
    async fn guarded<T>(&self, op: impl Future<Output = Result<T, SandboxError>>) -> Result<T, SandboxError> {
        let Some(watch) = &self.disk else { return op.await };
        if let Some(e) = watch.error() {
            return Err(e);
        }
        let result = tokio::select! {
            biased;
            _ = watch.trip.cancelled() => None,
            r = op => Some(r),
        };
        match (watch.error(), result) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => r,
            (None, None) => Err(SandboxError::Engine("the disk watchdog fired without a size".into())),
        }
    }

    /// Extracts a tar archive (optionally gzip-compressed) at `dest` inside the container.
    pub async fn upload_tar(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        self.guarded(self.upload_tar_unguarded(dest, tar)).await
    }

    async fn upload_tar_unguarded(&self, dest: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        let tar = if tar.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tar[..]), &mut out)
                .map_err(|e| SandboxError::Io(format!("gunzip archive: {e}")))?;
            out
        } else {
            tar
        };
        let options = UploadToContainerOptionsBuilder::new().path(dest).build();
        self.docker
            .upload_to_container(&self.id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| SandboxError::Engine(format!("upload to {dest}: {e}")))
    }

    /// The folder `path` as Docker's archive API gives it (a tar holding the folder itself), at
    /// most `cap` bytes (more is an error naming `inputs.max_bytes`).
    pub async fn download_tar(&self, path: &str, cap: u64) -> Result<Vec<u8>, SandboxError> {
        let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream = self.docker.download_from_container(&self.id, Some(options));
        let mut tar: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(|e| SandboxError::Engine(format!("read {path}: {e}")))?;
            tar.extend_from_slice(&bytes);
            if tar.len() as u64 > cap {
                return Err(SandboxError::Io(format!("{path} is larger than inputs.max_bytes ({})", super::human_bytes(cap))));
            }
        }
        Ok(tar)
    }

    /// Writes one file inside the container (mode 0644), creating parent folders.
    ///
    /// Docker's archive upload writes to the container's own filesystem: a path under a tmpfs
    /// or volume mount would land beneath the mount, invisible to the container. agentmill's
    /// own files therefore go to [`super::AGENTMILL_DIR`], never to `/tmp`.
    pub async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        self.guarded(self.write_file_unguarded(path, contents)).await
    }

    async fn write_file_unguarded(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        let (dir, name) = path.rsplit_once('/').ok_or_else(|| SandboxError::Io(format!("{path} is not an absolute path")))?;
        let dir = if dir.is_empty() { "/" } else { dir };
        let mkdir = ExecRequest::new(format!("mkdir -p '{}'", dir.replace('\'', "'\\''")));
        self.exec(&mkdir).await?;
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, name, contents).map_err(|e| SandboxError::Io(e.to_string()))?;
        let tar = builder.into_inner().map_err(|e| SandboxError::Io(e.to_string()))?;
        self.upload_tar_unguarded(dir, tar).await
    }

    /// Runs `bash -c <command>` in the container and returns its real output and exit code.
    ///
    /// The deadline is enforced twice: GNU `timeout` in the container kills the command's process
    /// group (exit 137 plus `timed_out`), and a host-side timer a few seconds later abandons the
    /// exec if the container itself stops answering. On a container the disk watchdog stopped,
    /// and for a command running when it does, the answer is [`SandboxError::DiskLimit`].
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        self.guarded(self.exec_unguarded(req)).await
    }

    async fn exec_unguarded(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        let started = Instant::now();
        let secs = req.timeout.as_secs().max(1);
        let cmd = vec![
            "timeout".to_string(),
            "-s".into(),
            "KILL".into(),
            secs.to_string(),
            "bash".into(),
            "-c".into(),
            req.command.clone(),
        ];
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(cmd),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    working_dir: Some(req.workdir.clone().unwrap_or_else(|| self.workdir.clone())),
                    env: Some(req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    user: req.user.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| SandboxError::Engine(format!("create exec: {e}")))?;
        let options = StartExecOptions { detach: false, output_capacity: Some(64 * 1024), ..Default::default() };
        let started_exec = self.docker.start_exec(&exec.id, Some(options)).await.map_err(|e| SandboxError::Engine(format!("start exec: {e}")))?;
        let StartExecResults::Attached { output, .. } = started_exec else {
            return Err(SandboxError::Engine("exec started detached".into()));
        };
        let chunks = output.map(|item| match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::StdErr { message }) | Ok(LogOutput::Console { message }) => Ok(message),
            Ok(LogOutput::StdIn { .. }) => Ok(bytes::Bytes::new()),
            Err(e) => Err(e.to_string()),
        });
        let grace = Duration::from_secs(secs + 10);
        let collected = tokio::time::timeout(grace, collect_output(chunks, req.max_output, req.keep)).await;
        let (text, truncated, total_bytes) = match collected {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(SandboxError::Engine(format!("read exec output: {e}"))),
            Err(_) => {
                warn!(container = %self.id, "exec did not finish {grace:?} after its start; the container is unresponsive");
                return Err(SandboxError::Unresponsive(grace));
            }
        };
        let inspect = self.docker.inspect_exec(&exec.id).await.map_err(|e| SandboxError::Engine(format!("inspect exec: {e}")))?;
        let exit_code = inspect.exit_code.unwrap_or(-1);
        let elapsed = started.elapsed();
        // `timeout -s KILL` exits 137 when it had to kill; a command killed by the OOM killer
        // also exits 137, so only call it a timeout when the deadline was actually reached.
        let timed_out = exit_code == 137 && elapsed + Duration::from_millis(250) >= Duration::from_secs(secs);
        Ok(ExecOutput { exit_code, output: text, truncated, total_bytes, duration: elapsed, timed_out })
    }

    /// Starts `argv` in the container with its stdin and stdout attached and returns both ends:
    /// a byte channel into the sandbox that needs no network (the LLM gateway's, see
    /// [`crate::harness`]). The process lives until its stdin closes or the container goes.
    pub async fn attach(&self, argv: Vec<String>, env: &std::collections::BTreeMap<String, String>) -> Result<Attached, SandboxError> {
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(argv),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| SandboxError::Engine(format!("create attached exec: {e}")))?;
        let options = StartExecOptions { detach: false, output_capacity: Some(1 << 20), ..Default::default() };
        match self.docker.start_exec(&exec.id, Some(options)).await.map_err(|e| SandboxError::Engine(format!("start attached exec: {e}")))? {
            StartExecResults::Attached { output, input } => Ok(Attached { output, input }),
            StartExecResults::Detached => Err(SandboxError::Engine("attached exec started detached".into())),
        }
    }

    /// Whether the container is still running (false once it died, e.g. OOM-killed as a whole).
    pub async fn is_running(&self) -> bool {
        if self.disk.as_ref().is_some_and(|w| w.tripped.get().is_some()) {
            return false;
        }
        match self.docker.inspect_container(&self.id, None).await {
            Ok(info) => info.state.and_then(|s| s.running).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Force-removes the container and its anonymous volumes. Never fails: an error is logged and
    /// the reaper gets another chance.
    pub async fn remove(&self) {
        if let Some(watch) = &self.disk {
            watch.stop.cancel();
        }
        remove_container(&self.docker, &self.id).await;
        for id in &self.companions {
            remove_container(&self.docker, id).await;
        }
        for name in &self.networks {
            remove_network(&self.docker, name).await;
        }
    }

    /// Makes this container's removal remove `egress` (its proxy and its network) too.
    pub fn attach_egress(&mut self, egress: &Egress) {
        self.companions.push(egress.proxy.clone());
        self.networks.push(egress.network.clone());
    }

    /// Reads one regular file out of the container through Docker's archive API (a tar stream
    /// holding the one file), following symlinks inside the container.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        self.guarded(self.read_file_unguarded(path)).await
    }

    async fn read_file_unguarded(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let mut path = path.to_string();
        // A symlink comes back as a link entry; resolve it in the container (a chain resolves
        // at once with `readlink -f`, the loop only guards against a link that changes under us).
        for _ in 0..4 {
            match self.read_archive_entry(&path).await? {
                ArchiveEntry::File(bytes) => return Ok(bytes),
                ArchiveEntry::Symlink => {
                    let out = self.exec(&ExecRequest::new(format!("readlink -f -- {}", quote(&path))).timeout(Duration::from_secs(30))).await?;
                    let target = out.output.trim_end_matches('\n');
                    if out.exit_code != 0 || target.is_empty() || target.contains('\n') {
                        return Err(SandboxError::NotFound(path));
                    }
                    path = target.to_string();
                }
            }
        }
        Err(SandboxError::NotAFile(path))
    }

    async fn read_archive_entry(&self, path: &str) -> Result<ArchiveEntry, SandboxError> {
        let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream = self.docker.download_from_container(&self.id, Some(options));
        let mut tar_bytes: Vec<u8> = Vec::new();
        // The tar stream is the file plus headers and padding; stop pulling well past the limit.
        let cap = MAX_READ_FILE_BYTES + (1 << 20);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    tar_bytes.extend_from_slice(&bytes);
                    if tar_bytes.len() as u64 > cap {
                        return Err(SandboxError::TooLarge { path: path.to_string(), limit: MAX_READ_FILE_BYTES });
                    }
                }
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, message }) => {
                    // Docker answers 404 both for a missing path and for a missing container.
                    if message.contains("No such container") {
                        return Err(SandboxError::Engine(format!("read {path}: {message}")));
                    }
                    return Err(SandboxError::NotFound(path.to_string()));
                }
                Err(e) => return Err(SandboxError::Engine(format!("read {path}: {e}"))),
            }
        }
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let io = |e: std::io::Error| SandboxError::Io(format!("read {path}: the archive Docker returned is unreadable: {e}"));
        let mut entries = archive.entries().map_err(io)?;
        let Some(entry) = entries.next() else {
            return Err(SandboxError::Io(format!("read {path}: Docker returned an empty archive")));
        };
        let mut entry = entry.map_err(io)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            return Ok(ArchiveEntry::Symlink);
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(SandboxError::NotAFile(path.to_string()));
        }
        let size = entry.header().size().map_err(io)?;
        if size > MAX_READ_FILE_BYTES {
            return Err(SandboxError::TooLarge { path: path.to_string(), limit: MAX_READ_FILE_BYTES });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(io)?;
        Ok(ArchiveEntry::File(bytes))
    }

    /// Writes a file for [`Sandbox::write_file`]: unlike [`DockerContainer::write_file`] (always
    /// mode 0644, meant for agentmill's own files), an existing file keeps its permission bits
    /// and a symlink is written through to its target, as an editor would.
    async fn write_file_in_place(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        // One exec: create the parent, resolve a symlink, and read the mode to keep.
        let probe = format!(
            "p={}\n\
             mkdir -p -- \"$(dirname -- \"$p\")\" || exit 3\n\
             if [ -d \"$p\" ]; then echo \"is a directory\"; exit 4; fi\n\
             if [ -L \"$p\" ]; then readlink -f -- \"$p\"; else printf '%s\\n' \"$p\"; fi\n\
             stat -L -c %a -- \"$p\" 2>/dev/null || echo 644\n",
            quote(path)
        );
        let out = self.exec(&ExecRequest::new(probe).timeout(Duration::from_secs(30))).await?;
        if out.exit_code != 0 {
            return Err(SandboxError::WriteRefused { path: path.to_string(), reason: out.output.trim().to_string() });
        }
        let mut lines = out.output.lines();
        let target = lines.next().filter(|t| t.starts_with('/')).unwrap_or(path).to_string();
        let mode = lines.next().and_then(|m| u32::from_str_radix(m.trim(), 8).ok()).unwrap_or(0o644);
        let (dir, name) = target.rsplit_once('/').ok_or_else(|| SandboxError::Io(format!("{target} is not an absolute path")))?;
        let dir = if dir.is_empty() { "/" } else { dir };
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(mode);
        header.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
        header.set_cksum();
        builder.append_data(&mut header, name, contents).map_err(|e| SandboxError::Io(format!("pack {target}: {e}")))?;
        let tar = builder.into_inner().map_err(|e| SandboxError::Io(format!("pack {target}: {e}")))?;
        let options = UploadToContainerOptionsBuilder::new().path(dir).build();
        match self.docker.upload_to_container(&self.id, Some(options), bollard::body_full(tar.into())).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code, message }) if (400..500).contains(&status_code) && !message.contains("No such container") => {
                Err(SandboxError::WriteRefused { path: path.to_string(), reason: message })
            }
            Err(e) => Err(SandboxError::Engine(format!("write {target}: {e}"))),
        }
    }
}

/// What the archive API returned for a path.
enum ArchiveEntry {
    File(Vec<u8>),
    Symlink,
}

#[async_trait::async_trait]
impl Sandbox for DockerContainer {
    fn episode(&self) -> &str {
        &self.episode
    }

    fn workdir(&self) -> &str {
        &self.workdir
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        DockerContainer::exec(self, req).await
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        DockerContainer::read_file(self, path).await
    }

    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        self.guarded(self.write_file_in_place(path, contents)).await
    }

    async fn is_alive(&self) -> bool {
        self.is_running().await
    }
}

async fn remove_container(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => warn!(container = %id, "could not remove container: {e}"),
    }
}

async fn remove_network(docker: &Docker, name: &str) {
    match docker.remove_network(name).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => warn!(network = %name, "could not remove network: {e}"),
    }
}

/// Both ends of a process started by [`DockerContainer::attach`].
pub struct Attached {
    /// What the process writes (stdout and stderr frames).
    pub output: std::pin::Pin<Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    /// Its stdin.
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attached")
    }
}

/// An episode's way out when it may use the network: its internal network and the egress proxy
/// on it (see [`super::network`]). Removed with the sandbox that [`DockerContainer::attach_egress`]
/// was given it, or by [`DockerEngine::remove_egress`].
#[derive(Debug, Clone)]
pub struct Egress {
    /// The internal network's name (the sandbox joins it).
    pub network: String,
    /// The proxy container's id.
    pub proxy: String,
}

impl DockerEngine {
    /// Creates an episode's internal network and starts its egress proxy under `policy` (the
    /// proxy on `policy.egress_network` and, as [`PROXY_ALIAS`], on the internal network).
    /// Everything is labelled with `worker` and `episode`, so the reaper finds it after a crash.
    pub async fn start_egress(&self, policy: &NetworkPolicy, worker: &str, episode: &str) -> Result<Egress, SandboxError> {
        let labels: HashMap<String, String> = [
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_WORKER.to_string(), worker.to_string()),
            (LABEL_EPISODE.to_string(), episode.to_string()),
        ]
        .into_iter()
        .collect();
        let network = container_name(&format!("net-{episode}"));
        let options: HashMap<String, String> = [
            // No IPv4 address of the host on the bridge: the sandbox cannot reach its listeners.
            ("com.docker.network.bridge.inhibit_ipv4".to_string(), "true".to_string()),
            ("com.docker.network.bridge.enable_ip_masquerade".to_string(), "false".to_string()),
        ]
        .into_iter()
        .collect();
        let request = bollard::models::NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            enable_ipv6: Some(false),
            options: Some(options),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        self.docker.create_network(request).await.map_err(|e| SandboxError::Engine(format!("create the episode's network: {e}")))?;
        match self.start_proxy(policy, &network, episode, labels).await {
            Ok(proxy) => Ok(Egress { network, proxy }),
            Err(e) => {
                remove_network(&self.docker, &network).await;
                Err(e)
            }
        }
    }

    async fn start_proxy(&self, policy: &NetworkPolicy, network: &str, episode: &str, labels: HashMap<String, String>) -> Result<String, SandboxError> {
        if let Err(SandboxError::ImageMissing(_)) = self.image_digest(&policy.proxy_image).await {
            return Err(SandboxError::ImageMissing(format!(
                "{} (sandbox_network.proxy_image, the egress proxy's image; it needs python3)",
                policy.proxy_image
            )));
        }
        let env = vec![
            format!("AGENTMILL_EGRESS_ALLOW={}", join_nets(&policy.allow)),
            format!("AGENTMILL_EGRESS_DENY={}", join_nets(&policy.deny_with_host_addresses())),
            format!("AGENTMILL_EGRESS_PORT={PROXY_PORT}"),
        ];
        let host_config = HostConfig {
            network_mode: Some(policy.egress_network.clone()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            readonly_rootfs: Some(true),
            memory: Some(256 << 20),
            memory_swap: Some(256 << 20),
            pids_limit: Some(256),
            init: Some(true),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(policy.proxy_image.clone()),
            cmd: Some(vec!["python3".into(), "-c".into(), PROXY_SCRIPT.into()]),
            user: Some("65534:65534".into()),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(host_config),
            ..Default::default()
        };
        let id = self.create(&format!("proxy-{episode}"), body).await.map_err(|e| SandboxError::Engine(format!("create the egress proxy: {e}")))?;
        let connect = bollard::models::NetworkConnectRequest {
            container: id.clone(),
            endpoint_config: Some(bollard::models::EndpointSettings { aliases: Some(vec![PROXY_ALIAS.to_string()]), ..Default::default() }),
        };
        let started = async {
            self.docker.connect_network(network, connect).await.map_err(|e| SandboxError::Engine(format!("attach the egress proxy to the episode's network: {e}")))?;
            self.docker.start_container(&id, None).await.map_err(|e| {
                SandboxError::Engine(format!("start the egress proxy (sandbox_network.egress_network = {:?}): {e}", policy.egress_network))
            })
        }
        .await;
        if let Err(e) = started {
            remove_container(&self.docker, &id).await;
            return Err(e);
        }
        Ok(id)
    }

    /// Removes an egress proxy and its network (when no sandbox took them over).
    pub async fn remove_egress(&self, egress: &Egress) {
        remove_container(&self.docker, &egress.proxy).await;
        remove_network(&self.docker, &egress.network).await;
    }
}

/// The episode a container's episode label belongs to: its grading container is labelled
/// `<episode>-grade`, a git source's clone container `<episode>-clone` (or
/// `<episode>-grade-clone`).
pub fn owning_episode(label: &str) -> &str {
    let label = label.strip_suffix("-clone").unwrap_or(label);
    label.strip_suffix("-grade").unwrap_or(label)
}

/// A container name that is valid for Docker, says which episode it serves, and is unique even
/// when two coordinators (or a rerun) hand out the same episode id: a random suffix.
fn container_name(episode: &str) -> String {
    let clean: String = episode
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect();
    format!("agentmill-{}-{:08x}", clean.trim_matches('-'), fastrand::u32(..))
}

/// A repository as Docker lists it (`docker.io/library/python` is `python`).
fn normalize_repository(repository: &str) -> &str {
    let r = repository.strip_prefix("docker.io/").or_else(|| repository.strip_prefix("index.docker.io/")).unwrap_or(repository);
    r.strip_prefix("library/").unwrap_or(r)
}

/// Image lists, network detachment and selective reaping, for the episode lifecycle.
impl DockerEngine {
    /// The tags of every image on this host (what the worker tells the coordinator it holds).
    pub async fn local_images(&self) -> Result<Vec<String>, SandboxError> {
        let list = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(|e| SandboxError::Engine(format!("list images: {e}")))?;
        Ok(list.into_iter().flat_map(|i| i.repo_tags).filter(|t| t != "<none>:<none>").collect())
    }

    /// Detaches a container from every network (after a clone that needed one).
    pub async fn disconnect_all_networks(&self, container: &DockerContainer) -> Result<(), SandboxError> {
        let info = self.docker.inspect_container(container.id(), None).await.map_err(|e| SandboxError::Engine(format!("inspect container: {e}")))?;
        let networks = info.network_settings.and_then(|n| n.networks).unwrap_or_default();
        for name in networks.keys() {
            let req = bollard::models::NetworkDisconnectRequest { container: container.id().to_string(), force: Some(true) };
            self.docker.disconnect_network(name, req).await.map_err(|e| SandboxError::Engine(format!("disconnect network {name}: {e}")))?;
        }
        Ok(())
    }

    /// `worker`'s containers as (container id, episode label) pairs, running or not.
    pub async fn containers_by_episode(&self, worker: &str) -> Result<Vec<(String, String)>, SandboxError> {
        let filters: HashMap<&str, Vec<String>> = [("label", vec![format!("{LABEL_WORKER}={worker}")])].into_iter().collect();
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let list = self.docker.list_containers(Some(options)).await.map_err(|e| SandboxError::Engine(format!("list containers: {e}")))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let episode = c.labels.as_ref().and_then(|l| l.get(LABEL_EPISODE)).cloned().unwrap_or_default();
                c.id.map(|id| (id, episode))
            })
            .collect())
    }

    /// Force-removes a container by id (never fails; see [`DockerContainer::remove`]).
    pub async fn remove_by_id(&self, id: &str) {
        remove_container(&self.docker, id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_and_grade_containers_belong_to_their_episode() {
        for label in ["ep-1", "ep-1-grade", "ep-1-clone", "ep-1-grade-clone"] {
            assert_eq!(owning_episode(label), "ep-1", "{label}");
        }
    }

    #[test]
    fn the_engines_storage_opt_refusals_are_recognised() {
        for refusal in [
            "--storage-opt is not supported",
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
            "Storage option overlay2.size only supported for backingFS XFS or ext4",
            "Storage Opt size is not supported by the storage driver",
            "storage-opt is not supported with the containerd image store",
            "Filesystem does not support, or has not enabled quotas",
        ] {
            assert!(refuses_storage_opt(refusal), "{refusal}");
        }
        for other in [
            "Conflict. The container name \"/agentmill-x\" is already in use",
            "No such image: agentmill/sandbox-python:nope",
            "invalid reference format",
        ] {
            assert!(!refuses_storage_opt(other), "{other}");
        }
    }

    #[test]
    fn a_watched_container_has_no_storage_opt_and_a_per_file_limit() {
        let storage_opt = Some([("size".to_string(), "1".to_string())].into_iter().collect());
        let body = ContainerCreateBody { host_config: Some(HostConfig { storage_opt, ..Default::default() }), ..Default::default() };
        let host = watchdog_body(body, 50 << 20).host_config.expect("a host config");
        assert_eq!(host.storage_opt, None);
        let ulimits = host.ulimits.expect("ulimits");
        assert_eq!(ulimits.len(), 1);
        assert_eq!((ulimits[0].name.as_deref(), ulimits[0].soft, ulimits[0].hard), (Some("fsize"), Some(50 << 20), Some(50 << 20)));
    }
}
