//! Policies: how the agent decides its next turn.
//!
//! A [`Policy`] gets the conversation so far and the tools' schemas and returns the next
//! assistant [`Message`] — its text, optional reasoning, tool calls, and token ids, logprobs and
//! usage when the policy has them — or a [`PolicyError`].
//!
//! - [`replay::ReplayPolicy`] (`replay`) drives the task's gold patch through the tools as an
//!   agent would; deterministic, it validates environments and gives tests a real episode
//!   without a model.
//! - [`openai::OpenAiPolicy`] (any other configured name, conventionally `openai`) asks an
//!   OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp, hosted APIs), with
//!   retries and backoff.
//!
//! A [`PolicyFactory`] built from [`PolicyConfig`] picks the policy per task (`task.policy`) or
//! the worker's default.

pub mod openai;
pub mod replay;
pub mod xml_calls;

use std::collections::BTreeMap;

use agentmill_proto::{ExitReason, Message, PolicyInfo, Task};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use openai::{OpenAiConfig, OpenAiPolicy, ToolCallFormat, parse_response};
pub use replay::ReplayPolicy;

/// The name of the built-in gold-patch policy.
pub const REPLAY: &str = "replay";

/// Why a policy could not give a next turn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A failure that can pass (rate limit, 5xx, lost connection) and persisted through every
    /// retry. The episode ends `policy_error`; the coordinator retries the task.
    #[error("{0}")]
    Transient(String),
    /// A failure retrying cannot fix: a rejected request or key, an unusable response, a gold
    /// patch that does not apply. The episode ends `policy_error`.
    #[error("{0}")]
    Fatal(String),
    /// The conversation no longer fits the model's context window. The episode ends
    /// `context_overflow` (the model's own outcome, not an infra failure).
    #[error("{0}")]
    ContextOverflow(String),
}

impl PolicyError {
    /// Whether the failure could pass on its own.
    pub fn is_transient(&self) -> bool {
        matches!(self, PolicyError::Transient(_))
    }

    /// The exit reason an episode ending with this error gets.
    pub fn exit_reason(&self) -> ExitReason {
        match self {
            PolicyError::ContextOverflow(_) => ExitReason::ContextOverflow,
            PolicyError::Transient(_) | PolicyError::Fatal(_) => ExitReason::PolicyError,
        }
    }
}

/// Decides the agent's turns.
#[async_trait::async_trait]
pub trait Policy: Send + std::fmt::Debug {
    /// Who decides (name, model, sampling, weight version), for the record.
    fn info(&self) -> PolicyInfo;

    /// The next assistant turn given the conversation so far (system, user, assistant and tool
    /// messages, oldest first) and the tools on offer (OpenAI tool schemas).
    async fn next(&mut self, messages: &[Message], tools: &[Value]) -> Result<Message, PolicyError>;
}

/// Which policies a worker has, by name.
///
/// ```toml
/// [policy]
/// default = "openai"            # used when a task names none
/// [policy.endpoints.openai]     # a task's `policy: "openai"` picks this one
/// base_url = "http://gpu-1:8000/v1"
/// model = "Qwen/Qwen2.5-Coder-32B-Instruct"
/// temperature = 0.7
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// The policy of tasks that name none: `replay` or an endpoint's name.
    pub default: String,
    /// OpenAI-compatible endpoints by policy name (`replay` is reserved).
    pub endpoints: BTreeMap<String, OpenAiConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { default: REPLAY.to_string(), endpoints: BTreeMap::new() }
    }
}

/// Builds the policy of each episode. Endpoint clients are built once and shared.
#[derive(Debug, Clone)]
pub struct PolicyFactory {
    default: String,
    endpoints: BTreeMap<String, OpenAiPolicy>,
}

impl PolicyFactory {
    /// Checks the configuration and builds the endpoint clients.
    pub fn new(config: &PolicyConfig) -> Result<PolicyFactory, PolicyError> {
        let mut endpoints = BTreeMap::new();
        for (name, endpoint) in &config.endpoints {
            if name == REPLAY {
                return Err(PolicyError::Fatal(format!(
                    "policy.endpoints.{REPLAY}: the name `{REPLAY}` is the built-in gold-patch policy; give the endpoint another name (e.g. `openai`)"
                )));
            }
            endpoints.insert(name.clone(), OpenAiPolicy::new(name, endpoint.clone())?);
        }
        if config.default != REPLAY && !endpoints.contains_key(&config.default) {
            return Err(PolicyError::Fatal(format!(
                "policy.default is {:?}, which is neither `{REPLAY}` nor a configured endpoint ({}); add [policy.endpoints.{}] or change the default",
                config.default,
                Self::list(&endpoints),
                config.default
            )));
        }
        Ok(PolicyFactory { default: config.default.clone(), endpoints })
    }

    /// Every policy name this worker can run.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(REPLAY.to_string()).chain(self.endpoints.keys().cloned()).collect()
    }

    /// The policy for one episode of `task`: the one the task names, or the default.
    pub fn for_task(&self, task: &Task) -> Result<Box<dyn Policy>, PolicyError> {
        let name = task.policy.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.default);
        if name == REPLAY {
            return Ok(Box::new(ReplayPolicy::new(task)?));
        }
        match self.endpoints.get(name) {
            Some(policy) => Ok(Box::new(policy.clone())),
            None => Err(PolicyError::Fatal(format!(
                "task {} asks for policy {name:?}, which this worker does not have (it has {}); configure [policy.endpoints.{name}] or submit the task with another policy",
                task.instance_id,
                Self::list(&self.endpoints)
            ))),
        }
    }

    /// The endpoint of `task`'s policy when an external harness runs its episodes (its
    /// `harness` is not `agentmill`): the policy's name and settings.
    pub fn harness_for(&self, task: &Task) -> Option<(&str, &OpenAiConfig)> {
        let name = task.policy.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.default);
        let (name, policy) = self.endpoints.get_key_value(name)?;
        (!policy.config().harness.is_builtin()).then_some((name.as_str(), policy.config()))
    }

    fn list(endpoints: &BTreeMap<String, OpenAiPolicy>) -> String {
        std::iter::once(REPLAY).chain(endpoints.keys().map(String::as_str)).collect::<Vec<_>>().join(", ")
    }
}
