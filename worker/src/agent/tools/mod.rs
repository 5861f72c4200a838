//! The agent's tools: SWE-agent's function-calling set.
//!
//! - [`bash::BashTool`] — `bash(command)`: one command in the sandbox, with the step timeout (the
//!   whole process group is killed), capped output and the real exit code;
//! - [`editor::EditorTool`] — `str_replace_editor(command, path, ...)`: view / create /
//!   str_replace / insert / undo_edit, done byte-exact on the host through [`Sandbox`];
//! - [`submit::SubmitTool`] — `submit()`: the patch is `git diff` of the workdir against the base
//!   commit, binary-safe.
//!
//! A [`Toolset`] offers the tools' JSON schemas to the policy (they go into the record's `tools`)
//! and dispatches the policy's [`ToolCall`]s. A malformed call — an unknown tool, arguments that
//! are not a JSON object, a missing or invalid parameter — becomes an [`Observation`] that tells
//! the model what was wrong (exit code [`EXIT_USAGE`]); it never panics and never ends the
//! episode. Only a failing sandbox is an `Err`.

pub mod bash;
pub mod editor;
pub mod submit;

use std::time::{Duration, Instant};

use agentmill_proto::ToolCall;
use serde_json::{Map, Value};

use crate::sandbox::{Sandbox, SandboxError, truncate_output};

/// Exit code of a tool call that did what was asked.
pub const EXIT_OK: i64 = 0;
/// Exit code of a well-formed call the tool refused (no match for `old_str`, a missing file, ...).
pub const EXIT_TOOL_ERROR: i64 = 1;
/// Exit code of a malformed call: unknown tool, arguments not JSON, a missing or invalid parameter.
pub const EXIT_USAGE: i64 = 2;

/// What a tool call returned to the model, with the metadata the record keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The text the model sees (real output, cut at the cap with a marker).
    pub content: String,
    /// The command's exit code; for the editor and malformed calls see [`EXIT_OK`],
    /// [`EXIT_TOOL_ERROR`], [`EXIT_USAGE`].
    pub exit_code: i64,
    /// Wall time of the call.
    pub duration: Duration,
    /// Whether the output was cut.
    pub truncated: bool,
    /// Whether the call ran into the step timeout and was killed.
    pub timed_out: bool,
    /// Set by `submit`: the patch the episode ends with.
    pub submission: Option<String>,
}

impl Observation {
    /// A successful observation.
    pub fn ok(content: impl Into<String>) -> Observation {
        Observation::with_code(content, EXIT_OK)
    }

    /// A refused call: the tool ran and explains what was wrong.
    pub fn tool_error(content: impl Into<String>) -> Observation {
        Observation::with_code(content, EXIT_TOOL_ERROR)
    }

    /// A malformed call.
    pub fn usage(content: impl Into<String>) -> Observation {
        Observation::with_code(content, EXIT_USAGE)
    }

    fn with_code(content: impl Into<String>, exit_code: i64) -> Observation {
        Observation {
            content: content.into(),
            exit_code,
            duration: Duration::ZERO,
            truncated: false,
            timed_out: false,
            submission: None,
        }
    }

    /// Cuts the content to `max` bytes with the truncation marker.
    pub fn capped(mut self, max: usize) -> Observation {
        let (content, cut) = truncate_output(&self.content, max);
        self.content = content;
        self.truncated |= cut;
        self
    }
}

/// What a tool call may use.
#[derive(Debug, Clone, Copy)]
pub struct ToolContext<'a> {
    /// Where the call runs.
    pub sandbox: &'a dyn Sandbox,
    /// The commit the model's patch is taken against.
    pub base_commit: &'a str,
    /// Timeout of one call.
    pub step_timeout: Duration,
    /// Output kept from one call, bytes.
    pub max_output: usize,
}

/// One tool the policy can call.
#[async_trait::async_trait]
pub trait Tool: Send + Sync + std::fmt::Debug {
    /// The function name the policy calls.
    fn name(&self) -> &'static str;

    /// The OpenAI tool schema: `{"type": "function", "function": {name, description, parameters}}`.
    fn schema(&self) -> Value;

    /// Runs one call. Argument problems come back as an [`Observation`] with [`EXIT_USAGE`];
    /// `Err` is reserved for a sandbox that failed.
    async fn call(&mut self, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError>;
}

/// The arguments of one call: a JSON object, read leniently where the meaning is unambiguous
/// (`"3"` for `3`, `"[1, 5]"` for `[1, 5]`), since models write both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args(Map<String, Value>);

/// A parameter that is missing or has the wrong type; the message is for the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgError(pub String);

impl Args {
    /// Wraps a JSON object.
    pub fn new(map: Map<String, Value>) -> Args {
        Args(map)
    }

    /// Parses the arguments string of a tool call. An empty string is `{}` (models send it for
    /// calls without parameters).
    pub fn parse(arguments: &str) -> Result<Args, ArgError> {
        if arguments.trim().is_empty() {
            return Ok(Args::default());
        }
        match serde_json::from_str::<Value>(arguments) {
            Ok(Value::Object(map)) => Ok(Args(map)),
            Ok(Value::Null) => Ok(Args::default()),
            Ok(other) => Err(ArgError(format!(
                "the arguments must be a JSON object such as {{\"command\": \"ls\"}}, not a JSON {}",
                json_type(&other)
            ))),
            Err(e) => Err(ArgError(format!("the arguments are not valid JSON ({e}): {}", preview(arguments, 200)))),
        }
    }

    /// A string parameter that must be present.
    pub fn required_str(&self, key: &str) -> Result<&str, ArgError> {
        self.optional_str(key)?.ok_or_else(|| ArgError(format!("the parameter `{key}` is required")))
    }

    /// A string parameter that may be absent (or null).
    pub fn optional_str(&self, key: &str) -> Result<Option<&str>, ArgError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ArgError(format!("the parameter `{key}` must be a string, not a JSON {}", json_type(other)))),
        }
    }

    /// An integer parameter that may be absent; a string holding an integer is accepted.
    pub fn optional_int(&self, key: &str) -> Result<Option<i64>, ArgError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => as_int(v).map(Some).ok_or_else(|| ArgError(format!("the parameter `{key}` must be an integer, not {}", preview(&v.to_string(), 60)))),
        }
    }

    /// A list of integers that may be absent; a string holding a JSON list is accepted.
    pub fn optional_int_list(&self, key: &str) -> Result<Option<Vec<i64>>, ArgError> {
        let bad = |v: &Value| ArgError(format!("the parameter `{key}` must be a list of integers such as [1, 20], not {}", preview(&v.to_string(), 60)));
        let value = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|_| bad(&Value::String(s.clone())))?,
            Some(v) => v.clone(),
        };
        let Value::Array(items) = &value else { return Err(bad(&value)) };
        items.iter().map(|v| as_int(v).ok_or_else(|| bad(&value))).collect::<Result<Vec<_>, _>>().map(Some)
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The first `max` chars of `s`, quoted, with an ellipsis when cut.
pub(crate) fn preview(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut:?}…")
    }
}

/// The tools offered in an episode.
#[derive(Debug)]
pub struct Toolset {
    tools: Vec<Box<dyn Tool>>,
}

impl Toolset {
    /// SWE-agent's function-calling set: `bash`, `str_replace_editor`, `submit`.
    pub fn swe_agent() -> Toolset {
        Toolset::new(vec![Box::new(bash::BashTool), Box::new(editor::EditorTool::default()), Box::new(submit::SubmitTool)])
    }

    /// A set of the given tools.
    pub fn new(tools: Vec<Box<dyn Tool>>) -> Toolset {
        Toolset { tools }
    }

    /// The tools' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// The schemas offered to the policy (and recorded in the trajectory's `tools`).
    pub fn schemas(&self) -> Vec<Value> {
        self.tools.iter().map(|t| t.schema()).collect()
    }

    /// Runs one tool call. Malformed calls become observations with [`EXIT_USAGE`]; the
    /// observation's `duration` is the call's wall time and its content is capped at
    /// `ctx.max_output`.
    pub async fn dispatch(&mut self, call: &ToolCall, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let started = Instant::now();
        let name = call.function.name.as_str();
        let names = self.names().join(", ");
        let observation = match self.tools.iter_mut().find(|t| t.name() == name) {
            None => Observation::usage(format!(
                "Unknown tool {}. The available tools are: {names}. Call one of them by its exact name.",
                preview(name, 80)
            )),
            Some(tool) => match Args::parse(&call.function.arguments) {
                Err(e) => Observation::usage(format!(
                    "Your call to `{name}` could not be run: {e}. Send the arguments as one JSON object that matches the tool's parameters."
                )),
                Ok(args) => tool.call(&args, ctx).await?,
            },
        };
        // Output cut by the sandbox already carries its marker (and the cut is counted there).
        let mut observation = if observation.truncated { observation } else { observation.capped(ctx.max_output) };
        observation.duration = started.elapsed();
        Ok(observation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse_reports_bad_json_and_non_objects() {
        assert_eq!(Args::parse("").map(|a| a.0.len()), Ok(0));
        let err = Args::parse("{\"command\": \"ls\"").expect_err("truncated JSON");
        assert!(err.0.contains("not valid JSON"), "{err}");
        let err = Args::parse("[1]").expect_err("an array");
        assert!(err.0.contains("not a JSON array"), "{err}");
    }

    #[test]
    fn args_read_leniently_where_unambiguous() {
        let args = Args::parse(r#"{"insert_line": "3", "view_range": "[1, -1]", "n": 2.0}"#).expect("valid");
        assert_eq!(args.optional_int("insert_line"), Ok(Some(3)));
        assert_eq!(args.optional_int("n"), Ok(Some(2)));
        assert_eq!(args.optional_int_list("view_range"), Ok(Some(vec![1, -1])));
        assert!(args.required_str("path").expect_err("missing").0.contains("`path` is required"));
        let args = Args::parse(r#"{"path": 3}"#).expect("valid");
        assert!(args.optional_str("path").expect_err("a number").0.contains("must be a string"));
    }
}
