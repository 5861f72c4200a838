//! Agent harnesses agentmill did not write, run in the sandbox behind a per-episode LLM gateway.
//!
//! A policy endpoint's `harness` setting says who plays its episodes: `agentmill` (the built-in
//! SWE-agent loop, [`crate::agent`]), `mini-swe-agent` (from PyPI, installed offline into
//! `agentmill/harness-mini-swe-agent:2.4.6` by `deploy/harness/build.sh`), or a command. For the
//! last two, [`run_harness`]:
//!
//! 1. starts a [`gateway::Gateway`] to the endpoint's server and a [`bridge::Bridge`] in the
//!    sandbox — a tiny HTTP server on the sandbox's loopback whose only link is the worker's
//!    hold on its stdin and stdout, so the sandbox keeps network mode `none`;
//! 2. runs the harness in the workdir with the base URL and the instruction in its environment
//!    (the contract below), within the episode's wall time;
//! 3. builds the record from what the gateway saw ([`transcript`]): the assistant turns exactly
//!    as the server returned them, token ids (or their texts) and logprobs included, and every call kept in
//!    `model_calls`; the harness's final change in the workdir (`git diff` against the base
//!    commit) is the patch that is graded, as for the built-in loop.
//!
//! The contract a command harness gets (environment of its process, run in the task's workdir):
//! `AGENTMILL_BASE_URL` / `OPENAI_BASE_URL` / `OPENAI_API_BASE` (`http://127.0.0.1:PORT/v1`),
//! `OPENAI_API_KEY` (a placeholder: the gateway holds the real key), `AGENTMILL_MODEL`,
//! `AGENTMILL_INSTRUCTION_FILE` (the task as the instance template renders it),
//! `AGENTMILL_WORKDIR`, `AGENTMILL_MAX_STEPS`, `AGENTMILL_STEP_TIMEOUT_S` and
//! `AGENTMILL_HARNESS_DIR`, where it may write `exit_reason` (one of the record's exit reasons)
//! to say how it ended. Without that file, exit status 0 is `submitted`.

pub mod bridge;
pub mod gateway;
pub mod transcript;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentmill_proto::{ExitReason, ModelCall, PolicyInfo, Task};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::agent::policy::{OpenAiConfig, PolicyFactory};
use crate::agent::tools::submit::collect_patch;
use crate::agent::{AgentConfig, AgentOutcome, render_template};
use crate::sandbox::docker::DockerContainer;
use crate::sandbox::{ExecRequest, Keep};
use crate::shell::quote;

/// Where a harness's files live in the sandbox (outside the workdir, so never in the patch).
pub const HARNESS_DIR: &str = "/agentmill/harness";

/// The name of the built-in loop.
pub const AGENTMILL: &str = "agentmill";

/// The name of mini-swe-agent.
pub const MINI_SWE_AGENT: &str = "mini-swe-agent";

/// The image `deploy/harness/build.sh` builds with mini-swe-agent in it.
pub const MINI_SWE_AGENT_IMAGE: &str = "agentmill/harness-mini-swe-agent:2.4.6";

/// A policy endpoint's `harness`: a name, or a command (argv) run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HarnessSetting {
    /// `agentmill` or `mini-swe-agent`.
    Name(String),
    /// A program and its arguments.
    Command(Vec<String>),
}

impl Default for HarnessSetting {
    fn default() -> Self {
        HarnessSetting::Name(AGENTMILL.into())
    }
}

impl HarnessSetting {
    /// Whether the built-in loop plays the episodes.
    pub fn is_builtin(&self) -> bool {
        matches!(self, HarnessSetting::Name(n) if n == AGENTMILL)
    }

    /// Why the setting cannot work, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        match self {
            HarnessSetting::Name(n) if n == AGENTMILL || n == MINI_SWE_AGENT => Ok(()),
            HarnessSetting::Name(n) => Err(format!(
                "{n:?} is not a harness this worker knows; write \"{AGENTMILL}\", \"{MINI_SWE_AGENT}\", or a command as a list, e.g. [\"python3\", \"/opt/agent.py\"]"
            )),
            HarnessSetting::Command(argv) if argv.is_empty() || argv[0].trim().is_empty() => {
                Err("the command is empty; give the program and its arguments, e.g. [\"python3\", \"/opt/agent.py\"]".into())
            }
            HarnessSetting::Command(_) => Ok(()),
        }
    }

    /// A short name for the record (`mini-swe-agent 2.4.6`, or the command's program).
    pub fn label(&self) -> String {
        match self {
            HarnessSetting::Name(n) if n == MINI_SWE_AGENT => format!("{MINI_SWE_AGENT} 2.4.6"),
            HarnessSetting::Name(n) => n.clone(),
            HarnessSetting::Command(argv) => format!("command {}", argv.first().map(String::as_str).unwrap_or_default()),
        }
    }
}

/// What a harness episode produced beyond what the built-in loop does.
#[derive(Debug, Clone)]
pub struct HarnessRun {
    /// The same outcome the built-in loop gives.
    pub outcome: AgentOutcome,
    /// Every model call, for the record.
    pub model_calls: Vec<ModelCall>,
    /// The harness's label.
    pub harness: String,
    /// The end of what the harness printed.
    pub output_tail: String,
}

/// The image an episode of `task` runs in under `config`: the harness's where one is set.
pub fn agent_image(task: &Task, config: &OpenAiConfig) -> String {
    if config.harness_image.trim().is_empty() { task.image.clone() } else { config.harness_image.trim().to_string() }
}

/// The harness's command line (run by `bash -c` in the workdir).
fn command_line(setting: &HarnessSetting, workdir: &str) -> String {
    match setting {
        HarnessSetting::Command(argv) => argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
        _ => {
            // mini-swe-agent's own CLI, non-interactive (`default` agent: no prompts), its
            // bundled mini.yaml, pointed at the gateway; cost tracking off (a local model has
            // no price), litellm's price map from the package (no fetch).
            let dir = format!("{HARNESS_DIR}/mini");
            let specs = [
                "mini.yaml".to_string(),
                "agent.step_limit=$AGENTMILL_MAX_STEPS".into(),
                "agent.cost_limit=0".into(),
                format!("environment.cwd={workdir}"),
                "environment.timeout=$AGENTMILL_STEP_TIMEOUT_S".into(),
                "model.model_kwargs.api_base=$AGENTMILL_BASE_URL".into(),
                "model.model_kwargs.api_key=$OPENAI_API_KEY".into(),
                "model.cost_tracking=ignore_errors".into(),
            ];
            let specs: Vec<String> = specs.iter().map(|s| format!("-c \"{s}\"")).collect();
            format!(
                "mkdir -p {dir} && MSWEA_CONFIGURED=true MSWEA_SILENT_STARTUP=1 MSWEA_COST_TRACKING=ignore_errors \
                 LITELLM_LOCAL_MODEL_COST_MAP=True MSWEA_GLOBAL_CONFIG_DIR={dir} HOME={dir} \
                 mini --agent-class default --model-class litellm -m \"openai/$AGENTMILL_MODEL\" {} \
                 -t \"$(cat \"$AGENTMILL_INSTRUCTION_FILE\")\" -o {HARNESS_DIR}/trajectory.json",
                specs.join(" ")
            )
        }
    }
}

/// How mini-swe-agent's trajectory says it ended.
fn mini_exit(trajectory: &Value) -> Option<(ExitReason, Option<String>)> {
    let status = trajectory.get("info")?.get("exit_status")?.as_str()?;
    Some(match status {
        "Submitted" => (ExitReason::Submitted, None),
        "LimitsExceeded" => (ExitReason::MaxSteps, None),
        "TimeExceeded" => (ExitReason::EpisodeTimeout, None),
        "RepeatedFormatError" => (ExitReason::MaxSteps, Some("mini-swe-agent stopped after repeated malformed tool calls".into())),
        "ContextWindowExceededError" => (ExitReason::ContextOverflow, Some(status.to_string())),
        other => (ExitReason::PolicyError, Some(format!("mini-swe-agent ended with {other}"))),
    })
}

/// The calls as the record keeps them: each request's messages after the previous request's.
pub fn model_calls(exchanges: &[gateway::Exchange]) -> Vec<ModelCall> {
    let mut previous: Vec<Value> = Vec::new();
    exchanges
        .iter()
        .map(|x| {
            let mut request: Value = if x.request.is_empty() { Value::Null } else { serde_json::from_str(&x.request).unwrap_or(Value::String(x.request.clone())) };
            let mut messages_from = 0;
            if let Some(messages) = request.get_mut("messages").and_then(Value::as_array_mut) {
                let full = messages.clone();
                if !previous.is_empty() && full.len() >= previous.len() && full[..previous.len()] == previous[..] {
                    messages_from = previous.len();
                    messages.drain(..messages_from);
                }
                previous = full;
            }
            ModelCall {
                path: x.path.clone(),
                status: x.status,
                request,
                messages_from,
                response: x.response.clone(),
                upstream: x.upstream,
                upstream_ms: x.upstream_time.as_millis() as u64,
                overhead_us: x.overhead.as_micros() as u64,
            }
        })
        .collect()
}

/// Plays one episode of `task` with the harness of `endpoint` (a policy whose `harness` is not
/// `agentmill`) in `container`. Never fails: every failure is an exit reason with its error.
pub async fn run_harness(
    container: &DockerContainer,
    task: &Task,
    endpoint: (&str, &OpenAiConfig),
    policies: &PolicyFactory,
    agent: &AgentConfig,
    cancel: &CancellationToken,
) -> HarnessRun {
    let started = Instant::now();
    let (name, config) = endpoint;
    let limits = agent.limits_for(task);
    let policy_info = policies.for_task(task).map(|p| p.info()).unwrap_or_else(|_| PolicyInfo { name: name.to_string(), model: config.model.clone(), ..PolicyInfo::default() });
    let label = config.harness.label();
    let mut run = HarnessRun {
        outcome: AgentOutcome {
            messages: Vec::new(),
            tools: Vec::new(),
            exit_reason: ExitReason::PolicyError,
            model_patch: String::new(),
            steps: 0,
            error: None,
            policy: policy_info,
            duration: Duration::ZERO,
        },
        model_calls: Vec::new(),
        harness: label.clone(),
        output_tail: String::new(),
    };
    let gateway = match gateway::Gateway::new(config, limits.max_steps) {
        Ok(g) => Arc::new(g),
        Err(why) => {
            run.outcome.error = Some(format!("policy {name}: {why}"));
            return run;
        }
    };
    let instruction = match &config.harness {
        HarnessSetting::Name(_) => task.problem_statement.clone(),
        HarnessSetting::Command(_) => render_template(&agent.instance_template, task),
    };
    let instruction_file = format!("{HARNESS_DIR}/instruction.md");
    if let Err(e) = container.write_file(&instruction_file, instruction.as_bytes()).await {
        run.outcome.exit_reason = ExitReason::SandboxError;
        run.outcome.error = Some(format!("writing the harness's instruction: {e}"));
        return run;
    }
    let bridge = match bridge::Bridge::start(container, gateway.clone()).await {
        Ok(b) => b,
        Err(e) => {
            run.outcome.exit_reason = ExitReason::SandboxError;
            run.outcome.error = Some(format!("starting the LLM bridge: {e}"));
            return run;
        }
    };
    let env: BTreeMap<String, String> = [
        ("AGENTMILL_BASE_URL", bridge.base_url()),
        ("OPENAI_BASE_URL", bridge.base_url()),
        ("OPENAI_API_BASE", bridge.base_url()),
        ("OPENAI_API_KEY", "agentmill-gateway".to_string()),
        ("AGENTMILL_MODEL", config.model.clone()),
        ("AGENTMILL_INSTRUCTION_FILE", instruction_file),
        ("AGENTMILL_WORKDIR", task.workdir.clone()),
        ("AGENTMILL_MAX_STEPS", limits.max_steps.to_string()),
        ("AGENTMILL_STEP_TIMEOUT_S", limits.step_timeout.as_secs().to_string()),
        ("AGENTMILL_HARNESS_DIR", HARNESS_DIR.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut request = ExecRequest::new(command_line(&config.harness, &task.workdir)).timeout(limits.episode_timeout).max_output(64 * 1024).keep(Keep::HeadAndTail);
    request.workdir = Some(task.workdir.clone());
    request.env = env;
    info!(harness = %label, port = bridge.port, max_steps = limits.max_steps, "harness starts");
    let ran = tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        r = container.exec(&request) => Some(r),
    };
    let bridge_log = bridge.stderr_tail();
    drop(bridge);
    let exchanges = gateway.exchanges();
    let t = transcript::build(&exchanges, config.tool_call_format);
    run.model_calls = model_calls(&exchanges);
    run.outcome.steps = t.turns;
    run.outcome.tools = t.tools;
    run.outcome.messages = t.messages;
    if t.restarts > 0 {
        warn!(restarts = t.restarts, "the harness rewrote its history; the record holds its last unbroken conversation");
    }
    let (reason, error) = match ran {
        None => (ExitReason::Cancelled, None),
        Some(Err(e)) => (ExitReason::SandboxError, Some(format!("running the harness: {e}"))),
        Some(Ok(out)) => {
            run.output_tail = out.output.clone();
            let stated = container.read_file(&format!("{HARNESS_DIR}/exit_reason")).await.ok().and_then(|b| {
                serde_json::from_value::<ExitReason>(Value::String(String::from_utf8_lossy(&b).trim().to_string())).ok()
            });
            let refused_at_limit = exchanges.last().is_some_and(|x| !x.upstream && x.status == 429);
            let overflow = exchanges.iter().rev().find(|x| x.upstream && x.status != 200).is_some_and(|x| crate::agent::policy::openai::is_context_overflow(&x.response));
            let mini = matches!(&config.harness, HarnessSetting::Name(n) if n == MINI_SWE_AGENT);
            let trajectory = if mini {
                container.read_file(&format!("{HARNESS_DIR}/trajectory.json")).await.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            } else {
                None
            };
            let tail = || format!("exit status {}; its output ends: {}", out.exit_code, last_lines(&out.output, 15));
            if out.timed_out {
                (ExitReason::EpisodeTimeout, Some(format!("the harness ran past the episode's {} s", limits.episode_timeout.as_secs())))
            } else if let Some(reason) = stated {
                (reason, None)
            } else if refused_at_limit {
                (ExitReason::MaxSteps, None)
            } else if overflow {
                (ExitReason::ContextOverflow, t.last_failure.clone())
            } else if let Some(found) = trajectory.as_ref().and_then(mini_exit) {
                match found {
                    (ExitReason::PolicyError, why) => {
                        (ExitReason::PolicyError, Some(format!("{}; the gateway's last failed answer: {}; {}", why.unwrap_or_default(), t.last_failure.clone().unwrap_or_else(|| "none".into()), tail())))
                    }
                    other => other,
                }
            } else if out.exit_code == 0 && !mini {
                (ExitReason::Submitted, None)
            } else {
                let bridge = if bridge_log.is_empty() { String::new() } else { format!("; the bridge said: {bridge_log}") };
                (ExitReason::PolicyError, Some(format!("the harness {label} failed: {}{bridge}", tail())))
            }
        }
    };
    run.outcome.exit_reason = reason;
    run.outcome.error = error;
    if reason != ExitReason::Cancelled {
        let timeout = Duration::from_secs(u64::from(agent.autosubmit_timeout_s.max(1)));
        match collect_patch(container, &task.base_commit, timeout).await {
            Ok(patch) => run.outcome.model_patch = patch,
            Err(e) => warn!("could not collect the harness's patch: {e}"),
        }
    }
    run.outcome.duration = started.elapsed();
    info!(harness = %label, exit_reason = %reason, turns = run.outcome.steps, calls = run.model_calls.len(), patch_bytes = run.outcome.model_patch.len(), "harness ended");
    run
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_are_names_or_commands() {
        #[derive(Deserialize)]
        struct T {
            harness: HarnessSetting,
        }
        let named: T = serde_json::from_str(r#"{"harness": "mini-swe-agent"}"#).expect("json");
        assert!(named.harness.check().is_ok() && !named.harness.is_builtin());
        let argv: T = serde_json::from_str(r#"{"harness": ["python3", "/opt/a.py"]}"#).expect("json");
        assert_eq!(argv.harness, HarnessSetting::Command(vec!["python3".into(), "/opt/a.py".into()]));
        assert!(HarnessSetting::default().is_builtin());
        let why = HarnessSetting::Name("openhands".into()).check().expect_err("unknown");
        assert!(why.contains("\"openhands\"") && why.contains("mini-swe-agent"), "{why}");
        assert!(HarnessSetting::Command(vec![]).check().is_err());
    }

    #[test]
    fn calls_keep_only_the_messages_a_request_adds() {
        let x = |messages: Value| gateway::Exchange {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            request: json!({ "model": "m", "messages": messages }).to_string(),
            status: 200,
            response: "{}".into(),
            delivered: None,
            upstream: true,
            upstream_time: Duration::from_millis(5),
            overhead: Duration::from_micros(70),
        };
        let calls = model_calls(&[x(json!([1, 2])), x(json!([1, 2, 3, 4])), x(json!([9]))]);
        assert_eq!(calls.iter().map(|c| c.messages_from).collect::<Vec<_>>(), [0, 2, 0]);
        assert_eq!(calls[1].request["messages"], json!([3, 4]));
        assert_eq!((calls[1].upstream_ms, calls[1].overhead_us), (5, 70));
    }

    #[test]
    fn mini_swe_agents_exit_statuses_map_to_exit_reasons() {
        let t = |s: &str| mini_exit(&json!({ "info": { "exit_status": s } })).map(|(r, _)| r);
        assert_eq!(t("Submitted"), Some(ExitReason::Submitted));
        assert_eq!(t("LimitsExceeded"), Some(ExitReason::MaxSteps));
        assert_eq!(t("APIConnectionError"), Some(ExitReason::PolicyError));
        assert_eq!(mini_exit(&json!({})), None);
    }
}
