//! Putting a task's repository in place inside a sandbox.
//!
//! An `archive` source is a plain tree (no `.git`): after upload the worker commits it with a
//! fixed identity and date, so the commit id is the same on every host and equals the task's
//! `base_commit` (`deploy/tasks/build.sh` computes it the same way). Model patches are then
//! `git diff` against that commit.

/// The identity and date of the base commit made from an archive.
pub const BASE_COMMIT_ENV: [(&str, &str); 8] = [
    // The container's own git configuration (hooks, autocrlf, signing) must not change the id.
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_AUTHOR_NAME", "agentmill"),
    ("GIT_AUTHOR_EMAIL", "agentmill@localhost"),
    ("GIT_COMMITTER_NAME", "agentmill"),
    ("GIT_COMMITTER_EMAIL", "agentmill@localhost"),
    ("GIT_AUTHOR_DATE", "2000-01-01T00:00:00Z"),
    ("GIT_COMMITTER_DATE", "2000-01-01T00:00:00Z"),
];

/// A shell script that turns the uploaded tree in the current folder into a git repository with
/// one deterministic commit, and prints that commit's id on its last line.
pub fn init_archive_repo_script() -> String {
    let env: Vec<String> = BASE_COMMIT_ENV.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
    format!(
        "set -e\n\
         export {}\n\
         git -c init.defaultBranch=main init -q\n\
         git add -A\n\
         {} git -c commit.gpgsign=false commit -q -m base\n\
         git rev-parse HEAD\n",
        env[..2].join(" "),
        env[2..].join(" ")
    )
}

/// A shell script that applies the patch file at `path` from the repository root, trying what
/// SWE-bench's harness tries in order; prints `APPLIED <method>` on success and exits non-zero
/// when nothing applies.
pub fn apply_patch_script(path: &str) -> String {
    let p = crate::shell::quote(path);
    format!(
        "if [ ! -f {p} ]; then echo 'APPLY FAILED: no patch file at '{p}; exit 2; fi\n\
         if [ ! -s {p} ]; then echo 'APPLIED empty'; exit 0; fi\n\
         if git apply --verbose {p} 2>&1; then echo 'APPLIED git apply'; exit 0; fi\n\
         git checkout -q -- . 2>/dev/null || true\n\
         if git apply --verbose --3way {p} 2>&1; then echo 'APPLIED git apply --3way'; exit 0; fi\n\
         git reset -q --hard 2>/dev/null || true\n\
         if patch --batch --fuzz=5 -p1 -i {p} 2>&1; then echo 'APPLIED patch --fuzz'; exit 0; fi\n\
         echo 'APPLY FAILED'; exit 1\n"
    )
}

/// Reads the method out of [`apply_patch_script`]'s output.
pub fn applied_method(output: &str) -> Option<&str> {
    output.lines().rev().find_map(|l| l.strip_prefix("APPLIED ")).map(str::trim)
}
