//! agentmill's grading rules against the `swebench` package's own `get_logs_eval`,
//! `get_eval_tests_report` and `get_resolution_status`, 4.1.0 and 5.0.2, on the same logs:
//! whether the run is graded at all, each listed test's side of the report, and the resolution.
//!
//! The logs: the 68 real harness logs (from `../shared/harness-logs`, read at test time) put
//! between the test-output markers the way a 3.0.15+ eval script's `set -x` trace prints them,
//! with and without a recorded exit code, and edge cases written here for each rule (skipped and
//! xfailed tests, truncated parametrised ids, a log that contradicts its exit code, a suite that
//! never ran, a harness stop marker, `fail_only` repositories).

mod reference_support;

use agentmill_proto::dataset::{EvalType, Family, Rules, ScriptOptions, eval_plan};
use agentmill_proto::{Task, Verdict};
use agentmill_worker::grading::grade_log;
use agentmill_worker::grading::parsers::Generation;
use reference_support::{Reference, workspace};
use serde_json::{Value, json};

struct Case {
    name: String,
    row: Value,
    log: String,
}

fn harness_cases() -> Vec<Case> {
    let path = workspace().join("../shared/harness-logs/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        let c: Value = serde_json::from_str(line).expect("case");
        let row = json!({
            "instance_id": c["instance_id"], "repo": c["repo"], "version": c["version"], "base_commit": c["base_commit"],
            "problem_statement": "p", "patch": "", "test_patch": c["test_patch"],
            "FAIL_TO_PASS": c["FAIL_TO_PASS"], "PASS_TO_PASS": c["PASS_TO_PASS"],
        });
        let log = c["log"].as_str().expect("log");
        let id = c["case_id"].as_str().expect("id");
        let marked = format!("+ : '>>>>> Start Test Output'\n{log}\n+ : '>>>>> End Test Output'\n");
        out.push(Case { name: format!("{id} (markers)"), row: row.clone(), log: marked.clone() });
        // The 5.x script's exit-code line: 0 when the run reported no failure, else 1.
        for code in [0, 1] {
            out.push(Case { name: format!("{id} (exit {code})"), row: row.clone(), log: format!("{marked}+ echo '>>>>> Test Exit Code: {code}'\n>>>>> Test Exit Code: {code}\n") });
        }
        // Results outside the markers: 4.x and 5.x fall back to the whole log.
        out.push(Case { name: format!("{id} (empty slice)"), row, log: format!("{log}\n+ : '>>>>> Start Test Output'\n+ : '>>>>> End Test Output'\n") });
    }
    out
}

fn edge_cases() -> Vec<Case> {
    let row = |repo: &str, version: &str, f2p: &[&str], p2p: &[&str]| {
        json!({"instance_id": format!("{}-1", repo.replace('/', "__")), "repo": repo, "version": version, "base_commit": "abc", "problem_statement": "p", "patch": "",
               "test_patch": "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@ -1 +1 @@\n-a\n+b\n",
               "FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p})
    };
    let wrap = |body: &str, code: Option<i32>| {
        let mut s = format!("+ git apply -v -\nApplied patch tests/test_a.py cleanly.\n+ : '>>>>> Start Test Output'\n{body}\n+ : '>>>>> End Test Output'\n");
        if let Some(c) = code {
            s.push_str(&format!(">>>>> Test Exit Code: {c}\n"));
        }
        s
    };
    let x = "pydata/xarray";
    vec![
        Case { name: "skipped and xfailed".into(), row: row(x, "0.12", &["t.py::a", "t.py::b"], &["t.py::c", "t.py::d"]), log: wrap("SKIPPED t.py::a\nXFAIL t.py::b - why\nSKIPPED t.py::c\nXFAIL t.py::d\n== 4 skipped ==", Some(0)) },
        Case { name: "truncated ids that agree".into(), row: row(x, "0.12", &["t.py::f[a"], &["t.py::g[x"]), log: wrap("PASSED t.py::f[a b]\nXFAIL t.py::f[a c]\nPASSED t.py::g[x y]\nSKIPPED t.py::g[x z]", Some(0)) },
        Case { name: "truncated ids that disagree".into(), row: row(x, "0.12", &["t.py::f[a"], &[]), log: wrap("PASSED t.py::f[a b]\nFAILED t.py::f[a c] - boom", Some(1)) },
        Case { name: "exit code contradicts the log".into(), row: row(x, "0.12", &["t.py::a"], &[]), log: wrap("PASSED t.py::a", Some(2)) },
        Case { name: "exit code agrees with a failure".into(), row: row(x, "0.12", &["t.py::a"], &["t.py::b"]), log: wrap("PASSED t.py::a\nFAILED t.py::b - x", Some(1)) },
        Case { name: "no results, no suite".into(), row: row(x, "0.12", &["t.py::a"], &[]), log: wrap("ImportError: nope", Some(4)) },
        Case { name: "no results, a suite ran".into(), row: row(x, "0.12", &["t.py::a"], &[]), log: wrap("Tests: 3 passed", Some(0)) },
        Case { name: "a stop marker".into(), row: row(x, "0.12", &["t.py::a"], &[]), log: format!("{}\n>>>>> Tests Errored\n", wrap("PASSED t.py::a", Some(0))) },
        Case { name: "no end marker".into(), row: row(x, "0.12", &["t.py::a"], &[]), log: "+ : '>>>>> Start Test Output'\nPASSED t.py::a\n".into() },
        Case { name: "a word that is no status".into(), row: row(x, "0.12", &["t.py::a"], &["t.py::b", "t.py::c"]), log: wrap("PASSED t.py::a\nERROR: t.py::b\nPASSED: t.py::c", Some(0)) },
        Case { name: "missing tests".into(), row: row(x, "0.12", &["t.py::a"], &["t.py::zz"]), log: wrap("PASSED t.py::a", Some(0)) },
        Case { name: "partial".into(), row: row(x, "0.12", &["t.py::a", "t.py::b"], &["t.py::c"]), log: wrap("PASSED t.py::a\nFAILED t.py::b\nPASSED t.py::c", Some(1)) },
        Case { name: "no pass-to-pass".into(), row: row(x, "0.12", &["t.py::a"], &[]), log: wrap("PASSED t.py::a", Some(0)) },
        Case {
            name: "fail_only repository".into(),
            row: row("chartjs/Chart.js", "4.0", &["a", "b"], &["c"]),
            log: wrap("    ✓ a (3ms)\n    ✕ b\nExecuted 2 of 2 SUCCESS", Some(1)),
        },
        Case { name: "django docstring ids".into(), row: row("django/django", "3.0", &["Tests a thing."], &["test_b (m.T)"]), log: wrap("test_a (m.T)\nTests a thing. ... ok\ntest_b (m.T) ... ok\n----\nRan 2 tests\nOK", Some(0)) },
    ]
}

/// The 5.x row for a 4.x row: the parser and type its repository gets, the script given.
fn as_5x(row: &Value, parser: &str, eval_type: EvalType) -> Value {
    let mut r = row.clone();
    r["log_parser"] = parser.into();
    r["eval_type"] = eval_type.as_str().into();
    r["eval_script"] = "#!/bin/bash\nset -uxo pipefail\n: '>>>>> Start Test Output'\ntrue\n: '>>>>> End Test Output'\n".into();
    r["image"] = "example/image:1".into();
    r
}

fn compare(reference: &mut Reference, generation: Generation, cases: &[Case]) -> (usize, Vec<String>) {
    let mut diffs = Vec::new();
    let mut compared = 0;
    for case in cases {
        let base = Task::from_json_object(case.row.as_object().cloned().expect("object")).expect("row parses");
        let plan4 = eval_plan(&base, &ScriptOptions::default()).expect("plan");
        let row = match generation {
            Generation::V4 | Generation::V2 => case.row.clone(),
            Generation::V5 => as_5x(&case.row, &plan4.parser, plan4.eval_type),
        };
        let task = Task::from_json_object(row.as_object().cloned().expect("object")).expect("row parses");
        let plan = eval_plan(&task, &ScriptOptions::default()).expect("plan");
        assert_eq!(plan.rules, if generation == Generation::V5 { Rules::Swebench5 } else { Rules::Swebench4 });
        assert_eq!(task.family, if generation == Generation::V5 { Family::Swebench5 } else { Family::Swebench });
        let ours = grade_log(&task, &plan, &case.log, "git apply").expect("grades");
        let label = format!("{} [{generation:?}]", case.name);
        if case.log.contains("Timeout error: ") {
            // run_instance raises on a timeout before get_logs_eval is called: no report.
            if ours.not_graded.is_none() {
                diffs.push(format!("{label}: a run past its timeout was graded"));
            }
            continue;
        }
        let want = reference.ask(&json!({"op": "grade", "row": row, "log": case.log}));
        compared += 1;
        let found = want["found"].as_bool().expect("found");
        if found != ours.not_graded.is_none() {
            diffs.push(format!("{label}: reference found={found}, ours not_graded={:?}", ours.not_graded));
            continue;
        }
        if !found {
            continue;
        }
        if want["resolution"].as_str() != Some(format!("RESOLVED_{}", ours.resolution.as_str()).as_str()) {
            diffs.push(format!("{label}: resolution {} vs reference {}", ours.resolution.as_str(), want["resolution"]));
        }
        for (list, tests) in [("FAIL_TO_PASS", &ours.fail_to_pass), ("PASS_TO_PASS", &ours.pass_to_pass)] {
            for (side, verdict) in [("success", Verdict::Success), ("failure", Verdict::Failure)] {
                let w: Vec<&str> = want["report"][list][side].as_array().expect("side").iter().filter_map(Value::as_str).collect();
                let o: Vec<&str> = tests.iter().filter(|t| t.verdict == Some(verdict)).map(|t| t.name.as_str()).collect();
                if w != o {
                    diffs.push(format!("{label}: {list}.{side}: ours {o:?}, reference {w:?}"));
                }
            }
        }
    }
    (compared, diffs)
}

#[test]
fn grading_follows_swebench_4x_and_5x_on_the_same_logs() {
    let mut cases = harness_cases();
    cases.extend(edge_cases());
    for generation in [Generation::V4, Generation::V5] {
        let mut reference = Reference::start(generation);
        let (n, diffs) = compare(&mut reference, generation, &cases);
        println!("{generation:?} (swebench {}): {n} logs compared", reference.version);
        assert!(diffs.is_empty(), "{} differences under {generation:?}:\n{}", diffs.len(), diffs.join("\n"));
    }
}
