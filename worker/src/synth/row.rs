//! [`PrRow`]: one pull request in daVinci-Dev's released schema, plus what filters and the general
//! template need, read leniently from a JSON object.
//!
//! The schema: `repo_name, repo_description, title, body, pr_summary, related_issue{title, body,
//! comments[{author, body}]}, relevant_files[{path, content}], commits[{message, refined_message,
//! diffs[{path, patch}]}]`. Optional fields agentmill reads: `pr_id` (or `pr_number`, `number`),
//! `merged`, `author` (or `user`/`user_login`), `labels`, `base_commit`, `changed_files`, `comments`
//! (PR conversation, `[{author, body, created_at}]`) and `reviews` (`[{author, state, body,
//! created_at, comments[{author, path, diff_hunk, body}]}]`). Anything else is kept in `extra`.
//!
//! Leniency, because datasets are exported by many tools: `null` reads as absent; a nested field
//! (`related_issue`, `relevant_files`, `commits`, `labels`, …) may be JSON encoded in a string, as
//! Hugging Face exports sometimes do; numbers are accepted for ids. Every problem in a row is
//! reported with its path (`commits[2].diffs[0].patch`) and what was expected.

use std::collections::BTreeMap;

use agentmill_proto::{Comment, Commit, ContextualPr, FileDiff, Issue, RelevantFile};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// One pull request to synthesize.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrRow {
    /// `owner/name`.
    pub repo_name: String,
    /// The repository's description.
    pub repo_description: String,
    /// PR number, or a commit id for commit-derived PRs; a content hash when the row has none.
    pub pr_id: String,
    /// PR title.
    pub title: String,
    /// PR body.
    pub body: String,
    /// 1–4 sentence summary.
    pub pr_summary: String,
    /// The linked issue.
    pub related_issue: Option<Issue>,
    /// Files at the parent of the first commit.
    pub relevant_files: Vec<RelevantFile>,
    /// Commits in order.
    pub commits: Vec<Commit>,
    /// Whether the PR was merged; `None` when the row does not say (daVinci-Dev releases merged
    /// PRs only, so filters read absent as merged).
    pub merged: Option<bool>,
    /// The PR author's login (for commit-derived PRs: the author name of the first commit).
    pub author: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// The commit the PR's snapshot was taken at, when known.
    pub base_commit: String,
    /// Changed files as the source counted them (GitHub's `changed_files`); when absent the
    /// distinct paths of the commits' diffs are counted.
    pub changed_files: Option<u64>,
    /// The PR's conversation and reviews, in order.
    pub discussion: Vec<DiscussionItem>,
    /// Files (distinct paths) left out because they are binary or not UTF-8: from
    /// `relevant_files`, or from the diffs when a file's diff is not UTF-8 text.
    pub skipped_files: u64,
    /// Fields of the source row agentmill does not read.
    pub extra: BTreeMap<String, Value>,
}

/// One item of a PR's conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscussionItem {
    /// What it is.
    pub kind: DiscussionKind,
    /// Login of the author.
    pub author: String,
    /// Markdown body.
    pub body: String,
    /// For a review: `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, …
    pub state: String,
    /// For a review comment: the file.
    pub path: String,
    /// For a review comment: the hunk it is attached to.
    pub diff_hunk: String,
    /// RFC 3339 time, used for ordering when every item has one.
    pub created_at: String,
}

/// The kinds of [`DiscussionItem`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscussionKind {
    /// A comment on the PR's conversation.
    #[default]
    Comment,
    /// A review (its verdict and summary).
    Review,
    /// A comment of a review, attached to a line of the diff.
    ReviewComment,
}

impl PrRow {
    /// Distinct paths the commits' diffs touch (a rename counts once).
    pub fn touched_paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.commits.iter().flat_map(|c| c.diffs.iter().map(|d| d.path.as_str())).collect();
        paths.sort_unstable();
        paths.dedup();
        paths
    }

    /// Changed files: the row's own count, else the distinct diffed paths.
    pub fn changed_file_count(&self) -> u64 {
        self.changed_files.unwrap_or(self.touched_paths().len() as u64)
    }

    /// The issue, when it says anything.
    pub fn issue(&self) -> Option<&Issue> {
        self.related_issue.as_ref().filter(|i| !i.title.trim().is_empty() || !i.body.trim().is_empty() || !i.comments.is_empty())
    }

    /// The structured part of a `ctx` record (template and text are filled by rendering).
    pub fn to_contextual_pr(&self) -> ContextualPr {
        ContextualPr {
            repo_name: self.repo_name.clone(),
            repo_description: self.repo_description.clone(),
            pr_id: self.pr_id.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            pr_summary: self.pr_summary.clone(),
            related_issue: self.issue().cloned(),
            relevant_files: self.relevant_files.clone(),
            commits: self.commits.clone(),
            template: String::new(),
            text: String::new(),
        }
    }

    /// Reads a row from one JSON object; every problem is reported, not only the first.
    pub fn from_json_object(map: Map<String, Value>) -> Result<PrRow, Vec<FieldError>> {
        let mut r = Reader { map, errors: Vec::new() };
        let mut row = PrRow {
            repo_name: r.string("repo_name"),
            repo_description: r.string("repo_description"),
            title: r.string("title"),
            body: r.string("body"),
            pr_summary: r.string("pr_summary"),
            base_commit: r.string("base_commit"),
            ..PrRow::default()
        };
        if row.repo_name.trim().is_empty() && !r.has_error("repo_name") {
            r.err("repo_name", "is missing or empty; every row names its repository as owner/name");
        }
        row.pr_id = ["pr_id", "pr_number", "number"].iter().find_map(|k| r.id(k)).unwrap_or_default();
        row.related_issue = r.nested("related_issue").and_then(|v| read_issue(&v, "related_issue", &mut r.errors));
        if let Some(v) = r.nested("relevant_files") {
            row.relevant_files = read_list(&v, "relevant_files", &mut r.errors, |v, at, errs| {
                let o = as_object(v, at, errs)?;
                Some(RelevantFile { path: req_str(o, "path", at, errs)?, content: str_field(o, "content", at, errs) })
            });
        }
        if let Some(v) = r.nested("commits") {
            row.commits = read_list(&v, "commits", &mut r.errors, read_commit);
        }
        row.merged = r.bool("merged");
        row.author = ["author", "user_login", "user"].iter().find_map(|k| r.login(k));
        if let Some(v) = r.nested("labels") {
            row.labels = read_list(&v, "labels", &mut r.errors, |v, at, errs| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => Some(str_field(o, "name", at, errs)),
                other => {
                    errs.push(FieldError::new(at, format!("is a JSON {}; expected a label name or {{\"name\": ...}}", json_type(other))));
                    None
                }
            });
        }
        row.changed_files = r.uint("changed_files");
        let comments = r.nested("comments").map(|v| {
            read_list(&v, "comments", &mut r.errors, |v, at, errs| {
                let o = as_object(v, at, errs)?;
                Some(DiscussionItem {
                    kind: DiscussionKind::Comment,
                    author: login_field(o, "author", at, errs),
                    body: str_field(o, "body", at, errs),
                    created_at: str_field(o, "created_at", at, errs),
                    ..DiscussionItem::default()
                })
            })
        });
        let reviews = r.nested("reviews").map(|v| read_list(&v, "reviews", &mut r.errors, read_review));
        row.discussion = order_discussion(comments.unwrap_or_default(), reviews.unwrap_or_default());

        let Reader { map, errors } = r;
        if !errors.is_empty() {
            return Err(errors);
        }
        row.extra = map.into_iter().collect();
        if row.pr_id.is_empty() {
            row.pr_id = content_id(&row);
        }
        Ok(row)
    }
}

/// One thing wrong with one field of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path in the row (`commits[2].diffs[0].patch`).
    pub field: String,
    /// What is wrong and what was expected.
    pub reason: String,
}

impl FieldError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError { field: field.to_string(), reason: reason.into() }
    }
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("PR row {row}{}: {field}: {reason}", pr.as_deref().map(|p| format!(" ({p})")).unwrap_or_default())]
pub struct RowError {
    /// 1-based row (the line in a JSONL file, the row in a Parquet file).
    pub row: usize,
    /// `repo#pr` when the row had readable ones.
    pub pr: Option<String>,
    /// The field at fault, `(row)` for the whole row.
    pub field: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl RowError {
    /// Errors for one row from its field errors.
    pub fn from_fields(row: usize, value: &Value, errors: Vec<FieldError>) -> Vec<RowError> {
        let pr = peek_pr(value);
        errors.into_iter().map(|e| RowError { row, pr: pr.clone(), field: e.field, reason: e.reason }).collect()
    }
}

/// Reads one JSON value as a row, reporting row-level problems with the row number.
pub fn row_from_value(row: usize, value: Value) -> Result<PrRow, Vec<RowError>> {
    match value {
        Value::Object(map) => {
            let copy = Value::Object(map.clone());
            PrRow::from_json_object(map).map_err(|errs| RowError::from_fields(row, &copy, errs))
        }
        other => Err(vec![RowError {
            row,
            pr: None,
            field: "(row)".into(),
            reason: format!("is a JSON {}, not an object; each row must be one JSON object", json_type(&other)),
        }]),
    }
}

fn peek_pr(v: &Value) -> Option<String> {
    let repo = v.get("repo_name")?.as_str()?;
    let id = ["pr_id", "pr_number", "number"].iter().find_map(|k| match v.get(*k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    Some(match id {
        Some(id) => format!("{repo}#{id}"),
        None => repo.to_string(),
    })
}

struct Reader {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Reader {
    fn take(&mut self, key: &str) -> Option<Value> {
        match self.map.remove(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn err(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, reason));
    }

    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    fn string(&mut self, key: &str) -> String {
        match self.take(key) {
            None => String::new(),
            Some(Value::String(s)) => s,
            Some(other) => {
                self.err(key, format!("is a JSON {}; expected a string", json_type(&other)));
                String::new()
            }
        }
    }

    fn id(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::String(_) => None,
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.err(key, format!("is a JSON {}; expected a PR number or id", json_type(&other)));
                None
            }
        }
    }

    fn login(&mut self, key: &str) -> Option<String> {
        let v = self.take(key)?;
        let mut errs = Vec::new();
        let s = login_value(&v, key, &mut errs);
        self.errors.extend(errs);
        s.filter(|s| !s.is_empty())
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                self.err(key, format!("is a JSON {}; expected true or false", json_type(&other)));
                None
            }
        }
    }

    fn uint(&mut self, key: &str) -> Option<u64> {
        match self.take(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                self.err(key, format!("is {other}; expected a non-negative integer"));
                None
            }
        }
    }

    /// A nested value, decoding a JSON-encoded string.
    fn nested(&mut self, key: &str) -> Option<Value> {
        match self.take(key)? {
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Null) => None,
                Ok(v) => Some(v),
                Err(e) => {
                    self.err(key, format!("is a string that is not JSON ({e}); expected a list/object or its JSON encoding"));
                    None
                }
            },
            v => Some(v),
        }
    }
}

fn read_list<T>(
    v: &Value,
    at: &str,
    errs: &mut Vec<FieldError>,
    mut item: impl FnMut(&Value, &str, &mut Vec<FieldError>) -> Option<T>,
) -> Vec<T> {
    match v {
        Value::Array(items) => items.iter().enumerate().filter_map(|(i, v)| item(v, &format!("{at}[{i}]"), errs)).collect(),
        other => {
            errs.push(FieldError::new(at, format!("is a JSON {}; expected a list", json_type(other))));
            Vec::new()
        }
    }
}

fn read_issue(v: &Value, at: &str, errs: &mut Vec<FieldError>) -> Option<Issue> {
    let o = as_object(v, at, errs)?;
    let comments = match o.get("comments") {
        None | Some(Value::Null) => Vec::new(),
        Some(c) => read_list(c, &format!("{at}.comments"), errs, |v, at, errs| match v {
            Value::String(s) => Some(Comment { author: String::new(), body: s.clone() }),
            v => {
                let o = as_object(v, at, errs)?;
                Some(Comment { author: login_field(o, "author", at, errs), body: str_field(o, "body", at, errs) })
            }
        }),
    };
    Some(Issue { title: str_field(o, "title", at, errs), body: str_field(o, "body", at, errs), comments })
}

fn read_commit(v: &Value, at: &str, errs: &mut Vec<FieldError>) -> Option<Commit> {
    let o = as_object(v, at, errs)?;
    let diffs = match o.get("diffs") {
        None | Some(Value::Null) => Vec::new(),
        Some(d) => read_list(d, &format!("{at}.diffs"), errs, |v, at, errs| {
            let o = as_object(v, at, errs)?;
            Some(FileDiff { path: req_str(o, "path", at, errs)?, patch: str_field(o, "patch", at, errs) })
        }),
    };
    let refined = str_field(o, "refined_message", at, errs);
    Some(Commit { message: str_field(o, "message", at, errs), refined_message: (!refined.is_empty()).then_some(refined), diffs })
}

fn read_review(v: &Value, at: &str, errs: &mut Vec<FieldError>) -> Option<Vec<DiscussionItem>> {
    let o = as_object(v, at, errs)?;
    let author = login_field(o, "author", at, errs);
    let created_at = str_field(o, "created_at", at, errs);
    let mut items = vec![DiscussionItem {
        kind: DiscussionKind::Review,
        author: author.clone(),
        body: str_field(o, "body", at, errs),
        state: str_field(o, "state", at, errs),
        created_at: created_at.clone(),
        ..DiscussionItem::default()
    }];
    if let Some(c) = o.get("comments").filter(|c| !c.is_null()) {
        items.extend(read_list(c, &format!("{at}.comments"), errs, |v, at, errs| {
            let o = as_object(v, at, errs)?;
            let a = login_field(o, "author", at, errs);
            Some(DiscussionItem {
                kind: DiscussionKind::ReviewComment,
                author: if a.is_empty() { author.clone() } else { a },
                body: str_field(o, "body", at, errs),
                path: str_field(o, "path", at, errs),
                diff_hunk: str_field(o, "diff_hunk", at, errs),
                created_at: created_at.clone(),
                ..DiscussionItem::default()
            })
        }));
    }
    Some(items)
}

/// Comments and reviews in time order when every item has a time (stable, so equal times keep
/// comments first), else comments then reviews as given.
fn order_discussion(comments: Vec<DiscussionItem>, reviews: Vec<Vec<DiscussionItem>>) -> Vec<DiscussionItem> {
    let mut groups: Vec<Vec<DiscussionItem>> = comments.into_iter().map(|c| vec![c]).collect();
    groups.extend(reviews);
    if groups.iter().all(|g| g.first().is_some_and(|i| !i.created_at.is_empty())) {
        groups.sort_by(|a, b| a[0].created_at.cmp(&b[0].created_at));
    }
    groups.into_iter().flatten().collect()
}

fn as_object<'a>(v: &'a Value, at: &str, errs: &mut Vec<FieldError>) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(o) => Some(o),
        other => {
            errs.push(FieldError::new(at, format!("is a JSON {}; expected an object", json_type(other))));
            None
        }
    }
}

fn str_field(o: &Map<String, Value>, key: &str, at: &str, errs: &mut Vec<FieldError>) -> String {
    match o.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            errs.push(FieldError::new(&format!("{at}.{key}"), format!("is a JSON {}; expected a string", json_type(other))));
            String::new()
        }
    }
}

fn req_str(o: &Map<String, Value>, key: &str, at: &str, errs: &mut Vec<FieldError>) -> Option<String> {
    let s = str_field(o, key, at, errs);
    if s.is_empty() {
        if !errs.iter().any(|e| e.field == format!("{at}.{key}")) {
            errs.push(FieldError::new(&format!("{at}.{key}"), "is missing or empty; expected a repository-relative path"));
        }
        return None;
    }
    Some(s)
}

fn login_field(o: &Map<String, Value>, key: &str, at: &str, errs: &mut Vec<FieldError>) -> String {
    match o.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(v) => login_value(v, &format!("{at}.{key}"), errs).unwrap_or_default(),
    }
}

/// A login as a string, or GitHub's user object (`{"login": ...}`).
fn login_value(v: &Value, at: &str, errs: &mut Vec<FieldError>) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => match o.get("login") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                errs.push(FieldError::new(at, "is an object without a string `login`; expected a login or {\"login\": ...}"));
                None
            }
        },
        other => {
            errs.push(FieldError::new(at, format!("is a JSON {}; expected a login", json_type(other))));
            None
        }
    }
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

/// `h` + 16 hex digits of FNV-1a over the row's title, body and diffs: a stable id for rows that
/// carry none, so dedupe still works on them. (FNV, not std's hasher: its output may change
/// between Rust releases, and ids must not.)
fn content_id(row: &PrRow) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&row.title);
    feed(&row.body);
    for c in &row.commits {
        feed(&c.message);
        for d in &c.diffs {
            feed(&d.path);
            feed(&d.patch);
        }
    }
    format!("h{h:016x}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_released_schema_and_its_string_encoded_variant() {
        let row = json!({
            "repo_name": "o/r", "repo_description": "d", "title": "t", "body": null, "pr_summary": "s",
            "related_issue": "{\"title\": \"bug\", \"body\": \"b\", \"comments\": [{\"author\": \"x\", \"body\": \"c\"}]}",
            "relevant_files": [{"path": "a.py", "content": "x\n"}],
            "commits": [{"message": "m", "refined_message": null, "diffs": [{"path": "a.py", "patch": "@@ -1 +1 @@\n-x\n+y\n"}]}],
            "pr_number": 7, "merged": true, "user": {"login": "dependabot[bot]"}, "labels": [{"name": "bug"}], "stars": 3
        });
        let Value::Object(map) = row else { unreachable!() };
        let r = PrRow::from_json_object(map).expect("reads");
        assert_eq!((r.pr_id.as_str(), r.merged, r.author.as_deref()), ("7", Some(true), Some("dependabot[bot]")));
        assert_eq!(r.issue().map(|i| i.comments[0].author.as_str()), Some("x"));
        assert_eq!(r.labels, ["bug"]);
        assert_eq!(r.extra["stars"], json!(3));
    }

    #[test]
    fn names_every_bad_field() {
        let row = json!({"repo_name": "o/r", "commits": [{"message": 3, "diffs": [{"patch": "x"}]}], "merged": "maybe"});
        let errs = row_from_value(4, row).expect_err("bad");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["commits[0].diffs[0].path", "commits[0].message", "merged"]);
        assert!(errs[0].to_string().starts_with("PR row 4 (o/r): commits[0].diffs[0].path"), "{}", errs[0]);
    }

    #[test]
    fn rows_without_ids_get_a_stable_content_id() {
        let read = |v: Value| match v {
            Value::Object(m) => PrRow::from_json_object(m).expect("reads"),
            _ => unreachable!(),
        };
        let a = read(json!({"repo_name": "o/r", "title": "t"}));
        let b = read(json!({"repo_name": "o/r", "title": "t"}));
        assert_eq!(a.pr_id, b.pr_id);
        assert!(a.pr_id.starts_with('h') && a.pr_id.len() == 17, "{}", a.pr_id);
        assert_ne!(a.pr_id, read(json!({"repo_name": "o/r", "title": "u"})).pr_id);
    }
}
