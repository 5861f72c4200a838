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
    /// The Docker network a `git` source is cloned over (in a short-lived container of
    /// `clone_image`; the episode's sandbox never joins it).
    pub clone_network: String,
    /// The image a `git` source is cloned in (it needs `git` ≥ 2.39 for the pinning; no task
    /// code runs in it). Default: the sandbox image.
    pub clone_image: String,
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
            clone_image: "agentmill/sandbox-python:bookworm".into(),
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
    /// The image clones run in (the worker's, never the task's).
    pub clone_image: String,
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
        for (key, value) in [("sandbox_network.proxy_image", &self.proxy_image), ("sandbox_network.egress_network", &self.egress_network), ("sandbox_network.clone_network", &self.clone_network), ("sandbox_network.clone_image", &self.clone_image)] {
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
            clone_image: self.clone_image.trim().to_string(),
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

/// The ranges the egress policy refuses unless `sandbox_network.allow` names them, with the
/// class each belongs to. The same addresses the egress proxy refuses (Python's
/// `not ip.is_global or ip.is_multicast`, after unmapping `::ffff:a.b.c.d`), written out.
const DENIED_RANGES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (\"this network\")"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (the cloud metadata address among them)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "reserved (documentation)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "reserved (documentation)"),
    ("203.0.113.0/24", "reserved (documentation)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "reserved (discard-only)"),
    ("2001::/23", "reserved (IETF protocol assignments)"),
    ("2001:db8::/32", "reserved (documentation)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

/// Why the egress policy refuses `ip` by default (`None`: a globally routable address). An
/// IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
pub fn denied_class(ip: IpAddr) -> Option<&'static str> {
    let ip = unmapped(ip);
    DENIED_RANGES.iter().find_map(|(net, class)| {
        let net = IpNet::from_str(net).unwrap_or_else(|_| unreachable!("the table's ranges are valid"));
        net.contains(&ip).then_some(*class)
    })
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A git source's URL checked by the worker: where the clone connects (an address this worker's
/// policy permits, resolved once) and how git is pinned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneTarget {
    /// `git`, `http` or `https`.
    pub scheme: String,
    /// The host as the URL names it.
    pub host: String,
    /// The port connected to.
    pub port: u16,
    /// The address connected to.
    pub address: IpAddr,
    /// The URL git is given: `git://` with the address literal in place of the host; http(s)
    /// as written (normalised), the host name kept for `Host` and TLS name checks.
    pub url: String,
    /// `git -c` settings that pin the connection (http(s): `http.curloptResolve`) and keep
    /// git from going anywhere else (no redirects, no other protocol, no proxy).
    pub git_config: Vec<String>,
}

/// Why a clone URL is refused: names the URL and what to do.
fn refused(url: &str, why: impl std::fmt::Display) -> SandboxError {
    SandboxError::NetworkRefused(format!("git_url {url:?}: {why}"))
}

impl NetworkPolicy {
    /// Whether the egress policy lets a connection go to `ip` (`deny`: the configured ranges
    /// and this host's own addresses, [`Self::deny_with_host_addresses`]); `Err` says why not.
    pub fn permits(&self, ip: IpAddr, deny: &[IpNet]) -> Result<(), String> {
        let ip = unmapped(ip);
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if deny.iter().any(|n| n.contains(&ip)) {
            return Err(format!("{ip} is on sandbox_network.deny or is this host's own address"));
        }
        match denied_class(ip) {
            Some(class) => Err(format!("{ip} is {class}")),
            None => Ok(()),
        }
    }

    /// Checks a remote git source's URL against the egress policy — the worker's step, whether
    /// or not tasks may have the network: `git://`, `http://` or `https://` only (ssh, scp-like
    /// `user@host:path`, `ext::` and other transports are refused, naming the scheme), the host
    /// resolved here and an address chosen that the policy permits (loopback, link-local, private,
    /// shared, reserved, multicast, unspecified and this host's addresses only where
    /// `sandbox_network.allow` names them), and the clone pinned to that address so that DNS
    /// cannot move it between this check and git's connection.
    pub async fn check_clone_url(&self, raw: &str) -> Result<CloneTarget, SandboxError> {
        let hint = "a git source is cloned by the worker from a git://, http:// or https:// URL";
        if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\' || !c.is_ascii()) {
            return Err(refused(raw, format!("is empty or holds whitespace, control characters, backslashes or non-ASCII; {hint}")));
        }
        let Some((scheme, _)) = raw.split_once("://") else {
            let what = if raw.contains("::") { "a remote-helper transport (<transport>::<address>, e.g. ext::)" } else { "not a URL (an scp-like user@host:path is ssh)" };
            return Err(refused(raw, format!("is {what}, which this worker does not clone from; {hint}")));
        };
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "git" | "http" | "https") {
            return Err(refused(raw, format!("the URL scheme {scheme:?} is not one this worker clones over; {hint}")));
        }
        let parsed = url::Url::parse(raw).map_err(|e| refused(raw, format!("is not a valid URL ({e}); {hint}")))?;
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(refused(raw, format!("names no host; {hint}"))),
        };
        let port = parsed.port_or_known_default().unwrap_or(9418);
        let deny = self.deny_with_host_addresses();
        let literal = IpAddr::from_str(host.trim_start_matches('[').trim_end_matches(']')).ok();
        let addresses: Vec<IpAddr> = match literal {
            Some(ip) => vec![ip],
            None => {
                let lookup = tokio::time::timeout(std::time::Duration::from_secs(30), tokio::net::lookup_host((host.as_str(), port)))
                    .await
                    .map_err(|_| refused(raw, format!("resolving {host} took longer than 30 s")))?
                    .map_err(|e| refused(raw, format!("cannot resolve {host}: {e}")))?;
                let mut seen = Vec::new();
                for a in lookup {
                    if !seen.contains(&a.ip()) {
                        seen.push(a.ip());
                    }
                }
                seen
            }
        };
        let mut why = Vec::new();
        let mut chosen = None;
        for ip in &addresses {
            match self.permits(*ip, &deny) {
                Ok(()) => {
                    chosen = Some(*ip);
                    break;
                }
                Err(w) => why.push(w),
            }
        }
        let Some(address) = chosen else {
            return Err(refused(
                raw,
                format!(
                    "{host}:{port} ({}) is outside this worker's egress policy for clones: {}; list the range in sandbox_network.allow if the worker may clone from it",
                    addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                    why.join("; ")
                ),
            ));
        };
        let literal_host = match address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let mut git_config: Vec<String> = vec![
            "protocol.allow=never".into(),
            format!("protocol.{scheme}.allow=always"),
            "http.followRedirects=false".into(),
            "http.proxy=".into(),
            "credential.helper=".into(),
        ];
        let url = if scheme == "git" {
            // Rebuilt from its parts, the address in place of the host: nothing else in it for
            // git to read as a host (git:// has no user, query or fragment).
            if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(refused(raw, "a git:// URL has no user, query or fragment; write git://host[:port]/path"));
            }
            format!("git://{literal_host}:{port}{}", parsed.path())
        } else {
            let normal_host = parsed.host_str().unwrap_or_default().to_string();
            git_config.push(format!("http.curloptResolve={normal_host}:{port}:{literal_host}"));
            parsed.to_string()
        };
        Ok(CloneTarget { scheme, host, port, address, url, git_config })
    }
}

/// Comma-joined ranges, as the proxy reads them.
pub fn join_nets(nets: &[IpNet]) -> String {
    nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Addresses and whether the egress policy refuses them by default (shared with the proxy's
/// agreement test).
pub const ADDRESS_TABLE: &[(&str, bool)] = &[
    ("0.0.0.0", true),
    ("0.1.2.3", true),
    ("10.0.0.1", true),
    ("100.64.0.1", true),
    ("100.127.255.254", true),
    ("100.128.0.1", false),
    ("127.0.0.1", true),
    ("127.255.0.9", true),
    ("169.254.169.254", true),
    ("169.254.0.1", true),
    ("172.16.0.1", true),
    ("172.31.255.255", true),
    ("172.32.0.1", false),
    ("192.0.0.1", true),
    ("192.0.2.10", true),
    ("192.168.1.1", true),
    ("198.18.0.1", true),
    ("198.51.100.7", true),
    ("203.0.113.9", true),
    ("224.0.0.251", true),
    ("239.255.255.250", true),
    ("240.0.0.1", true),
    ("255.255.255.255", true),
    ("1.1.1.1", false),
    ("8.8.8.8", false),
    ("140.82.112.3", false),
    ("::", true),
    ("::1", true),
    ("::ffff:127.0.0.1", true),
    ("::ffff:169.254.169.254", true),
    ("::ffff:8.8.8.8", false),
    ("fe80::1", true),
    ("fc00::1", true),
    ("fd12:3456::1", true),
    ("2001:db8::1", true),
    ("ff02::1", true),
    ("100::1", true),
    ("2606:4700:4700::1111", false),
    ("2a00:1450:4001:80b::200e", false),
];

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

    /// Rust's classification of a table of addresses (the egress proxy agrees on the same table:
    /// worker/tests/sandbox_network.rs runs the proxy's own function over it).
    #[test]
    fn the_default_denied_ranges() {
        for (addr, denied) in ADDRESS_TABLE {
            let ip = IpAddr::from_str(addr).expect("an address");
            assert_eq!(denied_class(ip).is_some(), *denied, "{addr}: {:?}", denied_class(ip));
        }
        let policy = SandboxNetworkConfig { allow: vec!["10.9.0.0/16".into(), "169.254.169.254".into()], ..Default::default() }.policy().expect("valid");
        assert!(policy.permits("10.9.1.2".parse().expect("ip"), &[]).is_ok());
        assert!(policy.permits("169.254.169.254".parse().expect("ip"), &[]).is_ok());
        assert!(policy.permits("169.254.169.253".parse().expect("ip"), &[]).expect_err("refused").contains("link-local"));
        assert!(policy.permits("8.8.8.8".parse().expect("ip"), &["8.8.0.0/16".parse().expect("net")]).expect_err("refused").contains("sandbox_network.deny"));
    }

    #[tokio::test]
    async fn clone_urls_are_checked_and_pinned() {
        let policy = SandboxNetworkConfig { allow: vec!["10.9.0.0/16".into()], ..Default::default() }.policy().expect("valid");
        for (url, says) in [
            ("ssh://git@example.com/r.git", "\"ssh\""),
            ("git@example.com:r.git", "scp-like"),
            ("ext::sh -c touch% /tmp/x", "whitespace"),
            ("ext::sh", "remote-helper"),
            ("file:///etc", "\"file\""),
            ("git://169.254.169.254/r.git", "link-local"),
            ("git://127.0.0.1:6379/r.git", "loopback"),
            ("http://[::ffff:127.0.0.1]/r.git", "loopback"),
            ("http://localhost:8080/r.git", "loopback"),
            ("https://10.10.0.1/r.git", "private"),
            ("git://100.64.0.1/r.git", "shared"),
            ("git://0.0.0.0/r.git", "unspecified"),
            ("git://224.0.0.1/r.git", "multicast"),
        ] {
            let err = policy.check_clone_url(url).await.expect_err(url).to_string();
            assert!(err.contains(says) && err.contains("git_url"), "{url}: {err}");
        }
        let t = policy.check_clone_url("git://10.9.3.4/srv/r.git").await.expect("allowed");
        assert_eq!((t.url.as_str(), t.port), ("git://10.9.3.4:9418/srv/r.git", 9418));
        let t = policy.check_clone_url("https://10.9.3.4:8443/r.git").await.expect("allowed");
        assert!(t.git_config.contains(&"http.curloptResolve=10.9.3.4:8443:10.9.3.4".to_string()), "{t:?}");
        assert!(policy.check_clone_url("git://a@10.9.3.4/r.git").await.expect_err("userinfo").to_string().contains("no user"));
        // A name is resolved by the worker and the clone pinned to the address it checked.
        let local = SandboxNetworkConfig { allow: vec!["127.0.0.0/8".into()], ..Default::default() }.policy().expect("valid");
        let t = local.check_clone_url("http://localhost:8080/r.git").await.expect("allowed by the list");
        assert_eq!(t.url, "http://localhost:8080/r.git");
        assert!(t.git_config.iter().any(|c| c.starts_with("http.curloptResolve=localhost:8080:127.")), "{t:?}");
    }
}
