//! The agent layer: the tools, the policies and the episode loop.
//!
//! [`run_agent`] plays one episode in a sandbox whose repository is already in place: it puts
//! the system prompt and the task (from [`AgentConfig`]'s templates) in front of a
//! [`policy::Policy`], runs every tool call the policy makes through [`tools::Toolset`] — each
//! observation the real output of a real call — and stops on `submit` or on a limit. The
//! [`AgentOutcome`] holds what the trajectory record needs: messages, tool schemas, exit reason,
//! the model's patch and the policy's identity.
//!
//! ```no_run
//! # async fn demo(container: agentmill_worker::sandbox::docker::DockerContainer, task: agentmill_proto::Task) {
//! use agentmill_worker::agent::{AgentConfig, run_agent};
//! use agentmill_worker::agent::policy::{PolicyConfig, PolicyFactory};
//!
//! let factory = PolicyFactory::new(&PolicyConfig::default()).expect("policy config");
//! let mut policy = factory.for_task(&task).expect("policy");
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let outcome = run_agent(policy.as_mut(), &container, &task, &AgentConfig::default(), &cancel).await;
//! println!("{}: {} steps, patch of {} bytes", outcome.exit_reason, outcome.steps, outcome.model_patch.len());
//! # }
//! ```

mod episode_loop;
pub mod policy;
pub mod tools;

use std::time::Duration;

use agentmill_proto::Task;
use serde::{Deserialize, Serialize};

pub use episode_loop::{AgentOutcome, run_agent};

/// The default system prompt.
pub const DEFAULT_SYSTEM_TEMPLATE: &str = "You are a skilled software engineer working in a sandboxed copy of a code repository. \
You solve the task you are given by calling the tools available to you: run shell commands with `bash`, view and edit files with \
`str_replace_editor`, and call `submit` once the change is complete. Every tool result is the real output of the command you ran.";

/// The default task message; `{problem_statement}`, `{workdir}` and `{repo}` are filled in.
pub const DEFAULT_INSTANCE_TEMPLATE: &str = "<uploaded_files>
{workdir}
</uploaded_files>
I've uploaded a code repository ({repo}) in the directory {workdir}. Consider the following issue:

<issue_description>
{problem_statement}
</issue_description>

Can you help me implement the necessary changes to the repository so that the requirements in the <issue_description> are met?
The tests for this issue have already been taken care of: you DON'T have to modify any test files or write new tests.
Make the minimal changes to non-test files in {workdir} that resolve the issue.

Follow these steps:
1. Find and read the code relevant to the <issue_description>.
2. Write a small script that reproduces the problem and run it with the bash tool to confirm it.
3. Edit the source code of the repository to resolve the issue.
4. Run your script again and confirm that the problem is fixed.
5. Think about edge cases and make sure your fix handles them.
6. Remove your scratch files and call `submit`.";

/// How episodes run. A task's own `limits` override the step, time and context limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The system prompt; may use the same placeholders as the instance template.
    pub system_template: String,
    /// The first user message; `{problem_statement}`, `{workdir}` and `{repo}` are filled in.
    pub instance_template: String,
    /// Policy turns before the episode ends `max_steps`.
    pub max_steps: u32,
    /// Timeout of one tool call, seconds.
    pub step_timeout_s: u32,
    /// Tool calls in a row that may time out before the episode ends `step_timeout`.
    pub max_consecutive_timeouts: u32,
    /// Wall time of the agent loop, seconds.
    pub episode_timeout_s: u32,
    /// Context budget, tokens: past it the episode ends `context_overflow`.
    pub context_tokens: u64,
    /// Output kept from one tool call, bytes (the rest is cut with a marker).
    pub max_observation_bytes: usize,
    /// Timeout of collecting the patch when the episode ends without `submit`, seconds.
    pub autosubmit_timeout_s: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            system_template: DEFAULT_SYSTEM_TEMPLATE.into(),
            instance_template: DEFAULT_INSTANCE_TEMPLATE.into(),
            max_steps: 100,
            step_timeout_s: 180,
            max_consecutive_timeouts: 3,
            episode_timeout_s: 3600,
            context_tokens: 128_000,
            max_observation_bytes: 32 * 1024,
            autosubmit_timeout_s: 60,
        }
    }
}

/// The limits of one episode: the config's, overridden by the task's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeLimits {
    /// Policy turns.
    pub max_steps: u32,
    /// One tool call.
    pub step_timeout: Duration,
    /// Timed-out calls in a row.
    pub max_consecutive_timeouts: u32,
    /// The whole loop.
    pub episode_timeout: Duration,
    /// Context tokens.
    pub context_tokens: u64,
}

impl AgentConfig {
    /// The limits for `task`: its `limits` where set, this config's otherwise.
    pub fn limits_for(&self, task: &Task) -> EpisodeLimits {
        let l = &task.limits;
        EpisodeLimits {
            max_steps: l.max_steps.unwrap_or(self.max_steps).max(1),
            step_timeout: Duration::from_secs(u64::from(l.step_timeout_s.unwrap_or(self.step_timeout_s).max(1))),
            max_consecutive_timeouts: self.max_consecutive_timeouts.max(1),
            episode_timeout: Duration::from_secs(u64::from(l.episode_timeout_s.unwrap_or(self.episode_timeout_s).max(1))),
            context_tokens: l.context_tokens.unwrap_or(self.context_tokens),
        }
    }
}

/// Fills `{problem_statement}`, `{workdir}` and `{repo}` in one pass, so braces inside the
/// problem statement are left alone; other `{...}` stay as written.
pub fn render_template(template: &str, task: &Task) -> String {
    const KEYS: [&str; 3] = ["{problem_statement}", "{workdir}", "{repo}"];
    let mut out = String::with_capacity(template.len() + task.problem_statement.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match KEYS.iter().find(|k| tail.starts_with(**k)) {
            Some(key) => {
                out.push_str(match *key {
                    "{problem_statement}" => &task.problem_statement,
                    "{workdir}" => &task.workdir,
                    _ => &task.repo,
                });
                rest = &tail[key.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_placeholders_once() {
        let row = r#"{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "use {workdir} {x}",
            "patch": "", "FAIL_TO_PASS": ["t.py::t"], "PASS_TO_PASS": []}"#;
        let task = Task::from_json_row(row).expect("valid row");
        let text = render_template("{repo} at {workdir}: {problem_statement} {other}", &task);
        assert_eq!(text, "o/r at /testbed: use {workdir} {x} {other}");
    }

    #[test]
    fn task_limits_override_the_config() {
        let row = r#"{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "p",
            "FAIL_TO_PASS": ["t.py::t"], "limits": {"max_steps": 7, "step_timeout_s": 5}}"#;
        let task = Task::from_json_row(row).expect("valid row");
        let limits = AgentConfig::default().limits_for(&task);
        assert_eq!((limits.max_steps, limits.step_timeout, limits.context_tokens), (7, Duration::from_secs(5), 128_000));
    }
}
