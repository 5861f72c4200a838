//! The worker's configuration: one TOML file, every key with a default, overridden by
//! `AGENTMILL_*` environment variables (top-level keys), overridden by flags.
//! `deploy/config/worker.toml` is the commented example; a test loads it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::AgentConfig;
use crate::agent::policy::PolicyConfig;

/// Concurrent episodes per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// Episodes leased at once (every stage together).
    pub episodes: u32,
    /// Episodes in `init` at once (image checks, container starts).
    pub init: u32,
    /// Agent loops at once.
    pub run: u32,
    /// Grading runs at once.
    pub grade: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig { episodes: 2, init: 2, run: 2, grade: 1 }
    }
}

/// Sandbox limits applied where a task sets none, and the ceilings no task's limits may pass
/// (a task asking for more runs with the ceiling, and the clamp is logged and counted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// CPUs per container.
    pub cpus: f64,
    /// Memory per container (`"2g"`).
    pub memory: String,
    /// Processes per container.
    pub pids: u32,
    /// Timeout of a grading test run.
    #[serde(with = "humantime_serde")]
    pub test_timeout: Duration,
    /// The most CPUs a task may ask for.
    pub max_cpus: f64,
    /// The most memory a task may ask for (`"16g"`).
    pub max_memory: String,
    /// The most processes a task may ask for.
    pub max_pids: u32,
    /// The most writable-layer disk a task may ask for (`"100g"`).
    pub max_disk: String,
    /// The longest grading test run a task may ask for (`test_timeout_s`).
    #[serde(with = "humantime_serde")]
    pub max_test_timeout: Duration,
    /// The longest tool call a task may ask for (`step_timeout_s`).
    #[serde(with = "humantime_serde")]
    pub max_step_timeout: Duration,
    /// The longest agent loop a task may ask for (`episode_timeout_s`).
    #[serde(with = "humantime_serde")]
    pub max_episode_timeout: Duration,
    /// The longest an episode's `init` (image check or pull, container start, repository set-up)
    /// may take, for the agent's sandbox and again for the grading one.
    #[serde(with = "humantime_serde")]
    pub init_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            cpus: 1.0,
            memory: "2g".into(),
            pids: 512,
            test_timeout: Duration::from_secs(1800),
            max_cpus: 8.0,
            max_memory: "16g".into(),
            max_pids: 4096,
            max_disk: "100g".into(),
            max_test_timeout: Duration::from_secs(4 * 3600),
            max_step_timeout: Duration::from_secs(3600),
            max_episode_timeout: Duration::from_secs(6 * 3600),
            init_timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl LimitsConfig {
    /// The ceilings of this section (sizes that do not parse count as no ceiling;
    /// [`WorkerConfig::validate`] refuses them first).
    pub fn ceilings(&self) -> crate::episode::limits::Ceilings {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1);
        crate::episode::limits::Ceilings {
            cpus: self.max_cpus,
            memory: agentmill_proto::parse_size(&self.max_memory).unwrap_or(u64::MAX),
            pids: self.max_pids,
            disk: agentmill_proto::parse_size(&self.max_disk).unwrap_or(u64::MAX),
            test_timeout_s: secs(self.max_test_timeout),
            step_timeout_s: secs(self.max_step_timeout),
            episode_timeout_s: secs(self.max_episode_timeout),
        }
    }
}

/// The host's image cache budget (Docker only): which pulled task images the worker may remove,
/// least recently used first, to keep the host's disk from filling (see
/// [`crate::sandbox::images`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// The most bytes of evictable images to keep (`"200g"`); `""` or `"0"`: never evict.
    pub budget: String,
    /// Patterns (`*` matches any characters) of image references never evicted.
    pub keep: Vec<String>,
    /// Patterns of image references that may be evicted even without a registry digest.
    pub evict: Vec<String>,
    /// Patterns of image references the worker may pull (`*` matches any characters). An image
    /// already on the host runs whatever this says; one that is not and matches no pattern is
    /// refused without a pull. `[]`: never pull.
    pub pull: Vec<String>,
    /// The longest one image pull may take before the episode ends `sandbox_error`.
    #[serde(with = "humantime_serde")]
    pub pull_timeout: Duration,
    /// Images pulled ahead at once for leased tasks still waiting for an `init` slot (the host's
    /// backlog); `0`: no pre-pulls, each episode pulls its own image in `init`.
    pub prefetch: u32,
    /// Credentials per registry host (`"registry.example:5000"`, `"docker.io"`), sent with the
    /// pulls of images from that host.
    pub registries: BTreeMap<String, RegistryLogin>,
}

impl RegistryLogin {
    /// Whether this login can work: a host key, a user name, one password source. The message
    /// names the registry and the fix.
    pub fn check(&self, host: &str) -> Result<(), String> {
        if host.is_empty() || host.contains('/') || host.contains('@') || host.trim() != host {
            return Err(format!("{host:?} is not a registry host; name it as in the image reference (\"registry.example:5000\", \"docker.io\")"));
        }
        if self.username.is_empty() {
            return Err(format!("{host:?}: username is empty"));
        }
        match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => Err(format!("{host:?}: password_file and password_env are both set; keep one")),
            (None, None) => Err(format!("{host:?}: no password; set password_file (a file holding it) or password_env (the variable holding it)")),
            _ => Ok(()),
        }
    }

    /// The password, read from its file or variable (the message names the registry and the source).
    pub fn password(&self, host: &str) -> Result<String, String> {
        self.check(host)?;
        let password = if let Some(path) = &self.password_file {
            std::fs::read_to_string(path).map_err(|e| format!("images.registries.{host:?}: password_file {}: {e}", path.display()))?
        } else {
            let var = self.password_env.as_deref().unwrap_or_default();
            std::env::var(var).map_err(|_| format!("images.registries.{host:?}: password_env names {var}, which is not set"))?
        };
        let password = password.trim().to_string();
        if password.is_empty() {
            return Err(format!("images.registries.{host:?}: the password is empty"));
        }
        Ok(password)
    }
}

/// The login of one registry (`[images.registries."HOST"]`). The password is read from a file or
/// an environment variable at start, never written in the configuration, and never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryLogin {
    /// The user name.
    pub username: String,
    /// A file holding the password (surrounding whitespace ignored).
    pub password_file: Option<std::path::PathBuf>,
    /// The name of an environment variable holding the password.
    pub password_env: Option<String>,
}

/// The registries' namespaces of the dataset families agentmill knows (SWE-bench, SWE-rebench,
/// SWE-smith, SWE-Gym) and its own images: what a worker pulls by default.
pub const DEFAULT_PULL: [&str; 4] = ["agentmill/*", "docker.io/swebench/*", "docker.io/swerebench/*", "docker.io/xingyaoww/*"];

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            budget: String::new(),
            keep: vec!["agentmill/*".into()],
            evict: Vec::new(),
            pull: DEFAULT_PULL.iter().map(|p| p.to_string()).collect(),
            pull_timeout: Duration::from_secs(20 * 60),
            prefetch: 2,
            registries: BTreeMap::new(),
        }
    }
}

impl ImagesConfig {
    /// The budget in bytes; `None` when images are never evicted (empty, zero, or not a size —
    /// [`WorkerConfig::validate`] refuses the last).
    pub fn budget_bytes(&self) -> Option<u64> {
        if self.budget.trim().is_empty() {
            return None;
        }
        agentmill_proto::parse_size(&self.budget).filter(|&b| b > 0)
    }
}

/// Task environments built on this worker from their Dockerfiles (Harbor tasks; see
/// [`crate::sandbox::build`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildConfig {
    /// Builds at once on this host.
    pub concurrency: u32,
    /// The longest a build may take, whatever the task's `build_timeout_sec` asks.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// The Docker network a build's `RUN` steps use: `none` (the default: nothing reachable),
    /// or a network name such as `bridge` where environments install packages while building.
    pub network: String,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig { concurrency: 1, max_timeout: Duration::from_secs(1800), network: "none".into() }
    }
}

/// What the worker reads of tasks' inputs (archives, synthesis files): where host paths may
/// lie, and how much it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputsConfig {
    /// Folders under which a task may name a file or repository on this host (canonical
    /// paths, no links followed). Empty (the default): a task's inputs must travel with it as
    /// content (`agentmill submit` uploads them).
    pub host_roots: Vec<std::path::PathBuf>,
    /// The most bytes read of one input (`"1g"`).
    pub max_bytes: String,
    /// The most bytes an archive may unpack to (`"8g"`).
    pub max_unpacked_bytes: String,
    /// The most entries an archive may hold.
    pub max_entries: u64,
    /// Content fetched from the coordinator kept in memory by hash (`"1g"`; `"0"`: none), so
    /// a rollout's grading, the task's other rollouts and retries do not fetch it again.
    pub cache_bytes: String,
}

impl Default for InputsConfig {
    fn default() -> Self {
        InputsConfig { host_roots: Vec::new(), max_bytes: "1g".into(), max_unpacked_bytes: "8g".into(), max_entries: 1_000_000, cache_bytes: "1g".into() }
    }
}

impl WorkerConfig {
    /// The inputs policy of this configuration, fetching content from its coordinator.
    pub fn inputs(&self) -> crate::inputs::Inputs {
        crate::inputs::Inputs {
            coordinator: Some(crate::inputs::CoordinatorAccess { addr: self.coordinator.clone(), token: self.token.clone(), ca_cert: self.ca_cert.clone() }),
            roots: self.inputs.host_roots.clone(),
            max_bytes: agentmill_proto::parse_size(&self.inputs.max_bytes).unwrap_or(1 << 30),
            max_unpacked_bytes: agentmill_proto::parse_size(&self.inputs.max_unpacked_bytes).unwrap_or(8 << 30),
            max_entries: self.inputs.max_entries,
            cache: crate::inputs::ContentCache::new(agentmill_proto::parse_size(&self.inputs.cache_bytes).unwrap_or(1 << 30)),
        }
    }
}

/// Everything the worker can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// The coordinator's address.
    pub coordinator: String,
    /// Bearer token for the coordinator (its worker credential, bound to this worker's id).
    pub token: Option<String>,
    /// A file holding the token instead (surrounding whitespace ignored); read at start.
    pub token_file: Option<std::path::PathBuf>,
    /// PEM CA certificate to trust for an `https://` coordinator (besides the system's roots).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Stable id of this worker; empty = the host name.
    pub worker_id: String,
    /// Labels the coordinator matches task affinity against.
    pub labels: BTreeMap<String, String>,
    /// Redis for publishing trajectories.
    pub redis_url: String,
    /// The trajectory stream.
    pub stream: String,
    /// The learner's consumer group whose lag is back-pressure (empty: the stream's length).
    pub learner_group: String,
    /// Stop taking leases above this many records waiting for the learner.
    pub high_water: u64,
    /// Take leases again below this many.
    pub low_water: u64,
    /// Where episodes run: `docker`, `process` (local processes, bubblewrap when installed —
    /// weaker isolation), or `auto` (Docker when an engine answers, else processes).
    pub sandbox: String,
    /// The Python interpreter the process sandbox runs tests with.
    pub process_python: String,
    /// Concurrency.
    pub capacity: CapacityConfig,
    /// Sandbox limits.
    pub limits: LimitsConfig,
    /// The image cache budget: which task images may be removed when the host holds too many.
    pub images: ImagesConfig,
    /// Tasks' inputs: host path roots and caps.
    pub inputs: InputsConfig,
    /// Whether a task may have a network in its sandbox (`mode`, off by default), the egress
    /// policy when it may, and the network git sources are cloned over.
    pub sandbox_network: crate::sandbox::network::SandboxNetworkConfig,
    /// Environments built from Dockerfiles.
    pub build: BuildConfig,
    /// Address of the HTTP server for `/metrics` (Prometheus); `None` disables it.
    #[serde(with = "agentmill_proto::config::optional_addr")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How often orphaned containers are looked for.
    #[serde(with = "humantime_serde")]
    pub reap_interval: Duration,
    /// How long running episodes may finish after SIGTERM before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub drain_grace: Duration,
    /// How long Redis may fail every call before the publisher gives up: the worker then drains
    /// and exits non-zero (its service manager restarts it) instead of running on unable to
    /// publish.
    #[serde(with = "humantime_serde")]
    pub redis_outage_limit: Duration,
    /// The agent loop.
    pub agent: AgentConfig,
    /// Policies.
    pub policy: PolicyConfig,
    /// Contextual synthesis (`kind = synth` jobs): templates, filters, edit and render options,
    /// and the optional LLM enhancement (`[synth.enhance]`).
    pub synth: crate::synth::SynthConfig,
    /// A `tokenizer.json` the synthesis length filter counts with (empty: approximate counting).
    pub synth_tokenizer: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            coordinator: "http://127.0.0.1:50051".into(),
            token: None,
            token_file: None,
            ca_cert: None,
            worker_id: String::new(),
            labels: BTreeMap::new(),
            redis_url: "redis://127.0.0.1:6379/".into(),
            stream: agentmill_proto::wire::DEFAULT_STREAM.into(),
            learner_group: "learner".into(),
            high_water: 10_000,
            low_water: 5_000,
            sandbox: "docker".into(),
            process_python: "python3".into(),
            capacity: CapacityConfig::default(),
            limits: LimitsConfig::default(),
            images: ImagesConfig::default(),
            inputs: InputsConfig::default(),
            sandbox_network: Default::default(),
            build: BuildConfig::default(),
            metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9466))),
            reap_interval: Duration::from_secs(60),
            drain_grace: Duration::from_secs(60),
            redis_outage_limit: Duration::from_secs(600),
            agent: AgentConfig::default(),
            policy: PolicyConfig::default(),
            synth: crate::synth::SynthConfig::default(),
            synth_tokenizer: String::new(),
        }
    }
}

pub use agentmill_proto::config::ConfigError;
use agentmill_proto::config::EnvLayer;

const ENV_KEYS: [&str; 15] = [
    "coordinator",
    "token",
    "ca_cert",
    "worker_id",
    "redis_url",
    "stream",
    "learner_group",
    "high_water",
    "low_water",
    "reap_interval",
    "drain_grace",
    "redis_outage_limit",
    "sandbox",
    "process_python",
    "metrics_listen",
];

impl WorkerConfig {
    /// Loads defaults ← `file` ← `AGENTMILL_*` ← `overrides`.
    pub fn load(file: Option<&Path>, overrides: &figment::value::Dict) -> Result<WorkerConfig, ConfigError> {
        let mut cfg: WorkerConfig = agentmill_proto::config::load(file, &[EnvLayer { prefix: "AGENTMILL_", keys: &ENV_KEYS }], overrides)?;
        cfg.validate()?;
        if let Some(path) = &cfg.token_file {
            if cfg.token.is_some() {
                return Err(ConfigError::invalid("token_file", "token_file and token (or AGENTMILL_TOKEN) are both set; keep one"));
            }
            let token = std::fs::read_to_string(path).map_err(|e| ConfigError::invalid("token_file", format!("{}: {e}", path.display())))?.trim().to_string();
            if token.is_empty() {
                return Err(ConfigError::invalid("token_file", format!("{} is empty", path.display())));
            }
            cfg.token = Some(token);
        }
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: String| Err(ConfigError::invalid(key, reason));
        if self.redis_outage_limit.is_zero() {
            return bad("redis_outage_limit", "must be above 0 (such as \"10m\")".into());
        }
        if self.capacity.episodes == 0 {
            return bad("capacity.episodes", "must be at least 1".into());
        }
        if self.low_water > self.high_water {
            return bad("low_water", format!("{} is above high_water {}", self.low_water, self.high_water));
        }
        let limits = &self.limits;
        for (key, value) in [("limits.memory", &limits.memory), ("limits.max_memory", &limits.max_memory), ("limits.max_disk", &limits.max_disk)] {
            if agentmill_proto::parse_size(value).filter(|&b| b > 0).is_none() {
                return bad(key, format!("{value:?} is not a size such as \"2g\""));
            }
        }
        if !(limits.max_cpus.is_finite() && limits.max_cpus > 0.0) {
            return bad("limits.max_cpus", format!("{} must be a number of CPUs above 0", limits.max_cpus));
        }
        if limits.init_timeout.is_zero() {
            return bad("limits.init_timeout", "must be above 0 (such as \"30m\")".into());
        }
        if limits.max_pids == 0 {
            return bad("limits.max_pids", "must be at least 1".into());
        }
        // The defaults a task gets must fit under the ceilings.
        let over = |key: &'static str, value: String, max_key: &str, max: String| {
            Err(ConfigError::invalid(key, format!("{value} is above {max_key} {max}; lower it or raise {max_key}")))
        };
        if limits.cpus > limits.max_cpus {
            return over("limits.cpus", limits.cpus.to_string(), "limits.max_cpus", limits.max_cpus.to_string());
        }
        if agentmill_proto::parse_size(&limits.memory) > agentmill_proto::parse_size(&limits.max_memory) {
            return over("limits.memory", format!("{:?}", limits.memory), "limits.max_memory", format!("{:?}", limits.max_memory));
        }
        if limits.pids > limits.max_pids {
            return over("limits.pids", limits.pids.to_string(), "limits.max_pids", limits.max_pids.to_string());
        }
        let human = |d: Duration| humantime_serde::re::humantime::format_duration(d).to_string();
        if limits.test_timeout > limits.max_test_timeout {
            return over("limits.test_timeout", human(limits.test_timeout), "limits.max_test_timeout", human(limits.max_test_timeout));
        }
        let step = Duration::from_secs(u64::from(self.agent.step_timeout_s));
        if step > limits.max_step_timeout {
            return over("agent.step_timeout_s", human(step), "limits.max_step_timeout", human(limits.max_step_timeout));
        }
        let episode = Duration::from_secs(u64::from(self.agent.episode_timeout_s));
        if episode > limits.max_episode_timeout {
            return over("agent.episode_timeout_s", human(episode), "limits.max_episode_timeout", human(limits.max_episode_timeout));
        }
        for (key, value) in [("inputs.max_bytes", &self.inputs.max_bytes), ("inputs.max_unpacked_bytes", &self.inputs.max_unpacked_bytes), ("inputs.cache_bytes", &self.inputs.cache_bytes)] {
            if agentmill_proto::parse_size(value).is_none() {
                return bad(key, format!("{value:?} is not a size such as \"1g\""));
            }
        }
        for (host, login) in &self.images.registries {
            if let Err(why) = login.check(host) {
                return bad("images.registries", why);
            }
        }
        for (i, root) in self.inputs.host_roots.iter().enumerate() {
            if !root.is_absolute() {
                return bad("inputs.host_roots", format!("root {i} ({}) is not an absolute path", root.display()));
            }
        }
        if let Err((key, why)) = self.sandbox_network.policy() {
            return bad(key, why);
        }
        let images = &self.images;
        if !images.budget.trim().is_empty() && agentmill_proto::parse_size(&images.budget).is_none() {
            return bad("images.budget", format!("{:?} is not a size such as \"200g\"; use \"\" or \"0\" to never evict images", images.budget));
        }
        if images.pull_timeout.is_zero() {
            return bad("images.pull_timeout", "must be above 0 (such as \"20m\")".into());
        }
        for (key, patterns) in [("images.keep", &images.keep), ("images.evict", &images.evict), ("images.pull", &images.pull)] {
            for (i, p) in patterns.iter().enumerate() {
                if let Err(why) = crate::sandbox::images::Pattern::parse(p) {
                    return bad(key, format!("pattern {i} ({p:?}) {why}"));
                }
            }
        }
        let enhance = &self.synth.enhance;
        if enhance.enabled && enhance.endpoint.model.trim().is_empty() {
            return bad("synth.enhance.endpoint.model", "is empty while synth.enhance.enabled is true; name the model the endpoint serves".into());
        }
        if enhance.enabled && enhance.max_concurrent == 0 {
            return bad("synth.enhance.max_concurrent", "must be at least 1 while synth.enhance.enabled is true".into());
        }
        Ok(())
    }

    /// This worker's id: the configured one, else the host name.
    pub fn worker_id(&self) -> String {
        if !self.worker_id.is_empty() {
            return self.worker_id.clone();
        }
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "worker".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("worker.token");
        std::fs::write(&token, "w-7-secret\n").expect("write");
        let cfg = load(&format!("token_file = {:?}\n", token.display().to_string())).expect("loads");
        assert_eq!(cfg.token.as_deref(), Some("w-7-secret"));
        let err = load(&format!("token = \"x\"\ntoken_file = {:?}\n", token.display().to_string())).expect_err("both").to_string();
        assert!(err.contains("token_file"), "{err}");
        let err = load("token_file = \"/nonexistent/agentmill.token\"\n").expect_err("missing").to_string();
        assert!(err.contains("token_file") && err.contains("/nonexistent/agentmill.token"), "{err}");
    }

    fn load(toml: &str) -> Result<WorkerConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worker.toml");
        std::fs::write(&path, toml).expect("write the config");
        WorkerConfig::load(Some(&path), &Default::default())
    }

    #[test]
    fn images_section_parses_a_budget_and_patterns() {
        let cfg = load("[images]\nbudget = \"200g\"\nkeep = [\"agentmill/*\", \"python:3.*\"]\nevict = [\"local/swe-*\"]\n").expect("loads");
        assert_eq!(cfg.images.budget_bytes(), Some(200 << 30));
        assert_eq!(cfg.images.keep, ["agentmill/*", "python:3.*"]);
        assert_eq!(cfg.images.evict, ["local/swe-*"]);
        assert_eq!(load("[images]\nbudget = \"1.5GiB\"\n").expect("loads").images.budget_bytes(), Some(3 << 29));
    }

    #[test]
    fn images_default_never_evicts_and_keeps_the_sandbox_image() {
        let cfg = load("").expect("loads");
        assert_eq!(cfg.images, ImagesConfig::default());
        assert_eq!((cfg.images.keep.as_slice(), cfg.images.evict.as_slice()), (["agentmill/*".to_string()].as_slice(), [].as_slice()));
        assert_eq!(cfg.images.budget_bytes(), None);
        for never in ["", "0", " 0 ", "0g"] {
            let cfg = load(&format!("[images]\nbudget = {never:?}\n")).unwrap_or_else(|e| panic!("{never:?}: {e}"));
            assert_eq!(cfg.images.budget_bytes(), None, "{never:?} means never evict");
        }
    }

    #[test]
    fn images_bad_values_are_refused_naming_the_key_and_the_fix() {
        for (toml, key, says) in [
            ("[images]\nbudget = \"200 gigs\"\n", "images.budget", "such as \"200g\""),
            ("[images]\nbudget = \"-5g\"\n", "images.budget", "to never evict"),
            ("[images]\nkeep = [\"agentmill/*\", \"\"]\n", "images.keep", "pattern 1 (\"\") is empty"),
            ("[images]\nevict = [\"swebench/?\"]\n", "images.evict", "only '*' is a wildcard"),
        ] {
            let err = load(toml).expect_err(toml).to_string();
            assert!(err.contains(key) && err.contains(says), "{toml}: {err}");
        }
        let err = load("[images]\nbuget = \"1g\"\n").expect_err("a misspelt key").to_string();
        assert!(err.contains("buget"), "{err}");
    }
}
