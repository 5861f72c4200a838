//! Shared by the `synth_*` tests: real git repositories built with the `git` CLI in a temporary
//! folder, golden files, and the round-trip check.

#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentmill_worker::synth::{GitPr, PrEdits, apply_edits};

/// A git repository in a temporary folder, with a fixed identity and a clock that ticks one
/// minute a commit, so commit ids are the same on every run.
pub struct TestRepo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    tick: Cell<u64>,
}

impl TestRepo {
    /// `git init` of a folder named `name` (the default repository name of its records).
    pub fn new(name: &str) -> TestRepo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("repo dir");
        let repo = TestRepo { _tmp: tmp, dir, tick: Cell::new(0) };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Runs git; panics with its stderr when it fails. Returns stdout, trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        let t = 1_700_000_000 + 60 * self.tick.get();
        let date = format!("{t} +0000");
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", "-c", "merge.ff=false", "-c", "core.safecrlf=false"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ada Dev")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Dev")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("LC_ALL", "C")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes a file (creating folders).
    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let p = self.dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("folders");
        }
        std::fs::write(p, content).expect("write");
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.tick.set(self.tick.get() + 1);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn checkout_new(&self, branch: &str) {
        self.git(&["checkout", "-q", "-b", branch]);
    }

    pub fn checkout(&self, branch: &str) {
        self.git(&["checkout", "-q", branch]);
    }

    /// `git merge --no-ff` with a message; returns the merge commit.
    pub fn merge(&self, branch: &str, message: &str) -> String {
        self.tick.set(self.tick.get() + 1);
        self.git(&["merge", "-q", "--no-ff", "-m", message, branch]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// A file's bytes at a revision, `None` when it does not exist there.
    pub fn show(&self, rev: &str, path: &str) -> Option<Vec<u8>> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["cat-file", "blob", &format!("{rev}:{path}")])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        out.status.success().then_some(out.stdout)
    }
}

/// Compares `actual` with the golden file `tests/data/synth/<name>`; `AGENTMILL_BLESS=1`
/// rewrites the golden instead.
pub fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/synth").join(name);
    if std::env::var("AGENTMILL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("bless golden");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; run with AGENTMILL_BLESS=1 to write it", path.display()));
    if expected != actual {
        let line =
            expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the render at line {}:\n  golden: {:?}\n  actual: {:?}\n(AGENTMILL_BLESS=1 rewrites goldens; read every one before committing)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The round-trip proof for a git-derived PR: applying its edits, strictly, to the snapshot
/// gives every relevant and created file exactly as it is at the PR's last commit, and a file
/// the PR removed or renamed away is gone there too.
pub fn assert_round_trip(repo: &TestRepo, pr: &GitPr, edits: &PrEdits) {
    let mut files: BTreeMap<String, String> = pr.row.relevant_files.iter().map(|f| (f.path.clone(), f.content.clone())).collect();
    for f in &pr.row.relevant_files {
        assert_eq!(repo.show(&pr.snapshot, &f.path).as_deref(), Some(f.content.as_bytes()), "{}: snapshot of {}", pr.row.pr_id, f.path);
    }
    apply_edits(&mut files, edits.all_edits()).unwrap_or_else(|e| panic!("{}: edits do not apply: {e}", pr.row.pr_id));
    assert_eq!(files, edits.files_after, "{}: strict application differs from the builder's state", pr.row.pr_id);
    for (path, content) in &files {
        assert_eq!(
            repo.show(&pr.head, path).as_deref(),
            Some(content.as_bytes()),
            "{}: {path} after the edits differs from the PR's last commit",
            pr.row.pr_id
        );
    }
    for f in &pr.row.relevant_files {
        if !files.contains_key(&f.path) {
            assert_eq!(repo.show(&pr.head, &f.path), None, "{}: {} was edited away but exists at the PR's head", pr.row.pr_id, f.path);
        }
    }
}
