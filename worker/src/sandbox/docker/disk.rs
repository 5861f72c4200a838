//! The disk limit where the storage driver cannot enforce one (see the module docs' *Disk
//! limits*): recognising the engine's refusal of `--storage-opt size`, the per-file size limit a
//! watched container is created with, and the watchdog task that polls its writable layer and
//! kills and removes it past the limit. [`DiskWatch`] is the state a container's handles share
//! with that task: [`DiskWatch::guard`] turns the operations of a container the watchdog
//! stopped into [`SandboxError::DiskLimit`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{InspectContainerOptionsBuilder, KillContainerOptionsBuilder};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::DockerEngine;
use super::reap::remove_container;
use crate::sandbox::SandboxError;

/// How often the disk watchdog looks at a container's writable layer (at most; see the module
/// docs for how a slow poll stretches it).
pub const DISK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A poll slower than this is worth one warning per engine: the driver computes sizes the slow way.
const SLOW_DISK_POLL: Duration = Duration::from_millis(500);

/// What a [`DockerEngine`] learned about its engine while creating containers.
#[derive(Debug, Default)]
pub(super) struct EngineFacts {
    /// The engine refused `--storage-opt size`: disk limits go to the watchdog from then on.
    storage_opt_unsupported: AtomicBool,
    /// A disk poll was slow (warned once).
    slow_poll_warned: AtomicBool,
}

impl DockerEngine {
    /// Whether this engine enforces disk limits with the watchdog (it refused `--storage-opt
    /// size` once) rather than with the storage driver. False until a container with a disk
    /// limit was created.
    pub fn disk_limits_by_watchdog(&self) -> bool {
        self.learned.storage_opt_unsupported.load(Ordering::Relaxed)
    }

    /// Remembers that the engine refused `--storage-opt size` and says so once, naming the
    /// storage driver.
    pub(super) async fn storage_opt_refused(&self, message: &str) {
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
}

/// Whether the engine's refusal of a container is its "this storage driver cannot do
/// `--storage-opt`" answer, in any of its wordings across drivers and versions ("--storage-opt is
/// not supported", "--storage-opt is supported only for overlay over xfs with 'pquota' mount
/// option", "Storage option overlay2.size only supported for backingFS XFS", ...), as opposed
/// to an unrelated failure (a name conflict, a bad image) that must not be retried without it.
pub(super) fn refuses_storage_opt(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let about_storage =
        ["storage-opt", "storage opt", "storage_opt", "storageopt", "storage option", "storage driver", "quota", "backingfs", "backing filesystem"]
            .iter()
            .any(|k| m.contains(k));
    about_storage && (m.contains("support") || m.contains("quota"))
}

/// `body` made ready for the watchdog: no `storage_opt`, and a per-file size limit of `limit`.
pub(super) fn watchdog_body(mut body: ContainerCreateBody, limit: u64) -> ContainerCreateBody {
    let host = body.host_config.get_or_insert_with(HostConfig::default);
    host.storage_opt = None;
    let fsize = i64::try_from(limit).unwrap_or(i64::MAX);
    let ulimit = ResourcesUlimits { name: Some("fsize".into()), soft: Some(fsize), hard: Some(fsize) };
    host.ulimits.get_or_insert_with(Vec::new).push(ulimit);
    body
}

/// The disk watchdog's state, shared by a container's handles and its watchdog task.
#[derive(Debug)]
pub(super) struct DiskWatch {
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
    pub(super) fn new(limit: u64) -> DiskWatch {
        DiskWatch { limit, tripped: OnceLock::new(), trip: CancellationToken::new(), stop: CancellationToken::new(), ended: AtomicBool::new(false) }
    }

    fn error(&self) -> Option<SandboxError> {
        self.tripped.get().map(|&written| SandboxError::DiskLimit { written, limit: self.limit })
    }

    /// Whether the watchdog found the limit exceeded (and so stopped the container).
    pub(super) fn tripped(&self) -> bool {
        self.tripped.get().is_some()
    }

    /// Whether the watchdog task is still running.
    pub(super) fn running(&self) -> bool {
        !self.ended.load(Ordering::Relaxed)
    }

    /// Ends the watchdog task (its container is being removed).
    pub(super) fn stop(&self) {
        self.stop.cancel();
    }

    /// Runs `op` unless the watchdog stopped the container, and fails it with
    /// [`SandboxError::DiskLimit`] when the watchdog stops the container while it runs (the
    /// container's death would otherwise surface as a confusing engine error or exit 137).
    pub(super) async fn guard<T>(&self, op: impl Future<Output = Result<T, SandboxError>>) -> Result<T, SandboxError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let result = tokio::select! {
            biased;
            _ = self.trip.cancelled() => None,
            r = op => Some(r),
        };
        match (self.error(), result) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => r,
            (None, None) => Err(SandboxError::Engine("the disk watchdog fired without a size".into())),
        }
    }
}

/// Polls `id`'s writable layer until the container is gone, stopped, or past `watch.limit`; in
/// the last case marks the sandbox tripped, then kills and removes the container.
pub(super) async fn watch_disk(docker: Docker, id: String, watch: Arc<DiskWatch>, learned: Arc<EngineFacts>) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
