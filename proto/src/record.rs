//! `TrajectoryRecord` v1 (`agentmill.trajectory/v1`): one Redis stream entry per episode or PR.
//!
//! The full JSON Schema is generated from these types ([`record_schema`]) and committed as
//! `proto/schema/trajectory-record.v1.schema.json`; a test keeps the two in step.
//!
//! One file, long on purpose: it is the v1 schema, every type of it in one place, as the generated
//! JSON Schema and `proto/README.md`'s field guide describe it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema id every v1 record carries.
pub const RECORD_SCHEMA: &str = "agentmill.trajectory/v1";

/// Which kind of agent-native data a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Environmentally-native: an agent episode in a real sandbox.
    Env,
    /// Contextually-native: a pull request rebuilt as an agent's information flow.
    Ctx,
}

impl RecordKind {
    /// The name used on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Env => "env",
            RecordKind::Ctx => "ctx",
        }
    }
}

/// Why an episode ended. Infra reasons are retried and never trained on as the model's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The agent called `submit`.
    Submitted,
    /// The step budget ran out.
    MaxSteps,
    /// The conversation outgrew the context budget.
    ContextOverflow,
    /// A tool call ran past its timeout and the episode could not go on.
    StepTimeout,
    /// The episode's wall-time budget ran out.
    EpisodeTimeout,
    /// The policy server failed (unreachable, 5xx after retries, unusable output).
    PolicyError,
    /// The sandbox failed (image missing, container died, exec failed).
    SandboxError,
    /// Anything else outside the model's control (Redis, disk, a worker bug).
    InfraError,
    /// The task was cancelled.
    Cancelled,
}

impl ExitReason {
    /// Every reason, in proto order.
    pub const ALL: [ExitReason; 9] = [
        ExitReason::Submitted,
        ExitReason::MaxSteps,
        ExitReason::ContextOverflow,
        ExitReason::StepTimeout,
        ExitReason::EpisodeTimeout,
        ExitReason::PolicyError,
        ExitReason::SandboxError,
        ExitReason::InfraError,
        ExitReason::Cancelled,
    ];

    /// True when the failure is not the model's: the coordinator retries it, the learner skips it.
    pub fn is_infra(self) -> bool {
        matches!(self, ExitReason::PolicyError | ExitReason::SandboxError | ExitReason::InfraError)
    }

    /// True when the episode is the model's own doing and may be trained on.
    pub fn is_trainable(self) -> bool {
        !self.is_infra() && self != ExitReason::Cancelled
    }

    /// The snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Submitted => "submitted",
            ExitReason::MaxSteps => "max_steps",
            ExitReason::ContextOverflow => "context_overflow",
            ExitReason::StepTimeout => "step_timeout",
            ExitReason::EpisodeTimeout => "episode_timeout",
            ExitReason::PolicyError => "policy_error",
            ExitReason::SandboxError => "sandbox_error",
            ExitReason::InfraError => "infra_error",
            ExitReason::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SWE-bench's resolution of a graded episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Resolution {
    /// Every FAIL_TO_PASS and PASS_TO_PASS test passes.
    Full,
    /// Some but not all FAIL_TO_PASS tests pass, and every PASS_TO_PASS test passes.
    Partial,
    /// Anything else.
    No,
}

impl Resolution {
    /// Applies SWE-bench's rule to the outcome counts of FAIL_TO_PASS and PASS_TO_PASS.
    pub fn from_counts(f2p_passed: usize, f2p_total: usize, p2p_passed: usize, p2p_total: usize) -> Resolution {
        let p2p_ok = p2p_passed == p2p_total;
        if !p2p_ok {
            Resolution::No
        } else if f2p_passed == f2p_total {
            Resolution::Full
        } else if f2p_passed > 0 {
            Resolution::Partial
        } else {
            Resolution::No
        }
    }

    /// The name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Full => "FULL",
            Resolution::Partial => "PARTIAL",
            Resolution::No => "NO",
        }
    }
}

/// The status of one test in the grading run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    /// The test passed (or xpassed where strictness allows).
    Passed,
    /// The test ran and failed.
    Failed,
    /// The test errored (setup, teardown or collection).
    Error,
    /// The test was skipped.
    Skipped,
    /// The test failed as expected (`xfail`).
    Xfail,
    /// The test was not found in the log at all — or, with verdict `excluded`, it was found
    /// under a word that is no status (`ERROR:`, `-E`: the reference's parsers keep the line's
    /// first word), which the harness counts on neither side.
    Missing,
}

impl TestStatus {
    /// Whether SWE-bench counts this status as a pass.
    pub fn is_pass(self) -> bool {
        matches!(self, TestStatus::Passed | TestStatus::Xfail | TestStatus::Skipped)
    }
}

/// One graded test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestOutcome {
    /// The test's node id as listed in the task.
    pub name: String,
    /// What happened to it.
    pub status: TestStatus,
    /// How the grading rules counted it (absent in records written before rules were recorded,
    /// where a pass is a status that [`TestStatus::is_pass`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

impl TestOutcome {
    /// A test and its status, not yet counted by any rules.
    pub fn new(name: impl Into<String>, status: TestStatus) -> TestOutcome {
        TestOutcome { name: name.into(), status, verdict: None }
    }

    /// Whether the test counts as a success: by its verdict, else by its status.
    pub fn succeeded(&self) -> bool {
        match self.verdict {
            Some(v) => v == Verdict::Success,
            None => self.status.is_pass(),
        }
    }

    /// Whether the test counts at all (the rules may leave it out of both sides).
    pub fn counted(&self) -> bool {
        self.verdict != Some(Verdict::Excluded)
    }
}

/// How a harness's rules count one listed test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In the list's `success` side.
    Success,
    /// In the list's `failure` side.
    Failure,
    /// In neither (SWE-bench 4.x leaves a SKIPPED test out of both sides).
    Excluded,
}

/// The result of grading an episode's patch with the repository's own tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Grading {
    /// FAIL_TO_PASS tests and their status.
    pub fail_to_pass: Vec<TestOutcome>,
    /// PASS_TO_PASS tests and their status.
    pub pass_to_pass: Vec<TestOutcome>,
    /// SWE-bench's resolution.
    pub resolution: Resolution,
    /// `resolution == FULL`.
    pub resolved: bool,
    /// How the model patch went in: the command of the harness's apply chain that worked (`git
    /// apply --verbose`, …), `empty` (nothing to apply; not run), or `failed`.
    pub patch_applied: String,
    /// Exit code of the test command (for a dataset's eval script, the one it records, as 5.x
    /// scripts do; absent when the script records none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_exit_code: Option<i64>,
    /// The end of the test log, for people reading a record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_tail: String,
    /// Whose rules graded the log (`swe-bench-4`, `swe-bench-5`, `agentmill`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rules: String,
    /// The parser that read the log (SWE-bench's names).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_parser: String,
    /// Set when the reference harness would not have graded this run (patch or test patch not
    /// applied, timeout, no test output, a log that contradicts the exit code): why. The
    /// resolution is then `NO`, and the episode is the task's or the infrastructure's problem,
    /// never the model's failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_graded: Option<String>,
    /// R2E-Gym's expected map, test by test: the status the run gave each expected test, and
    /// `success` where it is the expected one (the reward is 1 only when every one is and the
    /// run reported nothing else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<TestOutcome>,
    /// A Harbor task's rewards, every key its verifier wrote (`/logs/verifier/reward.json`, or
    /// `reward` from `reward.txt`); the resolution is FULL when the task's reward rule passes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rewards: BTreeMap<String, f64>,
}

impl Grading {
    /// Builds a grading from per-test outcomes: each test's verdict where it has one, else its
    /// status; SWE-bench's resolution over the tests that count.
    pub fn from_outcomes(fail_to_pass: Vec<TestOutcome>, pass_to_pass: Vec<TestOutcome>, patch_applied: impl Into<String>) -> Grading {
        let count = |v: &[TestOutcome]| (v.iter().filter(|t| t.counted() && t.succeeded()).count(), v.iter().filter(|t| t.counted()).count());
        let (f_ok, f_all) = count(&fail_to_pass);
        let (p_ok, p_all) = count(&pass_to_pass);
        let resolution = Resolution::from_counts(f_ok, f_all, p_ok, p_all);
        Grading {
            fail_to_pass,
            pass_to_pass,
            resolution,
            resolved: resolution == Resolution::Full,
            patch_applied: patch_applied.into(),
            test_exit_code: None,
            log_tail: String::new(),
            rules: String::new(),
            log_parser: String::new(),
            not_graded: None,
            expected: Vec::new(),
            rewards: BTreeMap::new(),
        }
    }

    /// An empty model patch: the harness does not run the tests (`patch_is_None`), and every
    /// listed test counts as failed — the model's own failure, graded `NO`.
    pub fn empty_patch(fail_to_pass: &[String], pass_to_pass: &[String]) -> Grading {
        let missing = |ids: &[String]| ids.iter().map(|n| TestOutcome { name: n.clone(), status: TestStatus::Missing, verdict: Some(Verdict::Failure) }).collect();
        let mut g = Grading::from_outcomes(missing(fail_to_pass), missing(pass_to_pass), "empty");
        g.resolution = Resolution::No;
        g.resolved = false;
        g
    }

    /// A run the reference would not grade: every test missing, resolution `NO`, and why.
    pub fn not_graded(fail_to_pass: &[String], pass_to_pass: &[String], patch_applied: impl Into<String>, why: impl Into<String>) -> Grading {
        let missing = |ids: &[String]| ids.iter().map(|n| TestOutcome { name: n.clone(), status: TestStatus::Missing, verdict: Some(Verdict::Failure) }).collect();
        let mut g = Grading::from_outcomes(missing(fail_to_pass), missing(pass_to_pass), patch_applied);
        g.resolution = Resolution::No;
        g.resolved = false;
        g.not_graded = Some(why.into());
        g
    }
}

/// The policy that produced an episode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyInfo {
    /// `replay`, `openai`, ...
    pub name: String,
    /// The model name the policy server reported, when any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Sampling parameters (temperature, top_p, max_tokens, ...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub sampling: Value,
    /// The weight version the policy served, for off-policy accounting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub weight_version: String,
}

/// Where a record came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Provenance {
    /// `owner/name`.
    pub repo: String,
    /// The commit the episode started from (or the PR's base).
    pub base_commit: String,
    /// The container image, for env records.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// The image's content digest (`sha256:...`), so a record names exactly what ran.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_digest: String,
    /// The policy, for env records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyInfo>,
    /// The limits the episode ran under, for env records: the task's after the worker's
    /// ceilings (`[limits] max_*`), else the worker's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::task::Limits>,
}

/// A chat role (OpenAI's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions to the agent.
    System,
    /// The task (and, in some templates, tool output).
    User,
    /// The policy's turns.
    Assistant,
    /// The real output of a tool call.
    Tool,
}

/// The function named by a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionCall {
    /// The tool's name (`bash`, `str_replace_editor`, `submit`).
    pub name: String,
    /// The arguments as the policy wrote them: a JSON object encoded as a string, possibly malformed.
    pub arguments: String,
}

/// A tool call in an assistant turn (OpenAI format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCall {
    /// The id the tool message answers with `tool_call_id`.
    pub id: String,
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// What to call.
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_string()
}

/// Token usage the policy server reported for one assistant turn.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// One chat message, in OpenAI's format plus agentmill's observation metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// The text (empty for an assistant turn made only of tool calls).
    #[serde(default)]
    pub content: String,
    /// The model's reasoning, when the server returns it separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Tool calls of an assistant turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a tool message: the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For a tool message: the command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// For a tool message: how long the call took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For a tool message: whether the output was cut (a marker says where).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// For an assistant turn: the sampled token ids, when the server returns them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
    /// For an assistant turn: the log-probabilities of those tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<f32>>,
    /// For an assistant turn whose server names its sampled tokens by their text only (llama.cpp's
    /// `logprobs.content[].token`, no ids): each token's text, in order. The learner maps them to
    /// ids through its tokenizer, which must be the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_pieces: Option<Vec<String>>,
    /// For an assistant turn: usage the server reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl Message {
    /// A plain message with only a role and content.
    pub fn text(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            reasoning_content: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            exit_code: None,
            duration_ms: None,
            truncated: None,
            token_ids: None,
            logprobs: None,
            token_pieces: None,
            usage: None,
        }
    }
}

/// Stage durations of an episode, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Timing {
    /// From submission (or requeue) to lease.
    pub queue_ms: u64,
    /// Pulling or checking the image.
    pub image_ms: u64,
    /// Creating and starting the container, putting the repo in place.
    pub start_ms: u64,
    /// The agent loop.
    pub agent_ms: u64,
    /// Grading in a fresh container.
    pub grade_ms: u64,
    /// The whole episode.
    pub total_ms: u64,
}

/// One file of a PR as it was at the parent of the first commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RelevantFile {
    /// Repository-relative path.
    pub path: String,
    /// Full contents.
    pub content: String,
}

/// A comment on an issue or PR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Comment {
    /// Login of the author.
    #[serde(default)]
    pub author: String,
    /// Markdown body.
    #[serde(default)]
    pub body: String,
}

/// The issue a PR resolves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Issue {
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Body.
    #[serde(default)]
    pub body: String,
    /// Comments in order.
    #[serde(default)]
    pub comments: Vec<Comment>,
}

/// The diff of one file in one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileDiff {
    /// Repository-relative path.
    pub path: String,
    /// Unified diff of this file.
    pub patch: String,
}

/// One commit of a PR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Commit {
    /// The original message.
    #[serde(default)]
    pub message: String,
    /// An LLM-refined message, when enhancement ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined_message: Option<String>,
    /// Per-file diffs.
    #[serde(default)]
    pub diffs: Vec<FileDiff>,
}

/// The structured PR behind a `ctx` record (daVinci-Dev's released schema) and its rendered text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContextualPr {
    /// `owner/name`.
    pub repo_name: String,
    /// The repository's description.
    #[serde(default)]
    pub repo_description: String,
    /// PR number, or a commit id for commit-derived PRs.
    #[serde(default)]
    pub pr_id: String,
    /// PR title.
    #[serde(default)]
    pub title: String,
    /// PR body.
    #[serde(default)]
    pub body: String,
    /// 1–4 sentence summary (LLM-written when enhancement ran).
    #[serde(default)]
    pub pr_summary: String,
    /// The linked issue, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_issue: Option<Issue>,
    /// Files at the parent of the first commit.
    #[serde(default)]
    pub relevant_files: Vec<RelevantFile>,
    /// Commits in order.
    #[serde(default)]
    pub commits: Vec<Commit>,
    /// The template that rendered `text` (`python_pr`, `general`).
    #[serde(default)]
    pub template: String,
    /// The rendered training text.
    pub text: String,
}

/// One trajectory: an agent episode (`env`) or a rebuilt pull request (`ctx`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrajectoryRecord {
    /// Always [`RECORD_SCHEMA`].
    pub schema: String,
    /// Unique; the idempotency key in the stream and the learner.
    pub record_id: String,
    /// `env` or `ctx`.
    pub kind: RecordKind,
    /// The task (or synthesis job) that produced it.
    pub task_id: String,
    /// 1-based attempt of the rollout.
    pub attempt: u32,
    /// 0-based rollout index.
    pub rollout: u32,
    /// The worker that produced it.
    pub worker: String,
    /// RFC 3339 creation time (UTC).
    pub created_at: String,
    /// Software versions (`agentmill`, `image`, ...).
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// Where it came from.
    pub provenance: Provenance,
    /// The JSON schemas of the tools offered to the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    /// The conversation; every tool message is the real output of a call in the sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// Why the episode ended (env records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<ExitReason>,
    /// What went wrong, for infra, sandbox and policy errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `git diff` of the workdir against the base commit at submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_patch: Option<String>,
    /// The test verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading: Option<Grading>,
    /// Scalar reward (1.0 resolved, 0.0 otherwise, by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<f64>,
    /// Stage durations.
    #[serde(default)]
    pub timing: Timing,
    /// The PR, for ctx records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<ContextualPr>,
    /// Every model call an external agent harness made through the worker's LLM gateway, in
    /// order, kept exactly (episodes whose policy names a harness other than `agentmill`; the
    /// `messages` above are built from these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_calls: Vec<ModelCall>,
}

/// One model call a harness made through the worker's LLM gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelCall {
    /// The path the harness called (`/v1/chat/completions`, `/v1/models`).
    pub path: String,
    /// The HTTP status the harness got.
    pub status: u16,
    /// The request body as the gateway forwarded it (`null` for a GET), except that its
    /// `messages` hold only those from index `messages_from` on: the earlier ones are the
    /// previous call's whole `messages`, unchanged (so the record grows with the conversation,
    /// not with its square).
    pub request: Value,
    /// Where this call's `messages` continue the previous call's (0: they do not; all are here).
    #[serde(default)]
    pub messages_from: usize,
    /// The response body byte for byte as the server sent it, or the gateway's refusal.
    pub response: String,
    /// Whether the server answered (false: the gateway refused the call or could not reach it).
    pub upstream: bool,
    /// Time waiting on the server, milliseconds.
    pub upstream_ms: u64,
    /// Time spent in the gateway and its bridge beyond the server's, microseconds.
    pub overhead_us: u64,
}

impl TrajectoryRecord {
    /// A record of `kind` with its identity set (schema, record id, task id, attempt 1, rollout
    /// 0) and everything else empty: the start of a record a producer fills in.
    pub fn new(kind: RecordKind, record_id: impl Into<String>, task_id: impl Into<String>) -> TrajectoryRecord {
        TrajectoryRecord {
            schema: RECORD_SCHEMA.into(),
            record_id: record_id.into(),
            kind,
            task_id: task_id.into(),
            attempt: 1,
            rollout: 0,
            worker: String::new(),
            created_at: String::new(),
            versions: BTreeMap::new(),
            provenance: Provenance::default(),
            tools: Vec::new(),
            messages: Vec::new(),
            exit_reason: None,
            error: None,
            model_patch: None,
            grading: None,
            reward: None,
            timing: Timing::default(),
            ctx: None,
            model_calls: Vec::new(),
        }
    }

    /// A record id that is the same for the same (task, rollout, attempt): publishing twice
    /// is then idempotent downstream.
    pub fn episode_record_id(task_id: &str, rollout: u32, attempt: u32) -> String {
        format!("env:{task_id}:r{rollout}:a{attempt}")
    }

    /// True when the learner may train on it: ctx records, and env records whose end was the
    /// model's doing (not infra, not cancelled).
    pub fn is_trainable(&self) -> bool {
        match self.kind {
            RecordKind::Ctx => true,
            RecordKind::Env => self.exit_reason.is_some_and(ExitReason::is_trainable),
        }
    }

    /// Whether the episode resolved its task.
    pub fn resolved(&self) -> bool {
        self.grading.as_ref().is_some_and(|g| g.resolved)
    }
}

/// The JSON Schema of [`TrajectoryRecord`], pretty-printed.
pub fn record_schema() -> String {
    let schema = schemars::schema_for!(TrajectoryRecord);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The JSON Schema of a normalized [`crate::Task`], pretty-printed.
pub fn task_schema() -> String {
    let schema = schemars::schema_for!(crate::Task);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
