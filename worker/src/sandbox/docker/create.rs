//! A sandbox container's creation: locked down (no network unless asked, `no-new-privileges`,
//! every capability dropped, CPU / memory / pids limits, an init process), labelled with the
//! worker and episode that own it, its disk limit given to the storage driver or, where the
//! driver cannot, to the watchdog ([`super::disk`]).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use tracing::debug;

use super::disk::{self, DiskWatch};
use super::{DockerContainer, DockerEngine, LABEL_EPISODE, LABEL_MANAGED, LABEL_WORKER};
use crate::sandbox::{SandboxError, SandboxSpec};

impl DockerEngine {
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
                self.create(&spec.episode, disk::watchdog_body(body, limit)).await
            }
            Some(limit) => {
                let mut with_opt = body.clone();
                if let Some(h) = with_opt.host_config.as_mut() {
                    h.storage_opt = Some([("size".to_string(), limit.to_string())].into_iter().collect());
                }
                match self.create(&spec.episode, with_opt).await {
                    Err(bollard::errors::Error::DockerResponseServerError { status_code, message })
                        if status_code != 404 && disk::refuses_storage_opt(&message) =>
                    {
                        self.storage_opt_refused(&message).await;
                        watched = Some(limit);
                        self.create(&spec.episode, disk::watchdog_body(body, limit)).await
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
        let disk_watch = watched.map(|limit| Arc::new(DiskWatch::new(limit)));
        let container = DockerContainer {
            docker: self.docker.clone(),
            id,
            workdir: spec.workdir.clone(),
            episode: spec.episode.clone(),
            disk: disk_watch.clone(),
            companions: Vec::new(),
            networks: Vec::new(),
        };
        if let Err(e) = self.docker.start_container(&container.id, None).await {
            container.remove().await;
            return Err(SandboxError::Engine(format!("start container: {e}")));
        }
        if let Some(watch) = disk_watch {
            // The task holds the client, the id and the shared state — never a `DockerContainer`
            // — and ends when the container is removed (by `remove`, the reaper or itself) or
            // stops, so it neither leaks nor keeps the container alive.
            tokio::spawn(disk::watch_disk(self.docker.clone(), container.id.clone(), watch, self.learned.clone()));
        }
        debug!(container = %container.id, image = %spec.image, disk_watchdog = container.disk.is_some(), "container started");
        Ok(container)
    }

    /// Creates a container (under a fresh name each time: a refused attempt leaves nothing, but
    /// a retry must not depend on that); returns its id.
    pub(super) async fn create(&self, episode: &str, body: ContainerCreateBody) -> Result<String, bollard::errors::Error> {
        let name = container_name(episode);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        Ok(self.docker.create_container(Some(options), body).await?.id)
    }
}

/// A container name that is valid for Docker, says which episode it serves, and is unique even
/// when two coordinators (or a rerun) hand out the same episode id: a random suffix.
pub(super) fn container_name(episode: &str) -> String {
    let clean: String = episode
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect();
    format!("agentmill-{}-{:08x}", clean.trim_matches('-'), fastrand::u32(..))
}
