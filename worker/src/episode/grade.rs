//! The `grade` stage: in a **fresh** container, apply the model's patch (with SWE-bench's
//! fallbacks) and the task's test patch, run the repository's own tests, and resolve by
//! SWE-bench's rule.

use std::time::Duration;

use agentmill_proto::{Grading, Task, TestOutcome, TestStatus};

use super::init::tail;
use crate::grading::{grade_log, test_command};
use crate::repo::{applied_method, apply_patch_script};
use crate::sandbox::{ExecRequest, Sandbox, SandboxError};

/// Default timeout of the test run.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(1800);
/// How much of the test log a record keeps.
const LOG_TAIL: usize = 16 * 1024;

/// Grades `model_patch` in `sandbox` (a fresh container with the repository at its base commit).
/// A patch that does not apply grades `NO` with every test `missing` (the model's failure); a
/// test patch that does not apply is a sandbox error (the task's fault, retried elsewhere or failed).
pub async fn grade(sandbox: &dyn Sandbox, task: &Task, model_patch: &str, test_timeout: Duration) -> Result<Grading, SandboxError> {
    let dir = sandbox.agentmill_dir();
    let model_path = format!("{dir}/model.patch");
    sandbox.write_file(&model_path, model_patch.as_bytes()).await?;
    let applied = sandbox.exec(&ExecRequest::new(apply_patch_script(&model_path)).timeout(Duration::from_secs(120))).await?;
    let method = if applied.exit_code == 0 { applied_method(&applied.output).unwrap_or("git apply").to_string() } else { "failed".to_string() };
    if method == "failed" {
        let missing = |ids: &[String]| ids.iter().map(|n| TestOutcome { name: n.clone(), status: TestStatus::Missing }).collect();
        let mut g = Grading::from_outcomes(missing(&task.fail_to_pass), missing(&task.pass_to_pass), "failed");
        g.log_tail = tail(&applied.output, LOG_TAIL).to_string();
        return Ok(g);
    }
    if !task.test_patch.is_empty() {
        let test_path = format!("{dir}/test.patch");
        sandbox.write_file(&test_path, task.test_patch.as_bytes()).await?;
        // The tests' files are restored first, so a model that edited them cannot game them.
        let restore = format!(
            "git apply --numstat {test} | cut -f3- | while IFS= read -r f; do \
               if git cat-file -e \"HEAD:$f\" 2>/dev/null; then git checkout -q HEAD -- \"$f\"; else rm -f -- \"$f\"; fi; \
             done\ngit apply --verbose {test}",
            test = crate::shell::quote(&test_path)
        );
        let out = sandbox.exec(&ExecRequest::new(restore).timeout(Duration::from_secs(120))).await?;
        if out.exit_code != 0 {
            return Err(SandboxError::Engine(format!("the task's test_patch does not apply: {}", tail(&out.output, 2000))));
        }
    }
    let command = match &task.eval_script {
        Some(script) => {
            let path = format!("{dir}/eval.sh");
            sandbox.write_file(&path, script.as_bytes()).await?;
            format!("bash {path}")
        }
        None => test_command(task),
    };
    let run = sandbox.exec(&ExecRequest::new(command).timeout(test_timeout).max_output(8 << 20)).await?;
    let mut grading = grade_log(task, &run.output, &method);
    grading.test_exit_code = Some(run.exit_code);
    grading.log_tail = tail(&run.output, LOG_TAIL).to_string();
    Ok(grading)
}
