//! An episode's network when it may use one: an internal Docker network whose only way out
//! is an egress proxy under the episode's [`NetworkPolicy`] (see [`crate::sandbox::network`]),
//! and detaching a container from its networks once it no longer needs them.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};

use super::reap::{remove_container, remove_network};
use super::{DockerContainer, DockerEngine, LABEL_EPISODE, LABEL_MANAGED, LABEL_WORKER, create::container_name};
use crate::sandbox::SandboxError;
use crate::sandbox::network::{NetworkPolicy, PROXY_ALIAS, PROXY_PORT, PROXY_SCRIPT, join_nets};

/// An episode's way out when it may use the network: its internal network and the egress proxy
/// on it (see [`crate::sandbox::network`]). Removed with the sandbox that
/// [`DockerContainer::attach_egress`] was given it, or by [`DockerEngine::remove_egress`].
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

impl DockerEngine {
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
}
