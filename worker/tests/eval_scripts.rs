//! The eval scripts agentmill runs are the reference's, byte for byte: for every repository and
//! version in SWE-bench 4.1.0's spec tables (the 12 Verified repositories and every
//! Multilingual one), and for 5.x rows that carry their own script. The spec table agentmill
//! embeds is the package's, regenerated here (a drift fails the test).

mod reference_support;

use agentmill_proto::Task;
use agentmill_proto::dataset::{Family, ScriptOptions, eval_plan, specs};
use agentmill_worker::grading::parsers::Generation;
use reference_support::{Reference, workspace};
use serde_json::{Value, json};

/// Test patches of several shapes: a modified test file, a new one, a non-test file, a rename,
/// a deletion, a Django-style nested path.
fn test_patches(repo: &str) -> Vec<String> {
    let modified = "diff --git a/tests/test_util.py b/tests/test_util.py\nindex 1111111..2222222 100644\n--- a/tests/test_util.py\n+++ b/tests/test_util.py\n@@ -1,2 +1,3 @@\n import x\n+import y\n def test_a(): pass\n";
    let new_file = "diff --git a/tests/test_new.py b/tests/test_new.py\nnew file mode 100644\nindex 0000000..3333333\n--- /dev/null\n+++ b/tests/test_new.py\n@@ -0,0 +1 @@\n+def test_b(): pass\n";
    let data = "diff --git a/tests/data/expected.json b/tests/data/expected.json\nindex 1111111..2222222 100644\n--- a/tests/data/expected.json\n+++ b/tests/data/expected.json\n@@ -1 +1 @@\n-{}\n+{\"a\": 1}\ndiff --git a/tests/data/table.csv b/tests/data/table.csv\n--- a/tests/data/table.csv\n+++ b/tests/data/table.csv\n@@ -1 +1 @@\n-a\n+b\n";
    let renamed = "diff --git a/tests/test_old.py b/tests/test_renamed.py\nsimilarity index 90%\nrename from tests/test_old.py\nrename to tests/test_renamed.py\nindex 1111111..2222222 100644\n--- a/tests/test_old.py\n+++ b/tests/test_renamed.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";
    let deleted = "diff --git a/tests/test_gone.py b/tests/test_gone.py\ndeleted file mode 100644\nindex 1111111..0000000\n--- a/tests/test_gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-def test_c(): pass\n";
    let nested = format!(
        "diff --git a/tests/{r}/tests/test_forms.py b/tests/{r}/tests/test_forms.py\n--- a/tests/{r}/tests/test_forms.py\n+++ b/tests/{r}/tests/test_forms.py\n@@ -1 +1,2 @@\n a\n+--- a/not/a/header.py\n",
        r = repo.rsplit('/').next().unwrap_or("x").replace('-', "_")
    );
    vec![modified.to_string(), format!("{modified}{new_file}"), format!("{data}{modified}"), renamed.to_string(), format!("{deleted}{new_file}"), nested]
}

fn row(repo: &str, version: &str, test_patch: &str, n: usize) -> Value {
    let id = format!("{}-{}", repo.replace('/', "__"), 1000 + n);
    json!({
        "instance_id": id,
        "repo": repo,
        "version": version,
        "base_commit": "0123456789abcdef0123456789abcdef01234567",
        "environment_setup_commit": "0123456789abcdef0123456789abcdef01234567",
        "problem_statement": "p",
        "hints_text": "",
        "created_at": "2024-01-01T00:00:00Z",
        "patch": "",
        "test_patch": test_patch,
        "FAIL_TO_PASS": "[\"tests/test_util.py::test_a\"]",
        "PASS_TO_PASS": "[]",
    })
}

fn task(row: &Value) -> Task {
    Task::from_json_object(row.as_object().cloned().expect("object")).unwrap_or_else(|e| panic!("row {}: {e:?}", row["instance_id"]))
}

#[test]
fn swebench_4x_eval_scripts_are_the_references_for_every_repository_and_version() {
    let mut reference = Reference::start(Generation::V4);
    let tables = specs::swebench();
    let mut compared = 0;
    let mut diffs = Vec::new();
    for (repo, versions) in &tables.specs {
        let patches = test_patches(repo);
        for (i, version) in versions.keys().enumerate() {
            // Every version with one patch shape; the first version with all of them.
            let shapes: Vec<&String> = if i == 0 { patches.iter().collect() } else { vec![&patches[i % patches.len()]] };
            for (n, patch) in shapes.into_iter().enumerate() {
                let row = row(repo, version, patch, n);
                let want = reference.try_ask(&json!({"op": "eval_script", "row": row}));
                let mut t = task(&row);
                if !tables.repo_parser.contains_key(repo) {
                    // SWE-bench itself names no parser for these (swe-bench/humaneval, dbt-core):
                    // its grader could not read their logs; such a row must name one.
                    assert!(eval_plan(&t, &ScriptOptions::default()).is_err_and(|e| e.contains("log_parser")), "{repo}");
                    t.log_parser = Some("parse_log_pytest".into());
                }
                assert_eq!(t.family, Family::Swebench, "{repo} {version}");
                let ours = eval_plan(&t, &ScriptOptions::default());
                match (want.get("script").and_then(Value::as_str), ours) {
                    (Some(w), Ok(plan)) => {
                        let got = plan.script.unwrap_or_default();
                        if got != w {
                            diffs.push(format!("{repo} {version} shape {n}:\n--- reference\n{w}\n--- agentmill\n{got}"));
                        }
                    }
                    (None, Err(_)) => {}
                    (w, o) => diffs.push(format!("{repo} {version} shape {n}: reference {w:?} / error {:?}, agentmill {o:?}", want.get("error"))),
                }
                compared += 1;
            }
        }
    }
    println!("compared {compared} eval scripts over {} repositories", tables.specs.len());
    assert!(compared > 700, "every version of every repository is compared");
    assert!(diffs.is_empty(), "{} scripts differ; the first:\n{}", diffs.len(), diffs[0]);
}

#[test]
fn the_harness_logs_rows_give_the_references_script() {
    // The 68 real Verified rows' test patches (read from ../shared; not copied into the repo).
    let path = workspace().join("../shared/harness-logs/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reference = Reference::start(Generation::V4);
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).expect("case");
        let mut r = row(case["repo"].as_str().expect("repo"), case["version"].as_str().expect("version"), case["test_patch"].as_str().expect("patch"), 0);
        r["instance_id"] = case["instance_id"].clone();
        r["base_commit"] = case["base_commit"].clone();
        let want = reference.ask(&json!({"op": "eval_script", "row": r}));
        let got = eval_plan(&task(&r), &ScriptOptions::default()).expect("plan").script.expect("a script");
        assert_eq!(got, want["script"].as_str().expect("script"), "{}", case["case_id"]);
    }
}

#[test]
fn without_conda_the_script_loses_only_the_activation_lines() {
    let r = row("django/django", "3.0", &test_patches("django/django")[0], 0);
    let t = task(&r);
    let with = eval_plan(&t, &ScriptOptions { conda: true }).expect("plan").script.expect("script");
    let without = eval_plan(&t, &ScriptOptions { conda: false }).expect("plan").script.expect("script");
    let kept: Vec<&str> = with.lines().filter(|l| *l != "source /opt/miniconda3/bin/activate" && *l != "conda activate testbed").collect();
    assert_eq!(without.lines().collect::<Vec<_>>(), kept);
    assert!(with.lines().count() == without.lines().count() + 4, "the activation happens twice in SWE-bench's script");
}

#[test]
fn swebench_5x_rows_run_their_own_script_with_the_exit_code_recorded() {
    let mut reference = Reference::start(Generation::V5);
    let base = "#!/bin/bash\nset -uxo pipefail\ncd /testbed\ngit apply -v - <<'EOF_114329324912'\nx\nEOF_114329324912\n: '>>>>> Start Test Output'\npytest -rA tests/test_a.py\n: '>>>>> End Test Output'\ngit checkout abc tests/test_a.py\n";
    let scripts = [
        base.to_string(),
        format!("\n\n{base}\n\n"),
        base.replace("set -uxo pipefail\n", ""),
        base.replace(": '>>>>> End Test Output'\n", ""),
        format!("{base}echo done  \n\t\n"),
        "#!/bin/bash\nset -uxo pipefail\n: '>>>>> Start Test Output'\nA ; : '>>>>> End Test Output' ; B\n".to_string(),
    ];
    for (i, script) in scripts.iter().enumerate() {
        let r = json!({
            "instance_id": format!("owner__repo-{i}"), "repo": "owner/repo", "version": "1.0", "base_commit": "abc",
            "image": "example/image:1", "problem_statement": "p", "patch": "", "test_patch": "",
            "FAIL_TO_PASS": ["tests/test_a.py::test_a"], "PASS_TO_PASS": [],
            "eval_script": script, "log_parser": "parse_log_pytest", "eval_type": "pass_and_fail",
        });
        let want = reference.ask(&json!({"op": "eval_script", "row": r}));
        let t = task(&r);
        assert_eq!(t.family, Family::Swebench5);
        let got = eval_plan(&t, &ScriptOptions::default()).expect("plan").script.expect("script");
        assert_eq!(got, want["script"].as_str().expect("script"), "script {i}");
    }
}

/// `proto/data/swebench-specs.json` is what `tests/reference/gen_swebench_specs.py` writes from
/// the installed swebench 4.1.0; a new package version or a hand edit fails here.
#[test]
fn the_embedded_spec_tables_are_the_packages() {
    let root = workspace();
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/reference/gen_swebench_specs.py"))
        .env("PYTHONPATH", root.join(".venv/swebench-4.1.0"))
        .output()
        .expect("run the generator (deploy/setup.sh installs .venv)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read(root.join("proto/data/swebench-specs.json")).expect("the committed tables");
    assert!(
        out.stdout == committed,
        "proto/data/swebench-specs.json has drifted from the package; regenerate it with:\n  PYTHONPATH=.venv/swebench-4.1.0 .venv/bin/python tests/reference/gen_swebench_specs.py > proto/data/swebench-specs.json"
    );
}
