//! The `replay` policy: the task's gold patch, driven through the tools as an agent would.
//!
//! For every file of the patch it searches the repository (`bash` grep / ls), views the region of
//! each hunk, and makes the change: one `str_replace` per hunk (old_str = the hunk's pre-image,
//! new_str = its post-image), `insert` for a hunk without pre-image, `create` for a new file,
//! `bash rm` / `mv` / `chmod` for deletions, renames and mode changes. When the editor answers
//! that old_str occurs several times, the policy views more of the file and widens old_str and
//! new_str with the lines around the hunk (3, 6, 12, then 20 lines each side) until it is unique
//! — reading those lines from the `view` observation, as an agent would. Then it runs the tests
//! of the FAIL_TO_PASS files that exist before the test patch, and submits.
//!
//! Deterministic: the same task gives the same calls. It validates environments (the gold patch
//! must resolve) and gives tests a real episode without a model.

use std::collections::{BTreeMap, VecDeque};

use agentmill_proto::{FunctionCall, Message, PolicyInfo, Role, Task, ToolCall};
use serde_json::{Value, json};
use tracing::debug;

use super::{Policy, PolicyError, REPLAY};
use crate::diff::{self, Change, FilePatch, Hunk, LineKind};
use crate::shell::quote;

/// Context lines added each side, in turn, while old_str is not unique.
const WIDEN_STEPS: [usize; 4] = [3, 6, 12, 20];

/// The replay policy of one episode.
#[derive(Debug, Clone)]
pub struct ReplayPolicy {
    task_id: String,
    queue: VecDeque<Action>,
    /// The last call made, to read its observation.
    awaiting: Option<Action>,
    turn: u32,
}

/// One planned tool call.
#[derive(Debug, Clone)]
enum Action {
    Bash { say: String, command: String },
    View { say: String, path: String, range: Option<(i64, i64)> },
    Create { say: String, path: String, text: String },
    Insert { say: String, path: String, line: usize, text: String },
    Replace(Replace),
    /// Views the lines around a hunk whose old_str was not unique, `context` lines each side.
    Widen { replace: Replace, context: usize },
    Submit { say: String },
}

/// A `str_replace` of one hunk, and what is needed to widen it.
#[derive(Debug, Clone)]
struct Replace {
    say: String,
    path: String,
    /// "hunk 2 of calc/parser.py", for errors.
    label: String,
    /// The 1-based line where the pre-image starts in the file as it is when the hunk applies.
    start_line: usize,
    /// Lines the pre-image spans.
    pre_lines: usize,
    /// The hunk's own pre- and post-image.
    pre: String,
    post: String,
    /// Context lines added each side so far (0 = the hunk alone).
    context: usize,
    old_str: String,
    new_str: String,
}

impl ReplayPolicy {
    /// Plans the episode from the task's gold patch. Fails when the patch is empty, unreadable,
    /// holds a change the editor cannot make (a binary file), or copies a file.
    pub fn new(task: &Task) -> Result<ReplayPolicy, PolicyError> {
        let fatal = |why: String| PolicyError::Fatal(format!("replay of task {}: {why}", task.instance_id));
        if let Some(h) = &task.harbor {
            // Harbor's oracle (OracleAgent): the script executed from the workdir, its output
            // in /logs/agent/oracle.txt, with DEBIAN_FRONTEND=noninteractive and `[solution].env`
            // (the episode uploads `solution/` to `/solution` and makes the script executable);
            // the output is shown as the call's observation.
            let Some(solve) = &h.solve_script else {
                return Err(fatal("the Harbor task has no solution/solve.sh to replay".into()));
            };
            let rel = solve.strip_prefix("solution/").unwrap_or(solve);
            let env: String = h.solution_env.iter().map(|(k, v)| format!("{k}={} ", quote(v))).collect();
            let command = format!(
                "export DEBIAN_FRONTEND=noninteractive {env}\n({}) > /logs/agent/oracle.txt 2>&1; s=$?; cat /logs/agent/oracle.txt; exit $s",
                quote(&format!("/solution/{rel}"))
            );
            let queue = VecDeque::from([
                Action::Bash { say: "Running the task's oracle solution.".into(), command },
                Action::Submit { say: "The oracle ran; submitting.".into() },
            ]);
            return Ok(ReplayPolicy { task_id: task.instance_id.clone(), queue, awaiting: None, turn: 0 });
        }
        if task.patch.trim().is_empty() {
            return Err(fatal("the task has no gold patch (`patch`) to replay".into()));
        }
        let files = diff::parse_diff(&task.patch).map_err(|e| fatal(format!("the gold patch is not a unified diff: {e}")))?;
        if let Some(copy) = files.iter().find(|f| f.change == Some(Change::Copied)) {
            return Err(fatal(format!(
                "the gold patch is not a unified diff: {}: copies are not supported; re-create the diff without --find-copies",
                copy.path()
            )));
        }
        if files.is_empty() {
            return Err(fatal("the gold patch changes no file".into()));
        }
        let workdir = task.workdir.trim_end_matches('/').to_string();
        let abs = |rel: &str| format!("{workdir}/{rel}");
        let mut queue = VecDeque::new();
        for file in &files {
            if file.binary {
                return Err(fatal(format!("the gold patch changes the binary file {}; the editor cannot replay binary changes", file.path())));
            }
            plan_file(file, &abs, &mut queue).map_err(fatal)?;
        }
        queue.push_back(test_action(task));
        queue.push_back(Action::Submit { say: "The change is in place and the tests ran; submitting the patch.".into() });
        Ok(ReplayPolicy { task_id: task.instance_id.clone(), queue, awaiting: None, turn: 0 })
    }

    /// Reads the observation of the last call and plans what it calls for.
    fn react(&mut self, messages: &[Message]) -> Result<(), PolicyError> {
        let Some(last) = self.awaiting.take() else { return Ok(()) };
        let observation = messages.iter().rev().find(|m| m.role == Role::Tool);
        let (content, exit_code) = observation.map(|m| (m.content.as_str(), m.exit_code.unwrap_or(0))).unwrap_or(("", -1));
        let fatal = |why: String| PolicyError::Fatal(format!("replay of task {}: {why}", self.task_id));
        match last {
            Action::Replace(r) if exit_code != 0 => {
                if content.contains("did not appear verbatim") {
                    return Err(fatal(format!("{} does not match the file at the base commit: {content}", r.label)));
                }
                let Some(&next) = WIDEN_STEPS.iter().find(|&&n| n > r.context) else {
                    return Err(fatal(format!("{} is not unique even with {} lines of context: {content}", r.label, r.context)));
                };
                self.queue.push_front(Action::Widen { replace: r, context: next });
            }
            Action::Widen { replace, context } => {
                let widened = widen(&replace, context, content).map_err(|e| fatal(format!("{}: {e}", replace.label)))?;
                self.queue.push_front(Action::Replace(widened));
            }
            Action::Create { path, .. } | Action::Insert { path, .. } if exit_code != 0 => {
                return Err(fatal(format!("editing {path} failed: {content}")));
            }
            _ => {}
        }
        Ok(())
    }

    fn call(&mut self, action: &Action) -> Message {
        self.turn += 1;
        let (say, name, args) = match action {
            Action::Bash { say, command } => (say.clone(), "bash", json!({ "command": command })),
            Action::View { say, path, range } => {
                let mut args = json!({ "command": "view", "path": path });
                if let Some((start, end)) = range {
                    args["view_range"] = json!([start, end]);
                }
                (say.clone(), "str_replace_editor", args)
            }
            Action::Create { say, path, text } => {
                (say.clone(), "str_replace_editor", json!({ "command": "create", "path": path, "file_text": text }))
            }
            Action::Insert { say, path, line, text } => (
                say.clone(),
                "str_replace_editor",
                json!({ "command": "insert", "path": path, "insert_line": line, "new_str": text }),
            ),
            Action::Replace(r) => (
                r.say.clone(),
                "str_replace_editor",
                json!({ "command": "str_replace", "path": r.path, "old_str": r.old_str, "new_str": r.new_str }),
            ),
            Action::Widen { replace, context } => {
                let start = replace.start_line.saturating_sub(*context).max(1);
                (
                    "That snippet occurs more than once; let me look at the lines around it to make old_str unique.".to_string(),
                    "str_replace_editor",
                    json!({ "command": "view", "path": replace.path, "view_range": [start, -1] }),
                )
            }
            Action::Submit { say } => (say.clone(), "submit", json!({})),
        };
        let mut message = Message::text(Role::Assistant, say);
        message.tool_calls = vec![ToolCall {
            id: format!("call_{:03}", self.turn),
            kind: "function".into(),
            function: FunctionCall { name: name.into(), arguments: args.to_string() },
        }];
        message
    }
}

#[async_trait::async_trait]
impl Policy for ReplayPolicy {
    fn info(&self) -> PolicyInfo {
        PolicyInfo { name: REPLAY.into(), model: "gold-patch".into(), sampling: Value::Null, weight_version: String::new() }
    }

    async fn next(&mut self, messages: &[Message], _tools: &[Value]) -> Result<Message, PolicyError> {
        self.react(messages)?;
        let action = self.queue.pop_front().unwrap_or(Action::Submit { say: "Submitting.".into() });
        let message = self.call(&action);
        debug!(task_id = %self.task_id, turn = self.turn, "replay turn");
        self.awaiting = Some(action);
        Ok(message)
    }
}

/// Plans the calls that make one file's change.
fn plan_file(file: &FilePatch, abs: &dyn Fn(&str) -> String, queue: &mut VecDeque<Action>) -> Result<(), String> {
    let path = file.path().to_string();
    if path.is_empty() {
        return Err("a file of the gold patch has no path".into());
    }
    match (&file.old_path, &file.new_path) {
        (None, Some(new)) => {
            let dir = new.rsplit_once('/').map_or(".", |(d, _)| d);
            queue.push_back(Action::Bash {
                say: format!("The fix needs a new module, {new}. Let me look at what is next to it first."),
                command: format!("ls -la {}", quote(dir)),
            });
            let text = match file.hunks.as_slice() {
                [] => String::new(),
                [hunk] => hunk.new_text(),
                _ => return Err(format!("the new file {new} has several hunks")),
            };
            queue.push_back(Action::Create { say: format!("Now I'll create {new}."), path: abs(new), text });
            if file.new_mode.as_deref() == Some("100755") {
                queue.push_back(Action::Bash { say: format!("{new} is a script; making it executable."), command: format!("chmod +x {}", quote(new)) });
            }
            return Ok(());
        }
        (Some(old), None) => {
            queue.push_back(Action::Bash {
                say: format!("Let me check what still refers to {old} before removing it."),
                command: format!("grep -rn --exclude-dir=.git -F -e {} . | head -n 20", quote(stem(old))),
            });
            queue.push_back(Action::Bash { say: format!("{old} is no longer needed; removing it."), command: format!("rm -- {}", quote(old)) });
            return Ok(());
        }
        (Some(old), Some(new)) if old != new => {
            let dir = new.rsplit_once('/').map_or(".", |(d, _)| d);
            queue.push_back(Action::Bash {
                say: format!("I'll move {old} to {new}."),
                command: format!("mkdir -p {} && mv -- {} {}", quote(dir), quote(old), quote(new)),
            });
        }
        _ => {}
    }
    if let Some(mode) = &file.new_mode {
        let flag = if mode == "100755" { "+x" } else { "-x" };
        queue.push_back(Action::Bash { say: format!("Setting the mode of {path} ({flag})."), command: format!("chmod {flag} {}", quote(&path)) });
    }
    if file.hunks.is_empty() {
        return Ok(());
    }
    queue.push_back(Action::Bash {
        say: match probe(&file.hunks) {
            Some(p) => format!("Let me find where `{p}` is in the repository."),
            None => format!("Let me find {path} in the repository."),
        },
        command: match probe(&file.hunks) {
            Some(p) => format!("grep -rn --exclude-dir=.git -F -e {} . | head -n 20", quote(&p)),
            None => format!("git ls-files -- {}", quote(&path)),
        },
    });
    let count = file.hunks.len();
    for (i, hunk) in file.hunks.iter().enumerate() {
        let label = if count == 1 { format!("the hunk of {path}") } else { format!("hunk {} of {count} of {path}", i + 1) };
        plan_hunk(hunk, &path, &abs(&path), label, queue);
    }
    Ok(())
}

/// Plans the view and the edit of one hunk.
fn plan_hunk(hunk: &Hunk, rel: &str, path: &str, label: String, queue: &mut VecDeque<Action>) {
    let pre = hunk.old_text();
    let post = hunk.new_text();
    let pre_lines = hunk.old_lines().count();
    if pre_lines == 0 {
        // Nothing to match: insert after the line the hunk follows. Earlier hunks of the file
        // are applied, so the position is in the new file's numbering.
        let after = hunk.new_start.saturating_sub(1);
        let range = (after > 0).then(|| ((after as i64 - 3).max(1), after as i64));
        queue.push_back(Action::View { say: format!("Let me look at {rel} where the new lines go."), path: path.into(), range });
        let text = post.strip_suffix('\n').unwrap_or(&post).to_string();
        queue.push_back(Action::Insert { say: format!("Inserting the new lines into {rel}."), path: path.into(), line: after, text });
        return;
    }
    // With earlier hunks applied, the pre-image starts where the post-image starts in the new
    // numbering (a hunk that only removes lines names the line before it).
    let start_line = if hunk.new_len == 0 { hunk.new_start + 1 } else { hunk.new_start.max(1) };
    let end_line = start_line + pre_lines - 1;
    queue.push_back(Action::View {
        say: format!("Let me look at {rel} around line {start_line}."),
        path: path.into(),
        range: Some(((start_line as i64 - 3).max(1), end_line as i64)),
    });
    queue.push_back(Action::Replace(Replace {
        say: format!("I'll make the change to {rel} at line {start_line}."),
        path: path.into(),
        label,
        start_line,
        pre_lines,
        old_str: pre.clone(),
        new_str: post.clone(),
        pre,
        post,
        context: 0,
    }));
}

/// A widened replace: the hunk with `context` lines each side, read from a `view` observation.
fn widen(r: &Replace, context: usize, view: &str) -> Result<Replace, String> {
    let shown = parse_view(view);
    if shown.is_empty() {
        return Err(format!("the view of the lines around it showed no lines: {view}"));
    }
    let first = r.start_line.saturating_sub(context).max(1);
    let mut above = String::new();
    for n in first..r.start_line {
        let line = shown.get(&n).ok_or_else(|| format!("line {n} is missing from the view"))?;
        above.push_str(line);
        above.push('\n');
    }
    let mut below = String::new();
    if r.pre.ends_with('\n') {
        let end = r.start_line + r.pre_lines - 1;
        let lines: Vec<&String> = (end + 1..=end + context).map_while(|n| shown.get(&n)).collect();
        for (i, line) in lines.iter().enumerate() {
            below.push_str(line);
            // The last line may be the file's unterminated last line; leaving its newline out
            // keeps old_str a substring either way.
            if i + 1 < lines.len() {
                below.push('\n');
            }
        }
    }
    Ok(Replace {
        say: format!("With {context} lines of context on each side the snippet should be unique; making the change to {}.", r.path),
        old_str: format!("{above}{}{below}", r.pre),
        new_str: format!("{above}{}{below}", r.post),
        context,
        ..r.clone()
    })
}

/// The numbered lines of a `cat -n` style observation (`{:6}\t{line}`), exactly as shown.
fn parse_view(view: &str) -> BTreeMap<usize, String> {
    let mut lines = BTreeMap::new();
    for row in view.split('\n') {
        let Some((number, text)) = row.split_once('\t') else { continue };
        if let Ok(n) = number.trim_start().parse::<usize>()
            && (number.len() >= 6 || number.starts_with(' '))
        {
            lines.insert(n, text.to_string());
        }
    }
    lines
}

/// A distinctive line of the file's first hunk to search for: its first removed line, or its
/// first context line, trimmed and cut to 60 characters.
fn probe(hunks: &[Hunk]) -> Option<String> {
    let hunk = hunks.first()?;
    let pick = |kind| hunk.lines.iter().filter(|l| l.kind == kind).map(|l| l.text.trim()).find(|t| t.len() >= 4);
    let line = pick(LineKind::Removed).or_else(|| pick(LineKind::Context))?;
    Some(line.chars().take(60).collect())
}

/// A file's name without folders and extension, to grep for references.
fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split('.').next().filter(|s| !s.is_empty()).unwrap_or(name)
}

/// Runs the tests of the FAIL_TO_PASS files that exist before the test patch (all tests when
/// none does yet); with a task-specific test command, or a dataset's row (whose ids are not
/// pytest paths), shows the change instead.
fn test_action(task: &Task) -> Action {
    if task.test_cmd.is_some() || task.eval_script.is_some() || task.family != agentmill_proto::dataset::Family::Agentmill {
        return Action::Bash { say: "Let me review the whole change before submitting.".into(), command: "git status --short && git diff --stat".into() };
    }
    let mut files: Vec<&str> = Vec::new();
    for id in &task.fail_to_pass {
        let file = id.split("::").next().unwrap_or(id);
        if !file.is_empty() && !files.contains(&file) {
            files.push(file);
        }
    }
    let list = files.iter().map(|f| quote(f)).collect::<Vec<_>>().join(" ");
    Action::Bash {
        say: "Now let me run the tests around this code to check the change.".into(),
        command: format!(
            "files=''; for f in {list}; do [ -e \"$f\" ] && files=\"$files $f\"; done; python -m pytest -q -p no:cacheprovider $files"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_observation_reads_back_exactly() {
        let view = "Here's the result of running `cat -n` on /t/a.py:\n     9\tdef f():\r\n    10\t\treturn 1\n";
        let lines = parse_view(view);
        assert_eq!(lines.get(&9).map(String::as_str), Some("def f():\r"));
        assert_eq!(lines.get(&10).map(String::as_str), Some("\treturn 1"));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn widening_adds_the_same_lines_to_old_and_new() {
        let r = Replace {
            say: String::new(),
            path: "/t/a.py".into(),
            label: "hunk".into(),
            start_line: 3,
            pre_lines: 1,
            pre: "x = 1\n".into(),
            post: "x = 2\n".into(),
            context: 0,
            old_str: "x = 1\n".into(),
            new_str: "x = 2\n".into(),
        };
        let view = "     1\ta\n     2\tb\n     3\tx = 1\n     4\tc\n";
        let w = widen(&r, 3, view).expect("widens");
        assert_eq!(w.old_str, "a\nb\nx = 1\nc");
        assert_eq!(w.new_str, "a\nb\nx = 2\nc");
    }
}
