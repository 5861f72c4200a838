//! The coordinator's configuration: one TOML file, every key with a default, overridden by
//! `AGENTMILL_*` environment variables, overridden by flags.
//!
//! `deploy/config/coordinator.toml` is the commented example; a test loads it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the coordinator can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// Address of the HTTP server: the status page (`/`), its JSON (`/api/stats`,
    /// `/api/history`) and `/metrics` (Prometheus); `None` disables it.
    #[serde(with = "agentmill_proto::config::optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// Redis holding the task store and leases.
    pub redis_url: String,
    /// Prefix of every Redis key this coordinator owns (see `keys`).
    pub namespace: String,
    /// A lease not renewed by a heartbeat for this long expires.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often workers are asked to heartbeat.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Attempts per rollout (lost leases and infra failures) before it is `failed`.
    pub max_attempts: u32,
    /// Hand-backs per rollout (releases, unpublishable records, episodes a worker cancelled)
    /// before it is `failed`; 0: no limit.
    pub max_handbacks: u32,
    /// Rows per `SubmitTasks` call.
    pub max_batch: usize,
    /// Largest gRPC message accepted, bytes.
    pub max_message_bytes: usize,
    /// Largest piece of content (an archive, a rows file, a git bundle) a client may store with
    /// `PutContent`, bytes. Content lives in Redis's memory.
    pub max_content_bytes: u64,
    /// Bearer token every RPC must carry (`authorization: Bearer <token>`): the legacy single
    /// credential, an operator's (it may call everything). `None` and no `credentials` = open.
    pub token: Option<String>,
    /// Credentials with roles (`[[credentials]]`: `role`, one of `token` / `token_file` /
    /// `token_env`, and for workers `worker_ids`); see [`crate::auth`].
    pub credentials: Vec<crate::auth::CredentialConfig>,
    /// PEM certificate chain and key for TLS; both or neither.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// Events a watcher may fall behind before it skips (and is told how many it missed).
    pub watch_buffer: usize,
    /// Messages a worker session may leave unread (leases, cancels, acks) before it is closed as
    /// one that cannot keep up.
    pub session_buffer: usize,
    /// Largest fields of a submitted task row; a row over one is refused naming it.
    pub row_limits: RowLimits,
    /// The trajectory stream whose length and learner lag the coordinator reports.
    pub stream: String,
    /// The learner's consumer group on `stream` (its lag is the cluster's backlog).
    pub learner_group: String,
    /// How often the stream, the learner and the task counts are sampled into the history.
    #[serde(with = "humantime_serde")]
    pub history_interval: Duration,
    /// Samples kept in the history (the oldest is dropped first).
    pub history_len: usize,
    /// Delete the stream's entries once every consumer group has acknowledged them (checked
    /// every `history_interval`), keeping those younger than `retain_acknowledged`; the
    /// workers' publish index forgets the deleted ones. Off: the stream keeps every record
    /// until trimmed by hand.
    pub trim_acknowledged: bool,
    /// With `trim_acknowledged`, acknowledged entries younger than this stay (for `agentmill
    /// trajectory`, `export --stream`); older ones are deleted.
    #[serde(with = "humantime_serde")]
    pub retain_acknowledged: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            redis_url: "redis://127.0.0.1:6379/".into(),
            namespace: "agentmill".into(),
            lease_ttl: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            max_attempts: 3,
            max_handbacks: 10,
            max_batch: 10_000,
            max_message_bytes: 256 << 20,
            max_content_bytes: 256 << 20,
            token: None,
            credentials: Vec::new(),
            tls_cert: None,
            tls_key: None,
            watch_buffer: 4096,
            session_buffer: 1024,
            row_limits: RowLimits::default(),
            stream: agentmill_proto::wire::DEFAULT_STREAM.into(),
            learner_group: "learner".into(),
            history_interval: Duration::from_secs(2),
            history_len: 1800,
            trim_acknowledged: true,
            retain_acknowledged: Duration::from_secs(600),
        }
    }
}

/// The largest fields a task row may have (`[row_limits]`); 0 would refuse every non-empty
/// value, so each must be at least 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RowLimits {
    /// `patch` (the gold patch), bytes.
    pub patch_bytes: u64,
    /// `test_patch`, bytes.
    pub test_patch_bytes: u64,
    /// `problem_statement`, bytes.
    pub problem_statement_bytes: u64,
    /// `hints_text`, bytes.
    pub hints_text_bytes: u64,
    /// `eval_script` and `test_cmd`, bytes each.
    pub script_bytes: u64,
    /// Tests in `FAIL_TO_PASS`, and in `PASS_TO_PASS`, each.
    pub tests: u64,
    /// One test's name, bytes.
    pub test_name_bytes: u64,
    /// `extra` (the row's other fields), bytes of JSON.
    pub extra_bytes: u64,
}

impl Default for RowLimits {
    fn default() -> Self {
        RowLimits {
            patch_bytes: 8 << 20,
            test_patch_bytes: 8 << 20,
            problem_statement_bytes: 1 << 20,
            hints_text_bytes: 1 << 20,
            script_bytes: 1 << 20,
            tests: 100_000,
            test_name_bytes: 16 << 10,
            extra_bytes: 1 << 20,
        }
    }
}

pub use agentmill_proto::config::ConfigError;
use agentmill_proto::config::EnvLayer;

impl CoordinatorConfig {
    /// Loads defaults ← `file` (when given) ← `AGENTMILL_*` variables ← `overrides` (flags).
    ///
    /// Environment variables are the keys upper-cased with the `AGENTMILL_` prefix, e.g.
    /// `AGENTMILL_REDIS_URL`, `AGENTMILL_LEASE_TTL=45s`, `AGENTMILL_TOKEN`.
    pub fn load(file: Option<&Path>, overrides: &figment::value::Dict) -> Result<Self, ConfigError> {
        let cfg: CoordinatorConfig = agentmill_proto::config::load(file, &[EnvLayer { prefix: "AGENTMILL_", keys: &ENV_KEYS }], overrides)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: &str| Err(ConfigError::invalid(key, reason));
        if self.lease_ttl <= self.heartbeat_interval {
            return bad("lease_ttl", "must be longer than heartbeat_interval (a lease would expire between two heartbeats)");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1");
        }
        if self.max_batch == 0 {
            return bad("max_batch", "must be at least 1");
        }
        if self.namespace.is_empty() || self.namespace.contains(char::is_whitespace) {
            return bad("namespace", "must be a non-empty word such as \"agentmill\"");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert", "tls_cert and tls_key go together: set both or neither");
        }
        if self.stream.is_empty() {
            return bad("stream", "is empty; name the trajectory stream, e.g. \"agentmill:trajectories\"");
        }
        if self.history_interval.is_zero() {
            return bad("history_interval", "must be longer than zero, e.g. \"2s\"");
        }
        if self.history_len == 0 {
            return bad("history_len", "must be at least 1");
        }
        if self.token.as_deref().is_some_and(str::is_empty) {
            return bad("token", "is empty; remove it to run without a token");
        }
        if self.session_buffer < 16 {
            return bad("session_buffer", "must be at least 16 (a session's leases, cancels and acks wait here until the worker reads them)");
        }
        let l = &self.row_limits;
        for (key, v) in [
            ("row_limits.patch_bytes", l.patch_bytes),
            ("row_limits.test_patch_bytes", l.test_patch_bytes),
            ("row_limits.problem_statement_bytes", l.problem_statement_bytes),
            ("row_limits.hints_text_bytes", l.hints_text_bytes),
            ("row_limits.script_bytes", l.script_bytes),
            ("row_limits.tests", l.tests),
            ("row_limits.test_name_bytes", l.test_name_bytes),
            ("row_limits.extra_bytes", l.extra_bytes),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1");
            }
        }
        for (i, c) in self.credentials.iter().enumerate() {
            if let Err(reason) = c.validate(i) {
                return Err(ConfigError::invalid("credentials", reason));
            }
        }
        Ok(())
    }
}

/// The keys that may come from `AGENTMILL_*` variables (others are left to the file and flags,
/// so an unrelated `AGENTMILL_*` variable never breaks the coordinator).
const ENV_KEYS: [&str; 21] = [
    "listen",
    "metrics_listen",
    "redis_url",
    "namespace",
    "lease_ttl",
    "heartbeat_interval",
    "max_attempts",
    "max_handbacks",
    "max_batch",
    "max_message_bytes",
    "max_content_bytes",
    "token",
    "tls_cert",
    "tls_key",
    "watch_buffer",
    "stream",
    "learner_group",
    "history_interval",
    "history_len",
    "trim_acknowledged",
    "retain_acknowledged",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        CoordinatorConfig::default().validate().expect("defaults validate");
    }

    #[test]
    fn a_lease_shorter_than_a_heartbeat_is_refused() {
        let cfg = CoordinatorConfig { lease_ttl: Duration::from_secs(1), ..Default::default() };
        let err = cfg.validate().expect_err("refused").to_string();
        assert!(err.contains("lease_ttl"), "{err}");
    }

    #[test]
    fn an_empty_metrics_listen_turns_the_http_server_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "metrics_listen = \"\"\n").expect("write");
        let cfg = CoordinatorConfig::load(Some(&file), &Default::default()).expect("loads");
        assert_eq!(cfg.metrics_listen, None);
        std::fs::write(&file, "metrics_listen = \"0.0.0.0:9999\"\n").expect("write");
        assert_eq!(CoordinatorConfig::load(Some(&file), &Default::default()).expect("loads").metrics_listen, Some(SocketAddr::from(([0, 0, 0, 0], 9999))));
        std::fs::write(&file, "metrics_listen = \"port nine\"\n").expect("write");
        let err = CoordinatorConfig::load(Some(&file), &Default::default()).expect_err("refused").to_string();
        assert!(err.contains("is not host:port") && err.contains("use \"\" to turn it off"), "{err}");
    }

    #[test]
    fn credentials_load_from_the_file_and_a_bad_one_names_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[[credentials]]\nrole = \"worker\"\ntoken_file = \"/run/w1\"\nworker_ids = [\"w-1\"]\n\n[[credentials]]\nname = \"sub\"\nrole = \"client\"\ntoken_env = \"SUB_TOKEN\"\n").expect("write");
        let cfg = CoordinatorConfig::load(Some(&file), &Default::default()).expect("loads");
        assert_eq!(cfg.credentials.len(), 2);
        assert_eq!((cfg.credentials[0].role, cfg.credentials[0].worker_ids.as_slice()), (Some(crate::auth::Role::Worker), &["w-1".to_string()][..]));
        std::fs::write(&file, "[[credentials]]\nrole = \"worker\"\ntoken = \"t\"\n").expect("write");
        let err = CoordinatorConfig::load(Some(&file), &Default::default()).expect_err("no worker ids").to_string();
        assert!(err.contains("credentials") && err.contains("worker_ids"), "{err}");
        std::fs::write(&file, "[[credentials]]\nrole = \"admin\"\ntoken = \"t\"\n").expect("write");
        assert!(CoordinatorConfig::load(Some(&file), &Default::default()).is_err(), "an unknown role");
    }

    #[test]
    fn buffers_and_row_limits_must_be_usable() {
        let err = CoordinatorConfig { session_buffer: 1, ..Default::default() }.validate().expect_err("refused").to_string();
        assert!(err.contains("session_buffer"), "{err}");
        let cfg = CoordinatorConfig { row_limits: RowLimits { tests: 0, ..Default::default() }, ..Default::default() };
        let err = cfg.validate().expect_err("refused").to_string();
        assert!(err.contains("row_limits.tests"), "{err}");
        assert_eq!((RowLimits::default().patch_bytes, RowLimits::default().tests), (8 << 20, 100_000));
    }

    #[test]
    fn an_empty_history_is_refused() {
        let cfg = CoordinatorConfig { history_len: 0, ..Default::default() };
        let err = cfg.validate().expect_err("refused").to_string();
        assert!(err.contains("history_len"), "{err}");
        let cfg = CoordinatorConfig { history_interval: Duration::ZERO, ..Default::default() };
        let err = cfg.validate().expect_err("refused").to_string();
        assert!(err.contains("history_interval"), "{err}");
    }
}
