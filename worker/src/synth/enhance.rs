//! LLM enhancement of a PR's prose before it is rendered (off by default): a 1–4 sentence
//! summary of what the PR does and why (daVinci-Dev's `pr_summary`), and a refined message per
//! commit that says what the commit changed (`refined_message`), both asked of an
//! OpenAI-compatible chat-completions endpoint through the `openai` policy's client — the same
//! [`OpenAiConfig`] (base_url, model, api_key_env, timeouts, retries with backoff on 429/5xx,
//! `Retry-After`).
//!
//! - **What is asked.** A summary when the row has none ([`EnhanceConfig::overwrite`]: always);
//!   a refined message for each commit that has none (the same option). The prompts are
//!   [`SUMMARY_SYSTEM_PROMPT`] with [`summary_prompt`], and [`COMMIT_SYSTEM_PROMPT`] with
//!   [`commit_prompt`]; the diffs in them are cut to [`EnhanceConfig::max_prompt_chars`].
//! - **Falling back.** Any failure keeps the original text: a request that fails after its
//!   retries (timeouts, 5xx, a refused key), an empty answer, one longer than
//!   [`EnhanceConfig::max_answer_chars`], one that is only reasoning. Each text is counted in the
//!   [`SynthReport`](super::SynthReport) as `enhanced` or `enhance_failed`, the reasons in its
//!   `errors`. Enhancement never drops a PR.
//! - **Concurrency.** Every request of every PR waits for a permit of one semaphore of
//!   [`EnhanceConfig::max_concurrent`] permits, retries included, so the endpoint never sees more
//!   requests from one synthesis job than that.
//!
//! # Calling async HTTP from the synchronous pipeline
//!
//! The pipeline is synchronous: it runs `git` and parses diffs on a blocking thread (the worker's
//! `spawn_blocking`, or the caller's thread offline, where there may be no runtime at all). An
//! [`Enhancer`] therefore owns a small tokio runtime of its own (one worker thread) and is
//! driven in two steps: [`Enhancer::submit`] builds the prompts on the calling thread and spawns
//! the requests on that runtime, returning a [`Pending`] at once; [`Pending::wait`] blocks on a
//! `std::sync::mpsc` channel for the answers. The [`Synthesizer`](super::Synthesizer) keeps a
//! window of submitted PRs ([`Enhancer::window`]) and waits for the oldest only when the window is
//! full, so reading git and waiting on the model overlap, and records still come out in input
//! order.
//!
//! Why not `Handle::block_on` on the caller's runtime: the worker's runtime is actix's
//! current-thread arbiter, whose one thread also drives the actors; requests spawned there would
//! progress only while the arbiter is free, and the offline pipeline has no runtime to borrow.
//! A private runtime behaves the same in both places, and because a [`Pending`] is waited on
//! through a plain channel — not `block_on` — waiting cannot panic even when called from inside
//! another runtime (it only blocks that thread). Dropping an [`Enhancer`] shuts its runtime down
//! in the background, abandoning requests still in flight.

use std::sync::Arc;
use std::sync::mpsc;

use agentmill_proto::{Message, PolicyInfo, Role};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::Semaphore;
use tracing::debug;

use super::row::PrRow;
use crate::agent::policy::{OpenAiConfig, OpenAiPolicy, Policy, PolicyError};

/// The policy name enhancement requests are logged under and records name as their provenance.
pub const ENHANCE_POLICY_NAME: &str = "synth.enhance";

/// PRs submitted and not yet rendered, per request permit: enough that the semaphore stays busy
/// while the oldest PR is waited on, few enough that their files do not pile up in memory.
const PRS_IN_FLIGHT_PER_PERMIT: usize = 2;

/// The system prompt of a PR summary.
pub const SUMMARY_SYSTEM_PROMPT: &str = "You summarize pull requests for a software project's history. \
Given a pull request (its repository, title, description, linked issue, commit messages and diff), write \
1 to 4 plain sentences that say what the pull request changes and why: the behaviour or code that changes, \
the important functions, classes or files, and the motivation when the description, the issue or the \
commits state it. Do not invent a motivation the text does not support. Answer with the summary only: no \
preamble, no heading, no lists, no code blocks.";

/// The system prompt of a refined commit message.
pub const COMMIT_SYSTEM_PROMPT: &str = "You rewrite git commit messages so that each says clearly what the \
commit changed. Given the pull request the commit belongs to, the commit's original message and its diff, \
write a better commit message: an imperative subject line of at most 72 characters and, when the change \
needs it, a blank line and 1 to 3 sentences on what changed and why. Base it on the diff; keep what the \
original message says when the diff supports it; do not mention pull request or issue numbers. Answer with \
the commit message only: no preamble, no quotes, no code blocks.";

/// `[synth.enhance]`: whether and how PR text is enhanced. Every key has a default; the endpoint
/// is `[synth.enhance.endpoint]`, with the keys of `[policy.endpoints.*]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnhanceConfig {
    /// Ask the endpoint at all (off by default: synthesis then makes no network request).
    pub enabled: bool,
    /// Ask for a PR summary.
    pub summaries: bool,
    /// Ask for a refined message per commit.
    pub commit_messages: bool,
    /// Ask even when the row already has a summary or a refined message (and replace it).
    pub overwrite: bool,
    /// Requests in flight at once, over every PR of a job.
    pub max_concurrent: usize,
    /// Longest prompt, in characters; the diff (then long descriptions) is cut to fit, with a
    /// marker saying how much was left out.
    pub max_prompt_chars: usize,
    /// Longest usable answer, in characters; a longer one is treated as a failure.
    pub max_answer_chars: usize,
    /// The OpenAI-compatible endpoint, as for the `openai` policy.
    pub endpoint: OpenAiConfig,
}

impl Default for EnhanceConfig {
    fn default() -> Self {
        EnhanceConfig {
            enabled: false,
            summaries: true,
            commit_messages: true,
            overwrite: false,
            max_concurrent: 8,
            max_prompt_chars: 24_000,
            max_answer_chars: 2_000,
            endpoint: OpenAiConfig::default(),
        }
    }
}

/// Why an [`Enhancer`] cannot be made.
#[derive(Debug, Error)]
pub enum EnhanceError {
    /// The endpoint's settings are unusable (no model, a base_url that is not a URL).
    #[error("synth.enhance.endpoint: {0}")]
    Endpoint(String),
    /// `max_concurrent` is 0.
    #[error("synth.enhance.max_concurrent is 0; allow at least 1 request at a time")]
    NoConcurrency,
    /// The runtime the requests run on could not start.
    #[error("synth.enhance: cannot start the thread its requests run on ({0}); check the process's thread limit")]
    Runtime(std::io::Error),
}

/// Why one text kept its original.
#[derive(Debug, Clone, Error)]
enum Fallback {
    #[error("the request failed ({0}); check that synth.enhance.endpoint answers")]
    Request(PolicyError),
    #[error("the answer was empty; check the endpoint's model and max_tokens (a reasoning model may spend them all thinking)")]
    Empty,
    #[error("the answer has {0} characters, more than synth.enhance.max_answer_chars ({1}); raise it, or lower max_tokens")]
    TooLong(usize, usize),
    #[error("the enhancement runtime stopped before answering")]
    Stopped,
}

/// A text of a PR that can be enhanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Summary,
    /// The commit's index.
    Commit(usize),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Summary => f.write_str("summary"),
            Target::Commit(i) => write!(f, "commit {} message", i + 1),
        }
    }
}

/// Asks an endpoint for PR summaries and refined commit messages. See the module docs.
pub struct Enhancer {
    cfg: EnhanceConfig,
    policy: OpenAiPolicy,
    info: PolicyInfo,
    limit: Arc<Semaphore>,
    // An `Option` so `Drop` can take it and shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Enhancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enhancer").field("policy", &self.policy).field("max_concurrent", &self.cfg.max_concurrent).finish_non_exhaustive()
    }
}

impl Drop for Enhancer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Never blocks, so an enhancer may be dropped anywhere, inside a runtime included.
            rt.shutdown_background();
        }
    }
}

impl Enhancer {
    /// Checks the settings, reads the API key and starts the runtime the requests run on.
    /// Builds one whether or not `cfg.enabled` is set; whether to use it is the caller's choice.
    pub fn new(cfg: EnhanceConfig) -> Result<Enhancer, EnhanceError> {
        if cfg.max_concurrent == 0 {
            return Err(EnhanceError::NoConcurrency);
        }
        let policy = OpenAiPolicy::new(ENHANCE_POLICY_NAME, cfg.endpoint.clone()).map_err(|e| EnhanceError::Endpoint(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("synth-enhance")
            .enable_all()
            .build()
            .map_err(EnhanceError::Runtime)?;
        let info = policy.info();
        let limit = Arc::new(Semaphore::new(cfg.max_concurrent));
        Ok(Enhancer { cfg, policy, info, limit, runtime: Some(runtime) })
    }

    /// The settings.
    pub fn config(&self) -> &EnhanceConfig {
        &self.cfg
    }

    /// The endpoint and model, as enhanced records name them in `provenance.policy`.
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }

    /// How many submitted PRs a pipeline should let wait before it waits for the oldest.
    pub fn window(&self) -> usize {
        self.cfg.max_concurrent.saturating_mul(PRS_IN_FLIGHT_PER_PERMIT).max(2)
    }

    /// Starts enhancing `row` and returns at once; the requests run in the background, at most
    /// `max_concurrent` at a time over every pending row. A row that needs nothing is ready.
    pub fn submit(&self, row: PrRow) -> Pending {
        let mut targets = Vec::new();
        let mut prompts: Vec<Vec<Message>> = Vec::new();
        if self.cfg.summaries && (self.cfg.overwrite || row.pr_summary.trim().is_empty()) {
            targets.push(Target::Summary);
            prompts.push(vec![
                Message::text(Role::System, SUMMARY_SYSTEM_PROMPT),
                Message::text(Role::User, summary_prompt(&row, self.cfg.max_prompt_chars)),
            ]);
        }
        if self.cfg.commit_messages {
            for (i, c) in row.commits.iter().enumerate() {
                let has_refined = c.refined_message.as_deref().is_some_and(|m| !m.trim().is_empty());
                if self.cfg.overwrite || !has_refined {
                    targets.push(Target::Commit(i));
                    prompts.push(vec![
                        Message::text(Role::System, COMMIT_SYSTEM_PROMPT),
                        Message::text(Role::User, commit_prompt(&row, i, self.cfg.max_prompt_chars)),
                    ]);
                }
            }
        }
        let max_answer_chars = self.cfg.max_answer_chars;
        let Some(runtime) = self.runtime.as_ref().filter(|_| !targets.is_empty()) else {
            return Pending { row, targets, answers: None, max_answer_chars };
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let policy = self.policy.clone();
        let limit = self.limit.clone();
        runtime.spawn(async move {
            let asks = prompts.iter().map(|messages| {
                let (policy, limit) = (&policy, &limit);
                async move {
                    let _permit = limit.acquire().await.map_err(|_| Fallback::Stopped)?;
                    policy.complete(messages, &[]).await.map(|m| m.content).map_err(Fallback::Request)
                }
            });
            let answers: Vec<Result<String, Fallback>> = futures::future::join_all(asks).await;
            // The receiver is gone only when the pipeline stopped; nobody wants the answers then.
            let _ = tx.send(answers);
        });
        Pending { row, targets, answers: Some(rx), max_answer_chars }
    }

    /// Enhances one row, waiting for it (blocks the calling thread).
    pub fn enhance(&self, row: PrRow) -> Enhanced {
        self.submit(row).wait()
    }
}

/// A row whose texts are being asked for.
#[derive(Debug)]
pub struct Pending {
    row: PrRow,
    targets: Vec<Target>,
    answers: Option<mpsc::Receiver<Vec<Result<String, Fallback>>>>,
    max_answer_chars: usize,
}

/// A row after enhancement: the usable answers applied, the rest as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Enhanced {
    /// The row with its summary and refined messages.
    pub row: PrRow,
    /// Texts replaced by the model's answer.
    pub enhanced: u64,
    /// Texts kept as they were because the request or its answer failed.
    pub failed: u64,
    /// Why each failed text kept its original, naming the PR and the text.
    pub failures: Vec<String>,
}

impl Pending {
    /// Waits for every answer (blocks the calling thread) and applies the usable ones.
    pub fn wait(self) -> Enhanced {
        let Pending { mut row, targets, answers, max_answer_chars } = self;
        let answers = match answers.map(|rx| rx.recv()) {
            Some(Ok(a)) if a.len() == targets.len() => a,
            // No answers (a row that needed none has no targets) or the task died: fall back.
            _ => vec![Err(Fallback::Stopped); targets.len()],
        };
        let mut out = Enhanced { row: PrRow::default(), enhanced: 0, failed: 0, failures: Vec::new() };
        for (target, answer) in targets.into_iter().zip(answers) {
            match answer.and_then(|a| clean_answer(&a, max_answer_chars)) {
                Ok(text) => {
                    out.enhanced += 1;
                    match target {
                        Target::Summary => row.pr_summary = text,
                        Target::Commit(i) => {
                            if let Some(c) = row.commits.get_mut(i) {
                                c.refined_message = Some(text);
                            }
                        }
                    }
                }
                Err(why) => {
                    out.failed += 1;
                    debug!(repo = %row.repo_name, pr = %row.pr_id, %target, "enhancement fell back: {why}");
                    out.failures.push(format!("{}#{} {target}: {why}; kept the original text", row.repo_name, row.pr_id));
                }
            }
        }
        out.row = row;
        out
    }
}

/// The model's answer as text to render, or why it cannot be used: reasoning (`<think>…</think>`)
/// removed, an answer wrapped whole in a code fence or quotes unwrapped, a leading label
/// (`Summary:`, `Commit message:`) dropped, surrounding whitespace trimmed.
fn clean_answer(raw: &str, max_chars: usize) -> Result<String, Fallback> {
    let mut text = raw.replace("\r\n", "\n");
    while let Some(start) = text.find("<think>") {
        match text[start..].find("</think>") {
            Some(end) => text.replace_range(start..start + end + "</think>".len(), ""),
            // An unclosed block: the model ran out of tokens while thinking.
            None => text.truncate(start),
        }
    }
    let mut t = text.trim();
    if let Some(inner) = t.strip_prefix("```").and_then(|r| r.strip_suffix("```")) {
        // Drop the fence's info string (```text).
        t = inner.split_once('\n').map_or("", |(_, body)| body).trim();
    }
    for (open, close) in [('"', '"'), ('\'', '\''), ('`', '`'), ('“', '”')] {
        if t.len() >= 2 && t.starts_with(open) && t.ends_with(close) {
            t = t[open.len_utf8()..t.len() - close.len_utf8()].trim();
        }
    }
    for label in ["summary:", "pr summary:", "refined commit message:", "commit message:", "refined message:"] {
        if t.len() >= label.len() && t.is_char_boundary(label.len()) && t[..label.len()].eq_ignore_ascii_case(label) {
            t = t[label.len()..].trim_start();
            break;
        }
    }
    let t = t.trim();
    let chars = t.chars().count();
    if chars == 0 {
        return Err(Fallback::Empty);
    }
    if chars > max_chars {
        return Err(Fallback::TooLong(chars, max_chars));
    }
    Ok(t.to_string())
}

/// The user prompt asking for `row`'s summary, at most about `max_chars` long: repository, issue,
/// title, description, commit messages, then the diff (cut first).
pub fn summary_prompt(row: &PrRow, max_chars: usize) -> String {
    let prose_cap = (max_chars / 6).max(200);
    let mut head = format!("Repository: {}\n", row.repo_name);
    if !row.repo_description.trim().is_empty() {
        head.push_str(&format!("Repository description: {}\n", row.repo_description.trim()));
    }
    if let Some(issue) = row.issue() {
        head.push_str(&format!("\nLinked issue: {}\n", issue.title.trim()));
        if !issue.body.trim().is_empty() {
            head.push_str(&clip(issue.body.trim(), prose_cap, "of the issue"));
            head.push('\n');
        }
    }
    head.push_str(&format!("\nPull request title: {}\n", row.title.trim()));
    let body = row.body.trim();
    head.push_str("Pull request description:\n");
    head.push_str(&if body.is_empty() { "(none)".to_string() } else { clip(body, prose_cap, "of the description") });
    head.push_str("\n\nCommits:\n");
    let mut subjects = String::new();
    for (i, c) in row.commits.iter().enumerate() {
        let subject = c.message.trim().lines().next().unwrap_or_default();
        subjects.push_str(&format!("{}. {}\n", i + 1, clip(subject, 200, "")));
    }
    head.push_str(&clip(&subjects, prose_cap, "of the commit list"));
    let mut diff = String::new();
    for c in &row.commits {
        for d in &c.diffs {
            diff.push_str(&file_diff(&d.path, &d.patch));
        }
    }
    head.push_str("\nDiff:\n");
    let budget = max_chars.saturating_sub(head.len()).max(1000);
    head.push_str(&clip(&diff, budget, "of the diff"));
    head
}

/// The user prompt asking for a refined message of commit `index` (0-based) of `row`, at most
/// about `max_chars` long; an index past the commits gives the prompt of an empty commit.
pub fn commit_prompt(row: &PrRow, index: usize, max_chars: usize) -> String {
    let prose_cap = (max_chars / 6).max(200);
    let mut head = format!("Repository: {}\nPull request title: {}\n", row.repo_name, row.title.trim());
    let Some(commit) = row.commits.get(index) else {
        return head;
    };
    let message = commit.message.trim();
    head.push_str(&format!(
        "\nThis is commit {} of {}. Its original message:\n{}\n",
        index + 1,
        row.commits.len(),
        if message.is_empty() { "(empty)".to_string() } else { clip(message, prose_cap, "of the message") }
    ));
    let diff: String = commit.diffs.iter().map(|d| file_diff(&d.path, &d.patch)).collect();
    head.push_str("\nDiff of this commit:\n");
    let budget = max_chars.saturating_sub(head.len()).max(1000);
    head.push_str(&clip(if diff.is_empty() { "(no changes)" } else { &diff }, budget, "of the diff"));
    head
}

/// One file's diff in a prompt: a `--- path` line before hunks that lack git's headers.
fn file_diff(path: &str, patch: &str) -> String {
    let mut out = String::new();
    if !patch.starts_with("diff --git") && !patch.starts_with("--- ") {
        out.push_str(&format!("--- a/{path}\n+++ b/{path}\n"));
    }
    out.push_str(patch);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `text` cut to at most `max` bytes (on a character boundary) with a marker saying how much of
/// `what` was left out.
fn clip(text: &str, max: usize, what: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let left = text.len() - cut;
    if what.is_empty() {
        return format!("{}…", &text[..cut]);
    }
    format!("{}\n[… {left} more bytes {what} left out]", &text[..cut])
}

#[cfg(test)]
mod tests {
    use agentmill_proto::{Commit, FileDiff};

    use super::*;

    #[test]
    fn answers_lose_reasoning_fences_quotes_and_labels() {
        let ok = |raw: &str| clean_answer(raw, 100).ok();
        assert_eq!(ok("<think>hmm</think>\n\nSummary: Fixes add().").as_deref(), Some("Fixes add()."));
        assert_eq!(ok("```text\nFix add\n\nIt subtracted.\n```").as_deref(), Some("Fix add\n\nIt subtracted."));
        assert_eq!(ok("\"Fix add\"").as_deref(), Some("Fix add"));
        assert_eq!(ok("Commit message: Fix add").as_deref(), Some("Fix add"));
        assert!(matches!(clean_answer("  \n", 100), Err(Fallback::Empty)));
        assert!(matches!(clean_answer("<think>still thinking when the tokens ran out", 100), Err(Fallback::Empty)));
        assert!(matches!(clean_answer(&"x".repeat(101), 100), Err(Fallback::TooLong(101, 100))));
        assert_eq!(ok("é").as_deref(), Some("é"));
    }

    #[test]
    fn prompts_carry_the_pr_and_cut_long_diffs() {
        let row = PrRow {
            repo_name: "acme/calc".into(),
            title: "Fix add".into(),
            commits: vec![Commit {
                message: "wip".into(),
                refined_message: None,
                diffs: vec![FileDiff { path: "calc.py".into(), patch: format!("@@ -1 +1 @@\n-{}\n+b\n", "a".repeat(50_000)) }],
            }],
            ..PrRow::default()
        };
        let s = summary_prompt(&row, 4_000);
        assert!(s.contains("Pull request title: Fix add") && s.contains("1. wip") && s.contains("--- a/calc.py"), "{s}");
        assert!(s.len() < 4_200 && s.contains("more bytes of the diff left out"), "{}", s.len());
        let c = commit_prompt(&row, 0, 4_000);
        assert!(c.contains("Its original message:\nwip") && c.contains("more bytes of the diff left out"), "{c}");
        assert!(c.len() < 4_200);
        assert!(!commit_prompt(&row, 5, 4_000).contains("Diff"));
    }
}
