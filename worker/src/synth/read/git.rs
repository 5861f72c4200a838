//! PRs from a local git repository, through the `git` CLI.
//!
//! - **Which commits are PRs.** The first-parent history of `to_rev` (after `from_rev`, when set):
//!   each merge commit is a PR; with [`GitOptions::single_commits`], each non-merge commit on that
//!   line is a one-commit PR too.
//! - **A merge's commits.** The chain of first parents from the merge's second parent back to
//!   where it meets the first parent's history (`git rev-list --first-parent P2 ^P1`), oldest
//!   first. For a branch without merges of its own these are exactly the commits reachable from P2
//!   and not from P1; a branch that merged other branches contributes each such merge as one step
//!   (diffed against its first parent), so every step applies to the state the previous one left.
//!   An octopus merge's third and later parents are ignored.
//! - **Snapshot.** The first parent of the first commit (the empty tree for a root commit).
//! - **Relevant files.** Every path some commit modifies, deletes or renames away (its old path)
//!   that exists at the snapshot; added files are not relevant. Contents are read byte-exact with
//!   `git cat-file --batch`; a file with a NUL in its first 8000 bytes (git's own test) or that is
//!   not UTF-8 is skipped and counted in [`PrRow::skipped_files`].
//! - **Diffs.** `git diff` of each commit against its first parent, with rename detection (`-M`),
//!   3 lines of context, Myers, no colour, no external diff or textconv, submodules ignored. Each
//!   file's section of that output is one [`FileDiff`]; a section that is not UTF-8 is left out.
//! - **Text.** GitHub's `Merge pull request #N from …` gives the PR number `N`, the title from the
//!   body's first line and the body from the rest; GitLab's `See merge request group/p!N` line
//!   gives `N` the same way; a single commit whose subject ends in `(#N)` (a squash merge) gives
//!   `N` and the subject without it. Other PRs are named by their commit id. An [`IssueMap`]
//!   adds issue text by PR number or commit id.
//!
//! Every git call runs with a fixed environment — `LC_ALL=C`, no pager, `GIT_CONFIG_NOSYSTEM=1`,
//! `GIT_CONFIG_GLOBAL=/dev/null`, `GIT_OPTIONAL_LOCKS=0`, no inherited `GIT_DIR`-style variables —
//! and options that override what a repository's own config could change (path quoting, diff
//! prefixes, fsmonitor), so the same repository gives the same PRs on every host.
//!
//! One file, long on purpose: one reader of a repository's history through the git CLI (which
//! commits are PRs, their steps, snapshot, files, diffs and text, as listed above), each rule
//! next to the command it reads.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agentmill_proto::{Commit, FileDiff, RelevantFile};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::issues::IssueMap;
use crate::diff::{Change, DiffError, parse_file_patch, split_git_diff};
use crate::synth::row::PrRow;

/// What to read from a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitOptions {
    /// Exclusive start revision; empty = from the root.
    pub from_rev: String,
    /// Inclusive end revision; empty = `HEAD`.
    pub to_rev: String,
    /// Treat non-merge first-parent commits as one-commit PRs too.
    pub single_commits: bool,
    /// `owner/name` for the records; empty = the repository folder's name.
    pub repo_name: String,
    /// The repository description for the records.
    pub repo_description: String,
    /// Issue text by PR number or commit id.
    #[serde(skip)]
    pub issues: IssueMap,
}

/// A git call that failed.
#[derive(Debug, Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("could not run `git` ({source}); install git and put it on PATH")]
    Spawn {
        /// The OS error.
        source: std::io::Error,
    },
    /// The folder is not a git repository.
    #[error("{path} is not a git repository (git said: {stderr}); point repo_path at a clone")]
    NotARepo {
        /// The folder.
        path: String,
        /// What git said.
        stderr: String,
    },
    /// A revision of the job's range is not a commit of the repository, or looks like an option.
    #[error("{which} {rev:?} is not a commit of the repository; name a branch, tag or commit id (a revision may not start with '-')")]
    BadRevision {
        /// `from_rev` or `to_rev`.
        which: &'static str,
        /// The revision as the job named it.
        rev: String,
    },
    /// A git command exited non-zero.
    #[error("`git {args}` failed in {dir} (exit {code}): {stderr}")]
    Command {
        /// The arguments.
        args: String,
        /// The repository.
        dir: String,
        /// The exit code (-1 when killed by a signal).
        code: i32,
        /// What git said.
        stderr: String,
    },
    /// Output git should not produce.
    #[error("`git {args}` printed something unexpected: {what}")]
    Output {
        /// The arguments.
        args: String,
        /// What was wrong.
        what: String,
    },
    /// A commit's diff that cannot be parsed.
    #[error("commit {commit}: {source}")]
    Diff {
        /// The commit.
        commit: String,
        /// The parse error.
        source: DiffError,
    },
}

/// Options every git call gets, overriding what a repository's config could change.
const CONFIG: [&str; 16] = [
    "-c",
    "core.quotePath=false",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "diff.relative=false",
    "-c",
    "diff.suppressBlankEmpty=false",
    "-c",
    "log.showSignature=false",
    "-c",
    "diff.renames=true",
];

/// Variables that would point git somewhere else than the repository we name.
const UNSET: [&str; 13] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_REPLACE_REF_BASE",
];

/// The diff options of every per-commit diff.
const DIFF: [&str; 11] = [
    "diff",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "-M",
    "-U3",
    "--diff-algorithm=myers",
    "--inter-hunk-context=0",
    "--ignore-submodules=all",
    "--src-prefix=a/",
    "--dst-prefix=b/",
];

/// A local repository read through the `git` CLI.
#[derive(Debug, Clone)]
pub struct GitRepo {
    dir: PathBuf,
    empty_tree: String,
    name: String,
}

/// A first-parent commit that stands for a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrCandidate {
    /// The merge commit (or the single commit).
    pub commit: String,
    /// Its parents, first parent first.
    pub parents: Vec<String>,
}

/// A PR read from git, with the revisions a check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPr {
    /// The row, as a rows file would give it.
    pub row: PrRow,
    /// The merge commit (or the single commit).
    pub commit: String,
    /// The revision of the snapshot: the first commit's first parent, or the empty tree.
    pub snapshot: String,
    /// The last commit of the PR (a merge's second parent; the single commit itself).
    pub head: String,
    /// The PR's commits, oldest first.
    pub commits: Vec<String>,
}

impl GitRepo {
    /// Opens the repository at `dir` (a work tree or a bare repository).
    pub fn open(dir: &Path) -> Result<GitRepo, GitError> {
        let mut repo = GitRepo { dir: dir.to_path_buf(), empty_tree: String::new(), name: String::new() };
        repo.run(&["rev-parse", "--git-dir"]).map_err(|e| match e {
            GitError::Command { stderr, .. } => GitError::NotARepo { path: dir.display().to_string(), stderr },
            other => other,
        })?;
        repo.empty_tree = repo.line(&["hash-object", "-t", "tree", "/dev/null"])?;
        let top = repo.line(&["rev-parse", "--show-toplevel"]).ok().filter(|s| !s.is_empty());
        let folder = top.map(PathBuf::from).unwrap_or_else(|| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        repo.name = name.strip_suffix(".git").unwrap_or(&name).to_string();
        Ok(repo)
    }

    /// The repository's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs git with the fixed environment; returns stdout.
    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        self.run_with_input(args, None)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir).args(CONFIG).args(args);
        for v in UNSET {
            cmd.env_remove(v);
        }
        cmd.env("LC_ALL", "C")
            .env("LANG", "C")
            .env("TZ", "UTC")
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_NO_REPLACE_OBJECTS", "1");
        cmd
    }

    fn run_with_input(&self, args: &[&str], input: Option<Vec<u8>>) -> Result<Vec<u8>, GitError> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn { source })?;
        // Feed stdin from a thread: git answers as it reads, and a full stdout pipe would
        // otherwise stop it reading while we are still writing.
        let feeder = match (input, child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || stdin.write_all(&bytes))),
            _ => None,
        };
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let out_pipe = child.stdout.take();
        let mut err_pipe = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_end(&mut stderr);
            }
            stderr
        });
        if let Some(mut p) = out_pipe {
            p.read_to_end(&mut stdout).map_err(|source| GitError::Spawn { source })?;
        }
        let status = child.wait().map_err(|source| GitError::Spawn { source })?;
        let stderr = err_reader.join().unwrap_or_default();
        if let Some(f) = feeder {
            // A write error means git stopped reading; its exit status says why.
            let _ = f.join();
        }
        if !status.success() {
            return Err(GitError::Command {
                args: args.join(" "),
                dir: self.dir.display().to_string(),
                code: status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            });
        }
        Ok(stdout)
    }

    fn line(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.run(args)?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// A revision the job names, resolved to a commit id. It never reaches git as an option: one
    /// that starts with `-` is refused (`--output=FILE` would open FILE for writing), the rest go
    /// after `--end-of-options` to `rev-parse --verify`.
    fn resolve_rev(&self, which: &'static str, rev: &str) -> Result<String, GitError> {
        let bad = || GitError::BadRevision { which, rev: rev.to_string() };
        if rev.starts_with('-') || rev.contains('\0') {
            return Err(bad());
        }
        let id = self.line(&["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{rev}^{{commit}}")]).map_err(|_| bad())?;
        if id.len() < 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(id)
    }

    /// The first-parent commits that stand for PRs, oldest first.
    pub fn candidates(&self, opts: &GitOptions) -> Result<Vec<PrCandidate>, GitError> {
        let to = self.resolve_rev("to_rev", if opts.to_rev.is_empty() { "HEAD" } else { opts.to_rev.as_str() })?;
        let not_from = if opts.from_rev.is_empty() { String::new() } else { format!("^{}", self.resolve_rev("from_rev", &opts.from_rev)?) };
        let mut args = vec!["rev-list", "--first-parent", "--parents", "--reverse", "--end-of-options", to.as_str()];
        if !opts.from_rev.is_empty() {
            args.push(&not_from);
        }
        let out = String::from_utf8_lossy(&self.run(&args)?).into_owned();
        let mut cands = Vec::new();
        for line in out.lines() {
            let mut ids = line.split_whitespace().map(str::to_string);
            let Some(commit) = ids.next() else { continue };
            let parents: Vec<String> = ids.collect();
            if parents.len() >= 2 || opts.single_commits {
                cands.push(PrCandidate { commit, parents });
            }
        }
        Ok(cands)
    }

    /// Every PR of the range, oldest first, read lazily.
    pub fn prs<'a>(&'a self, opts: &'a GitOptions) -> Result<GitPrs<'a>, GitError> {
        let cands = self.candidates(opts)?;
        Ok(GitPrs { repo: self, opts, cands: cands.into_iter() })
    }

    /// Reads one candidate; `None` when a merge brings no commits (its second parent was already
    /// merged).
    pub fn read_pr(&self, cand: &PrCandidate, opts: &GitOptions) -> Result<Option<GitPr>, GitError> {
        let (chain, head) = if cand.parents.len() >= 2 {
            let not_first = format!("^{}", cand.parents[0]);
            let out = self.run(&["rev-list", "--first-parent", "--reverse", "--end-of-options", &cand.parents[1], &not_first])?;
            let chain: Vec<String> = String::from_utf8_lossy(&out).split_whitespace().map(str::to_string).collect();
            (chain, cand.parents[1].clone())
        } else {
            (vec![cand.commit.clone()], cand.commit.clone())
        };
        if chain.is_empty() {
            return Ok(None);
        }
        let mut commits = Vec::with_capacity(chain.len());
        let mut old_paths = BTreeSet::new();
        let mut author = None;
        let mut snapshot = None;
        let mut skipped = BTreeSet::new();
        for id in &chain {
            let info = self.commit_info(id)?;
            let parent = info.parents.first().cloned().unwrap_or_else(|| self.empty_tree.clone());
            if snapshot.is_none() {
                snapshot = Some(parent.clone());
                author = Some(info.author.clone());
            }
            let mut args: Vec<&str> = DIFF.to_vec();
            args.extend([parent.as_str(), id.as_str()]);
            let diff = self.run(&args)?;
            let sections = split_git_diff(&diff).map_err(|source| GitError::Diff { commit: id.clone(), source })?;
            let mut diffs = Vec::with_capacity(sections.len());
            for section in sections {
                let Ok(text) = std::str::from_utf8(section) else {
                    if let Ok(fp) = parse_file_patch(&String::from_utf8_lossy(section), "") {
                        skipped.insert(fp.path().to_string());
                    }
                    continue;
                };
                let fp = parse_file_patch(text, "").map_err(|source| GitError::Diff { commit: id.clone(), source })?;
                if matches!(fp.change, Some(Change::Modified | Change::Deleted | Change::Renamed | Change::Copied))
                    && let Some(old) = &fp.old_path
                {
                    old_paths.insert(old.clone());
                }
                diffs.push(FileDiff { path: fp.path().to_string(), patch: text.to_string() });
            }
            commits.push(Commit { message: info.message, refined_message: None, diffs });
        }
        let snapshot = snapshot.unwrap_or_else(|| self.empty_tree.clone());
        let (relevant_files, unreadable) = self.read_files(&snapshot, &old_paths)?;
        skipped.extend(unreadable);

        let message = self.commit_info(&cand.commit)?.message;
        let is_merge = cand.parents.len() >= 2;
        let text = pr_text(&message, is_merge);
        let pr_id = text.number.clone().unwrap_or_else(|| cand.commit.clone());
        let issue = opts.issues.lookup(text.number.as_deref(), &cand.commit).cloned();
        let row = PrRow {
            repo_name: if opts.repo_name.is_empty() { self.name.clone() } else { opts.repo_name.clone() },
            repo_description: opts.repo_description.clone(),
            pr_id,
            title: text.title,
            body: text.body,
            pr_summary: String::new(),
            related_issue: issue,
            relevant_files,
            commits,
            merged: Some(true),
            author: author.filter(|a| !a.is_empty()),
            base_commit: if snapshot == self.empty_tree { String::new() } else { snapshot.clone() },
            skipped_files: skipped.len() as u64,
            ..PrRow::default()
        };
        Ok(Some(GitPr { row, commit: cand.commit.clone(), snapshot, head, commits: chain }))
    }

    /// Reads the text files among `paths` at `rev`; returns them and the paths skipped as binary
    /// or not UTF-8. Paths missing at `rev` are not relevant and not counted.
    fn read_files(&self, rev: &str, paths: &BTreeSet<String>) -> Result<(Vec<RelevantFile>, Vec<String>), GitError> {
        let mut files = Vec::new();
        let mut skipped = Vec::new();
        if paths.is_empty() || rev == self.empty_tree {
            return Ok((files, skipped));
        }
        // `cat-file --batch` reads one object name a line; a path with a newline goes alone.
        let (batch, single): (Vec<&String>, Vec<&String>) = paths.iter().partition(|p| !p.contains('\n'));
        let mut blobs: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        if !batch.is_empty() {
            let input: String = batch.iter().map(|p| format!("{rev}:{p}\n")).collect();
            let out = self.run_with_input(&["cat-file", "--batch"], Some(input.into_bytes()))?;
            let contents = parse_batch(&out, batch.len()).map_err(|what| GitError::Output { args: "cat-file --batch".into(), what })?;
            blobs.extend(batch.iter().map(|p| p.to_string()).zip(contents));
        }
        for p in single {
            let spec = format!("{rev}:{p}");
            let kind = self.run(&["cat-file", "-t", &spec]).ok().map(|k| String::from_utf8_lossy(&k).trim().to_string());
            let content = match kind.as_deref() {
                Some("blob") => Some(self.run(&["cat-file", "blob", &spec])?),
                _ => None,
            };
            blobs.push((p.clone(), content));
        }
        blobs.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, content) in blobs {
            let Some(bytes) = content else { continue };
            let head = &bytes[..bytes.len().min(8000)];
            if head.contains(&0) {
                skipped.push(path);
                continue;
            }
            match String::from_utf8(bytes) {
                Ok(text) => files.push(RelevantFile { path, content: text }),
                _ => skipped.push(path),
            }
        }
        Ok((files, skipped))
    }

    fn commit_info(&self, id: &str) -> Result<CommitInfo, GitError> {
        let raw = self.run(&["cat-file", "commit", id])?;
        let (headers, message) = match find(&raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (&raw[..], &[][..]),
        };
        let mut info = CommitInfo { parents: Vec::new(), author: String::new(), message: String::from_utf8_lossy(message).into_owned() };
        for h in headers.split(|&b| b == b'\n') {
            let h = String::from_utf8_lossy(h);
            if let Some(p) = h.strip_prefix("parent ") {
                info.parents.push(p.trim().to_string());
            } else if let Some(a) = h.strip_prefix("author ") {
                info.author = a.split(" <").next().unwrap_or_default().trim().to_string();
            }
        }
        Ok(info)
    }
}

struct CommitInfo {
    parents: Vec<String>,
    author: String,
    message: String,
}

/// The PRs of a repository, read one at a time.
#[derive(Debug)]
pub struct GitPrs<'a> {
    repo: &'a GitRepo,
    opts: &'a GitOptions,
    cands: std::vec::IntoIter<PrCandidate>,
}

impl Iterator for GitPrs<'_> {
    type Item = Result<GitPr, GitError>;

    fn next(&mut self) -> Option<Self::Item> {
        for cand in self.cands.by_ref() {
            match self.repo.read_pr(&cand, self.opts) {
                Ok(Some(pr)) => return Some(Ok(pr)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }
}

/// Reads `cat-file --batch` output: one entry per request, `None` for a missing object or one
/// that is not a blob.
fn parse_batch(mut out: &[u8], expected: usize) -> Result<Vec<Option<Vec<u8>>>, String> {
    let mut res = Vec::with_capacity(expected);
    while res.len() < expected {
        let nl = find(out, b"\n").ok_or("an entry header without a newline")?;
        let header = String::from_utf8_lossy(&out[..nl]).into_owned();
        out = &out[nl + 1..];
        let fields: Vec<&str> = header.rsplitn(3, ' ').collect();
        // `<oid> <type> <size>` or `<name> missing` / `<name> ambiguous`.
        if fields.len() == 3
            && let Ok(size) = fields[0].parse::<usize>()
        {
            if out.len() < size + 1 {
                return Err(format!("entry `{header}` is cut short"));
            }
            let content = out[..size].to_vec();
            out = &out[size + 1..];
            res.push((fields[1] == "blob").then_some(content));
        } else if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            res.push(None);
        } else {
            return Err(format!("unreadable entry header `{header}`"));
        }
    }
    Ok(res)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A PR's number, title and body, read from its merge (or commit) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrText {
    /// The PR number, when the message names one.
    pub number: Option<String>,
    /// The title.
    pub title: String,
    /// The body.
    pub body: String,
}

/// Reads a merge or commit message as GitHub, GitLab and squash merges write them.
pub fn pr_text(message: &str, is_merge: bool) -> PrText {
    let message = message.trim();
    let (subject, rest) = match message.split_once('\n') {
        Some((s, r)) => (s.trim(), r.trim()),
        None => (message, ""),
    };
    let split_title = |rest: &str| -> (String, String) {
        match rest.split_once('\n') {
            Some((t, b)) => (t.trim().to_string(), b.trim().to_string()),
            None => (rest.trim().to_string(), String::new()),
        }
    };
    if is_merge {
        if let Some(after) = subject.strip_prefix("Merge pull request #") {
            let number: String = after.chars().take_while(char::is_ascii_digit).collect();
            if !number.is_empty() {
                let (title, body) = if rest.is_empty() { (subject.to_string(), String::new()) } else { split_title(rest) };
                return PrText { number: Some(number), title, body };
            }
        }
        let mut gitlab = None;
        let kept: Vec<&str> = rest
            .lines()
            .filter(|l| match l.trim().strip_prefix("See merge request ").and_then(|r| r.rsplit_once('!')) {
                Some((_, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                    gitlab = Some(n.to_string());
                    false
                }
                _ => true,
            })
            .collect();
        if let Some(n) = gitlab {
            let rest = kept.join("\n");
            let (title, body) = if rest.trim().is_empty() { (subject.to_string(), String::new()) } else { split_title(rest.trim()) };
            return PrText { number: Some(n), title, body };
        }
        return PrText { number: None, title: subject.to_string(), body: rest.to_string() };
    }
    if let Some(head) = subject.strip_suffix(')')
        && let Some((title, n)) = head.rsplit_once(" (#")
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
    {
        return PrText { number: Some(n.to_string()), title: title.trim().to_string(), body: rest.to_string() };
    }
    PrText { number: None, title: subject.to_string(), body: rest.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pr_numbers_from_merge_messages() {
        let gh = pr_text("Merge pull request #42 from me/fix\n\nFix the parser\n\nIt broke on tabs.\n", true);
        assert_eq!(gh, PrText { number: Some("42".into()), title: "Fix the parser".into(), body: "It broke on tabs.".into() });
        let gl = pr_text("Merge branch 'fix' into 'main'\n\nFix it\n\nSee merge request grp/proj!7", true);
        assert_eq!((gl.number.as_deref(), gl.title.as_str(), gl.body.as_str()), (Some("7"), "Fix it", ""));
        let plain = pr_text("Merge branch 'feature'\n", true);
        assert_eq!((plain.number, plain.title.as_str()), (None, "Merge branch 'feature'"));
        let squash = pr_text("Speed up io (#913)\n\n* detail", false);
        assert_eq!((squash.number.as_deref(), squash.title.as_str(), squash.body.as_str()), (Some("913"), "Speed up io", "* detail"));
    }

    #[test]
    fn reads_batch_output() {
        let out = b"abc blob 3\nx\ny\nHEAD:a b missing\nabd tree 2\nzz\n";
        let r = parse_batch(out, 3).expect("parses");
        assert_eq!(r, vec![Some(b"x\ny".to_vec()), None, None]);
        assert!(parse_batch(b"abc blob 10\nshort\n", 1).is_err());
    }
}
