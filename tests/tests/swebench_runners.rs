//! SWE-bench rows whose test runner is not pytest, graded in real Docker sandboxes as SWE-bench
//! grades them: Django's own `tests/runtests.py` on its own test suite (`parse_log_django`) and
//! SymPy's `bin/test` (`parse_log_sympy`). The rows are `deploy/swebench/tasks.jsonl`: SWE-bench
//! 4.x rows (repo `django/django` 4.2, `sympy/sympy` 1.12) with SWE-bench's test ids, in the
//! images `deploy/swebench/build.sh` builds (deploy/setup.sh runs it); this test builds nothing.
//!
//! Real Docker: this fails loudly where no engine answers (see `docker_or_skip`), and names
//! `deploy/swebench/build.sh` where an image is missing.

use std::collections::BTreeMap;
use std::process::Command;

use agentmill_proto::{ExitReason, Resolution, TestStatus, TrajectoryRecord};
use agentmill_tests::corpus::{listed, records, run_worker, statuses, stderr_of};
use agentmill_tests::{binary, docker_or_skip, unique, workspace};
use agentmill_worker::sandbox::{ExecRequest, SandboxSpec};
use serde_json::Value;

const DJANGO: &str = "agentmill__django-1";
const SYMPY: &str = "agentmill__sympy-1";

/// The rows of `deploy/swebench/tasks.jsonl` by instance id, as JSON.
fn rows() -> BTreeMap<String, Value> {
    agentmill_tests::corpus::rows(&workspace().join("deploy/swebench/tasks.jsonl"))
}

/// A file of the row's sources, `deploy/swebench/rows/<id>/<name>`.
fn source(id: &str, name: &str) -> String {
    agentmill_testkit::read(&workspace().join("deploy/swebench/rows").join(id).join(name))
}

/// Panics, naming the script that builds them, unless both images are on this host.
fn images_or_fail() {
    agentmill_tests::corpus::images_or_fail(&rows(), "build it with deploy/swebench/build.sh (deploy/setup.sh runs it)");
}

/// The `swebench` package (4.1.0, the generation whose rules these rows follow) grading each
/// `(row, log)`: `tests/reference/swebench_ref.py`'s `grade` answers, in order. `deploy/setup.sh`
/// installs it in `.venv/swebench-4.1.0`.
fn reference_grades(requests: &[(Value, String)]) -> Vec<Value> {
    let python = workspace().join(".venv/bin/python");
    let lib = workspace().join(".venv/swebench-4.1.0");
    assert!(python.is_file() && lib.is_dir(), "the swebench 4.1.0 reference is missing ({} with {}); run deploy/setup.sh", python.display(), lib.display());
    let mut child = Command::new(python)
        .arg(workspace().join("tests/reference/swebench_ref.py"))
        .env("PYTHONPATH", lib)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the swebench reference");
    let mut stdin = child.stdin.take().expect("stdin");
    for (row, log) in requests {
        let line = serde_json::json!({"op": "grade", "row": row, "log": log}).to_string() + "\n";
        std::io::Write::write_all(&mut stdin, line.as_bytes()).expect("write to the reference");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("the reference's answers");
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON answer")).collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request: {answers:?}");
    for a in &answers {
        assert!(a.get("error").is_none(), "the reference failed: {a}");
    }
    answers
}

/// The record's grading, side by side with the reference's grading of the same log: the same
/// resolution, and each listed test with the status the reference's parser gave it.
fn assert_reference_agrees(row: &Value, r: &TrajectoryRecord, answer: &Value) {
    let g = r.grading.as_ref().expect("a grading");
    // The record keeps the log's last 16 KiB; these logs are shorter, so it is the whole log.
    assert!(g.log_tail.starts_with("+ cd /testbed\n"), "{}: the record holds the whole log", r.task_id);
    let resolution = match g.resolution {
        Resolution::Full => "RESOLVED_FULL",
        Resolution::Partial => "RESOLVED_PARTIAL",
        Resolution::No => "RESOLVED_NO",
    };
    assert_eq!(answer["found"], true, "{}: the reference found the test output", r.task_id);
    assert_eq!(answer["resolution"], resolution, "{}: {answer}", r.task_id);
    let reference: Vec<(String, TestStatus)> = listed(row, "FAIL_TO_PASS")
        .into_iter()
        .chain(listed(row, "PASS_TO_PASS"))
        .map(|t| {
            let status = match answer["status"][&t].as_str() {
                Some("PASSED") => TestStatus::Passed,
                Some("FAILED") => TestStatus::Failed,
                Some("ERROR") => TestStatus::Error,
                Some("SKIPPED") => TestStatus::Skipped,
                Some("XFAIL") => TestStatus::Xfail,
                None => TestStatus::Missing,
                Some(other) => panic!("{}: the reference's status {other:?} for {t}", r.task_id),
            };
            (t, status)
        })
        .collect();
    assert_eq!(statuses(r), reference, "{}: the worker's statuses are the reference's", r.task_id);
}

/// The rows are what `deploy/swebench/make_tasks.py` makes of `deploy/swebench/rows/`, in
/// SWE-bench's shape, with SWE-bench's ids: Django's `name (dotted.path)` ids and a docstring's
/// first line for a test that has one, SymPy's bare function names.
#[test]
fn the_rows_are_made_from_their_sources_with_swebench_ids() {
    let rows = rows();
    assert_eq!(rows.keys().map(String::as_str).collect::<Vec<_>>(), [DJANGO, SYMPY]);
    for (id, row) in &rows {
        assert_eq!(row["patch"], source(id, "gold.patch"), "{id}: patch is rows/{id}/gold.patch");
        assert_eq!(row["test_patch"], source(id, "test.patch"), "{id}: test_patch is rows/{id}/test.patch");
        assert_eq!(row["problem_statement"], source(id, "problem_statement.md"), "{id}");
        assert_eq!(row["hints_text"], source(id, "hints.md"), "{id}");
        let tests: Value = serde_json::from_str(&source(id, "tests.json")).expect("tests.json");
        for key in ["FAIL_TO_PASS", "PASS_TO_PASS"] {
            assert_eq!(serde_json::to_value(listed(row, key)).expect("json"), tests[key], "{id}: {key} is rows/{id}/tests.json's");
        }
        assert_eq!(row["environment_setup_commit"], row["base_commit"], "{id}");
    }
    let django = &rows[DJANGO];
    assert_eq!((django["repo"].as_str(), django["version"].as_str(), django["image"].as_str()), (Some("django/django"), Some("4.2"), Some("agentmill/swebench-django:4.2")));
    assert_eq!(listed(django, "FAIL_TO_PASS"), ["test_pattern_is_case_insensitive (utils_tests.test_http.IsSameDomainTests.test_pattern_is_case_insensitive)"]);
    let p2p = listed(django, "PASS_TO_PASS");
    assert_eq!(p2p.len(), 45, "every other test of utils_tests.test_http");
    // Python 3.11's unittest prints a test with a docstring as its id line, then the docstring's
    // first line with the result: SWE-bench's parser takes that line as the test's id.
    for quirk in ["Non-ASCII unicode decimals raise an error.", "Test wrongly formatted RFC 2231 headers (missing double single quotes)."] {
        assert!(p2p.iter().any(|t| t == quirk), "Django's PASS_TO_PASS lists {quirk:?}");
    }
    assert!(p2p.iter().any(|t| t == "test_bad (utils_tests.test_http.IsSameDomainTests.test_bad)"));
    let sympy = &rows[SYMPY];
    assert_eq!((sympy["repo"].as_str(), sympy["version"].as_str(), sympy["image"].as_str()), (Some("sympy/sympy"), Some("1.12"), Some("agentmill/swebench-sympy:1.12")));
    assert_eq!(listed(sympy, "FAIL_TO_PASS"), ["test_rotate"]);
    let p2p = listed(sympy, "PASS_TO_PASS");
    assert_eq!(p2p.len(), 44, "the other tests of test_iterables.py that SWE-bench's parser sees");
    // bin/test prints the file's last test on the line that ends in `[OK]`: SWE-bench's parser
    // (lines ending in " ok") does not see it, so SWE-bench's lists leave it out.
    assert!(!p2p.iter().any(|t| t == "test_sequence_partitions_empty"), "{p2p:?}");
    assert!(p2p.iter().all(|t| t.starts_with("test_") && !t.contains(' ')), "{p2p:?}");
}

/// The script the worker grades each row with, whole: SWE-bench 4.x's eval script for the spec
/// (Django: `./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1` on the
/// dotted label of the test patch's module; SymPy: `bin/test -C --verbose` on its path), with
/// conda's two activation lines where the image has conda and without them here.
#[test]
fn eval_scripts_are_swebench_4_scripts_with_each_runner() {
    let rows = rows();
    let file = workspace().join("deploy/swebench/tasks.jsonl");
    for (id, test_cmd, test_file) in [
        (DJANGO, "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 utils_tests.test_http", "tests/utils_tests/test_http.py"),
        (
            SYMPY,
            "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test -C --verbose sympy/utilities/tests/test_iterables.py",
            "sympy/utilities/tests/test_iterables.py",
        ),
    ] {
        let row = &rows[id];
        let base = row["base_commit"].as_str().expect("base_commit");
        let test_patch = row["test_patch"].as_str().expect("test_patch");
        for conda in [false, true] {
            let activate = if conda { "source /opt/miniconda3/bin/activate\nconda activate testbed\n" } else { "" };
            let expected = format!(
                "#!/bin/bash\n\
                 set -uxo pipefail\n\
                 {activate}\
                 cd /testbed\n\
                 git config --global --add safe.directory /testbed\n\
                 cd /testbed\n\
                 git status\n\
                 git show\n\
                 git -c core.fileMode=false diff {base}\n\
                 {activate}\
                 python -m pip install -e .\n\
                 git checkout {base} {test_file}\n\
                 git apply -v - <<'EOF_114329324912'\n\
                 {test_patch}\n\
                 EOF_114329324912\n\
                 : '>>>>> Start Test Output'\n\
                 {test_cmd}\n\
                 : '>>>>> End Test Output'\n\
                 git checkout {base} {test_file}\n"
            );
            let mut cmd = Command::new(binary("agentmill-worker"));
            cmd.args(["eval-script"]).arg(&file).args(["--instance", id]);
            if !conda {
                cmd.arg("--no-conda");
            }
            let o = cmd.output().expect("run agentmill-worker eval-script");
            assert!(o.status.success(), "{id}: {}", stderr_of(&o));
            assert_eq!(String::from_utf8_lossy(&o.stdout), expected, "{id} (conda: {conda})");
        }
    }
}

/// Each image's repository is at its row's base commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_are_at_the_rows_base_commits() {
    let Some(engine) = docker_or_skip("the_images_are_at_the_rows_base_commits").await else {
        return;
    };
    images_or_fail();
    let worker = unique("w-swebench-head");
    for (id, row) in rows() {
        let image = row["image"].as_str().expect("an image");
        let sandbox = engine.start(&SandboxSpec::new(image, "/testbed", &worker, &id)).await.expect("start a sandbox");
        let out = sandbox.exec(&ExecRequest::new("git rev-parse HEAD && git status --porcelain")).await;
        sandbox.remove().await;
        let out = out.expect("git rev-parse HEAD");
        assert_eq!(out.exit_code, 0, "{id}: {}", out.output);
        assert_eq!(out.output.trim(), row["base_commit"].as_str().expect("base_commit"), "{id}: {image}'s HEAD (and a clean tree); rebuild with deploy/swebench/build.sh");
    }
}

/// The gold patches resolve FULL with every listed test passed; wrong patches grade NO with the
/// tests they fail named as failed: Django's makes every pattern a wildcard (the new test
/// passes, PASS_TO_PASS `test_bad` fails), SymPy's wraps only shifts of up to two turns (its
/// FAIL_TO_PASS test still fails). The `swebench` package grades the same four logs the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gold_patches_resolve_and_wrong_patches_fail_with_each_runner() {
    let Some(engine) = docker_or_skip("gold_patches_resolve_and_wrong_patches_fail_with_each_runner").await else {
        return;
    };
    images_or_fail();
    let dir = tempfile::tempdir().expect("tempdir");
    let worker_id = unique("w-swebench");
    let rows = rows();

    let wrong_file = dir.path().join("wrong.jsonl");
    let wrong_rows: Vec<String> = rows
        .iter()
        .map(|(id, row)| {
            let mut row = row.clone();
            row["patch"] = source(id, "wrong.patch").into();
            row.to_string()
        })
        .collect();
    std::fs::write(&wrong_file, wrong_rows.join("\n") + "\n").expect("write the wrong rows");

    // Both runs at once: the gold rows as they are in the repository, and the wrong ones.
    let gold_out = dir.path().join("gold.jsonl");
    let wrong_out = dir.path().join("wrong-records.jsonl");
    let gold = run_worker(&format!("{worker_id}-gold"), &workspace().join("deploy/swebench/tasks.jsonl"), &gold_out);
    let wrong = run_worker(&format!("{worker_id}-wrong"), &wrong_file, &wrong_out);
    let (gold, wrong) = (gold.wait_with_output().expect("wait"), wrong.wait_with_output().expect("wait"));

    assert_eq!(gold.status.code(), Some(0), "every gold patch resolves:\n{}", stderr_of(&gold));
    let gold_records = records(&gold_out);
    assert_eq!(gold_records.keys().map(String::as_str).collect::<Vec<_>>(), [DJANGO, SYMPY]);
    for (id, parser) in [(DJANGO, "parse_log_django"), (SYMPY, "parse_log_sympy")] {
        let r = &gold_records[id];
        let g = r.grading.as_ref().expect("a grading");
        assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{id}");
        assert_eq!((g.resolution, g.rules.as_str(), g.log_parser.as_str()), (Resolution::Full, "swe-bench-4", parser), "{id}: {g:?}");
        assert_eq!(g.not_graded, None, "{id}");
        let listed_tests: Vec<String> = listed(&rows[id], "FAIL_TO_PASS").into_iter().chain(listed(&rows[id], "PASS_TO_PASS")).collect();
        let all: Vec<(String, TestStatus)> = listed_tests.into_iter().map(|t| (t, TestStatus::Passed)).collect();
        assert_eq!(statuses(r), all, "{id}: every listed test passed");
    }

    assert_eq!(wrong.status.code(), Some(1), "--validate fails when a patch does not resolve:\n{}", stderr_of(&wrong));
    let stderr = stderr_of(&wrong);
    assert!(stderr.contains(&format!("{DJANGO} r0: NO (submitted")) && stderr.contains(&format!("{SYMPY} r0: NO (submitted")), "{stderr}");
    let wrong_records = records(&wrong_out);
    assert_eq!(wrong_records.keys().map(String::as_str).collect::<Vec<_>>(), [DJANGO, SYMPY]);
    for (id, parser, failing) in [
        (DJANGO, "parse_log_django", "test_bad (utils_tests.test_http.IsSameDomainTests.test_bad)"),
        (SYMPY, "parse_log_sympy", "test_rotate"),
    ] {
        let r = &wrong_records[id];
        let g = r.grading.as_ref().expect("a grading");
        assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{id}");
        assert_eq!((g.resolution, g.rules.as_str(), g.log_parser.as_str()), (Resolution::No, "swe-bench-4", parser), "{id}: {g:?}");
        assert!(g.patch_applied.starts_with("git apply"), "{id}: the wrong patch went in ({}); its tests ran", g.patch_applied);
        let not_passed: Vec<(String, TestStatus)> = statuses(r).into_iter().filter(|(_, s)| *s != TestStatus::Passed).collect();
        assert_eq!(not_passed, [(failing.to_string(), TestStatus::Failed)], "{id}: only {failing} fails");
    }
    // The same logs, graded by SWE-bench itself.
    let mut requests = Vec::new();
    let mut graded = Vec::new();
    for (id, row) in &rows {
        requests.push((row.clone(), gold_records[id].grading.as_ref().expect("a grading").log_tail.clone()));
        graded.push((row.clone(), &gold_records[id]));
        let mut wrong_row = row.clone();
        wrong_row["patch"] = source(id, "wrong.patch").into();
        requests.push((wrong_row.clone(), wrong_records[id].grading.as_ref().expect("a grading").log_tail.clone()));
        graded.push((wrong_row, &wrong_records[id]));
    }
    for ((row, record), answer) in graded.iter().zip(reference_grades(&requests)) {
        assert_reference_agrees(row, record, &answer);
    }

    for w in ["gold", "wrong"] {
        assert!(engine.containers_of(&format!("{worker_id}-{w}")).await.expect("list").is_empty(), "no container left behind");
    }
}

/// The Django row as a SWE-bench 5.x row carrying its own `eval_script` (the 4.x script of the
/// same row), `log_parser` and `eval_type`: it resolves by 5.x's rules, and the record keeps the
/// test command's exit code that the 5.x script records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5x_row_runs_its_own_script_and_records_the_test_exit_code() {
    if !agentmill_testkit::docker::available("a_5x_row_runs_its_own_script_and_records_the_test_exit_code") {
        return;
    }
    images_or_fail();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut row = rows()[DJANGO].clone();
    let row_file = dir.path().join("row.json");
    std::fs::write(&row_file, row.to_string()).expect("write");
    let script = Command::new(binary("agentmill-worker")).arg("eval-script").arg(&row_file).arg("--no-conda").output().expect("eval-script");
    assert!(script.status.success(), "{}", stderr_of(&script));
    row["instance_id"] = "agentmill__django-5x".into();
    row["eval_script"] = String::from_utf8_lossy(&script.stdout).into_owned().into();
    row["log_parser"] = "parse_log_django".into();
    row["eval_type"] = "pass_and_fail".into();
    let file = dir.path().join("rows.jsonl");
    std::fs::write(&file, row.to_string() + "\n").expect("write");
    let out = dir.path().join("records.jsonl");
    let o = run_worker(&unique("w-swebench5"), &file, &out).wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    let r = &records(&out)["agentmill__django-5x"];
    let g = r.grading.as_ref().expect("a grading");
    assert_eq!((g.resolution, g.rules.as_str(), g.test_exit_code), (Resolution::Full, "swe-bench-5", Some(0)), "{g:?}");
    assert!(g.log_tail.contains(">>>>> Test Exit Code: 0"), "{}", g.log_tail);
}
