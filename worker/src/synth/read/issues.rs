//! The issue text for git-derived PRs: a JSONL map keyed by PR number or commit id.
//!
//! Each line is one object: `{"pr": 12, "title": ..., "body": ..., "comments": [{"author", "body"}]}`
//! or `{"commit": "<id or unique prefix of 7+ hex digits>", ...}`; the issue fields may also sit
//! under `"related_issue"`. Keys `pr_number`/`number` and `commit_id`/`sha` are accepted too. A PR
//! number is looked up first (for merges that name one), then the merge's or commit's id.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use agentmill_proto::Issue;
use serde_json::Value;

use crate::synth::SynthError;
use crate::synth::row::PrRow;

/// Issues by PR number and by commit id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueMap {
    by_pr: BTreeMap<String, Issue>,
    by_commit: BTreeMap<String, Issue>,
}

impl IssueMap {
    /// Reads a map from a JSONL file.
    pub fn read(path: &Path) -> Result<IssueMap, SynthError> {
        let file = std::fs::File::open(path).map_err(|e| SynthError::Input { path: path.display().to_string(), reason: e.to_string() })?;
        IssueMap::parse(std::io::BufReader::new(file)).map_err(|reason| SynthError::Input { path: path.display().to_string(), reason })
    }

    /// Parses a map; on error, every bad row is named in the message.
    pub fn parse<R: BufRead>(reader: R) -> Result<IssueMap, String> {
        let mut map = IssueMap::default();
        let mut errors = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let row = i + 1;
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    errors.push(format!("issues row {row}: could not be read ({e})"));
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            match parse_entry(&line) {
                Ok((Key::Pr(k), issue)) => {
                    map.by_pr.insert(k, issue);
                }
                Ok((Key::Commit(k), issue)) => {
                    map.by_commit.insert(k, issue);
                }
                Err(e) => errors.push(format!("issues row {row}: {e}")),
            }
        }
        if errors.is_empty() { Ok(map) } else { Err(errors.join("; ")) }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_pr.len() + self.by_commit.len()
    }

    /// True when the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The issue for a PR number, else for a commit id (full, or an entry that is a prefix of it).
    pub fn lookup(&self, pr_number: Option<&str>, commit: &str) -> Option<&Issue> {
        if let Some(n) = pr_number
            && let Some(i) = self.by_pr.get(n)
        {
            return Some(i);
        }
        let commit = commit.to_ascii_lowercase();
        (7..=commit.len()).rev().find_map(|n| commit.get(..n).and_then(|k| self.by_commit.get(k)))
    }
}

enum Key {
    Pr(String),
    Commit(String),
}

fn parse_entry(line: &str) -> Result<(Key, Issue), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("is not valid JSON ({e})"))?;
    let Value::Object(mut o) = v else {
        return Err("is not a JSON object".into());
    };
    let pr = ["pr", "pr_number", "number"].iter().find_map(|k| match o.get(*k) {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().trim_start_matches('#').to_string()),
        _ => None,
    });
    let commit =
        ["commit", "commit_id", "sha"].iter().find_map(|k| o.get(*k).and_then(Value::as_str).map(|s| s.trim().to_ascii_lowercase()));
    let key = match (pr, commit) {
        (Some(p), _) => Key::Pr(p),
        (None, Some(c)) if c.len() >= 7 && c.bytes().all(|b| b.is_ascii_hexdigit()) => Key::Commit(c),
        (None, Some(c)) => return Err(format!("commit `{c}` is not a commit id (7 to 64 hex digits)")),
        (None, None) => return Err("names neither `pr` nor `commit`".into()),
    };
    // The issue fields, flat or under `related_issue`; read by the row reader's rules.
    let issue_value = match o.remove("related_issue") {
        Some(v @ Value::Object(_)) => v,
        _ => Value::Object(o.into_iter().filter(|(k, _)| matches!(k.as_str(), "title" | "body" | "comments")).collect()),
    };
    let mut row = serde_json::Map::new();
    row.insert("repo_name".into(), Value::String("issues/map".into()));
    row.insert("related_issue".into(), issue_value);
    let parsed = PrRow::from_json_object(row).map_err(|errs| {
        errs.into_iter().map(|e| format!("{}: {}", e.field.trim_start_matches("related_issue."), e.reason)).collect::<Vec<_>>().join("; ")
    })?;
    Ok((key, parsed.related_issue.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_number_then_commit_prefix() {
        let text = "{\"pr\": 3, \"title\": \"t3\"}\n\n{\"commit\": \"ABCDEF1\", \"related_issue\": {\"title\": \"tc\", \"comments\": [{\"author\": \"a\", \"body\": \"b\"}]}}\n";
        let map = IssueMap::parse(text.as_bytes()).expect("parses");
        assert_eq!(map.lookup(Some("3"), "ffff").map(|i| i.title.as_str()), Some("t3"));
        assert_eq!(map.lookup(None, "abcdef1234").map(|i| i.comments.len()), Some(1));
        assert!(map.lookup(Some("4"), "abcdef0").is_none());
        let err = IssueMap::parse("{\"title\": 1}\n{\"pr\": 1, \"comments\": 3}\n".as_bytes()).expect_err("bad");
        assert!(err.contains("issues row 1: names neither") && err.contains("issues row 2: comments: is a JSON number"), "{err}");
    }
}
