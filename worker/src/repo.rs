//! Putting a task's repository in place inside a sandbox.
//!
//! An `archive` source is either a plain tree or a checkout's tarball with its `.git`. A plain
//! tree is committed with a fixed identity and date after upload, so the commit id is the same on
//! every host and equals the task's `base_commit` (`deploy/tasks/build.sh` computes it the same
//! way). A checkout keeps its history: it must contain `base_commit`, which is checked out. Model
//! patches are then `git diff` against that commit.

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
/// one deterministic commit, and prints that commit's id on its last line (a tree that brought
/// its own `.git` stays at its `HEAD`; see [`archive_repo_script`]).
pub fn init_archive_repo_script() -> String {
    archive_repo_script("")
}

/// Exit status of [`archive_repo_script`] when the archive's history lacks the base commit.
pub const MISSING_BASE_COMMIT: i64 = 3;

/// A shell script for an uploaded archive in the current folder: a checkout (with `.git`) has
/// `base_commit` checked out (exit [`MISSING_BASE_COMMIT`] when its history lacks it; `HEAD` when
/// `base_commit` is empty); a plain tree becomes a repository with one deterministic commit.
/// Prints the resulting commit id on its last line.
pub fn archive_repo_script(base_commit: &str) -> String {
    let env: Vec<String> = BASE_COMMIT_ENV.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
    let base = crate::shell::quote(base_commit);
    format!(
        "set -e\n\
         export {}\n\
         if [ -d .git ]; then\n\
           # A checkout's tarball: its files may carry another user's ids, which git refuses.\n\
           chown -R \"$(id -u):$(id -g)\" . 2>/dev/null || true\n\
           if [ -n {base} ]; then\n\
             git cat-file -e {base}^{{commit}} 2>/dev/null || {{ echo 'the archive is a git checkout whose history does not contain base_commit '{base} >&2; exit {MISSING_BASE_COMMIT}; }}\n\
             git -c advice.detachedHead=false checkout -q -f {base}\n\
           fi\n\
         else\n\
           git -c init.defaultBranch=main init -q\n\
           git add -A\n\
           {} git -c commit.gpgsign=false commit -q -m base\n\
         fi\n\
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
