//! `agentmill-worker grade` and `agentmill-worker eval-script`, run as a user runs them, their
//! whole output compared.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn case(suffix: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/harness-logs/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str::<Value>(l).expect("case")).find(|c| c["case_id"].as_str().is_some_and(|id| id.ends_with(suffix))).expect("the case")
}

fn worker(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_agentmill-worker")).args(args).env("RUST_LOG", "warn").output().expect("run agentmill-worker");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Writes the case's row (the dataset's fields) and its log into `dir`.
fn files(dir: &Path, c: &Value) -> (String, String) {
    let row = json!({
        "instance_id": c["instance_id"], "repo": c["repo"], "version": c["version"], "base_commit": c["base_commit"],
        "problem_statement": "p", "patch": "", "test_patch": c["test_patch"], "FAIL_TO_PASS": c["FAIL_TO_PASS"], "PASS_TO_PASS": c["PASS_TO_PASS"],
    });
    let row_path = dir.join("row.json");
    let log_path = dir.join("test_output.txt");
    std::fs::write(&row_path, row.to_string()).expect("write row");
    std::fs::write(&log_path, c["log"].as_str().expect("log")).expect("write log");
    (row_path.to_string_lossy().into_owned(), log_path.to_string_lossy().into_owned())
}

#[test]
fn grade_prints_the_verdict_and_the_failing_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = case("sympy__sympy-19954");
    let (row, log) = files(dir.path(), &c);
    let (code, out, err) = worker(&["grade", &row, "--log", &log]);
    assert_eq!(code, 1, "not resolved exits 1: {err}");
    assert_eq!(
        out,
        "sympy__sympy-19954: NO (rules swe-bench-2, parser parse_log_sympy)\n\
         FAIL_TO_PASS: 1 success, 0 failure\n\
         PASS_TO_PASS: 55 success, 1 failure\n  failed: test_minimal_blocks (failed)\n"
    );
}

#[test]
fn grade_json_is_the_harness_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    for suffix in ["django__django-15104", "matplotlib__matplotlib-20676", "sphinx-doc__sphinx-7985"] {
        let c = case(suffix);
        let (row, log) = files(dir.path(), &c);
        let (code, out, err) = worker(&["grade", &row, "--log", &log, "--json"]);
        let resolved = c["resolved"].as_bool().expect("resolved");
        assert_eq!(code, if resolved { 0 } else { 1 }, "{suffix}: {err}");
        let report: Value = serde_json::from_str(&out).expect("JSON");
        let entry = &report[c["instance_id"].as_str().expect("id")];
        assert_eq!(entry["resolved"], json!(resolved), "{suffix}");
        match c.get("expected").filter(|e| !e.is_null()) {
            Some(expected) => {
                assert_eq!(entry["patch_successfully_applied"], json!(true));
                assert_eq!(&entry["tests_status"], expected, "{suffix}: tests_status is the harness's");
            }
            None => {
                assert_eq!(entry["patch_successfully_applied"], json!(false), "{suffix}");
                assert!(entry.get("tests_status").is_none());
                assert!(entry["agentmill"]["not_graded"].as_str().is_some_and(|w| w.contains("timeout")), "{suffix}: {entry}");
            }
        }
    }
}

#[test]
fn grade_and_eval_script_refuse_what_they_cannot_read_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"instance_id\": \"a__b-1\", \"FAIL_TO_PASS\": [\"t.py::x\"]}\n{\"instance_id\": \"a__b-2\", \"FAIL_TO_PASS\": [\"t.py::y\"]}\n").expect("write");
    let rows = rows.to_string_lossy().into_owned();
    let (code, _, err) = worker(&["eval-script", &rows]);
    assert_eq!((code, err.trim_end()), (2, format!("agentmill-worker eval-script: {rows} has 2 rows; pick one with --instance ID").as_str()));
    let (code, out, _) = worker(&["eval-script", &rows, "--instance", "a__b-2"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "# a__b-2 is one of agentmill's own rows: the worker applies its test patch, writes the listed ids to\n\
         # /agentmill/test-ids.txt and runs, from /testbed:\n\
         xargs -d '\\n' -a /agentmill/test-ids.txt python -m pytest -rA -p no:cacheprovider\n"
    );
    let (code, _, err) = worker(&["grade", &rows, "--instance", "a__b-1", "--log", "/nonexistent/log.txt"]);
    assert_eq!((code, err.trim_end()), (2, "agentmill-worker grade: /nonexistent/log.txt: No such file or directory (os error 2)"));
}

#[test]
fn eval_script_prints_swebenchs_script_for_a_swebench_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = case("django__django-11099");
    let (row, _) = files(dir.path(), &c);
    let (code, out, err) = worker(&["eval-script", &row]);
    assert_eq!(code, 0, "{err}");
    let test_patch = c["test_patch"].as_str().expect("patch");
    let base = c["base_commit"].as_str().expect("base");
    let want = format!(
        "#!/bin/bash\nset -uxo pipefail\nsource /opt/miniconda3/bin/activate\nconda activate testbed\ncd /testbed\n\
         sed -i '/en_US.UTF-8/s/^# //g' /etc/locale.gen && locale-gen\nexport LANG=en_US.UTF-8\nexport LANGUAGE=en_US:en\nexport LC_ALL=en_US.UTF-8\n\
         git config --global --add safe.directory /testbed\ncd /testbed\ngit status\ngit show\ngit -c core.fileMode=false diff {base}\n\
         source /opt/miniconda3/bin/activate\nconda activate testbed\npython -m pip install -e .\n\
         git checkout {base} tests/auth_tests/test_validators.py\ngit apply -v - <<'EOF_114329324912'\n{test_patch}\nEOF_114329324912\n\
         : '>>>>> Start Test Output'\n./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 auth_tests.test_validators\n: '>>>>> End Test Output'\n\
         git checkout {base} tests/auth_tests/test_validators.py\n"
    );
    assert_eq!(out, want);
    let (_, no_conda, _) = worker(&["eval-script", &row, "--no-conda"]);
    assert_eq!(no_conda, want.replace("source /opt/miniconda3/bin/activate\nconda activate testbed\n", ""));
}
