//! Finding and removing what a worker's episodes left: containers and networks by their labels
//! ([`super::LABEL_WORKER`], [`super::LABEL_EPISODE`]), so a worker reaps its orphans after a
//! crash and an episode's leftovers after its end, and the forced removals every path uses.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use tracing::warn;

use super::{DockerEngine, LABEL_EPISODE, LABEL_WORKER};
use crate::sandbox::SandboxError;

impl DockerEngine {
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

    /// Force-removes a container by id (never fails; see [`super::DockerContainer::remove`]).
    pub async fn remove_by_id(&self, id: &str) {
        remove_container(&self.docker, id).await;
    }
}

/// Force-removes a container and its anonymous volumes; an error is logged (a missing one is none).
pub(super) async fn remove_container(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => warn!(container = %id, "could not remove container: {e}"),
    }
}

/// Removes a network; an error is logged (a missing one is none).
pub(super) async fn remove_network(docker: &Docker, name: &str) {
    match docker.remove_network(name).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => warn!(network = %name, "could not remove network: {e}"),
    }
}

/// The episode a container's episode label belongs to: its grading container is labelled
/// `<episode>-grade`, a git source's clone container `<episode>-clone` (or
/// `<episode>-grade-clone`).
pub fn owning_episode(label: &str) -> &str {
    let label = label.strip_suffix("-clone").unwrap_or(label);
    label.strip_suffix("-grade").unwrap_or(label)
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
}
