//! The `grade` phase: in a **fresh** container, apply the model's patch as the task's reference
//! harness does, run its eval script (or, for agentmill's own rows, the test patch and the test
//! command), and read the log by the harness's rules.
//!
//! What the reference would not grade — the model's patch or the test patch not applying, a run
//! past its timeout, a log with no test output — comes back as a [`Grading`] with `not_graded`
//! set; the episode then ends as the task's or the infrastructure's problem, not the model's.

use std::time::Duration;

use agentmill_proto::dataset::{ApplyChain, EvalPlan, Family, RevertTests, ScriptOptions, eval_plan};
use agentmill_proto::{Grading, Task};

use super::init::tail;
use crate::grading::{TEST_IDS_FILE, grade_log, test_command};
use crate::sandbox::{ExecRequest, Keep, Sandbox, SandboxError};
use crate::shell::quote;

/// Default timeout of the test run.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(1800);
/// How much of the test log a record keeps.
const LOG_TAIL: usize = 16 * 1024;
/// How much of a test log the grader keeps: the first eighth and the rest from the end, where
/// the summary, the end marker and the exit code are.
pub const MAX_TEST_LOG: usize = 64 << 20;

/// Plans grading for `task` in `sandbox` (whether its image has conda decides two lines of a
/// SWE-bench script).
pub async fn plan_in(sandbox: &dyn Sandbox, task: &Task) -> Result<EvalPlan, SandboxError> {
    let conda = if matches!(task.family, Family::Swebench | Family::SweRebench | Family::SweGym) {
        let probe = sandbox.exec(&ExecRequest::new("test -f /opt/miniconda3/bin/activate").timeout(Duration::from_secs(30))).await?;
        probe.exit_code == 0
    } else {
        true
    };
    eval_plan(task, &ScriptOptions { conda }).map_err(|e| SandboxError::Io(format!("task {}: {e}", task.instance_id)))
}

/// Grades `model_patch` in `sandbox` (a fresh container with the repository at its base commit).
pub async fn grade(sandbox: &dyn Sandbox, task: &Task, model_patch: &str, test_timeout: Duration) -> Result<Grading, SandboxError> {
    let plan = plan_in(sandbox, task).await?;
    if model_patch.trim().is_empty() {
        // The harnesses do not run an empty prediction: every test failed, the model's failure.
        let mut g = Grading::empty_patch(&task.fail_to_pass, &task.pass_to_pass);
        g.rules = plan.rules.as_str().to_string();
        g.log_parser = plan.parser.clone();
        return Ok(g);
    }
    let dir = sandbox.agentmill_dir();
    let not_graded = |why: String, log: &str| {
        let mut g = Grading::not_graded(&task.fail_to_pass, &task.pass_to_pass, "failed", why);
        g.rules = plan.rules.as_str().to_string();
        g.log_parser = plan.parser.clone();
        g.log_tail = tail(log, LOG_TAIL).to_string();
        g
    };
    if !plan.setup.is_empty() {
        let out = sandbox.exec(&ExecRequest::new(format!("set -e\n{}", plan.setup.join("\n"))).timeout(Duration::from_secs(300))).await?;
        if out.exit_code != 0 {
            return Ok(not_graded(format!("the harness's setup failed in the image ({}): the task or its image is broken", plan.setup.join("; ")), &out.output));
        }
    }
    let model_path = format!("{dir}/model.patch");
    sandbox.write_file(&model_path, model_patch.as_bytes()).await?;
    if plan.reset_patch_files
        && let Ok(paths) = agentmill_proto::dataset::patch::patch_paths(model_patch)
        && !paths.is_empty()
    {
        // SWE-smith restores the patch's files first (its exit status is not checked).
        let files: Vec<String> = paths.iter().map(|p| quote(p)).collect();
        sandbox.exec(&ExecRequest::new(format!("git checkout -- {}", files.join(" "))).timeout(Duration::from_secs(120))).await?;
    }
    let (method, applied_log) = if plan.apply == ApplyChain::InScript {
        // The eval script applies it (and says so in its log when it does not apply).
        ("in eval script".to_string(), String::new())
    } else {
        let applied = sandbox.exec(&ExecRequest::new(apply_script(plan.apply, &model_path)).timeout(Duration::from_secs(300))).await?;
        let method = if applied.exit_code == 0 { applied_method(&applied.output).unwrap_or("git apply").to_string() } else { "failed".to_string() };
        (method, applied.output)
    };
    if method == "failed" {
        return Ok(not_graded(format!("the model's patch does not apply to the base commit ({}'s harness: patch apply failed)", plan.family), &applied_log));
    }
    let revert = match &plan.revert_tests {
        RevertTests::None => None,
        RevertTests::Files(files) => Some(format!("git checkout -- {}", files.iter().map(|f| quote(f)).collect::<Vec<_>>().join(" "))),
        RevertTests::GoFunctions(names) => {
            // SWE-smith's Go profile: the *_test.go files defining each listed top-level function.
            let pattern = names.iter().filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_')).cloned().collect::<Vec<_>>().join("|");
            (!pattern.is_empty()).then(|| {
                format!("files=$(grep -rlE --include='*_test.go' {} . | sort -u); [ -z \"$files\" ] || git checkout -- $files", quote(&format!("^[[:space:]]*func[[:space:]]+({pattern})([^[:alnum:]_]|$)")))
            })
        }
    };
    if let Some(cmd) = revert {
        // The listed tests' files as the task has them: the model's edits to them do not count.
        sandbox.exec(&ExecRequest::new(cmd).timeout(Duration::from_secs(120))).await?;
    }
    // The harness's own limit on its eval script, where the task sets none.
    let test_timeout = match (task.limits.test_timeout_s, plan.timeout_s) {
        (None, Some(s)) => Duration::from_secs(s),
        _ => test_timeout,
    };
    run_graded(sandbox, task, &plan, &method, test_timeout).await
}

/// Runs the plan's tests in `sandbox`, where the model's patch went in by `method`, and grades
/// the log. For agentmill's own rows the test files are restored and the test patch applied
/// first (a test patch already in place is restored and applied again). A dataset's eval script
/// runs with its stderr joined to its stdout, so the log is in the order the script wrote it.
pub async fn run_graded(sandbox: &dyn Sandbox, task: &Task, plan: &EvalPlan, method: &str, test_timeout: Duration) -> Result<Grading, SandboxError> {
    let dir = sandbox.agentmill_dir();
    let mut env = std::collections::BTreeMap::new();
    let command = match (&plan.script, plan.family) {
        (Some(script), Family::SweRebenchV2) => {
            // Its eval.py applies both patches in the script and logs stdout, then stderr.
            let path = format!("{dir}/eval.sh");
            sandbox.write_file(&path, script.as_bytes()).await?;
            let test_path = format!("{dir}/test.patch");
            sandbox.write_file(&test_path, task.test_patch.as_bytes()).await?;
            env.insert("AGENTMILL_MODEL_PATCH".to_string(), format!("{dir}/model.patch"));
            env.insert("AGENTMILL_TEST_PATCH".to_string(), test_path);
            let stderr = quote(&format!("{dir}/stderr.log"));
            format!("/bin/bash {} 2>{stderr}; status=$?; cat {stderr}; exit $status", quote(&path))
        }
        (Some(script), family) if family != Family::Agentmill => {
            let path = format!("{dir}/eval.sh");
            sandbox.write_file(&path, script.as_bytes()).await?;
            // Its stderr joins its stdout inside the sandbox, so the log keeps the order the
            // script wrote it in. Docker carries the two streams apart and delivers them out of
            // order under load (a stderr line written 200 ms after a stdout line arrived before
            // it), and the parsers read order across them: `set -x` traces each command on
            // stderr, so `parse_log_maven`, which names a result after the `-Dtest=` traced
            // before it, paired tests with their neighbours' results, and cargo's `Running`
            // line (stderr) cut libtest's `test x ... ok` (stdout) in two.
            format!("/bin/bash {} 2>&1", quote(&path))
        }
        (script, _) => {
            // agentmill's own rows: the test files restored (a model that edited them cannot game
            // them), the test patch applied, then the row's script or the test command.
            if !task.test_patch.is_empty() {
                let test_path = format!("{dir}/test.patch");
                sandbox.write_file(&test_path, task.test_patch.as_bytes()).await?;
                let restore = format!(
                    "git apply --numstat {test} | cut -f3- | while IFS= read -r f; do \
                       if git cat-file -e \"HEAD:$f\" 2>/dev/null; then git checkout -q HEAD -- \"$f\"; else rm -f -- \"$f\"; fi; \
                     done\ngit apply --verbose {test}",
                    test = quote(&test_path)
                );
                let out = sandbox.exec(&ExecRequest::new(restore).timeout(Duration::from_secs(120))).await?;
                if out.exit_code != 0 {
                    let mut g = Grading::not_graded(&task.fail_to_pass, &task.pass_to_pass, method, "the task's test_patch does not apply to the base commit: the task is broken");
                    g.rules = plan.rules.as_str().to_string();
                    g.log_tail = tail(&out.output, LOG_TAIL).to_string();
                    return Ok(g);
                }
            }
            match script {
                Some(script) => {
                    let path = format!("{dir}/eval.sh");
                    sandbox.write_file(&path, script.as_bytes()).await?;
                    format!("bash {}", quote(&path))
                }
                None => {
                    let ids_path = format!("{dir}/{TEST_IDS_FILE}");
                    let mut ids = task.all_tests().collect::<Vec<_>>().join("\n");
                    ids.push('\n');
                    sandbox.write_file(&ids_path, ids.as_bytes()).await?;
                    test_command(task, &ids_path)
                }
            }
        }
    };
    let mut request = ExecRequest::new(command).timeout(test_timeout).max_output(MAX_TEST_LOG).keep(Keep::HeadAndTail);
    request.env = env;
    let run = sandbox.exec(&request).await?;
    let mut log = run.output;
    if run.timed_out {
        // As the reference harnesses write it; the rules then leave the run ungraded.
        log.push_str(&format!("\n\nTimeout error: {} seconds exceeded.", test_timeout.as_secs()));
    }
    let mut grading = grade_log(task, plan, &log, method).map_err(|e| SandboxError::Io(format!("task {}: {e}", task.instance_id)))?;
    // A dataset's eval script ends by resetting the test files, so its own exit status says
    // nothing of the tests: the test command's is the one a 5.x script records, if any.
    grading.test_exit_code = match (&plan.script, plan.family) {
        (Some(_), Family::OpenSwe) => crate::grading::rules::openswe_exit_code(&log),
        (Some(_), family) if family != Family::Agentmill => crate::grading::rules::recorded_exit_code(&log),
        _ => Some(run.exit_code),
    };
    grading.log_tail = tail(&log, LOG_TAIL).to_string();
    Ok(grading)
}

/// A shell script that applies the patch file at `path` from the repository root the way the
/// harness's chain does; prints `APPLIED <method>` on success and exits non-zero when nothing
/// applies. An empty patch applies as `empty`.
pub fn apply_script(chain: ApplyChain, path: &str) -> String {
    if chain == ApplyChain::Agentmill {
        return crate::repo::apply_patch_script(path);
    }
    let p = quote(path);
    let mut s = format!(
        "if [ ! -f {p} ]; then echo 'APPLY FAILED: no patch file at '{p}; exit 2; fi\n\
         if [ ! -s {p} ]; then echo 'APPLIED empty'; exit 0; fi\n"
    );
    for (i, cmd) in chain.commands().iter().enumerate() {
        if i > 0 && chain.resets_between_tries() {
            // 5.x: a failed try (notably --reject) leaves partial state; start the next from a
            // pristine tree.
            s.push_str("git checkout -- . ; git clean -fd >/dev/null\n");
        }
        s.push_str(&format!("if {cmd} {p} 2>&1; then echo 'APPLIED {cmd}'; exit 0; fi\n"));
    }
    if chain.resets_between_tries() {
        s.push_str(&format!("if git apply --check --reverse {p} 2>&1; then echo 'APPLIED already'; exit 0; fi\n"));
    }
    s.push_str("echo 'APPLY FAILED'; exit 1\n");
    s
}

/// Reads the method out of [`apply_script`]'s output.
pub fn applied_method(output: &str) -> Option<&str> {
    output.lines().rev().find_map(|l| l.strip_prefix("APPLIED ")).map(str::trim)
}
