//! The episode loop: policy turn → tool calls → observations, until `submit` or a limit.
//!
//! Exit reasons, in the order they are checked:
//! - `cancelled` — the cancel token fired (checked while waiting on the policy or a tool);
//! - `episode_timeout` — the loop's wall-time budget ran out;
//! - `max_steps` — the policy had its last turn and did not submit;
//! - `context_overflow` — the conversation outgrew the context budget (estimated from the
//!   server's last `usage` plus a quarter-token per byte since, or a quarter per byte of the whole
//!   conversation when no usage was reported), or the server said so;
//! - `policy_error` — the policy failed after its retries;
//! - `sandbox_error` — the sandbox failed (container died, engine errors, a call that outlived its
//!   timeout by far);
//! - `step_timeout` — `max_consecutive_timeouts` tool calls in a row were killed at the step
//!   timeout (one such call is an observation, and the episode goes on);
//! - `submitted` — the policy called `submit`; the patch is the submission.
//!
//! On every exit but `submitted` the loop still collects the workdir's `git diff` as the model's
//! patch when the sandbox answers (SWE-agent's autosubmit).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use agentmill_proto::{ExitReason, Message, PolicyInfo, Role, Task};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::policy::{Policy, PolicyError};
use super::tools::{Observation, ToolContext, Toolset, submit};
use super::{AgentConfig, EpisodeLimits, render_template};
use crate::sandbox::{Sandbox, SandboxError};

/// How long past its step timeout a tool call may run before the sandbox counts as unresponsive
/// (the exec's own deadline kills the command well before).
const TOOL_GRACE: Duration = Duration::from_secs(30);

/// What the model is told when a turn calls no tool.
const NO_TOOL_CALL: &str = "Your last message did not call a tool. Every turn must call one of the tools: \
run commands with `bash`, view and edit files with `str_replace_editor`, and call `submit` when the change is complete.";

/// What an episode produced: everything the trajectory record needs from the agent stage.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    /// The conversation: system, user, then assistant turns and their tool observations.
    pub messages: Vec<Message>,
    /// The tool schemas offered to the policy.
    pub tools: Vec<Value>,
    /// Why the episode ended.
    pub exit_reason: ExitReason,
    /// The model's patch: the submission, or the workdir's diff at the end (empty when it could
    /// not be collected).
    pub model_patch: String,
    /// Policy turns taken.
    pub steps: u32,
    /// What went wrong, for exits that are failures.
    pub error: Option<String>,
    /// Who decided.
    pub policy: PolicyInfo,
    /// Wall time of the loop (autosubmit included).
    pub duration: Duration,
}

/// How the loop stopped, before autosubmit.
struct Stop {
    reason: ExitReason,
    error: Option<String>,
    patch: Option<String>,
}

impl Stop {
    fn new(reason: ExitReason, error: Option<String>) -> Stop {
        Stop { reason, error, patch: None }
    }
}

/// Plays one episode of `task` in `sandbox` (its repository already at the base commit) with
/// `policy`. Never fails: every failure is an exit reason with its error.
pub async fn run_agent(
    policy: &mut dyn Policy,
    sandbox: &dyn Sandbox,
    task: &Task,
    config: &AgentConfig,
    cancel: &CancellationToken,
) -> AgentOutcome {
    let info = policy.info();
    let span = info_span!("agent", task_id = %task.instance_id, episode = %sandbox.episode(), policy = %info.name);
    run(policy, sandbox, task, config, cancel, info).instrument(span).await
}

async fn run(
    policy: &mut dyn Policy,
    sandbox: &dyn Sandbox,
    task: &Task,
    config: &AgentConfig,
    cancel: &CancellationToken,
    info: PolicyInfo,
) -> AgentOutcome {
    let started = Instant::now();
    let limits = config.limits_for(task);
    let deadline = tokio::time::Instant::now() + limits.episode_timeout;
    let mut toolset = Toolset::swe_agent();
    let tools = toolset.schemas();
    let mut messages = vec![
        Message::text(Role::System, render_template(&config.system_template, task)),
        Message::text(Role::User, render_template(&config.instance_template, task)),
    ];
    let ctx = ToolContext {
        sandbox,
        base_commit: &task.base_commit,
        step_timeout: limits.step_timeout,
        max_output: config.max_observation_bytes.max(1024),
    };
    info!(max_steps = limits.max_steps, step_timeout_s = limits.step_timeout.as_secs(), "agent loop starts");
    let mut steps = 0u32;
    let stop = turns(policy, &mut toolset, &ctx, &tools, &mut messages, &limits, deadline, cancel, &mut steps).await;
    let model_patch = match stop.patch {
        Some(patch) => patch,
        None => autosubmit(sandbox, task, config, stop.reason).await,
    };
    match &stop.error {
        Some(error) => warn!(exit_reason = %stop.reason, steps, "agent loop ended: {error}"),
        None => info!(exit_reason = %stop.reason, steps, patch_bytes = model_patch.len(), "agent loop ended"),
    }
    AgentOutcome {
        messages,
        tools,
        exit_reason: stop.reason,
        model_patch,
        steps,
        error: stop.error,
        policy: info,
        duration: started.elapsed(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn turns(
    policy: &mut dyn Policy,
    toolset: &mut Toolset,
    ctx: &ToolContext<'_>,
    tools: &[Value],
    messages: &mut Vec<Message>,
    limits: &EpisodeLimits,
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
    steps: &mut u32,
) -> Stop {
    let mut timeouts_in_a_row = 0u32;
    let mut seen_ids: HashSet<String> = HashSet::new();
    loop {
        if *steps >= limits.max_steps {
            return Stop::new(ExitReason::MaxSteps, None);
        }
        let tokens = estimate_tokens(messages, tools);
        if tokens > limits.context_tokens {
            return Stop::new(
                ExitReason::ContextOverflow,
                Some(format!("the conversation is about {tokens} tokens, over the budget of {}", limits.context_tokens)),
            );
        }
        let reply = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Stop::new(ExitReason::Cancelled, None),
            _ = tokio::time::sleep_until(deadline) => return Stop::new(ExitReason::EpisodeTimeout, Some(episode_timeout_message(limits))),
            reply = policy.next(messages, tools) => reply,
        };
        let mut reply = match reply {
            Ok(m) => m,
            Err(e @ PolicyError::ContextOverflow(_)) => return Stop::new(ExitReason::ContextOverflow, Some(e.to_string())),
            Err(e) => return Stop::new(e.exit_reason(), Some(e.to_string())),
        };
        *steps += 1;
        reply.role = Role::Assistant;
        for (i, call) in reply.tool_calls.iter_mut().enumerate() {
            // OpenAI requires every call to be answered by its id: make ids present and unique.
            if call.id.is_empty() || !seen_ids.insert(call.id.clone()) {
                call.id = format!("call_{}_{}", *steps, i);
                seen_ids.insert(call.id.clone());
            }
            call.kind = "function".into();
        }
        let calls = reply.tool_calls.clone();
        debug!(step = *steps, tool_calls = calls.len(), "policy turn");
        messages.push(reply);
        if calls.is_empty() {
            messages.push(Message::text(Role::User, NO_TOOL_CALL));
            continue;
        }
        let mut submission: Option<String> = None;
        for call in &calls {
            if submission.is_some() {
                messages.push(tool_message(call, &skipped_after_submit()));
                continue;
            }
            let started = Instant::now();
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Stop::new(ExitReason::Cancelled, None),
                _ = tokio::time::sleep_until(deadline) => return Stop::new(ExitReason::EpisodeTimeout, Some(episode_timeout_message(limits))),
                r = tokio::time::timeout(ctx.step_timeout + TOOL_GRACE, toolset.dispatch(call, ctx)) => r,
            };
            let observation = match result {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => return Stop::new(ExitReason::SandboxError, Some(sandbox_failure(call, &e))),
                Err(_) => {
                    let e = SandboxError::Unresponsive(started.elapsed());
                    return Stop::new(ExitReason::SandboxError, Some(sandbox_failure(call, &e)));
                }
            };
            debug!(
                step = *steps,
                tool = %call.function.name,
                exit_code = observation.exit_code,
                duration_ms = observation.duration.as_millis() as u64,
                timed_out = observation.timed_out,
                "tool call"
            );
            timeouts_in_a_row = if observation.timed_out { timeouts_in_a_row + 1 } else { 0 };
            submission = observation.submission.clone();
            messages.push(tool_message(call, &observation));
            if timeouts_in_a_row >= limits.max_consecutive_timeouts {
                return Stop::new(
                    ExitReason::StepTimeout,
                    Some(format!("{timeouts_in_a_row} tool calls in a row ran past the step timeout of {} s", limits.step_timeout.as_secs())),
                );
            }
        }
        if let Some(patch) = submission {
            return Stop { reason: ExitReason::Submitted, error: None, patch: Some(patch) };
        }
    }
}

/// The tool message answering `call`.
fn tool_message(call: &agentmill_proto::ToolCall, observation: &Observation) -> Message {
    let mut m = Message::text(Role::Tool, observation.content.clone());
    m.tool_call_id = Some(call.id.clone());
    m.name = Some(call.function.name.clone());
    m.exit_code = Some(observation.exit_code);
    m.duration_ms = Some(observation.duration.as_millis() as u64);
    m.truncated = Some(observation.truncated);
    m
}

/// The answer to a call made in the same turn after `submit`: it did not run.
fn skipped_after_submit() -> Observation {
    Observation::usage("Not run: `submit` earlier in this turn ended the episode.")
}

fn episode_timeout_message(limits: &EpisodeLimits) -> String {
    format!("the episode ran past its wall-time budget of {} s", limits.episode_timeout.as_secs())
}

fn sandbox_failure(call: &agentmill_proto::ToolCall, e: &SandboxError) -> String {
    format!("the sandbox failed during the `{}` call {}: {e}", call.function.name, call.id)
}

/// Tokens of the conversation: the server's count at its last reported turn plus a quarter per
/// byte of what came after, or a quarter per byte of everything when no count was reported.
fn estimate_tokens(messages: &[Message], tools: &[Value]) -> u64 {
    let bytes = |m: &Message| {
        (m.content.len()
            + m.reasoning_content.as_ref().map_or(0, String::len)
            + m.tool_calls.iter().map(|c| c.function.name.len() + c.function.arguments.len() + 16).sum::<usize>()
            + 8) as u64
    };
    let reported = messages
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, m)| m.usage.as_ref().filter(|u| u.prompt_tokens > 0).map(|u| (i, u.prompt_tokens + u.completion_tokens)));
    match reported {
        Some((i, tokens)) => tokens + messages[i + 1..].iter().map(bytes).sum::<u64>() / 4,
        None => {
            let schema_bytes: u64 = tools.iter().map(|t| t.to_string().len() as u64).sum();
            (messages.iter().map(bytes).sum::<u64>() + schema_bytes) / 4
        }
    }
}

/// The workdir's diff when the episode ended without `submit`, if the sandbox answers.
async fn autosubmit(sandbox: &dyn Sandbox, task: &Task, config: &AgentConfig, reason: ExitReason) -> String {
    let timeout = Duration::from_secs(u64::from(config.autosubmit_timeout_s.max(1)));
    let collect = async {
        if !sandbox.is_alive().await {
            return Err(SandboxError::Engine("the sandbox is not running".into()));
        }
        submit::collect_patch(sandbox, &task.base_commit, timeout).await
    };
    match tokio::time::timeout(timeout + Duration::from_secs(5), collect).await {
        Ok(Ok(patch)) => {
            debug!(exit_reason = %reason, patch_bytes = patch.len(), "collected the patch without submit");
            patch
        }
        Ok(Err(e)) => {
            warn!(exit_reason = %reason, "could not collect the patch after the episode: {e}");
            String::new()
        }
        Err(_) => {
            warn!(exit_reason = %reason, "collecting the patch after the episode timed out");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentmill_proto::Usage;

    /// The loop's future can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn run_agent_is_send(policy: &mut dyn Policy, sandbox: &dyn Sandbox, task: &Task, config: &AgentConfig, cancel: &CancellationToken) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&run_agent(policy, sandbox, task, config, cancel));
    }

    #[test]
    fn token_estimate_prefers_reported_usage() {
        let mut assistant = Message::text(Role::Assistant, "x".repeat(400));
        assistant.usage = Some(Usage { prompt_tokens: 1000, completion_tokens: 100 });
        let messages = vec![Message::text(Role::User, "y".repeat(4000)), assistant, Message::text(Role::Tool, "z".repeat(392))];
        assert_eq!(estimate_tokens(&messages, &[]), 1100 + 100);
        assert_eq!(estimate_tokens(&messages[..1], &[]), 1002);
    }
}
