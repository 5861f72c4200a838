//! `Task`: one repository task, parsed from a JSONL row.
//!
//! Rows of SWE-bench, SWE-bench Verified, SWE-Gym, SWE-rebench and SWE-smith are accepted as
//! they are: `FAIL_TO_PASS` / `PASS_TO_PASS` may be JSON-encoded strings (as SWE-bench ships them)
//! or arrays, `image_name` / `docker_image` name the image where the dataset does. agentmill's own
//! optional fields (`image`, `workdir`, `source`, `limits`, `rollouts`, ...) sit beside them.
//! Fields agentmill does not interpret are kept verbatim in [`Task::extra`].
//!
//! Parsing never stops at the first bad row: [`parse_jsonl`] returns every good task and one
//! [`RowError`] per problem, each naming the row, the field and what to do about it.
//!
//! One file, long on purpose: `Task` and its row reader are one schema, and each field's leniency
//! (JSON-encoded lists, dataset aliases, a family's required fields) is read next to its field.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dataset::{self, EvalType, Family};

/// The workdir SWE-bench images use, and agentmill's default.
pub const DEFAULT_WORKDIR: &str = "/testbed";
/// Upper bound on `rollouts` (the paper uses at most 4 a task).
pub const MAX_ROLLOUTS: u32 = 256;
/// Upper bound on the length of a task id.
pub const MAX_TASK_ID_LEN: usize = 256;
/// How a task names content stored with the coordinator (`PutContent`): `content:<sha256>`.
pub const CONTENT_PREFIX: &str = "content:";

/// The SHA-256 a `content:<sha256>` reference names, if `s` is one.
pub fn content_ref(s: &str) -> Option<&str> {
    s.strip_prefix(CONTENT_PREFIX)
}

/// What a task asks a worker to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// An agent episode graded by the repository's tests (`env` records).
    #[default]
    Episode,
    /// Contextual synthesis of pull requests or commits (`ctx` records).
    Synth,
}

/// Where the repository comes from inside the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// The repository is already at the workdir in the image (SWE-bench's images).
    #[default]
    Image,
    /// A tarball of the repository at the base commit, uploaded by the worker.
    Archive {
        /// `content:<sha256>` (uploaded to the coordinator with the task), or a path (or
        /// `file://` URL) under a root the worker's configuration allows.
        path: String,
        /// Optional SHA-256 of the archive, checked before upload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// Clone `url` and check out `base_commit` (needs network at init).
    Git {
        /// The clone URL.
        url: String,
    },
}

/// Per-episode resource and time limits; `None` means the worker's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Limits {
    /// Agent steps (policy calls) before `max_steps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Timeout of one tool call, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_timeout_s: Option<u32>,
    /// Wall time of the agent loop, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode_timeout_s: Option<u32>,
    /// Timeout of the grading test run, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_timeout_s: Option<u32>,
    /// CPUs for the sandbox (fractional allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory limit in bytes (rows may write `"2g"`, `"512m"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Process limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
    /// Disk limit in bytes (rows may write `"10g"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    /// Context budget of the policy, tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
}

/// A synthesis job: one shard of contextual-data work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SynthSpec {
    /// First-parent merges (and optionally single commits) of a git repository.
    Git {
        /// Path or URL of the repository.
        repo_path: String,
        /// Exclusive start revision; empty = from the root.
        #[serde(default)]
        from_rev: String,
        /// Inclusive end revision; empty = HEAD.
        #[serde(default)]
        to_rev: String,
        /// Treat non-merge first-parent commits as PRs too.
        #[serde(default)]
        single_commits: bool,
        /// Optional JSONL map of issue text per PR or commit.
        #[serde(default)]
        issues_path: String,
    },
    /// A shard of a file of PR rows in daVinci-Dev's schema.
    Rows {
        /// JSONL or Parquet file.
        path: String,
        /// First row, 0-based.
        #[serde(default)]
        offset: u64,
        /// Rows in the shard; 0 = to the end.
        #[serde(default)]
        limit: u64,
    },
}

/// One repository task, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    /// Unique id; also the idempotency key of a submission.
    pub instance_id: String,
    /// Episode or synthesis.
    #[serde(default)]
    pub kind: TaskKind,
    /// `owner/name` of the repository.
    #[serde(default)]
    pub repo: String,
    /// The commit the episode starts from.
    #[serde(default)]
    pub base_commit: String,
    /// The issue the agent is asked to resolve.
    #[serde(default)]
    pub problem_statement: String,
    /// Issue comments before the fix (SWE-bench's `hints_text`).
    #[serde(default)]
    pub hints_text: String,
    /// The gold patch (what the `replay` policy drives through the tools).
    #[serde(default)]
    pub patch: String,
    /// The patch that adds the tests named in `FAIL_TO_PASS`.
    #[serde(default)]
    pub test_patch: String,
    /// Tests that fail before the fix and must pass after it.
    #[serde(rename = "FAIL_TO_PASS", default)]
    pub fail_to_pass: Vec<String>,
    /// Tests that pass before the fix and must still pass after it.
    #[serde(rename = "PASS_TO_PASS", default)]
    pub pass_to_pass: Vec<String>,
    /// The repository's version label (SWE-bench).
    #[serde(default)]
    pub version: String,
    /// The commit used to build the environment (SWE-bench).
    #[serde(default)]
    pub environment_setup_commit: String,
    /// When the issue or PR was created.
    #[serde(default)]
    pub created_at: String,
    /// Container image; defaults to SWE-bench's naming.
    pub image: String,
    /// Where the repository lives in the container.
    pub workdir: String,
    /// Where the repository comes from.
    #[serde(default)]
    pub source: Source,
    /// The test command; default: pytest on exactly the listed node ids. A row may write it as
    /// a list of commands run one after another, as SWE-bench's spec tables write Java's (one
    /// `mvn test -Dtest=…` per test); the list is kept as its commands, one per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_cmd: Option<String>,
    /// A full evaluation script (SWE-bench harness style), run instead of `test_cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_script: Option<String>,
    /// The dataset family the row belongs to, which decides how it is run and graded
    /// (recognised from the row's fields, or named with `family`).
    #[serde(default)]
    pub family: Family,
    /// The log parser, by SWE-bench's name (`parse_log_pytest`, ...); default: the family's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_parser: Option<String>,
    /// SWE-bench's evaluation type; default: the family's (`pass_and_fail` for most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_type: Option<EvalType>,
    /// Resource and time limits.
    #[serde(default)]
    pub limits: Limits,
    /// Policy name (`replay`, `openai`, ...); default: the worker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Independent episodes to run (each its own record).
    #[serde(default = "one")]
    pub rollouts: u32,
    /// Higher runs first; FIFO within a priority.
    #[serde(default)]
    pub priority: i32,
    /// Descriptive labels, used for filtering.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Affinity: a worker must carry every one of these labels.
    #[serde(default)]
    pub worker_selector: BTreeMap<String, String>,
    /// Whether the sandbox may reach the network.
    #[serde(default)]
    pub allow_network: bool,
    /// The synthesis job, for `kind = synth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synth: Option<SynthSpec>,
    /// A Harbor task's own settings (family `harbor`; `dataset::harbor::task_row` makes the row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harbor: Option<dataset::harbor::HarborSpec>,
    /// Fields of the source row agentmill does not interpret, kept verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

fn one() -> u32 {
    1
}

/// SWE-bench's image name for an instance: `swebench/sweb.eval.x86_64.<id>:latest`, with `__`
/// written as `_1776_` and everything lower-cased.
pub fn default_image(instance_id: &str) -> String {
    dataset::swebench_image("swebench", instance_id)
}

/// One thing wrong with one field of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field at fault, as written in the row.
    pub field: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl FieldError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self { field: field.to_string(), reason: reason.into() }
    }
}

/// A refused row of a batch or file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task row {row}{}: {field}: {reason}", task_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default())]
pub struct RowError {
    /// 1-based row number (the line number in a JSONL file).
    pub row: usize,
    /// The row's id, when it had a readable one.
    pub task_id: Option<String>,
    /// The field at fault.
    pub field: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl Task {
    /// Parses one JSON row. Every problem in the row is reported, not only the first.
    pub fn from_json_row(row: &str) -> Result<Task, Vec<FieldError>> {
        let value: Value = serde_json::from_str(row).map_err(|e| {
            vec![FieldError::new("(row)", format!("is not valid JSON ({e}); each line must be one JSON object"))]
        })?;
        match value {
            Value::Object(map) => Task::from_json_object(map),
            other => Err(vec![FieldError::new(
                "(row)",
                format!("is a JSON {}, not an object; each line must be one JSON object", json_type(&other)),
            )]),
        }
    }

    /// Parses one row already read as a JSON object.
    pub fn from_json_object(mut map: Map<String, Value>) -> Result<Task, Vec<FieldError>> {
        let mut r = RowReader { map: &mut map, errors: Vec::new() };

        let instance_id = r.string("instance_id").unwrap_or_default();
        if instance_id.is_empty() {
            if !r.has_error("instance_id") {
                r.err("instance_id", "is missing; every task needs a unique id (SWE-bench's instance_id)");
            }
        } else if instance_id.len() > MAX_TASK_ID_LEN {
            r.err("instance_id", format!("is {} bytes long; at most {MAX_TASK_ID_LEN} are allowed", instance_id.len()));
        } else if instance_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.err("instance_id", "contains whitespace or control characters; use letters, digits and ._-/:@+");
        }

        let kind = match r.string("kind").as_deref() {
            None | Some("") | Some("episode") | Some("env") => TaskKind::Episode,
            Some("synth") | Some("ctx") => TaskKind::Synth,
            Some(other) => {
                r.err("kind", format!("unknown kind {other:?}; use \"episode\" or \"synth\""));
                TaskKind::Episode
            }
        };

        let repo = r.string("repo").unwrap_or_default();
        let base_commit = r.string("base_commit").unwrap_or_default();
        let problem_statement = r.string("problem_statement").unwrap_or_default();
        let hints_text = r.string("hints_text").unwrap_or_default();
        let version = r.scalar_string("version").unwrap_or_default();

        // The family: named, or recognised from the row's own fields (read before they are taken).
        let family = match r.string("family") {
            Some(name) if !name.is_empty() => Family::parse(&name).unwrap_or_else(|| {
                let names: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
                r.err("family", format!("unknown family {name:?}; use one of {}", names.join(", ")));
                Family::Agentmill
            }),
            _ if kind == TaskKind::Synth => Family::Agentmill,
            _ => dataset::detect(r.map, &repo, &version),
        };
        let lists_required = kind == TaskKind::Episode && family.requires_test_lists();
        let mut patch = r.string("patch").unwrap_or_default();
        let test_patch = r.string("test_patch").unwrap_or_default();
        let fail_to_pass = r.test_list("FAIL_TO_PASS", kind == TaskKind::Episode && !matches!(family, Family::R2eGym | Family::Harbor | Family::OpenSwe), family);
        let pass_to_pass = r.test_list("PASS_TO_PASS", lists_required, family);
        let environment_setup_commit = r.string("environment_setup_commit").unwrap_or_default();
        let created_at = r.scalar_string("created_at").unwrap_or_default();
        let log_parser = r.string("log_parser").filter(|s| !s.is_empty());
        let eval_type = match r.string("eval_type").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match EvalType::parse(&s) {
                Some(t) => Some(t),
                None => {
                    r.err("eval_type", format!("{s:?} is not an evaluation type; use \"pass_and_fail\" or \"fail_only\""));
                    None
                }
            },
        };
        if family == Family::SweSmith && kind == TaskKind::Episode {
            // SWE-smith's `patch` introduces the bug; the fix is its reverse. The bug is kept as
            // `bug_patch`, whose presence also says `patch` has been turned round already.
            if !r.map.contains_key("bug_patch") && !patch.is_empty() {
                r.map.insert("bug_patch".into(), Value::String(patch.clone()));
                patch = dataset::patch::reverse_patch(&patch);
            }
        }

        // The image: agentmill's field, then the datasets' own names, then the family's naming.
        let explicit_image = r.string("image");
        let image_name = r.string("image_name");
        let docker_image = r.string("docker_image");
        let has_image_name = [&explicit_image, &image_name, &docker_image].into_iter().any(|s| s.as_deref().is_some_and(|s| !s.is_empty()));
        let image = [explicit_image, image_name, docker_image]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| dataset::default_image(family, &instance_id, &repo));

        let workdir = r.string("workdir").filter(|w| !w.is_empty()).unwrap_or_else(|| dataset::default_workdir(family, &repo));
        if !workdir.starts_with('/') {
            r.err("workdir", format!("{workdir:?} is not an absolute path; write it as /path/in/the/container"));
        }

        let source = r.source();
        let test_cmd = r.commands("test_cmd").filter(|s| !s.is_empty());
        let eval_script = r.string("eval_script").filter(|s| !s.is_empty());
        if kind == TaskKind::Episode {
            // A test_cmd already refused is not reported missing as well.
            let has_test_cmd = test_cmd.is_some() || r.has_error("test_cmd");
            family_requirements(&mut r, family, &repo, &version, eval_script.is_some(), has_test_cmd, log_parser.is_some(), eval_type.is_some(), &test_patch);
            if family == Family::OpenSwe && !has_image_name && ["Dockerfile", "dockerfile"].iter().all(|k| r.map.get(*k).is_none_or(|v| v.as_str().is_none_or(str::is_empty))) {
                r.err("Dockerfile", "is missing, and so is image_name; an OpenSWE row carries the Dockerfile its image is built from (or names a built image)");
            }
        }
        let limits = r.limits();
        let policy = r.policy();
        let rollouts = match r.take("rollouts") {
            None | Some(Value::Null) => 1,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_ROLLOUTS as u64).contains(&n) => n as u32,
                _ => {
                    r.err("rollouts", format!("{v} is not a whole number from 1 to {MAX_ROLLOUTS}"));
                    1
                }
            },
        };
        let priority = match r.take("priority") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(n) => n,
                None => {
                    r.err("priority", format!("{v} is not a 32-bit whole number"));
                    0
                }
            },
        };
        let labels = r.label_map("labels");
        let worker_selector = r.label_map("worker_selector");
        let allow_network = match r.take("allow_network") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(v) => {
                r.err("allow_network", format!("{v} is not true or false"));
                false
            }
        };
        let synth = match r.take("synth") {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<SynthSpec>(v) {
                Ok(s) => Some(s),
                Err(e) => {
                    r.err("synth", format!("{e}; expected {{\"type\": \"git\", \"repo_path\": ...}} or {{\"type\": \"rows\", \"path\": ...}}"));
                    None
                }
            },
        };
        let harbor = match r.take("harbor") {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<dataset::harbor::HarborSpec>(v) {
                Ok(h) => Some(h),
                Err(e) => {
                    r.err("harbor", format!("{e}; a Harbor task's row is made from its directory (agentmill submit --harbor DIR)"));
                    None
                }
            },
        };
        if family == Family::Harbor && kind == TaskKind::Episode && harbor.is_none() && !r.has_error("harbor") {
            r.err("harbor", "is missing; a Harbor task's row is made from its directory (agentmill submit --harbor DIR)");
        }
        if let Some(h) = &harbor {
            if family != Family::Harbor {
                r.err("harbor", format!("belongs to Harbor tasks, not to a {family} row; drop it or the family field"));
            }
            if h.docker_image.is_none() && h.dockerfile.is_none() {
                r.err("harbor", "names neither docker_image nor dockerfile; a Harbor task needs [environment].docker_image or environment/Dockerfile");
            }
            if h.min_reward.is_empty() || h.min_reward.values().any(|v| !v.is_finite()) {
                r.err("harbor.min_reward", "must name at least one reward and a finite least value for each (default {\"reward\": 1.0})");
            }
        }
        if kind == TaskKind::Synth && synth.is_none() && !r.has_error("synth") {
            r.err("synth", "is missing; a synth task names its input ({\"type\": \"git\", ...} or {\"type\": \"rows\", ...})");
        }

        let RowReader { map, errors } = r;
        if !errors.is_empty() {
            return Err(errors);
        }
        let extra = std::mem::take(map).into_iter().collect();
        Ok(Task {
            instance_id,
            kind,
            repo,
            base_commit,
            problem_statement,
            hints_text,
            patch,
            test_patch,
            fail_to_pass,
            pass_to_pass,
            version,
            environment_setup_commit,
            created_at,
            image,
            workdir,
            source,
            test_cmd,
            eval_script,
            family,
            log_parser,
            eval_type,
            limits,
            policy,
            rollouts,
            priority,
            labels,
            worker_selector,
            allow_network,
            synth,
            harbor,
            extra,
        })
    }

    /// Every content reference the task names (`content:<sha256>`): its archive, its synthesis
    /// job's rows, issues or repository bundle — with the field that names it.
    pub fn content_refs(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        if let Source::Archive { path, .. } = &self.source
            && let Some(h) = content_ref(path)
        {
            out.push(("archive", h));
        }
        match &self.synth {
            Some(SynthSpec::Rows { path, .. }) => out.extend(content_ref(path).map(|h| ("synth.path", h))),
            Some(SynthSpec::Git { repo_path, issues_path, .. }) => {
                out.extend(content_ref(repo_path).map(|h| ("synth.repo_path", h)));
                out.extend(content_ref(issues_path).map(|h| ("synth.issues_path", h)));
            }
            None => {}
        }
        if let Some(h) = self.harbor.as_ref().and_then(|h| h.content.as_deref()).and_then(content_ref) {
            out.push(("harbor.content", h));
        }
        out
    }

    /// Every host path the task names (an archive, a synthesis input, a local git URL): what a
    /// worker opens only under the roots its configuration allows.
    pub fn host_paths(&self) -> Vec<(&'static str, &str)> {
        let host = |s: &str| !s.is_empty() && content_ref(s).is_none() && !s.contains("://") || s.starts_with("file://");
        let mut out = Vec::new();
        match &self.source {
            Source::Archive { path, .. } if host(path) => out.push(("archive", path.as_str())),
            Source::Git { url } if url.starts_with('/') || url.starts_with("file://") => out.push(("git_url", url.as_str())),
            _ => {}
        }
        match &self.synth {
            Some(SynthSpec::Rows { path, .. }) if host(path) => out.push(("synth.path", path.as_str())),
            Some(SynthSpec::Git { repo_path, issues_path, .. }) => {
                if host(repo_path) {
                    out.push(("synth.repo_path", repo_path.as_str()));
                }
                if host(issues_path) {
                    out.push(("synth.issues_path", issues_path.as_str()));
                }
            }
            _ => {}
        }
        if let Some(c) = self.harbor.as_ref().and_then(|h| h.content.as_deref())
            && host(c)
        {
            out.push(("harbor.content", c));
        }
        out
    }

    /// Makes a relative archive path absolute against `base_dir` (the folder of the task file).
    pub fn resolve_paths(&mut self, base_dir: &Path) {
        if let Source::Archive { path, .. } = &mut self.source {
            let stripped = path.strip_prefix("file://").unwrap_or(path);
            if !Path::new(stripped).is_absolute() {
                *path = base_dir.join(stripped).to_string_lossy().into_owned();
            }
        }
    }

    /// Every test the grader runs: FAIL_TO_PASS then PASS_TO_PASS.
    pub fn all_tests(&self) -> impl Iterator<Item = &str> {
        self.fail_to_pass.iter().chain(self.pass_to_pass.iter()).map(String::as_str)
    }
}

/// Parses a JSONL stream. Blank lines are skipped; line numbers count from 1.
/// Returns the good tasks and one error per problem; a bad row never hides a good one.
pub fn parse_jsonl<R: BufRead>(reader: R) -> (Vec<Task>, Vec<RowError>) {
    let mut tasks = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let row = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                errors.push(RowError { row, task_id: None, field: "(row)".into(), reason: format!("could not be read: {e}") });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match Task::from_json_row(&line) {
            Ok(t) => tasks.push(t),
            Err(field_errors) => {
                let task_id = peek_id(&line);
                errors.extend(field_errors.into_iter().map(|e| RowError {
                    row,
                    task_id: task_id.clone(),
                    field: e.field,
                    reason: e.reason,
                }));
            }
        }
    }
    (tasks, errors)
}

/// Parses a JSONL file and resolves relative archive paths against its folder.
pub fn read_jsonl_file(path: &Path) -> std::io::Result<(Vec<Task>, Vec<RowError>)> {
    let file = std::fs::File::open(path)?;
    let (mut tasks, errors) = parse_jsonl(std::io::BufReader::new(file));
    let base = path.parent().unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    for t in &mut tasks {
        t.resolve_paths(&base);
    }
    Ok((tasks, errors))
}

fn peek_id(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    v.get("instance_id")?.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses sizes like `2g`, `512m`, `1.5GiB`, `1048576` into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// What a family's harness needs of a row beyond the test lists; each miss names the field.
#[allow(clippy::too_many_arguments)]
fn family_requirements(r: &mut RowReader<'_>, family: Family, repo: &str, version: &str, has_script: bool, has_test_cmd: bool, has_parser: bool, has_eval_type: bool, test_patch: &str) {
    let field_missing = |r: &RowReader<'_>, k: &str| r.map.get(k).is_none_or(Value::is_null);
    match family {
        Family::Swebench5 => {
            if !has_eval_type {
                r.err("eval_type", "is missing; SWE-bench 5.x rows carry it (\"pass_and_fail\" or \"fail_only\")");
            }
            if !has_script {
                r.err("eval_script", "is missing; SWE-bench 5.x rows carry the script that runs their tests");
            }
            if !has_parser {
                r.err("log_parser", "is missing; SWE-bench 5.x rows name their parser (e.g. \"parse_log_pytest\")");
            }
        }
        Family::Swebench if !has_script && !dataset::specs::swebench().specs.contains_key(repo) => {
            // A repository SWE-bench's table does not know carries its own spec (agentmill's
            // multilingual tasks): the test command, the parser, the language.
            let fix = "a SWE-bench row whose repo is not in SWE-bench's spec table carries its own test_cmd, log_parser and language (or an eval_script)";
            if !has_test_cmd {
                r.err("test_cmd", format!("is missing; {fix}"));
            }
            if !has_parser {
                r.err("log_parser", format!("is missing; {fix}"));
            }
            match r.map.get("language") {
                Some(Value::String(l)) if dataset::language_ext(l).is_some() => {}
                Some(Value::String(l)) => r.err("language", format!("{l:?} is not a language SWE-bench's harness knows; use one of {}", dataset::LANGUAGES.join(", "))),
                _ => r.err("language", format!("is missing; {fix}")),
            }
            if test_patch.is_empty() {
                r.err("test_patch", format!("is missing; {family} rows carry the patch that adds their tests"));
            }
        }
        Family::Swebench | Family::SweGym if !has_script => {
            let tables = if family == Family::Swebench { dataset::specs::swebench() } else { dataset::specs::swe_gym() };
            let key = if family == Family::SweGym { repo.to_ascii_lowercase() } else { repo.to_string() };
            if tables.spec(&key, version).is_none() {
                let known = tables.versions(&key);
                r.err("version", format!("{version:?} is not a version of {repo} in {}'s spec table (known: {}); fix the version or give the row an eval_script", tables.generated_from, known.join(", ")));
            }
            if test_patch.is_empty() {
                r.err("test_patch", format!("is missing; {family} rows carry the patch that adds their tests"));
            }
        }
        Family::OpenSwe if !has_script => {
            r.err("eval_script", "is missing; OpenSWE rows carry the script that applies their test patch, runs the tests and prints OPENSWE_EXIT_CODE=<rc>");
        }
        Family::SweRebench if field_missing(r, "install_config") => r.err("install_config", "is missing"),
        Family::SweRebenchV2 if field_missing(r, "install_config") => r.err("install_config", "is missing; SWE-rebench V2 rows carry test_cmd and log_parser there"),
        Family::R2eGym => match r.map.get("expected_output_json") {
            Some(Value::String(s)) if serde_json::from_str::<Map<String, Value>>(s).is_ok() => {}
            Some(Value::Object(_)) => {}
            _ => r.err("expected_output_json", "is not a JSON object of test → status (R2E-Gym's reward compares the run's statuses with it)"),
        },
        _ => {}
    }
}

/// Takes fields out of a row one by one, collecting errors; what is left is `extra`.
struct RowReader<'a> {
    map: &'a mut Map<String, Value>,
    errors: Vec<FieldError>,
}

impl RowReader<'_> {
    fn err(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// A string field; null or missing is `None`.
    fn string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => {
                self.err(key, format!("is a JSON {}, expected a string", json_type(&other)));
                None
            }
        }
    }

    /// A command, or a list of one-line commands kept one per line (run one after another).
    fn commands(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Array(items) => {
                let mut lines = Vec::with_capacity(items.len());
                for item in &items {
                    let reason = match item {
                        Value::String(line) if !line.trim().is_empty() && !line.contains('\n') => {
                            lines.push(line.as_str());
                            continue;
                        }
                        Value::String(line) => format!("holds {}, expected one-line commands", preview(line)),
                        other => format!("holds a JSON {}, expected a list of commands (strings)", json_type(other)),
                    };
                    self.err(key, reason);
                    return None;
                }
                Some(lines.join("\n"))
            }
            other => {
                self.err(key, format!("is a JSON {}, expected a command or a list of commands", json_type(&other)));
                None
            }
        }
    }

    /// A string field that datasets sometimes write as a number (`version: 3.0`).
    fn scalar_string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.err(key, format!("is a JSON {}, expected a string", json_type(&other)));
                None
            }
        }
    }

    /// A list of test ids: a JSON array of strings, or a string holding one (SWE-bench's form).
    fn test_list(&mut self, key: &str, required: bool, family: Family) -> Vec<String> {
        let value = match self.take(key) {
            None | Some(Value::Null) => {
                if required && key == "PASS_TO_PASS" {
                    self.err(key, format!("is missing; {family} rows list the tests that must keep passing (write [] when there are none)"));
                } else if required {
                    self.err(key, "is missing; list the tests that must go from failing to passing, e.g. [\"tests/test_x.py::test_y\"]");
                }
                return Vec::new();
            }
            Some(v) => v,
        };
        let array = match value {
            Value::Array(a) => a,
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Array(a)) => a,
                _ => {
                    self.err(key, format!("is not a JSON list of test names: {}; write an array such as [\"tests/test_x.py::test_y\"] (or that array JSON-encoded as a string)", preview(&s)));
                    return Vec::new();
                }
            },
            other => {
                self.err(key, format!("is a JSON {}, not a list of test names; write an array such as [\"tests/test_x.py::test_y\"]", json_type(&other)));
                return Vec::new();
            }
        };
        let mut tests = Vec::with_capacity(array.len());
        for (i, item) in array.into_iter().enumerate() {
            match item {
                Value::String(s) if !s.trim().is_empty() => tests.push(s),
                other => {
                    self.err(key, format!("item {i} is {}, not a test name", preview(&other.to_string())));
                    return Vec::new();
                }
            }
        }
        if tests.is_empty() && required && key == "FAIL_TO_PASS" {
            self.err(key, "is empty; an episode needs at least one test that must go from failing to passing");
        }
        tests
    }

    fn source(&mut self) -> Source {
        let archive = self.string("archive");
        let archive_sha = self.string("archive_sha256");
        let git_url = self.string("git_url");
        let raw = self.take("source");
        match raw {
            None | Some(Value::Null) => {
                // No `source`: an `archive` or `git_url` field alone says which.
                if let Some(path) = archive {
                    Source::Archive { path, sha256: archive_sha }
                } else if let Some(url) = git_url {
                    Source::Git { url }
                } else {
                    Source::Image
                }
            }
            Some(Value::String(kind)) => match kind.as_str() {
                "image" => Source::Image,
                "archive" => match archive {
                    Some(path) if !path.is_empty() => Source::Archive { path, sha256: archive_sha },
                    _ => {
                        self.err("archive", "is missing; source \"archive\" needs \"archive\": \"path/to/repo.tar.gz\"");
                        Source::Image
                    }
                },
                "git" => match git_url {
                    Some(url) if !url.is_empty() => Source::Git { url },
                    _ => {
                        self.err("git_url", "is missing; source \"git\" needs \"git_url\": \"https://host/owner/repo.git\"");
                        Source::Image
                    }
                },
                other => {
                    self.err("source", format!("unknown source {other:?}; use one of \"image\", \"archive\", \"git\""));
                    Source::Image
                }
            },
            Some(obj @ Value::Object(_)) => match serde_json::from_value::<Source>(obj) {
                Ok(s) => s,
                Err(e) => {
                    self.err("source", format!("{e}; use \"image\", {{\"type\": \"archive\", \"path\": ...}} or {{\"type\": \"git\", \"url\": ...}}"));
                    Source::Image
                }
            },
            Some(other) => {
                self.err("source", format!("is a JSON {}; use one of \"image\", \"archive\", \"git\"", json_type(&other)));
                Source::Image
            }
        }
    }

    fn limits(&mut self) -> Limits {
        let mut limits = Limits::default();
        let obj = match self.take("limits") {
            None | Some(Value::Null) => return limits,
            Some(Value::Object(o)) => o,
            Some(other) => {
                self.err("limits", format!("is a JSON {}, expected an object such as {{\"max_steps\": 50}}", json_type(&other)));
                return limits;
            }
        };
        for (key, value) in obj {
            let field = format!("limits.{key}");
            let as_u32 = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
            let as_size = |v: &Value| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => parse_size(s),
                _ => None,
            };
            let ok = match key.as_str() {
                "max_steps" => as_u32(&value).map(|n| limits.max_steps = Some(n)),
                "step_timeout_s" => as_u32(&value).map(|n| limits.step_timeout_s = Some(n)),
                "episode_timeout_s" => as_u32(&value).map(|n| limits.episode_timeout_s = Some(n)),
                "test_timeout_s" => as_u32(&value).map(|n| limits.test_timeout_s = Some(n)),
                "pids" => as_u32(&value).map(|n| limits.pids = Some(n)),
                "cpus" => value.as_f64().filter(|c| *c > 0.0).map(|c| limits.cpus = Some(c)),
                "memory" => as_size(&value).map(|n| limits.memory = Some(n)),
                "disk" => as_size(&value).map(|n| limits.disk = Some(n)),
                "context_tokens" => value.as_u64().map(|n| limits.context_tokens = Some(n)),
                _ => {
                    self.err(&field, "is not a known limit; use max_steps, step_timeout_s, episode_timeout_s, test_timeout_s, cpus, memory, pids, disk, context_tokens");
                    continue;
                }
            };
            if ok.is_none() {
                let expected = match key.as_str() {
                    "cpus" => "a positive number",
                    "memory" | "disk" => "bytes, or a size such as \"2g\" or \"512m\"",
                    _ => "a whole number",
                };
                self.err(&field, format!("{value} is not {expected}"));
            }
        }
        limits
    }

    fn policy(&mut self) -> Option<String> {
        match self.take("policy")? {
            Value::Null => None,
            Value::String(s) if !s.is_empty() => Some(s),
            Value::Object(o) => match o.get("name").and_then(Value::as_str) {
                Some(name) => Some(name.to_string()),
                None => {
                    self.err("policy", "an object policy needs a \"name\" (e.g. \"replay\" or \"openai\")");
                    None
                }
            },
            other => {
                self.err("policy", format!("{} is not a policy name; use e.g. \"replay\" or \"openai\"", preview(&other.to_string())));
                None
            }
        }
    }

    /// A label map: an object of scalars, or a list of `key=value` (or bare `key`) strings.
    fn label_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match self.take(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                for (k, v) in o {
                    match v {
                        Value::String(s) => {
                            out.insert(k, s);
                        }
                        Value::Number(_) | Value::Bool(_) => {
                            out.insert(k, v.to_string());
                        }
                        other => self.err(&format!("{key}.{k}"), format!("is a JSON {}; label values are strings", json_type(&other))),
                    }
                }
            }
            Some(Value::Array(a)) => {
                for item in a {
                    match item {
                        Value::String(s) => {
                            let (k, v) = s.split_once('=').unwrap_or((s.as_str(), "true"));
                            out.insert(k.to_string(), v.to_string());
                        }
                        other => self.err(key, format!("item {} is not a \"key=value\" string", preview(&other.to_string()))),
                    }
                }
            }
            Some(other) => self.err(key, format!("is a JSON {}; write an object such as {{\"team\": \"infra\"}}", json_type(&other))),
        }
        out
    }
}

fn preview(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}
