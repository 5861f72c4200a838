// In the example below, `## ` is rustdoc's escape for a line that starts with `# `.
//! Rendering a PR as training text: the paper's Python-PR template ([`render_python_pr`]) and a
//! general template for other languages ([`render_general`]).
//!
//! # Python-PR template
//!
//! Sections in this order, separated by exactly one blank line, the text ending in one `\n`:
//!
//! - `# Repository Context`: `Name: <repo_name>`, then `Description: <repo_description>` (the line is
//!   left out when the description is empty).
//! - `# Issue` — the whole section is left out when the PR has no issue (or an empty one):
//!   `Title: <title>`, the body (when any), then each comment as its own paragraph,
//!   `Comment by <author>:` and the comment's body on the next line (`Comment:` when the author is
//!   unknown).
//! - `# Pull Request`: `Title: <title>`, then the body when any.
//! - `# Relevant Files Found`: per file (at most [`RenderOptions::max_files`], the paper's 50, in
//!   the order given) a paragraph of its path on one line and its contents in a fenced block;
//!   `(none)` when the PR has no relevant file.
//! - `# Edits`: the PR summary paragraph (when any); then per commit, in order, its message
//!   paragraph (the refined one when present) followed by its edits, one paragraph each:
//!   - `Edit: <path>`, `Search:` and a fenced block, `Replace:` and a fenced block;
//!   - `Insert: <path> after line <n>` and a fenced block (only in a file with no lines to search);
//!   - `Create: <path>` and a fenced block; `Delete: <path>`; `Rename: <from> -> <to>`.
//!
//! Prose (titles, bodies, comments, messages, the summary) has `\r\n` turned into `\n`, leading
//! blank lines and trailing whitespace removed; a title is one line (its newlines become spaces).
//! Code is verbatim: a fenced block is the fence, a newline, the exact text, a newline when the
//! text does not end in one, and the fence again. The fence is three backticks, or one more than
//! the longest run of backticks in the text, so no content can close its block early. (A block
//! therefore cannot show whether its text ended in a newline; the structured edits in the record
//! carry that exactly.)
//!
//! ~~~
//! use agentmill_proto::{Commit, FileDiff, Issue, Comment, RelevantFile};
//! use agentmill_worker::synth::{PrRow, EditOptions, RenderOptions, build_edits, render_python_pr};
//!
//! let row = PrRow {
//!     repo_name: "acme/calc".into(),
//!     repo_description: "A calculator".into(),
//!     pr_id: "7".into(),
//!     title: "Fix add".into(),
//!     body: "add() subtracted.\r\n".into(),
//!     pr_summary: "Makes add() add.".into(),
//!     related_issue: Some(Issue {
//!         title: "add is wrong".into(),
//!         body: "1 + 1 gives 0".into(),
//!         comments: vec![Comment { author: "ann".into(), body: "Confirmed.".into() }],
//!     }),
//!     relevant_files: vec![RelevantFile { path: "calc.py".into(), content: "def add(a, b):\n    return a - b\n".into() }],
//!     commits: vec![Commit {
//!         message: "Fix add".into(),
//!         refined_message: None,
//!         diffs: vec![FileDiff { path: "calc.py".into(), patch: "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n".into() }],
//!     }],
//!     ..PrRow::default()
//! };
//! let edits = build_edits(&row.relevant_files, &row.commits, &EditOptions::default()).unwrap();
//! let text = render_python_pr(&row, &edits, &RenderOptions::default());
//! assert_eq!(text, "\
//! ## Repository Context
//! Name: acme/calc
//! Description: A calculator
//!
//! ## Issue
//! Title: add is wrong
//! 1 + 1 gives 0
//!
//! Comment by ann:
//! Confirmed.
//!
//! ## Pull Request
//! Title: Fix add
//! add() subtracted.
//!
//! ## Relevant Files Found
//! calc.py
//! ```
//! def add(a, b):
//!     return a - b
//! ```
//!
//! ## Edits
//! Makes add() add.
//!
//! Fix add
//!
//! Edit: calc.py
//! Search:
//! ```
//! def add(a, b):
//!     return a - b
//! ```
//! Replace:
//! ```
//! def add(a, b):
//!     return a + b
//! ```
//! ");
//! ~~~
//!
//! # General template
//!
//! XML-like tags in the manner of The Stack v2 and StarCoder2's pull-request format, one element
//! per line group, each tag at the start of a line and followed directly by its text; unified
//! diffs instead of search/replace; the PR's comments and reviews after the commits, in order.
//! Tags are not escaped inside text (as in The Stack v2).
//!
//! ```text
//! <repo_name>acme/calc
//! <repo_description>A calculator            (left out when empty)
//! <issue_start>Title: add is wrong          (issue elements left out when there is no issue)
//! 1 + 1 gives 0
//! <issue_comment>ann: Confirmed.
//! <pr_title>Fix add
//! <pr_body>add() subtracted.                (left out when empty)
//! <pr_file>calc.py                          (per relevant file, at most max_files)
//! <pr_base_code>def add(a, b):
//!     return a - b
//! <pr_summary>Makes add() add.              (left out when empty)
//! <pr_commit>Fix add                        (per commit)
//! <pr_diff>@@ -1,2 +1,2 @@                  (per file diff of the commit, as given, less git's index line)
//!  def add(a, b):
//! -    return a - b
//! +    return a + b
//! <pr_comment>bob: LGTM                     (per discussion item, in order)
//! <pr_review>bob APPROVED: Ship it
//! <pr_review_comment>bob on calc.py:
//! <pr_diff_hunk>@@ -1,2 +1,2 @@ …
//! <pr_review_comment_body>nit: name it total
//! ```
//!
//! Code and diffs are verbatim — except that a git diff's `index <blob>..<blob>` line, which
//! holds only blob ids, is left out — and followed by a newline when they do not end in one;
//! prose is normalized as above. The annotations in parentheses are not part of the output.

use serde::{Deserialize, Serialize};

use super::edits::{Edit, PrEdits};
use super::row::{DiscussionKind, PrRow};

/// The paper's cap on files shown under `# Relevant Files Found`.
pub const DEFAULT_MAX_FILES: usize = 50;

/// Which template renders a PR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// The paper's Python-PR template (search/replace edits).
    PythonPr,
    /// The general template (tags and unified diffs).
    General,
}

impl Template {
    /// The name stored in `ContextualPr::template`.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::PythonPr => "python_pr",
            Template::General => "general",
        }
    }
}

/// Rendering options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderOptions {
    /// Relevant files shown at most.
    pub max_files: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { max_files: DEFAULT_MAX_FILES }
    }
}

/// Renders a PR with the Python-PR template; `edits` are the PR's edits from
/// [`super::edits::build_edits`].
pub fn render_python_pr(row: &PrRow, edits: &PrEdits, opts: &RenderOptions) -> String {
    let mut paras: Vec<String> = Vec::new();

    let mut ctx = format!("# Repository Context\nName: {}", one_line(&row.repo_name));
    let desc = one_line(&row.repo_description);
    if !desc.is_empty() {
        ctx.push_str(&format!("\nDescription: {desc}"));
    }
    paras.push(ctx);

    if let Some(issue) = row.issue() {
        let mut p = format!("# Issue\nTitle: {}", one_line(&issue.title));
        push_line(&mut p, &prose(&issue.body));
        paras.push(p);
        for c in &issue.comments {
            let who = one_line(&c.author);
            let head = if who.is_empty() { "Comment:".to_string() } else { format!("Comment by {who}:") };
            let mut p = head;
            push_line(&mut p, &prose(&c.body));
            paras.push(p);
        }
    }

    let mut pr = format!("# Pull Request\nTitle: {}", one_line(&row.title));
    push_line(&mut pr, &prose(&row.body));
    paras.push(pr);

    paras.push("# Relevant Files Found".to_string());
    if row.relevant_files.is_empty() {
        append_last(&mut paras, "(none)");
    }
    for (i, f) in row.relevant_files.iter().take(opts.max_files).enumerate() {
        let block = format!("{}\n{}", f.path, fenced(&f.content));
        if i == 0 {
            append_last(&mut paras, &block);
        } else {
            paras.push(block);
        }
    }

    paras.push("# Edits".to_string());
    let summary = prose(&row.pr_summary);
    if !summary.is_empty() {
        append_last(&mut paras, &summary);
    }
    for c in &edits.commits {
        let msg = prose(&c.message);
        if !msg.is_empty() {
            paras.push(msg);
        }
        for e in &c.edits {
            paras.push(render_edit(e));
        }
    }

    let mut text = paras.join("\n\n");
    text.push('\n');
    text
}

fn render_edit(e: &Edit) -> String {
    match e {
        Edit::StrReplace { path, search, replace, .. } => {
            format!("Edit: {path}\nSearch:\n{}\nReplace:\n{}", fenced(search), fenced(replace))
        }
        Edit::Insert { path, after_line, text } => format!("Insert: {path} after line {after_line}\n{}", fenced(text)),
        Edit::Create { path, content } => format!("Create: {path}\n{}", fenced(content)),
        Edit::Delete { path } => format!("Delete: {path}"),
        Edit::Rename { from, to } => format!("Rename: {from} -> {to}"),
    }
}

/// Renders a PR with the general template (tags, unified diffs, discussion).
pub fn render_general(row: &PrRow, opts: &RenderOptions) -> String {
    let mut out = String::new();
    tag_line(&mut out, "<repo_name>", &one_line(&row.repo_name));
    let desc = one_line(&row.repo_description);
    if !desc.is_empty() {
        tag_line(&mut out, "<repo_description>", &desc);
    }
    if let Some(issue) = row.issue() {
        let mut head = format!("Title: {}", one_line(&issue.title));
        push_line(&mut head, &prose(&issue.body));
        tag_line(&mut out, "<issue_start>", &head);
        for c in &issue.comments {
            tag_line(&mut out, "<issue_comment>", &attributed(&c.author, &prose(&c.body)));
        }
    }
    tag_line(&mut out, "<pr_title>", &one_line(&row.title));
    let body = prose(&row.body);
    if !body.is_empty() {
        tag_line(&mut out, "<pr_body>", &body);
    }
    for f in row.relevant_files.iter().take(opts.max_files) {
        tag_line(&mut out, "<pr_file>", &f.path);
        tag_code(&mut out, "<pr_base_code>", &f.content);
    }
    let summary = prose(&row.pr_summary);
    if !summary.is_empty() {
        tag_line(&mut out, "<pr_summary>", &summary);
    }
    for c in &row.commits {
        let msg = match &c.refined_message {
            Some(m) if !m.trim().is_empty() => m,
            _ => &c.message,
        };
        tag_line(&mut out, "<pr_commit>", &prose(msg));
        for d in &c.diffs {
            tag_code(&mut out, "<pr_diff>", &without_index_line(&d.patch));
        }
    }
    for item in &row.discussion {
        let body = prose(&item.body);
        match item.kind {
            DiscussionKind::Comment => tag_line(&mut out, "<pr_comment>", &attributed(&item.author, &body)),
            DiscussionKind::Review => {
                let who = one_line(&item.author);
                let state = one_line(&item.state);
                let head = match (who.is_empty(), state.is_empty()) {
                    (false, false) => format!("{who} {state}"),
                    (false, true) => who,
                    (true, _) => state,
                };
                tag_line(&mut out, "<pr_review>", &attributed(&head, &body));
            }
            DiscussionKind::ReviewComment => {
                let who = one_line(&item.author);
                let head = match (who.is_empty(), item.path.is_empty()) {
                    (false, false) => format!("{who} on {}:", item.path),
                    (false, true) => format!("{who}:"),
                    (true, false) => format!("on {}:", item.path),
                    (true, true) => String::new(),
                };
                tag_line(&mut out, "<pr_review_comment>", &head);
                if !item.diff_hunk.is_empty() {
                    tag_code(&mut out, "<pr_diff_hunk>", &item.diff_hunk);
                }
                tag_line(&mut out, "<pr_review_comment_body>", &body);
            }
        }
    }
    out
}

/// A file diff without git's `index <blob>..<blob>` header line: blob ids mean nothing to a
/// model. Hunks are untouched.
fn without_index_line(patch: &str) -> String {
    let header_end = patch.find("\n@@").map_or(patch.len(), |i| i + 1);
    let header = &patch[..header_end];
    match header.find("\nindex ") {
        Some(i) => {
            let line_end = header[i + 1..].find('\n').map_or(header.len(), |j| i + 1 + j + 1);
            format!("{}{}", &patch[..i + 1], &patch[line_end..])
        }
        None => patch.to_string(),
    }
}

/// `author: body`, or the body alone when the author is unknown.
fn attributed(author: &str, body: &str) -> String {
    let who = one_line(author);
    match (who.is_empty(), body.is_empty()) {
        (true, _) => body.to_string(),
        (false, true) => who,
        (false, false) => format!("{who}: {body}"),
    }
}

fn tag_line(out: &mut String, tag: &str, text: &str) {
    out.push_str(tag);
    out.push_str(text);
    out.push('\n');
}

fn tag_code(out: &mut String, tag: &str, code: &str) {
    out.push_str(tag);
    out.push_str(code);
    if !code.ends_with('\n') {
        out.push('\n');
    }
}

/// Appends `line` on a new line when it is not empty.
fn push_line(p: &mut String, line: &str) {
    if !line.is_empty() {
        p.push('\n');
        p.push_str(line);
    }
}

fn append_last(paras: &mut [String], text: &str) {
    if let Some(last) = paras.last_mut() {
        last.push('\n');
        last.push_str(text);
    }
}

/// Prose as rendered: `\r\n` → `\n`, leading blank lines and trailing whitespace removed.
pub fn prose(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    let trimmed = s.trim_end();
    // Drop whole leading blank lines, keep the indentation of the first real line.
    let start = trimmed.find(|c: char| !c.is_whitespace()).map_or(trimmed.len(), |i| trimmed[..i].rfind('\n').map_or(0, |nl| nl + 1));
    trimmed[start..].to_string()
}

/// A one-line field: trimmed, inner line breaks as spaces.
pub fn one_line(s: &str) -> String {
    s.trim().split(['\n', '\r']).map(str::trim).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The fence for a block of `text`: three backticks, or one more than its longest backtick run.
pub fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// `text` in a fenced block that nothing inside it can close.
pub fn fenced(text: &str) -> String {
    let fence = fence_for(text);
    let nl = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
    format!("{fence}\n{text}{nl}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outgrow_their_content() {
        assert_eq!(fenced("a\n"), "```\na\n```");
        assert_eq!(fenced("x ```` y"), "`````\nx ```` y\n`````");
        assert_eq!(fenced(""), "```\n```");
    }

    #[test]
    fn renders_every_edit_kind() {
        use super::super::edits::Edit;
        let e = |e: Edit| render_edit(&e);
        assert_eq!(e(Edit::Insert { path: "e.py".into(), after_line: 0, text: "a\n".into() }), "Insert: e.py after line 0\n```\na\n```");
        assert_eq!(e(Edit::Create { path: "n.py".into(), content: "x = 1".into() }), "Create: n.py\n```\nx = 1\n```");
        assert_eq!(e(Edit::Delete { path: "d.py".into() }), "Delete: d.py");
        assert_eq!(e(Edit::Rename { from: "a.py".into(), to: "b.py".into() }), "Rename: a.py -> b.py");
    }

    #[test]
    fn drops_only_the_index_header_line() {
        let p = "diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-index a\n+index b\n";
        assert_eq!(without_index_line(p), "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-index a\n+index b\n");
        assert_eq!(without_index_line("@@ -1 +1 @@\n-a\n+b"), "@@ -1 +1 @@\n-a\n+b");
        let rename = "diff --git a/x b/y\nsimilarity index 100%\nrename from x\nrename to y\n";
        assert_eq!(without_index_line(rename), rename);
    }

    #[test]
    fn prose_is_normalized_and_code_is_not() {
        assert_eq!(prose("\r\n\n  Indented\r\nline  \r\n\n"), "  Indented\nline");
        assert_eq!(one_line(" a\nb\r\n c "), "a b c");
    }
}
