//! `submit()`: ends the episode with the model's patch.
//!
//! The patch is `git add -A && git diff --cached --binary <base>` of the workdir, run in the
//! sandbox: new, deleted, renamed and binary files included, against the task's base commit even
//! when the model committed on the way. agentmill's own files live in
//! [`Sandbox::agentmill_dir`], outside the workdir, so they never show up.
//!
//! The patch is read back as bytes. A record holds the patch as text, so a text file whose diff
//! is not UTF-8 (a Latin-1 source file, say) is re-diffed in git's binary form, which is ASCII and
//! applies byte for byte; every other file keeps its readable diff.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::warn;

use super::{Args, Observation, Tool, ToolContext};
use crate::sandbox::{ExecRequest, Sandbox, SandboxError};
use crate::shell::quote;

/// The `submit` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitTool;

#[async_trait::async_trait]
impl Tool for SubmitTool {
    fn name(&self) -> &'static str {
        "submit"
    }

    fn schema(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": "submit",
                "description": "Submit your changes and end the task. The submission is every change in the repository folder (the `git diff` against the original commit), so remove scratch files you do not want in it first.",
                "parameters": {"type": "object", "properties": {}, "required": []}
            }
        })
    }

    async fn call(&mut self, _args: &Args, ctx: &ToolContext<'_>) -> Result<Observation, SandboxError> {
        let patch = collect_patch(ctx.sandbox, ctx.base_commit, ctx.step_timeout.max(Duration::from_secs(60))).await?;
        let content = if patch.is_empty() {
            "Submitted an empty patch: the repository has no changes against the original commit.".to_string()
        } else {
            format!("Submitted. The patch of your changes:\n\n{patch}")
        };
        let mut observation = Observation::ok(content);
        observation.submission = Some(patch);
        Ok(observation)
    }
}

/// Where the patch is written in the sandbox before it is read back.
fn patch_file(sandbox: &dyn Sandbox) -> String {
    format!("{}/model.patch", sandbox.agentmill_dir())
}

/// Options every diff of the model's patch uses: the whole change (no external diff drivers or
/// text conversion, standard `a/` `b/` prefixes whatever the repo's config says), binary-safe.
const DIFF_OPTS: &str = "--cached --binary --no-color --no-ext-diff --no-textconv --src-prefix=a/ --dst-prefix=b/";

/// The model's patch: every change in the sandbox's workdir against `base_commit` (or `HEAD`
/// when the base is empty or unknown in the repository), as `git apply` takes it.
pub async fn collect_patch(sandbox: &dyn Sandbox, base_commit: &str, timeout: Duration) -> Result<String, SandboxError> {
    let base = if base_commit.trim().is_empty() { "HEAD" } else { base_commit.trim() };
    let script = format!(
        "cd {workdir} || exit 3\n\
         if [ -z {base} ] || [ {base} = HEAD ]; then git -c safe.directory='*' rev-parse --is-inside-work-tree >/dev/null 2>&1 || {{ echo 'NO REPOSITORY'; exit 0; }}; fi\n\
         mkdir -p {dir} || exit 3\n\
         base={base}\n\
         if ! git -c safe.directory='*' rev-parse -q --verify \"$base^{{commit}}\" >/dev/null; then echo \"UNKNOWN BASE $base\"; base=HEAD; fi\n\
         git -c safe.directory='*' add -A || exit 4\n\
         git -c safe.directory='*' diff {DIFF_OPTS} \"$base\" > {file} || exit 5\n\
         echo \"BASE $base\"\n",
        workdir = quote(sandbox.workdir()),
        dir = quote(sandbox.agentmill_dir()),
        base = quote(base),
        file = quote(&patch_file(sandbox)),
    );
    let out = sandbox.exec(&ExecRequest::new(script).timeout(timeout)).await?;
    if out.exit_code != 0 {
        return Err(SandboxError::Engine(format!(
            "collecting the patch with git failed (exit {}): {}; the workdir {} must be a git repository",
            out.exit_code,
            out.output.trim(),
            sandbox.workdir()
        )));
    }
    if out.output.trim() == "NO REPOSITORY" {
        // A task without a repository (a Harbor task's environment): nothing to diff; its
        // verifier grades the sandbox's state, not a patch.
        return Ok(String::new());
    }
    let base_used = out.output.lines().rev().find_map(|l| l.strip_prefix("BASE ")).unwrap_or("HEAD").to_string();
    if out.output.contains("UNKNOWN BASE") {
        warn!(base = %base_commit, "the base commit is not in the sandbox's repository; the patch is taken against HEAD");
    }
    let bytes = sandbox.read_file(&patch_file(sandbox)).await?;
    match String::from_utf8(bytes) {
        Ok(patch) => Ok(patch),
        Err(_) => utf8_patch(sandbox, &base_used, timeout).await,
    }
}

/// Re-diffs file by file, giving the files whose diff is not UTF-8 git's binary form.
async fn utf8_patch(sandbox: &dyn Sandbox, base: &str, timeout: Duration) -> Result<String, SandboxError> {
    let attributes = format!("{}/binary.gitattributes", sandbox.agentmill_dir());
    // `core.attributesFile` ranks below the repository's own `.gitattributes`; a repository
    // that forces `diff` on such a file keeps its text diff, and the lossy fallback below applies.
    let script = format!(
        "cd {workdir} || exit 3\n\
         printf '* binary\\n' > {attrs}\n\
         : > {file}\n\
         git -c safe.directory='*' diff --cached --no-renames --name-only -z {base} > {list} || exit 5\n\
         while IFS= read -r -d '' f; do\n\
           if git -c safe.directory='*' --literal-pathspecs diff {DIFF_OPTS} --no-renames {base} -- \"$f\" | LC_ALL=C.UTF-8 grep -aqxv '.*'; then\n\
             git -c safe.directory='*' -c core.attributesFile={attrs} --literal-pathspecs diff {DIFF_OPTS} --no-renames {base} -- \"$f\" >> {file} || exit 5\n\
           else\n\
             git -c safe.directory='*' --literal-pathspecs diff {DIFF_OPTS} --no-renames {base} -- \"$f\" >> {file} || exit 5\n\
           fi\n\
         done < {list}\n",
        workdir = quote(sandbox.workdir()),
        attrs = quote(&attributes),
        file = quote(&patch_file(sandbox)),
        list = quote(&format!("{}/changed.list", sandbox.agentmill_dir())),
        base = quote(base),
    );
    let out = sandbox.exec(&ExecRequest::new(script).timeout(timeout)).await?;
    if out.exit_code != 0 {
        return Err(SandboxError::Engine(format!("re-diffing the patch file by file failed (exit {}): {}", out.exit_code, out.output.trim())));
    }
    let bytes = sandbox.read_file(&patch_file(sandbox)).await?;
    Ok(match String::from_utf8(bytes) {
        Ok(patch) => patch,
        Err(e) => {
            warn!("the patch is still not UTF-8 after re-diffing; invalid bytes are replaced and the patch may not apply");
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    })
}
