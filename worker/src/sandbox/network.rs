//! Whether a sandbox may use the network — the worker decides, not the task — and the egress
//! policy a network-enabled sandbox lives under.
//!
//! A task's `allow_network: true` is a request. A worker whose `[sandbox_network] mode` is
//! `"off"` (the default) refuses it: the episode ends as `sandbox_error` (never the model's
//! failure) with a reason naming `sandbox_network.mode`, and nothing runs with network. With
//! `mode = "allow"` (Docker backend only) the sandbox joins an **internal** Docker network the
//! worker creates for the episode — no route out, and the bridge carries no IPv4 address of the
//! host (`com.docker.network.bridge.inhibit_ipv4`), so the host's listeners are out of reach —
//! whose only other member is an egress proxy container ([`PROXY_SCRIPT`], run with the
//! sandbox image's Python) attached to the operator's egress network as well. The sandbox's
//! `HTTP(S)_PROXY` names that proxy; it resolves each destination itself and connects only to
//! an address on `sandbox_network.allow`, or else to a globally routable address that is not on
//! `sandbox_network.deny` nor one of this host's own addresses. Loopback, link-local (the cloud
//! metadata address 169.254.169.254), private (RFC 1918, IPv6 ULA), shared (100.64/10),
//! reserved and multicast ranges are refused unless the allow list names them. Traffic that
//! does not go through the proxy (raw TCP, UDP, DNS) has nowhere to go.
//!
//! Why a proxy and not firewall rules: rules in the `DOCKER-USER` chain need the worker to be
//! root on the host with `iptables`/`nftables` of the engine's flavour, are global to the host,
//! and outlive a crashed worker; an internal network and a proxy container need only the Docker
//! API the worker already uses, build from the sandbox image (no registry, no internet), and go
//! with the episode.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::SandboxError;

/// The egress proxy: Python 3 (the sandbox image's), standard library only.
pub const PROXY_SCRIPT: &str = include_str!("egress_proxy.py");

/// The name the sandbox reaches its proxy by (a network alias on the internal network).
pub const PROXY_ALIAS: &str = "agentmill-egress-proxy";

/// The proxy's port.
pub const PROXY_PORT: u16 = 3128;

/// `[sandbox_network]` of the worker's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxNetworkConfig {
    /// `"off"` (default): a task that asks for the network is refused. `"allow"`: it gets a
    /// network whose egress goes through the proxy under the policy below (Docker only).
    pub mode: String,
    /// Addresses or CIDR ranges (`"10.1.2.3"`, `"10.8.0.0/16"`, `"fd00::/8"`) the proxy may
    /// connect to even though they are private, link-local or the host's own.
    pub allow: Vec<String>,
    /// Addresses or ranges the proxy never connects to (besides the ranges refused by default
    /// and this host's own addresses), e.g. the host's other public addresses.
    pub deny: Vec<String>,
    /// The image the proxy runs in (it needs `python3`); default: the sandbox image.
    pub proxy_image: String,
    /// The Docker network the proxy reaches the outside through.
    pub egress_network: String,
    /// The Docker network a `git` source is cloned over (in a short-lived container of the
    /// task's image; the episode's sandbox never joins it).
    pub clone_network: String,
}

impl Default for SandboxNetworkConfig {
    fn default() -> Self {
        SandboxNetworkConfig {
            mode: "off".into(),
            allow: Vec::new(),
            deny: Vec::new(),
            proxy_image: "agentmill/sandbox-python:bookworm".into(),
            egress_network: "bridge".into(),
            clone_network: "bridge".into(),
        }
    }
}

/// What the worker lets a sandbox's network do, checked and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPolicy {
    /// Whether a task may have the network at all (`mode = "allow"`).
    pub allow_tasks: bool,
    /// Ranges the proxy may reach although refused by default.
    pub allow: Vec<IpNet>,
    /// Ranges the proxy never reaches (the configured ones and this host's addresses).
    pub deny: Vec<IpNet>,
    /// The proxy's image.
    pub proxy_image: String,
    /// The proxy's way out.
    pub egress_network: String,
    /// The network clones run on.
    pub clone_network: String,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        SandboxNetworkConfig::default().policy().unwrap_or_else(|_| unreachable!("the default configuration is valid"))
    }
}

/// An address or a CIDR range.
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = IpNet::from_str(s) {
        return Ok(net.trunc());
    }
    IpAddr::from_str(s).map(IpNet::from).map_err(|_| format!("{s:?} is not an address or a CIDR range such as \"10.1.2.3\" or \"10.8.0.0/16\""))
}

impl SandboxNetworkConfig {
    /// The policy, or (key, reason) for a value that cannot work.
    pub fn policy(&self) -> Result<NetworkPolicy, (&'static str, String)> {
        let allow_tasks = match self.mode.trim() {
            "off" => false,
            "allow" => true,
            other => return Err(("sandbox_network.mode", format!("{other:?} is neither \"off\" (tasks that ask for the network are refused) nor \"allow\" (they get it through the egress proxy)"))),
        };
        let mut allow = Vec::new();
        for (i, a) in self.allow.iter().enumerate() {
            allow.push(parse_net(a).map_err(|why| ("sandbox_network.allow", format!("entry {i}: {why}")))?);
        }
        let mut deny = Vec::new();
        for (i, d) in self.deny.iter().enumerate() {
            deny.push(parse_net(d).map_err(|why| ("sandbox_network.deny", format!("entry {i}: {why}")))?);
        }
        for (key, value) in [("sandbox_network.proxy_image", &self.proxy_image), ("sandbox_network.egress_network", &self.egress_network), ("sandbox_network.clone_network", &self.clone_network)] {
            if value.trim().is_empty() {
                return Err((key, "is empty; name an image or network (see deploy/OPERATIONS.md)".into()));
            }
        }
        Ok(NetworkPolicy {
            allow_tasks,
            allow,
            deny,
            proxy_image: self.proxy_image.trim().to_string(),
            egress_network: self.egress_network.trim().to_string(),
            clone_network: self.clone_network.trim().to_string(),
        })
    }
}

impl NetworkPolicy {
    /// The refusal of a task that asks for the network on a worker that does not allow it;
    /// `None` when it may have it.
    pub fn refusal(&self, task: &str) -> Option<SandboxError> {
        (!self.allow_tasks).then(|| {
            SandboxError::NetworkRefused(format!(
                "task {task} asks for the network (allow_network: true), and this worker's sandbox_network.mode is \"off\"; \
                 run it on a worker configured with sandbox_network.mode = \"allow\", or drop allow_network from the task"
            ))
        })
    }

    /// The ranges the proxy is told to refuse: the configured ones plus this host's own
    /// addresses (the ones it would send from, found without sending anything).
    pub fn deny_with_host_addresses(&self) -> Vec<IpNet> {
        let mut deny = self.deny.clone();
        for probe in ["192.0.2.1:9", "[2001:db8::1]:9"] {
            let bind = if probe.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
            if let Ok(sock) = std::net::UdpSocket::bind(bind)
                && sock.connect(probe).is_ok()
                && let Ok(local) = sock.local_addr()
                && !local.ip().is_unspecified()
            {
                deny.push(IpNet::from(local.ip()));
            }
        }
        deny
    }

    /// The environment that points a sandbox's HTTP clients at the proxy.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        let url = format!("http://{PROXY_ALIAS}:{PROXY_PORT}");
        let mut env = Vec::new();
        for key in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push((key.to_string(), url.clone()));
        }
        for key in ["NO_PROXY", "no_proxy"] {
            env.push((key.to_string(), "localhost,127.0.0.1,::1".to_string()));
        }
        env
    }
}

/// Comma-joined ranges, as the proxy reads them.
pub fn join_nets(nets: &[IpNet]) -> String {
    nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_refuses_network_and_names_the_key() {
        let policy = SandboxNetworkConfig::default().policy().expect("valid");
        assert!(!policy.allow_tasks);
        let why = policy.refusal("t-1").expect("refused").to_string();
        assert!(why.contains("t-1") && why.contains("sandbox_network.mode") && why.contains("\"allow\""), "{why}");
    }

    #[test]
    fn allow_entries_are_addresses_or_ranges() {
        let cfg = SandboxNetworkConfig { mode: "allow".into(), allow: vec!["10.1.2.3".into(), "10.8.1.0/16".into(), "fd00::/8".into()], ..Default::default() };
        let policy = cfg.policy().expect("valid");
        assert!(policy.allow_tasks && policy.refusal("t").is_none());
        assert_eq!(join_nets(&policy.allow), "10.1.2.3/32,10.8.0.0/16,fd00::/8");
        let bad = SandboxNetworkConfig { allow: vec!["10.0.0.0/8".into(), "metadata".into()], ..Default::default() };
        let (key, why) = bad.policy().expect_err("refused");
        assert_eq!(key, "sandbox_network.allow");
        assert!(why.contains("entry 1") && why.contains("\"metadata\""), "{why}");
        let (key, why) = SandboxNetworkConfig { mode: "on".into(), ..Default::default() }.policy().expect_err("refused");
        assert_eq!(key, "sandbox_network.mode");
        assert!(why.contains("\"on\""), "{why}");
    }
}
