//! Rows of the other dataset families, run end to end in real containers as their harnesses run
//! them: environments of each family's shape are built here, offline, from a bundled project
//! (a SWE-smith mirror whose instance is a branch; …), the rows are written in the family's own
//! form, and `agentmill-worker run --policy replay --validate` must resolve them, while a wrong
//! patch grades as the harness grades it.
//!
//! Real Docker: this fails loudly where no engine answers (see `docker_or_skip`).

use std::path::{Path, PathBuf};
use std::process::Command;

use agentmill_proto::{ExitReason, Resolution, TestStatus, TrajectoryRecord, Verdict};
use agentmill_tests::{SANDBOX_IMAGE, binary, docker_or_skip, unique, workspace};
use serde_json::{Value, json};

fn sh(dir: &Path, cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().expect("sh");
    assert!(o.status.success(), "{cmd}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The bundled task `id`'s row and its source folder.
fn bundled(id: &str) -> (Value, PathBuf) {
    let text = std::fs::read_to_string(workspace().join("deploy/tasks/tasks.jsonl")).expect("tasks");
    let row = text.lines().map(|l| serde_json::from_str::<Value>(l).expect("row")).find(|r| r["instance_id"] == id).expect("bundled task");
    (row, workspace().join("deploy/tasks/src").join(id))
}

/// `docker build` of `context` as `tag`, offline (the legacy builder).
fn build_image(context: &Path, tag: &str) {
    let o = Command::new("docker").args(["build", "-q", "-t", tag, "."]).env("DOCKER_BUILDKIT", "0").current_dir(context).output().expect("docker build");
    assert!(o.status.success(), "docker build {tag}: {}", String::from_utf8_lossy(&o.stderr));
}

fn remove_image(tag: &str) {
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}

fn run_rows(dir: &Path, rows: &[Value]) -> (i32, String, Vec<TrajectoryRecord>) {
    let file = dir.join("rows.jsonl");
    std::fs::write(&file, rows.iter().map(Value::to_string).collect::<Vec<_>>().join("\n") + "\n").expect("write rows");
    let out = dir.join("records.jsonl");
    let o = Command::new(binary("agentmill-worker"))
        .args(["--worker-id", &unique("w-families"), "--episodes", "2", "run"])
        .arg(&file)
        .args(["--policy", "replay", "--validate", "--out"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("agentmill-worker run");
    let records = std::fs::read_to_string(&out).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("record")).collect();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned(), records)
}

fn record<'a>(records: &'a [TrajectoryRecord], id: &str, log: &str) -> &'a TrajectoryRecord {
    records.iter().find(|r| r.task_id == id).unwrap_or_else(|| panic!("no record for {id}:\n{log}"))
}

/// A SWE-smith environment: the mirror at its commit on `main`, the instance a branch of two
/// commits (the bug, then the FAIL_TO_PASS test files taken out), the row in SWE-smith's form
/// (`patch` is the bug). The profile is a real one of SWE-smith's (a Python repository with the
/// defaults: `pytest --verbose`, its parser, the listed tests' files restored before the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swesmith_row_runs_on_its_branch_and_grades_by_swesmiths_rules() {
    let Some(_engine) = docker_or_skip("a_swesmith_row_runs_on_its_branch_and_grades_by_swesmiths_rules").await else {
        return;
    };
    let key = "Knio__dominate.9082227e";
    let id = format!("{key}.func_pm_op_swap__agentmill1");
    let (task, src) = bundled("agentmill__calc-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("ctx/repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    let git = "git -c user.name=swesmith -c user.email=s@example.com -c commit.gpgsign=false";
    sh(&repo, &format!("tar -xzf {}", workspace().join("deploy/tasks").join(task["archive"].as_str().expect("archive")).display()));
    // The mirror: the project with its fix and its tests.
    sh(&repo, &format!("git init -q -b main && git apply {gold} {test} && git add -A && {git} commit -qm mirror", gold = src.join("gold.patch").display(), test = src.join("test.patch").display()));
    let f2p: Vec<String> = serde_json::from_str(task["FAIL_TO_PASS"].as_str().expect("f2p")).expect("list");
    let p2p: Vec<String> = serde_json::from_str(task["PASS_TO_PASS"].as_str().expect("p2p")).expect("list");
    let mut f2p_files: Vec<&str> = f2p.iter().map(|t| t.split("::").next().expect("file")).collect();
    f2p_files.sort();
    f2p_files.dedup();
    // The instance: the bug, then its FAIL_TO_PASS files removed.
    sh(&repo, &format!("git checkout -q -b {id} && git apply -R {gold} && {git} commit -qam 'bug' && git rm -q {files} && {git} commit -qm 'remove F2P tests' && git checkout -q main", gold = src.join("gold.patch").display(), files = f2p_files.join(" ")));
    let bug = sh(&repo, &format!("git diff main {id}~1"));
    std::fs::write(dir.path().join("ctx/Dockerfile"), format!("FROM {SANDBOX_IMAGE}\nCOPY repo /testbed\nENV PYTHONPATH=/testbed\nWORKDIR /testbed\n")).expect("Dockerfile");
    let tag = format!("agentmill-test/swesmith:{}", unique("img").to_lowercase());
    build_image(&dir.path().join("ctx"), &tag);

    let row = json!({
        "instance_id": id, "repo": format!("swesmith/{key}"), "patch": bug,
        "FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p, "image_name": tag,
        "problem_statement": task["problem_statement"],
    });
    // A partial fix in place of the reversed bug: `bug_patch` says `patch` is a fix already.
    let mut partial = row.clone();
    partial["instance_id"] = format!("{key}.func_pm_op_swap__agentmill2").into();
    partial["bug_patch"] = bug.clone().into();
    partial["patch"] = std::fs::read_to_string(src.join("partial.patch")).expect("partial").into();
    // The partial row's branch is the same instance under another name.
    remove_image(&tag);
    sh(&repo, &format!("git branch {} {id}", partial["instance_id"].as_str().expect("id")));
    build_image(&dir.path().join("ctx"), &tag);

    let (code, log, records) = run_rows(dir.path(), &[row, partial]);
    remove_image(&tag);
    assert_eq!(code, 1, "the partial fix does not resolve: --validate exits 1\n{log}");
    let good = record(&records, &id, &log);
    let g = good.grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}", good.error));
    assert_eq!((good.exit_reason, g.resolution), (Some(ExitReason::Submitted), Resolution::Full), "{log}\n{}", g.log_tail);
    assert_eq!((g.rules.as_str(), g.log_parser.as_str()), ("swe-smith", "swesmith:PythonProfile"));
    assert!(g.fail_to_pass.iter().chain(&g.pass_to_pass).all(|t| t.status == TestStatus::Passed && t.verdict == Some(Verdict::Success)));
    // The agent worked at the branch's tip: its patch is the fix alone, no test file.
    assert!(!good.model_patch.as_deref().unwrap_or_default().contains("tests/"), "{:?}", good.model_patch);
    let bad = record(&records, &format!("{key}.func_pm_op_swap__agentmill2"), &log);
    let g = bad.grading.as_ref().expect("graded");
    assert_ne!(g.resolution, Resolution::Full, "{}", g.log_tail);
    assert!(g.fail_to_pass.iter().any(|t| t.status == TestStatus::Failed), "{:?}", g.fail_to_pass);
}

/// The bundled project `id` at its base commit (its buggy state) in `dest`, as a repository
/// with one commit; returns the commit.
fn base_repo(id: &str, dest: &Path) -> String {
    let (task, _) = bundled(id);
    std::fs::create_dir_all(dest).expect("mkdir");
    sh(dest, &format!("tar -xzf {}", workspace().join("deploy/tasks").join(task["archive"].as_str().expect("archive")).display()));
    sh(dest, "git init -q -b main && git add -A && git -c user.name=env -c user.email=e@example.com -c commit.gpgsign=false commit -qm base");
    sh(dest, "git rev-parse HEAD").trim().to_string()
}

/// A SWE-rebench V2 environment: the repository at `/<repo name>`, the row with `image_name`,
/// `install_config.test_cmd` as a list and `install_config.log_parser`; graded as its `eval.py`
/// grades (patches applied in the script, resolved when the PASSED set is exactly the lists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swe_rebench_v2_row_runs_in_its_workdir_and_resolves_on_the_exact_passed_set() {
    let Some(_engine) = docker_or_skip("a_swe_rebench_v2_row_runs_in_its_workdir_and_resolves_on_the_exact_passed_set").await else {
        return;
    };
    let (task, src) = bundled("agentmill__calc-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_repo("agentmill__calc-1", &dir.path().join("ctx/repo"));
    std::fs::write(dir.path().join("ctx/Dockerfile"), format!("FROM {SANDBOX_IMAGE}\nCOPY repo /calc\nWORKDIR /calc\n")).expect("Dockerfile");
    let tag = format!("agentmill-test/rebench-v2:{}", unique("img").to_lowercase());
    build_image(&dir.path().join("ctx"), &tag);
    let row = json!({
        "instance_id": "agentmill__calc-v2-1", "repo": "agentmill/calc", "base_commit": base, "language": "python",
        "image_name": tag, "problem_statement": task["problem_statement"], "patch": task["patch"], "test_patch": task["test_patch"],
        "FAIL_TO_PASS": serde_json::from_str::<Value>(task["FAIL_TO_PASS"].as_str().expect("f2p")).expect("list"),
        "PASS_TO_PASS": serde_json::from_str::<Value>(task["PASS_TO_PASS"].as_str().expect("p2p")).expect("list"),
        "install_config": {"test_cmd": ["python -m pytest -rA -p no:cacheprovider tests"], "log_parser": "parse_log_pytest"},
    });
    let mut partial = row.clone();
    partial["instance_id"] = "agentmill__calc-v2-2".into();
    partial["patch"] = std::fs::read_to_string(src.join("partial.patch")).expect("partial").into();
    let (code, log, records) = run_rows(dir.path(), &[row, partial]);
    remove_image(&tag);
    assert_eq!(code, 1, "{log}");
    let good = record(&records, "agentmill__calc-v2-1", &log);
    let g = good.grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}\n{log}", good.error));
    assert_eq!(g.resolution, Resolution::Full, "{}", g.log_tail);
    assert_eq!((g.rules.as_str(), g.log_parser.as_str()), ("swe-rebench-v2", "swe-rebench-v2:parse_log_pytest"));
    assert_eq!(good.provenance.image, tag);
    let bad = record(&records, "agentmill__calc-v2-2", &log);
    let g = bad.grading.as_ref().expect("graded");
    assert_eq!(g.resolution, Resolution::No, "{}", g.log_tail);
    assert!(g.fail_to_pass.iter().any(|t| t.verdict == Some(Verdict::Failure)));
}

/// An R2E-Gym environment: the repository at `/testbed` with `run_tests.sh` and `r2e_tests/`
/// beside it (moved to `/root` at setup, as R2E-Gym's runtime does), the row with
/// `expected_output_json`; the reward is 1 only when the parsed map equals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r2e_gym_row_is_rewarded_when_its_map_equals_the_expected_one() {
    let Some(_engine) = docker_or_skip("an_r2e_gym_row_is_rewarded_when_its_map_equals_the_expected_one").await else {
        return;
    };
    let (task, src) = bundled("agentmill__calc-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = dir.path().join("ctx");
    base_repo("agentmill__calc-1", &ctx.join("repo"));
    // The tests, as the fix expects them, in r2e_tests/; the runner beside the repository.
    let tests = ctx.join("tests-after");
    std::fs::create_dir_all(&tests).expect("mkdir");
    sh(&ctx, "cp -r repo/tests tests-after/ && cp repo/pyproject.toml tests-after/");
    sh(&tests, &format!("git init -q && git apply {} && rm -rf .git", src.join("test.patch").display()));
    std::fs::rename(tests.join("tests"), ctx.join("r2e_tests")).expect("move");
    std::fs::write(ctx.join("run_tests.sh"), "cd /testbed\nPYTHONPATH=/testbed python -m pytest -rA -p no:cacheprovider r2e_tests\n").expect("runner");
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {SANDBOX_IMAGE}\nCOPY repo /testbed\nCOPY r2e_tests /r2e_tests\nCOPY run_tests.sh /testbed/run_tests.sh\nWORKDIR /testbed\n")).expect("Dockerfile");
    let tag = format!("agentmill-test/r2e:{}", unique("img").to_lowercase());
    build_image(&ctx, &tag);
    // R2E-Gym's keys: the `::` parts after the file, joined with '.'.
    let ids: Vec<String> = ["FAIL_TO_PASS", "PASS_TO_PASS"]
        .iter()
        .flat_map(|k| serde_json::from_str::<Vec<String>>(task[*k].as_str().expect("list")).expect("list"))
        .map(|id| id.split("::").skip(1).collect::<Vec<_>>().join("."))
        .collect();
    let expected: serde_json::Map<String, Value> = ids.iter().map(|k| (k.clone(), Value::from("PASSED"))).collect();
    let row = json!({
        "instance_id": "agentmill__calc-r2e-1", "repo_name": "sympy", "docker_image": tag, "commit_hash": "base",
        "problem_statement": format!("[ISSUE]\n{}\n[/ISSUE]", task["problem_statement"].as_str().expect("text")),
        "patch": task["patch"], "expected_output_json": Value::Object(expected.clone()).to_string(),
    });
    let mut partial = row.clone();
    partial["instance_id"] = "agentmill__calc-r2e-2".into();
    partial["patch"] = std::fs::read_to_string(src.join("partial.patch")).expect("partial").into();
    let (code, log, records) = run_rows(dir.path(), &[row, partial]);
    remove_image(&tag);
    assert_eq!(code, 1, "{log}");
    let good = record(&records, "agentmill__calc-r2e-1", &log);
    let g = good.grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}\n{log}", good.error));
    assert_eq!((g.resolution, good.reward), (Resolution::Full, Some(1.0)), "{}", g.log_tail);
    assert_eq!((g.rules.as_str(), g.log_parser.as_str()), ("r2e-gym", "r2e-gym:parse_log_pytest"));
    assert_eq!(g.expected.len(), expected.len());
    assert!(g.expected.iter().all(|t| t.verdict == Some(Verdict::Success)), "{:?}", g.expected);
    // The tests stayed out of the agent's patch.
    assert!(!good.model_patch.as_deref().unwrap_or_default().contains("r2e_tests"), "{:?}", good.model_patch);
    let bad = record(&records, "agentmill__calc-r2e-2", &log);
    let g = bad.grading.as_ref().expect("graded");
    assert_eq!((g.resolution, bad.reward), (Resolution::No, Some(0.0)), "{}", g.log_tail);
    assert!(g.expected.iter().any(|t| t.verdict == Some(Verdict::Failure) && t.status == TestStatus::Failed), "{:?}", g.expected);
}

/// An OpenSWE row written for this repo around the bundled calc project: its `Dockerfile` (built
/// on the worker with the repository as its context, tagged by the context's hash) and an
/// `eval_script` that applies the test patch from its heredoc and prints `OPENSWE_EXIT_CODE=$rc`.
/// Gold resolves FULL, a wrong patch NO, a script that never prints the line is not graded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openswe_row_builds_its_dockerfile_and_resolves_by_its_exit_code_line() {
    let Some(_engine) = docker_or_skip("an_openswe_row_builds_its_dockerfile_and_resolves_by_its_exit_code_line").await else {
        return;
    };
    let (task, src) = bundled("agentmill__calc-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("calc.tar.gz");
    std::fs::copy(workspace().join("deploy/tasks").join(task["archive"].as_str().expect("archive")), &archive).expect("copy the archive");
    let test_patch = task["test_patch"].as_str().expect("test_patch");
    let script = |tail: &str| format!("#!/bin/bash\ncd /testbed\ngit apply -v - <<'EOF_114329324912'\n{test_patch}\nEOF_114329324912\npython -m pytest -rA -p no:cacheprovider tests\nrc=$?\n{tail}\n");
    let row = json!({
        "instance_id": "agentmill__calc-openswe-1", "repo": "agentmill/calc", "base_commit": task["base_commit"],
        "problem_statement": task["problem_statement"], "patch": task["patch"], "test_patch": test_patch,
        "Dockerfile": format!("FROM {SANDBOX_IMAGE}\nCOPY . /testbed\nWORKDIR /testbed\n"),
        "eval_script": script("echo \"OPENSWE_EXIT_CODE=$rc\""),
        "source": "archive", "archive": archive.to_string_lossy(),
    });
    let mut wrong = row.clone();
    wrong["instance_id"] = "agentmill__calc-openswe-2".into();
    wrong["patch"] = std::fs::read_to_string(src.join("partial.patch")).expect("partial").into();
    let mut silent = row.clone();
    silent["instance_id"] = "agentmill__calc-openswe-3".into();
    silent["eval_script"] = script("echo \"tests exited $rc\"").into();
    let (code, log, records) = run_rows(dir.path(), &[row, wrong, silent]);
    let good = record(&records, "agentmill__calc-openswe-1", &log);
    let tag = good.provenance.image.clone();
    assert!(tag.starts_with("agentmill-env/"), "the image is built from the row's Dockerfile: {tag:?}\n{log}");
    assert!(records.iter().all(|r| r.provenance.image == tag), "one context, one image");
    remove_image(&tag);
    assert_eq!(code, 1, "{log}");
    let g = good.grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}\n{log}", good.error));
    assert_eq!((good.exit_reason, g.resolution), (Some(ExitReason::Submitted), Resolution::Full), "{}", g.log_tail);
    assert_eq!(g.rules, "openswe");
    assert!(g.fail_to_pass.is_empty() && g.pass_to_pass.is_empty());
    let bad = record(&records, "agentmill__calc-openswe-2", &log);
    let g = bad.grading.as_ref().unwrap_or_else(|| panic!("graded: {:?}\n{log}", bad.error));
    assert_eq!(g.resolution, Resolution::No, "{}", g.log_tail);
    assert!(g.log_tail.contains("OPENSWE_EXIT_CODE=1"), "{}", g.log_tail);
    let silent = record(&records, "agentmill__calc-openswe-3", &log);
    assert_eq!(silent.exit_reason, Some(ExitReason::SandboxError), "{:?}", silent.error);
    assert!(silent.error.as_deref().unwrap_or_default().contains("OPENSWE_EXIT_CODE"), "{:?}", silent.error);
}
