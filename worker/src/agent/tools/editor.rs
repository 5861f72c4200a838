//! `str_replace_editor`: SWE-agent's file editor, done on the host, byte-exact.
//!
//! Files are read and written through [`Sandbox::read_file`](crate::sandbox::Sandbox::read_file)
//! and [`Sandbox::write_file`](crate::sandbox::Sandbox::write_file); every edit works on the
//! file's bytes, and lines are split on `\n` only, so `\r\n`, `\u{2028}`, form feeds and bytes
//! that are not UTF-8 survive an edit elsewhere in the file unchanged.
//!
//! Commands (SWE-agent's semantics):
//! - `view`: a file as `cat -n` prints it (`view_range` `[start, end]`, `end = -1` to the end), or a
//!   folder's non-hidden entries two levels deep;
//! - `create`: a new file (an existing path is refused);
//! - `str_replace`: `old_str` must occur exactly once; zero or several occurrences are refused
//!   with the count (and, for several, the lines where they start);
//! - `insert`: `new_str` after line `insert_line` (0 = at the top);
//! - `undo_edit`: reverts the last edit of that path (the tool keeps a per-path history; undoing
//!   a `create` removes the file).
//!
//! Paths must be absolute.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{Args, Observation, Tool, ToolContext};
use crate::sandbox::{ExecRequest, SandboxError};
use crate::shell::quote;

/// Lines of context shown around an edit.
const SNIPPET_LINES: usize = 4;

/// The commands the editor understands.
pub const COMMANDS: [&str; 5] = ["view", "create", "str_replace", "insert", "undo_edit"];

/// The `str_replace_editor` tool and its per-path undo history.
#[derive(Debug, Default)]
pub struct EditorTool {
    /// Earlier contents per path, newest last; `None` = the file did not exist.
    history: HashMap<String, Vec<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl Tool for EditorTool {
    fn name(&self) -> &'static str {
        "str_replace_editor"
    }

    fn schema(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": "str_replace_editor",
                "description": "Custom editing tool for viewing, creating and editing files.\n\
                    * State is persistent across command calls and discussions with the user.\n\
                    * If `path` is a file, `view` displays the result of applying `cat -n`. If `path` is a directory, `view` lists non-hidden files and directories up to 2 levels deep.\n\
                    * The `create` command cannot be used if the specified `path` already exists as a file.\n\
                    * If a `command` generates a long output, it will be truncated and marked.\n\
                    * The `undo_edit` command will revert the last edit made to the file at `path`.\n\n\
                    Notes for using the `str_replace` command:\n\
                    * The `old_str` parameter should match EXACTLY one or more consecutive lines from the original file. Be mindful of whitespaces!\n\
                    * If the `old_str` parameter is not unique in the file, the replacement will not be performed. Make sure to include enough context in `old_str` to make it unique.\n\
                    * The `new_str` parameter should contain the edited lines that should replace the `old_str`.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "command": {
                            "type": "string",
                            "enum": COMMANDS,
                            "description": "The command to run. Allowed options are: `view`, `create`, `str_replace`, `insert`, `undo_edit`."
                        },
                        "path": {
                            "type": "string",
                            "description": "Absolute path to file or directory, e.g. `/testbed/file.py` or `/testbed`."
                        },
                        "file_text": {
                            "type": "string",
                            "description": "Required parameter of `create` command, with the content of the file to be created."
                        },
                        "old_str": {
                            "type": "string",
                            "description": "Required parameter of `str_replace` command containing the string in `path` to replace."
                        },
                        "new_str": {
                            "type": "string",
                            "description": "Optional parameter of `str_replace` command containing the new string (if not given, no string will be added). Required parameter of `insert` command containing the string to insert."
                        },
                        "insert_line": {
                            "type": "integer",
                            "description": "Required parameter of `insert` command. The `new_str` will be inserted AFTER the line `insert_line` of `path`."
                        },
                        "view_range": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "description": "Optional parameter of `view` command when `path` points to a file. If none is given, the full file is shown. If provided, the file will be shown in the indicated line number range, e.g. [11, 12] will show lines 11 and 12. Indexing at 1 to start. Setting `[start_line, -1]` shows all lines from `start_line` to the end of the file."
                        }
                    },
                    "required": ["command", "path"]
                }
            }
        })
    }

    async fn call(&mut self, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let command = match args.required_str("command") {
            Ok(c) => c,
            Err(e) => return Ok(Observation::usage(format!("{e}; choose one of: {}.", COMMANDS.join(", ")))),
        };
        let raw_path = match args.required_str("path") {
            Ok(p) => p,
            Err(e) => return Ok(Observation::usage(format!("{e}; give the absolute path of a file or directory."))),
        };
        if !raw_path.starts_with('/') {
            let workdir = ctx.sandbox.workdir().trim_end_matches('/');
            return Ok(Observation::usage(format!(
                "The path {raw_path} is not an absolute path, it should start with `/`. Maybe you meant {workdir}/{}?",
                raw_path.trim_start_matches("./")
            )));
        }
        let path = normalize(raw_path);
        let result = match command {
            "view" => self.view(&path, args, ctx).await,
            "create" => self.create(&path, args, ctx).await,
            "str_replace" => self.str_replace(&path, args, ctx).await,
            "insert" => self.insert(&path, args, ctx).await,
            "undo_edit" => self.undo(&path, ctx).await,
            other => {
                return Ok(Observation::usage(format!(
                    "Unrecognized command {other:?}. The allowed commands for the str_replace_editor tool are: {}.",
                    COMMANDS.join(", ")
                )));
            }
        };
        match result {
            Ok(observation) => Ok(observation),
            Err(e) if e.is_path_error() => Ok(Observation::tool_error(path_message(&path, &e))),
            Err(e) => Err(e),
        }
    }
}

impl EditorTool {
    async fn view(&mut self, path: &str, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let range = match args.optional_int_list("view_range") {
            Ok(r) => r,
            Err(e) => return Ok(Observation::usage(e.to_string())),
        };
        let bytes = match ctx.sandbox.read_file(path).await {
            Ok(b) => b,
            Err(SandboxError::NotAFile(_)) => return self.view_directory(path, range.is_some(), ctx).await,
            Err(e) => return Err(e),
        };
        let lines = split_lines(&bytes);
        let n = lines.len() as i64;
        let (start, end) = match range.as_deref() {
            None => (1, n),
            Some([start, end]) => {
                let (start, end) = (*start, *end);
                if n == 0 {
                    return Ok(Observation::tool_error(format!("Invalid `view_range`: {path} is empty, there are no lines to show.")));
                }
                if start < 1 || start > n {
                    return Ok(Observation::tool_error(format!(
                        "Invalid `view_range`: [{start}, {end}]. Its first element `{start}` should be within the range of lines of the file: [1, {n}]."
                    )));
                }
                let end = if end == -1 { n } else { end };
                if end < start {
                    return Ok(Observation::tool_error(format!(
                        "Invalid `view_range`: [{start}, {end}]. Its second element `{end}` should be larger or equal than its first `{start}`."
                    )));
                }
                if end > n {
                    return Ok(Observation::tool_error(format!(
                        "Invalid `view_range`: [{start}, {end}]. Its second element `{end}` should be smaller than the number of lines in the file: `{n}` (or -1 to view to the end)."
                    )));
                }
                (start, end)
            }
            Some(other) => {
                return Ok(Observation::usage(format!(
                    "Invalid `view_range`: {other:?}. It should be a list of two integers, [start_line, end_line]."
                )));
            }
        };
        let shown = if n == 0 { &lines[..] } else { &lines[(start - 1) as usize..end as usize] };
        Ok(Observation::ok(format!("Here's the result of running `cat -n` on {path}:\n{}", numbered(shown, start as usize))))
    }

    async fn view_directory(&mut self, path: &str, has_range: bool, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        if has_range {
            return Ok(Observation::usage("The `view_range` parameter is not allowed when `path` points to a directory."));
        }
        let p = quote(path);
        let command = format!("if [ -d {p} ]; then find {p} -maxdepth 2 -not -path '*/.*' | LC_ALL=C sort; else exit 3; fi");
        let out = ctx.sandbox.exec(&ExecRequest::new(command).timeout(ctx.step_timeout).max_output(ctx.max_output)).await?;
        if out.exit_code == 3 {
            return Ok(Observation::tool_error(format!("The path {path} is neither a regular file nor a directory.")));
        }
        let mut observation =
            Observation::ok(format!("Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n{}", out.output));
        observation.truncated = out.truncated;
        Ok(observation)
    }

    async fn create(&mut self, path: &str, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let file_text = match args.required_str("file_text") {
            Ok(t) => t,
            Err(e) => return Ok(Observation::usage(format!("{e} for command: create (the content of the new file)."))),
        };
        match ctx.sandbox.read_file(path).await {
            Ok(_) | Err(SandboxError::TooLarge { .. }) => {
                return Ok(Observation::tool_error(format!(
                    "File already exists at: {path}. Cannot overwrite files using command `create`; edit it with `str_replace` or `insert`."
                )));
            }
            Err(SandboxError::NotAFile(_)) => {
                return Ok(Observation::tool_error(format!("The path {path} already exists and is a directory; `create` makes new files only.")));
            }
            Err(SandboxError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        ctx.sandbox.write_file(path, file_text.as_bytes()).await?;
        self.history.entry(path.to_string()).or_default().push(None);
        Ok(Observation::ok(format!("File created successfully at: {path}")))
    }

    async fn str_replace(&mut self, path: &str, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let (old_str, new_str) = match (args.required_str("old_str"), args.optional_str("new_str")) {
            (Ok(old), Ok(new)) => (old, new.unwrap_or("")),
            (Err(e), _) | (_, Err(e)) => return Ok(Observation::usage(format!("{e} for command: str_replace."))),
        };
        if old_str.is_empty() {
            return Ok(Observation::usage(
                "The parameter `old_str` is empty; it must be the exact text to replace. To add text, use `insert` (or `create` for a new file).",
            ));
        }
        if old_str == new_str {
            return Ok(Observation::tool_error("No replacement was performed: `old_str` and `new_str` are the same."));
        }
        let content = ctx.sandbox.read_file(path).await?;
        let starts = occurrences(&content, old_str.as_bytes());
        match starts.as_slice() {
            [] => Ok(Observation::tool_error(format!(
                "No replacement was performed: old_str did not appear verbatim in {path} (0 occurrences). \
                 Check its whitespace and indentation against the file; view the file to copy the exact text."
            ))),
            [at] => {
                let at = *at;
                let mut edited = Vec::with_capacity(content.len() + new_str.len());
                edited.extend_from_slice(&content[..at]);
                edited.extend_from_slice(new_str.as_bytes());
                edited.extend_from_slice(&content[at + old_str.len()..]);
                ctx.sandbox.write_file(path, &edited).await?;
                let line = count_newlines(&content[..at]);
                self.history.entry(path.to_string()).or_default().push(Some(content));
                let snippet = snippet(&edited, line, count_newlines(new_str.as_bytes()));
                Ok(Observation::ok(format!(
                    "The file {path} has been edited. Here's the result of running `cat -n` on a snippet of {path}:\n{snippet}\
                     Review the changes and make sure they are as expected. Edit the file again if necessary."
                )))
            }
            many => {
                let mut lines: Vec<String> = many.iter().map(|&at| (count_newlines(&content[..at]) + 1).to_string()).collect();
                lines.dedup();
                Ok(Observation::tool_error(format!(
                    "No replacement was performed: old_str occurs {} times in {path}, starting at lines {}. \
                     Include more surrounding lines in old_str so that it matches exactly once.",
                    many.len(),
                    lines.join(", ")
                )))
            }
        }
    }

    async fn insert(&mut self, path: &str, args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let (insert_line, new_str) = match (args.optional_int("insert_line"), args.required_str("new_str")) {
            (Ok(Some(line)), Ok(new)) => (line, new),
            (Ok(None), _) => return Ok(Observation::usage("The parameter `insert_line` is required for command: insert.")),
            (Err(e), _) | (_, Err(e)) => return Ok(Observation::usage(format!("{e} for command: insert."))),
        };
        let content = ctx.sandbox.read_file(path).await?;
        let n = split_lines(&content).len();
        if insert_line < 0 || insert_line as u64 > n as u64 {
            return Ok(Observation::tool_error(format!(
                "Invalid `insert_line` parameter: {insert_line}. It should be within the range of lines of the file: [0, {n}]"
            )));
        }
        let k = insert_line as usize;
        let mut edited = Vec::with_capacity(content.len() + new_str.len() + 1);
        if k == n && !content.is_empty() && !content.ends_with(b"\n") {
            // After an unterminated last line: end that line, and leave the file unterminated
            // as it was.
            edited.extend_from_slice(&content);
            edited.push(b'\n');
            edited.extend_from_slice(new_str.as_bytes());
        } else {
            let at = offset_after_line(&content, k);
            edited.extend_from_slice(&content[..at]);
            edited.extend_from_slice(new_str.as_bytes());
            edited.push(b'\n');
            edited.extend_from_slice(&content[at..]);
        }
        ctx.sandbox.write_file(path, &edited).await?;
        self.history.entry(path.to_string()).or_default().push(Some(content));
        let snippet = snippet(&edited, k, count_newlines(new_str.as_bytes()));
        Ok(Observation::ok(format!(
            "The file {path} has been edited. Here's the result of running `cat -n` on a snippet of the edited file:\n{snippet}\
             Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary."
        )))
    }

    async fn undo(&mut self, path: &str, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let Some(previous) = self.history.get_mut(path).and_then(Vec::pop) else {
            return Ok(Observation::tool_error(format!("No edit history found for {path}.")));
        };
        match previous {
            None => {
                let out = ctx.sandbox.exec(&ExecRequest::new(format!("rm -f -- {}", quote(path))).timeout(ctx.step_timeout)).await?;
                if out.exit_code != 0 {
                    return Ok(Observation::tool_error(format!("Could not remove {path}, which the undone `create` made: {}", out.output.trim())));
                }
                Ok(Observation::ok(format!("Last edit to {path} undone successfully: the file it created was removed.")))
            }
            Some(content) => {
                ctx.sandbox.write_file(path, &content).await?;
                Ok(Observation::ok(format!(
                    "Last edit to {path} undone successfully. Here's the result of running `cat -n` on {path}:\n{}",
                    numbered(&split_lines(&content), 1)
                )))
            }
        }
    }
}

/// The message for a path the sandbox could not read or write.
fn path_message(path: &str, e: &SandboxError) -> String {
    match e {
        SandboxError::NotFound(_) => format!("The path {path} does not exist. Please provide a valid path."),
        SandboxError::NotAFile(_) => format!("The path {path} is a directory (or a special file), not a file; only `view` works on directories."),
        other => other.to_string(),
    }
}

/// Collapses `.`, `..` and repeated slashes of an absolute path without touching the filesystem.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The file's lines, split on `\n` only, without their terminators; a final unterminated line
/// counts, the empty piece after a final `\n` does not.
pub fn split_lines(content: &[u8]) -> Vec<&[u8]> {
    if content.is_empty() {
        return Vec::new();
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    body.split(|&b| b == b'\n').collect()
}

/// Lines numbered as `cat -n` does (6-wide number, a tab), starting at `first`.
pub fn numbered(lines: &[&[u8]], first: usize) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(&format!("{:6}\t{}\n", first + i, String::from_utf8_lossy(line)));
    }
    out
}

/// The numbered lines around an edit that starts on 0-based line `line` and spans `extra` more.
fn snippet(content: &[u8], line: usize, extra: usize) -> String {
    let lines = split_lines(content);
    if lines.is_empty() {
        return String::new();
    }
    let start = line.saturating_sub(SNIPPET_LINES);
    let end = (line + extra + SNIPPET_LINES).min(lines.len() - 1);
    if start > end {
        return String::new();
    }
    numbered(&lines[start..=end], start + 1)
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The byte offset just after line `k` (1-based; 0 = the start of the file).
fn offset_after_line(content: &[u8], k: usize) -> usize {
    if k == 0 {
        return 0;
    }
    content.iter().enumerate().filter(|&(_, &b)| b == b'\n').nth(k - 1).map_or(content.len(), |(i, _)| i + 1)
}

/// Start offsets of every occurrence of `needle`, overlapping ones included (an `old_str` that
/// matches twice overlapping is just as ambiguous).
fn occurrences(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    if needle.is_empty() || needle.len() > haystack.len() {
        return found;
    }
    if let (Ok(h), Ok(n)) = (std::str::from_utf8(haystack), std::str::from_utf8(needle)) {
        // `str::find` is a fast substring search; step one char past each hit.
        let mut from = 0;
        while let Some(i) = h[from..].find(n) {
            let at = from + i;
            found.push(at);
            from = at + h[at..].chars().next().map_or(1, char::len_utf8);
        }
        return found;
    }
    let first = needle[0];
    for i in 0..=haystack.len() - needle.len() {
        if haystack[i] == first && &haystack[i..i + needle.len()] == needle {
            found.push(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newline_only() {
        let text = "a\r\nb\u{2028}c\n\nd".as_bytes();
        let lines = split_lines(text);
        assert_eq!(lines, vec![&b"a\r"[..], "b\u{2028}c".as_bytes(), b"", b"d"]);
        assert_eq!(split_lines(b"x\n"), vec![&b"x"[..]]);
        assert!(split_lines(b"").is_empty());
    }

    #[test]
    fn occurrences_count_overlaps_and_non_utf8() {
        assert_eq!(occurrences(b"aaa", b"aa"), vec![0, 1]);
        assert_eq!(occurrences(b"x\xffy x\xffy", b"\xffy"), vec![1, 5]);
        assert_eq!(occurrences("héhé".as_bytes(), "é".as_bytes()), vec![1, 4]);
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(normalize("/testbed/./a//b/../c.py"), "/testbed/a/c.py");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn offsets_after_lines() {
        assert_eq!(offset_after_line(b"a\nb\n", 0), 0);
        assert_eq!(offset_after_line(b"a\nb\n", 1), 2);
        assert_eq!(offset_after_line(b"a\nb\n", 2), 4);
    }
}
