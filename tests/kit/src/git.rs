//! Git repositories for tests, made with the `git` CLI under a fixed identity and date (and no
//! user or system configuration), so a repository's commit id depends only on its files and
//! message.

use std::path::Path;
use std::process::{Command, Stdio};

/// The environment of every git call here: no user or system configuration, a fixed identity
/// and a fixed date. The date differs from the bundled archives' base commits
/// (worker/src/repo.rs), so a commit made here never collides with one of theirs.
pub const GIT_ENV: [(&str, &str); 8] = [
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_AUTHOR_NAME", "agentmill-test"),
    ("GIT_AUTHOR_EMAIL", "test@agentmill.invalid"),
    ("GIT_COMMITTER_NAME", "agentmill-test"),
    ("GIT_COMMITTER_EMAIL", "test@agentmill.invalid"),
    ("GIT_AUTHOR_DATE", "2024-02-29T12:00:00Z"),
    ("GIT_COMMITTER_DATE", "2024-02-29T12:00:00Z"),
];

/// Runs git in `dir` with [`GIT_ENV`]; panics with its output when it fails; returns stdout,
/// trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).envs(GIT_ENV).stdin(Stdio::null()).output().expect("run git");
    assert!(out.status.success(), "git {args:?} in {} failed: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes the files in `dir` a repository of one commit (branch `main`) that a `git daemon` or
/// `upload-pack` serves by commit id (`uploadpack.allowAnySHA1InWant`, as a shallow fetch of a
/// base commit asks); returns the commit id.
pub fn commit_as_served_repo(dir: &Path, message: &str) -> String {
    git(dir, &["-c", "init.defaultBranch=main", "init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["-c", "commit.gpgsign=false", "commit", "-q", "-m", message]);
    git(dir, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    git(dir, &["rev-parse", "HEAD"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_files_and_message_make_the_same_commit() {
        let root = std::env::temp_dir().join(crate::unique("agentmill-test-git"));
        let commits: Vec<String> = ["a", "b"]
            .iter()
            .map(|name| {
                let dir = root.join(name);
                std::fs::create_dir_all(&dir).expect("mkdir");
                std::fs::write(dir.join("f.txt"), "same\n").expect("write");
                commit_as_served_repo(&dir, "one commit")
            })
            .collect();
        let other = root.join("c");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::write(other.join("f.txt"), "same\n").expect("write");
        let different = commit_as_served_repo(&other, "another message");
        let allowed = git(&root.join("a"), &["config", "uploadpack.allowAnySHA1InWant"]);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(commits[0].len(), 40, "{commits:?}");
        assert_eq!(commits[0], commits[1]);
        assert_ne!(commits[0], different);
        assert_eq!(allowed, "true");
    }
}
