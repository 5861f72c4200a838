//! Diffs → edit operations, applied commit by commit to an evolving set of files.
//!
//! The state starts as the PR's relevant files at the parent of its first commit. Each commit's
//! file diffs become [`Edit`]s, made against the state as it is at that moment and applied to it at
//! once, so the next edit sees the file the previous one left:
//!
//! - a hunk of a changed file → [`Edit::StrReplace`]: the hunk's old side (context and removed
//!   lines) is searched for, its new side replaces it. When the search block occurs more than once
//!   in the current file (counted on the bytes, overlapping occurrences included, as an agent's
//!   `str_replace` tool would), it grows by one line above and one below, up to
//!   [`EditOptions::max_context_growth`] steps (the paper: 20), until it is unique; the replace
//!   block grows by the same lines. A block still not unique keeps an `occurrence` index, so
//!   applying it stays exact, and is counted in [`EditStats::not_unique`].
//! - a hunk with no old side in an **empty** file (nothing to search for) → [`Edit::Insert`].
//!   Elsewhere an insertion is folded into a `StrReplace` by growing its (empty) search block over
//!   the lines around it, so edits read the same whether the diff had context or not.
//! - an added file → [`Edit::Create`]; a deleted one → [`Edit::Delete`]; a rename →
//!   [`Edit::Rename`], then `StrReplace`s on the new path for any content change.
//!
//! Within a commit, diffs are taken in the order copies, deletions, renames, changes, additions,
//! so `rename a→b` plus `add a` (or `delete b` plus `rename a→b`) apply one after the other.
//! Binary file diffs, and diffs of files the snapshot does not hold, are skipped and counted.
//!
//! Lines split on `\n` only and keep their terminators; a file survives byte for byte, `\r\n`,
//! form feeds, `\x85`, `\u2028` and a missing final newline included. [`apply_edits`] is the
//! independent check: it applies edits as a strict `str_replace` tool does (a search block must
//! occur exactly once unless it names an occurrence) and the tests show the result is the post-PR
//! file, byte for byte.
//!
//! One algorithm, a little past 600 lines: the edits and [`apply_edits`], their strict check,
//! stay in one file so the check is read against what it checks.

use std::collections::BTreeMap;

use agentmill_proto::{Commit, RelevantFile};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diff::{Change, DiffError, FilePatch, Hunk, parse_file_patch};

/// The paper's bound on context growth: 20 lines above and below.
pub const DEFAULT_MAX_CONTEXT_GROWTH: usize = 20;

/// One edit operation, as an agent's editor tool would perform it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Edit {
    /// Replace `search` (unique in the file, unless `occurrence` is set) by `replace`.
    StrReplace {
        /// The file.
        path: String,
        /// The exact text to find.
        search: String,
        /// Its replacement.
        replace: String,
        /// For a block still not unique after the growth limit: which occurrence (0-based, counting
        /// overlapping ones) the edit means.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        occurrence: Option<usize>,
    },
    /// Insert `text` after line `after_line` (1-based; 0 = at the top).
    Insert {
        /// The file.
        path: String,
        /// The line after which `text` goes.
        after_line: usize,
        /// The text, with its line terminators.
        text: String,
    },
    /// A new file.
    Create {
        /// The file.
        path: String,
        /// Its full contents.
        content: String,
    },
    /// A removed file.
    Delete {
        /// The file.
        path: String,
    },
    /// A moved file.
    Rename {
        /// The old path.
        from: String,
        /// The new path.
        to: String,
    },
}

impl Edit {
    /// The path the edit works on (the new one for a rename).
    pub fn path(&self) -> &str {
        match self {
            Edit::StrReplace { path, .. } | Edit::Insert { path, .. } | Edit::Create { path, .. } | Edit::Delete { path } => path,
            Edit::Rename { to, .. } => to,
        }
    }
}

/// One commit's message and edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitEdits {
    /// The refined message when there is one, else the original.
    pub message: String,
    /// The edits, in the order they apply.
    pub edits: Vec<Edit>,
}

/// Counts over edit building; the uniqueness rate is the paper's statistic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditStats {
    /// Hunks turned into edits.
    pub hunks: u64,
    /// `StrReplace` edits made from hunks.
    pub search_blocks: u64,
    /// Search blocks unique with the diff's own context.
    pub unique_as_diffed: u64,
    /// Search blocks that became unique by growing.
    pub unique_after_growth: u64,
    /// Search blocks still not unique at the growth limit (they carry an occurrence).
    pub not_unique: u64,
    /// Growth steps taken over all blocks (each adds up to one line above and one below).
    pub growth_steps: u64,
    /// The most growth steps one block needed.
    pub max_growth_steps: u64,
    /// `Insert` edits.
    pub inserts: u64,
    /// `Create` edits.
    pub creates: u64,
    /// `Delete` edits.
    pub deletes: u64,
    /// `Rename` edits.
    pub renames: u64,
    /// File diffs skipped because git called the file binary.
    pub skipped_binary: u64,
    /// File diffs skipped because the snapshot does not hold the file (it was skipped as binary
    /// or non-UTF-8, or a row's `relevant_files` lacks it).
    pub skipped_unknown_file: u64,
}

impl EditStats {
    /// Share of search blocks unique within the growth limit (1.0 when there are none).
    pub fn uniqueness_rate(&self) -> f64 {
        if self.search_blocks == 0 { 1.0 } else { (self.unique_as_diffed + self.unique_after_growth) as f64 / self.search_blocks as f64 }
    }

    /// Share of search blocks unique with the diff's own context, before any growth.
    pub fn unique_as_diffed_rate(&self) -> f64 {
        if self.search_blocks == 0 { 1.0 } else { self.unique_as_diffed as f64 / self.search_blocks as f64 }
    }

    /// Adds another PR's counts.
    pub fn add(&mut self, o: &EditStats) {
        self.hunks += o.hunks;
        self.search_blocks += o.search_blocks;
        self.unique_as_diffed += o.unique_as_diffed;
        self.unique_after_growth += o.unique_after_growth;
        self.not_unique += o.not_unique;
        self.growth_steps += o.growth_steps;
        self.max_growth_steps = self.max_growth_steps.max(o.max_growth_steps);
        self.inserts += o.inserts;
        self.creates += o.creates;
        self.deletes += o.deletes;
        self.renames += o.renames;
        self.skipped_binary += o.skipped_binary;
        self.skipped_unknown_file += o.skipped_unknown_file;
    }
}

/// How edits are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EditOptions {
    /// Growth steps (one line above and one below each) allowed to make a search block unique.
    pub max_context_growth: usize,
}

impl Default for EditOptions {
    fn default() -> Self {
        EditOptions { max_context_growth: DEFAULT_MAX_CONTEXT_GROWTH }
    }
}

/// A PR's edits, commit by commit, and the files they leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrEdits {
    /// Per commit, in order.
    pub commits: Vec<CommitEdits>,
    /// Counts over the PR.
    pub stats: EditStats,
    /// The evolving set of files after the last commit (deleted files absent).
    pub files_after: BTreeMap<String, String>,
}

impl PrEdits {
    /// Every edit, in order.
    pub fn all_edits(&self) -> impl Iterator<Item = &Edit> {
        self.commits.iter().flat_map(|c| c.edits.iter())
    }
}

/// Diffs that do not fit the files they are applied to.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    /// A diff that cannot be parsed.
    #[error("commit {commit}: {source}")]
    Diff {
        /// 1-based commit of the PR.
        commit: usize,
        /// The parse error.
        source: DiffError,
    },
    /// A hunk whose old side is nowhere in the file.
    #[error(
        "commit {commit}: {path}: hunk {hunk} (old line {line}) does not match the file; the diff was made against other contents than the snapshot"
    )]
    HunkMismatch {
        /// 1-based commit of the PR.
        commit: usize,
        /// The file.
        path: String,
        /// 1-based hunk in the file's diff.
        hunk: usize,
        /// The hunk's old start line.
        line: usize,
    },
    /// A diff that creates or renames onto a path that already exists.
    #[error("commit {commit}: {path} already exists; the diff adds it again (rows whose relevant_files or diffs disagree)")]
    Exists {
        /// 1-based commit of the PR.
        commit: usize,
        /// The file.
        path: String,
    },
}

/// Builds a PR's edits: the relevant files are the snapshot, the commits' diffs are applied to
/// it one commit at a time.
pub fn build_edits(relevant_files: &[RelevantFile], commits: &[Commit], opts: &EditOptions) -> Result<PrEdits, EditError> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for f in relevant_files {
        files.entry(f.path.clone()).or_insert_with(|| f.content.clone());
    }
    let mut stats = EditStats::default();
    let mut out = Vec::with_capacity(commits.len());
    for (ci, commit) in commits.iter().enumerate() {
        let cno = ci + 1;
        let mut patches = Vec::with_capacity(commit.diffs.len());
        for d in &commit.diffs {
            let fp = parse_file_patch(&d.patch, &d.path).map_err(|source| EditError::Diff { commit: cno, source })?;
            patches.push(infer_change(fp, &files));
        }
        patches.sort_by_key(|p| order(p.change));
        let mut edits = Vec::new();
        for fp in &patches {
            apply_patch(fp, cno, &mut files, &mut edits, &mut stats, opts)?;
        }
        let message = match &commit.refined_message {
            Some(m) if !m.trim().is_empty() => m.clone(),
            _ => commit.message.clone(),
        };
        out.push(CommitEdits { message, edits });
    }
    Ok(PrEdits { commits: out, stats, files_after: files })
}

/// Gives a header-less patch (GitHub's hunks only) the change the state implies: hunks with no
/// old side on a path the state lacks add it; one hunk that removes a whole file and adds nothing
/// deletes it (GitHub writes an emptied file the same way; both read as a deletion here).
fn infer_change(mut fp: FilePatch, files: &BTreeMap<String, String>) -> FilePatch {
    if fp.change.is_some() {
        return fp;
    }
    let path = fp.path().to_string();
    let change = match files.get(&path) {
        None if fp.hunks.iter().all(|h| h.old_len == 0) => Change::Added,
        Some(content) if fp.hunks.len() == 1 && fp.hunks[0].new_len == 0 && !content.is_empty() && fp.hunks[0].old_text() == *content => {
            Change::Deleted
        }
        _ => Change::Modified,
    };
    match change {
        Change::Added => fp.old_path = None,
        Change::Deleted => fp.new_path = None,
        _ => {}
    }
    fp.change = Some(change);
    fp
}

fn order(change: Option<Change>) -> u8 {
    match change {
        Some(Change::Copied) => 0,
        Some(Change::Deleted) => 1,
        Some(Change::Renamed) => 2,
        Some(Change::Modified) | None => 3,
        Some(Change::Added) => 4,
    }
}

fn apply_patch(
    fp: &FilePatch,
    cno: usize,
    files: &mut BTreeMap<String, String>,
    edits: &mut Vec<Edit>,
    stats: &mut EditStats,
    opts: &EditOptions,
) -> Result<(), EditError> {
    if fp.binary {
        stats.skipped_binary += 1;
        return Ok(());
    }
    let old = fp.old_path.clone().unwrap_or_default();
    let new = fp.new_path.clone().unwrap_or_default();
    match fp.change.unwrap_or(Change::Modified) {
        Change::Added | Change::Copied => {
            let base = match fp.change {
                Some(Change::Copied) => match files.get(&old) {
                    Some(c) => c.clone(),
                    None => {
                        stats.skipped_unknown_file += 1;
                        return Ok(());
                    }
                },
                _ => String::new(),
            };
            if files.contains_key(&new) {
                return Err(EditError::Exists { commit: cno, path: new });
            }
            let mut content = base;
            apply_hunks(&mut content, &fp.hunks, cno, &new, None, stats, opts)?;
            stats.creates += 1;
            edits.push(Edit::Create { path: new.clone(), content: content.clone() });
            files.insert(new, content);
        }
        Change::Deleted => {
            if files.remove(&old).is_none() {
                stats.skipped_unknown_file += 1;
                return Ok(());
            }
            stats.deletes += 1;
            edits.push(Edit::Delete { path: old });
        }
        Change::Renamed => {
            let Some(mut content) = files.remove(&old) else {
                stats.skipped_unknown_file += 1;
                return Ok(());
            };
            if files.contains_key(&new) {
                return Err(EditError::Exists { commit: cno, path: new });
            }
            stats.renames += 1;
            edits.push(Edit::Rename { from: old, to: new.clone() });
            apply_hunks(&mut content, &fp.hunks, cno, &new, Some(edits), stats, opts)?;
            files.insert(new, content);
        }
        Change::Modified => {
            let Some(content) = files.get_mut(&new) else {
                stats.skipped_unknown_file += 1;
                return Ok(());
            };
            apply_hunks(content, &fp.hunks, cno, &new, Some(edits), stats, opts)?;
        }
    }
    Ok(())
}

/// Applies a file's hunks to `text` in order; with `edits`, also records each as an edit made
/// against the text as it is just before that hunk.
fn apply_hunks(
    text: &mut String,
    hunks: &[Hunk],
    cno: usize,
    path: &str,
    mut edits: Option<&mut Vec<Edit>>,
    stats: &mut EditStats,
    opts: &EditOptions,
) -> Result<(), EditError> {
    // Line shift the earlier hunks caused, as `patch` carries it.
    let mut delta: isize = 0;
    for (hi, h) in hunks.iter().enumerate() {
        let starts = line_starts(text);
        let n = starts.len() - 1;
        let old_n = h.old_lines().count();
        let old = h.old_text();
        let base = if old_n == 0 { h.old_start as isize } else { h.old_start as isize - 1 };
        let expected = (base + delta).clamp(0, n as isize) as usize;
        let at = locate(text, &starts, &old, old_n, expected).ok_or_else(|| EditError::HunkMismatch {
            commit: cno,
            path: path.to_string(),
            hunk: hi + 1,
            line: h.old_start,
        })?;
        let new = h.new_text();
        let new_n = h.new_lines().count();
        delta = at as isize - base + new_n as isize - old_n as isize;
        if let Some(edits) = edits.as_deref_mut() {
            stats.hunks += 1;
            edits.push(make_edit(text, &starts, at, at + old_n, &new, path, stats, opts));
        }
        text.replace_range(starts[at]..starts[at + old_n], &new);
    }
    Ok(())
}

/// Where the old side sits: at the expected line when it matches there, else at the nearest line
/// where it matches.
fn locate(text: &str, starts: &[usize], old: &str, old_n: usize, expected: usize) -> Option<usize> {
    let n = starts.len() - 1;
    let matches_at = |k: usize| k + old_n <= n && &text[starts[k]..starts[k + old_n]] == old;
    if old_n == 0 || matches_at(expected) {
        return Some(expected);
    }
    (0..=n.saturating_sub(old_n)).filter(|&k| matches_at(k)).min_by_key(|&k| k.abs_diff(expected))
}

/// The edit for replacing lines `[s, e)` of `text` by `new`, with its search block grown until it
/// is unique.
#[allow(clippy::too_many_arguments)]
fn make_edit(text: &str, starts: &[usize], s: usize, e: usize, new: &str, path: &str, stats: &mut EditStats, opts: &EditOptions) -> Edit {
    let n = starts.len() - 1;
    let (mut lo, mut hi) = (s, e);
    let mut steps = 0usize;
    let unique = loop {
        let search = &text[starts[lo]..starts[hi]];
        if !search.is_empty() && count_occurrences(text, search, 2) == 1 {
            break true;
        }
        if steps == opts.max_context_growth || (lo == 0 && hi == n) {
            break false;
        }
        lo = lo.saturating_sub(1);
        hi = (hi + 1).min(n);
        steps += 1;
    };
    let search = &text[starts[lo]..starts[hi]];
    let replace = format!("{}{}{}", &text[starts[lo]..starts[s]], new, &text[starts[e]..starts[hi]]);
    if search.is_empty() {
        stats.inserts += 1;
        return Edit::Insert { path: path.to_string(), after_line: lo, text: replace };
    }
    stats.search_blocks += 1;
    stats.growth_steps += steps as u64;
    stats.max_growth_steps = stats.max_growth_steps.max(steps as u64);
    let occurrence = if unique {
        if steps == 0 {
            stats.unique_as_diffed += 1;
        } else {
            stats.unique_after_growth += 1;
        }
        None
    } else {
        stats.not_unique += 1;
        Some(occurrence_index(text, search, starts[lo]))
    };
    Edit::StrReplace { path: path.to_string(), search: search.to_string(), replace, occurrence }
}

/// Byte offsets of each line start, then the text's length: `starts[k]..starts[k + 1]` is line
/// `k` with its terminator. Lines end at `\n` only.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::with_capacity(text.len() / 32 + 2);
    starts.push(0);
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        pos += line.len();
        starts.push(pos);
    }
    starts
}

/// Occurrences of a non-empty `needle` in `hay`, overlapping ones included, counted up to `cap`.
fn count_occurrences(hay: &str, needle: &str, cap: usize) -> usize {
    let mut count = 0;
    let mut from = 0;
    while count < cap {
        match hay[from..].find(needle) {
            Some(i) => {
                count += 1;
                from += i + next_char_len(&hay[from + i..]);
            }
            None => break,
        }
    }
    count
}

/// The index, among all (overlapping) occurrences of `needle`, of the one starting at `at`.
fn occurrence_index(hay: &str, needle: &str, at: usize) -> usize {
    let mut idx = 0;
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        if from + i >= at {
            break;
        }
        idx += 1;
        from += i + next_char_len(&hay[from + i..]);
    }
    idx
}

fn next_char_len(s: &str) -> usize {
    s.chars().next().map_or(1, char::len_utf8)
}

/// An edit that does not apply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    /// The edit names a file that is not there.
    #[error("{path}: no such file; the edit expects it to exist")]
    NoFile {
        /// The file.
        path: String,
    },
    /// The search block is not in the file.
    #[error("{path}: search block not found: {excerpt:?}")]
    NotFound {
        /// The file.
        path: String,
        /// The block's start.
        excerpt: String,
    },
    /// The search block is in the file more than once and names no occurrence.
    #[error("{path}: search block occurs {count} times; it must be unique (or name its occurrence): {excerpt:?}")]
    NotUnique {
        /// The file.
        path: String,
        /// How often it occurs (counted up to 10).
        count: usize,
        /// The block's start.
        excerpt: String,
    },
    /// `Insert` after a line the file does not have.
    #[error("{path}: cannot insert after line {line}; the file has {lines} lines")]
    LineOutOfRange {
        /// The file.
        path: String,
        /// The requested line.
        line: usize,
        /// The file's line count.
        lines: usize,
    },
    /// `Create` or `Rename` onto an existing path.
    #[error("{path}: already exists")]
    Exists {
        /// The file.
        path: String,
    },
}

/// Applies edits to a set of files as a strict editor tool would: a search block must occur
/// exactly once (or name its occurrence), a created file must not exist, an edited one must.
pub fn apply_edits<'a>(files: &mut BTreeMap<String, String>, edits: impl IntoIterator<Item = &'a Edit>) -> Result<(), ApplyError> {
    for edit in edits {
        match edit {
            Edit::StrReplace { path, search, replace, occurrence } => {
                let text = files.get_mut(path).ok_or_else(|| ApplyError::NoFile { path: path.clone() })?;
                let excerpt = search.chars().take(60).collect::<String>();
                let count = if search.is_empty() { 0 } else { count_occurrences(text, search, 10) };
                let want = occurrence.unwrap_or(0);
                if count == 0 || count <= want {
                    return Err(ApplyError::NotFound { path: path.clone(), excerpt });
                }
                if occurrence.is_none() && count > 1 {
                    return Err(ApplyError::NotUnique { path: path.clone(), count, excerpt });
                }
                let mut from = 0;
                let mut at = 0;
                for _ in 0..=want {
                    let Some(i) = text[from..].find(search.as_str()) else {
                        return Err(ApplyError::NotFound { path: path.clone(), excerpt });
                    };
                    at = from + i;
                    from = at + next_char_len(&text[at..]);
                }
                text.replace_range(at..at + search.len(), replace);
            }
            Edit::Insert { path, after_line, text: ins } => {
                let text = files.get_mut(path).ok_or_else(|| ApplyError::NoFile { path: path.clone() })?;
                let starts = line_starts(text);
                let lines = starts.len() - 1;
                let Some(&at) = starts.get(*after_line) else {
                    return Err(ApplyError::LineOutOfRange { path: path.clone(), line: *after_line, lines });
                };
                text.insert_str(at, ins);
            }
            Edit::Create { path, content } => {
                if files.contains_key(path) {
                    return Err(ApplyError::Exists { path: path.clone() });
                }
                files.insert(path.clone(), content.clone());
            }
            Edit::Delete { path } => {
                files.remove(path).ok_or_else(|| ApplyError::NoFile { path: path.clone() })?;
            }
            Edit::Rename { from, to } => {
                if files.contains_key(to) {
                    return Err(ApplyError::Exists { path: to.clone() });
                }
                let content = files.remove(from).ok_or_else(|| ApplyError::NoFile { path: from.clone() })?;
                files.insert(to.clone(), content);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use agentmill_proto::FileDiff;

    use super::*;

    fn rf(path: &str, content: &str) -> RelevantFile {
        RelevantFile { path: path.into(), content: content.into() }
    }

    fn commit(diffs: &[(&str, &str)]) -> Commit {
        Commit {
            message: "m".into(),
            refined_message: None,
            diffs: diffs.iter().map(|(p, d)| FileDiff { path: p.to_string(), patch: d.to_string() }).collect(),
        }
    }

    #[test]
    fn grows_a_repeated_block_until_unique() {
        let before = "def a():\n    return 1\n\ndef b():\n    return 1\n";
        // Zero-context hunk: `    return 1` twice in the file.
        let c = commit(&[("m.py", "@@ -5 +5 @@\n-    return 1\n+    return 2\n")]);
        let pr = build_edits(&[rf("m.py", before)], &[c], &EditOptions::default()).expect("builds");
        let Edit::StrReplace { search, replace, occurrence, .. } = &pr.commits[0].edits[0] else { panic!("not a str_replace") };
        assert_eq!(search, "def b():\n    return 1\n");
        assert_eq!(replace, "def b():\n    return 2\n");
        assert_eq!(*occurrence, None);
        assert_eq!((pr.stats.unique_after_growth, pr.stats.max_growth_steps), (1, 1));
        let mut files = BTreeMap::from([("m.py".to_string(), before.to_string())]);
        apply_edits(&mut files, pr.all_edits()).expect("applies");
        assert_eq!(files, pr.files_after);
    }

    #[test]
    fn keeps_an_occurrence_when_growth_runs_out() {
        let before = "x\nx\nx\nx\n";
        let c = commit(&[("f", "@@ -3 +3 @@\n-x\n+y\n")]);
        let pr = build_edits(&[rf("f", before)], &[c], &EditOptions { max_context_growth: 0 }).expect("builds");
        assert_eq!(pr.stats.not_unique, 1);
        let mut files = BTreeMap::from([("f".to_string(), before.to_string())]);
        apply_edits(&mut files, pr.all_edits()).expect("applies");
        assert_eq!(files["f"], "x\nx\ny\nx\n");
    }

    #[test]
    fn inserts_into_an_empty_file_and_finds_shifted_hunks() {
        let c = commit(&[("e", "@@ -0,0 +1,2 @@\n+a\n+b\n"), ("s", "@@ -10,2 +10,2 @@\n p\n-q\n+r\n")]);
        let pr = build_edits(&[rf("e", ""), rf("s", "p\nq\n")], &[c], &EditOptions::default()).expect("builds");
        assert!(matches!(&pr.commits[0].edits[0], Edit::Insert { after_line: 0, .. }));
        assert_eq!(pr.files_after["e"], "a\nb\n");
        assert_eq!(pr.files_after["s"], "p\nr\n");
    }

    #[test]
    fn a_hunk_that_does_not_fit_is_an_error() {
        let c = commit(&[("s", "@@ -1,2 +1,2 @@\n p\n-q\n+r\n")]);
        let err = build_edits(&[rf("s", "p\nz\n")], &[c], &EditOptions::default()).expect_err("mismatch");
        assert!(err.to_string().contains("hunk 1"), "{err}");
    }
}
