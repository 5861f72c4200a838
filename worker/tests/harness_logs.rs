//! Real SWE-bench evaluations, graded again: every case in `../shared/harness-logs/cases.jsonl`
//! (the log the official harness wrote and its own report.json verdict) must grade as the
//! harness graded it — verdict for verdict, list side for list side, and status for status
//! against the status map the harness's parser made of the same log.
//!
//! The file is read from the shared folder beside the workspace (it is not copied into the
//! repository); the test fails naming the path when it is missing. `--nocapture` prints the
//! agreement per repository.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agentmill_proto::dataset::{Family, Rules};
use agentmill_proto::{Task, TestStatus, Verdict};
use agentmill_worker::grading::report::grade_saved_log;
use serde_json::{Map, Value, json};

fn cases_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/harness-logs/cases.jsonl")
}

fn cases() -> Vec<Value> {
    let path = cases_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (the harness logs live in ../shared/harness-logs beside the workspace)", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a case is JSON")).collect()
}

/// The task row a case stands for: the dataset's fields, as a row would carry them.
fn row_of(case: &Value) -> Task {
    let mut row = Map::new();
    for k in ["instance_id", "repo", "version", "base_commit", "test_patch", "FAIL_TO_PASS", "PASS_TO_PASS", "eval_script"] {
        if let Some(v) = case.get(k) {
            row.insert(k.into(), v.clone());
        }
    }
    row.insert("problem_statement".into(), json!("(not in the case)"));
    Task::from_json_object(row).unwrap_or_else(|e| panic!("{}: the case does not make a row: {e:?}", case["case_id"]))
}

fn status_word(s: TestStatus) -> &'static str {
    match s {
        TestStatus::Passed => "PASSED",
        TestStatus::Failed => "FAILED",
        TestStatus::Error => "ERROR",
        TestStatus::Skipped => "SKIPPED",
        TestStatus::Xfail => "XFAIL",
        TestStatus::Missing => "MISSING",
    }
}

#[derive(Default)]
struct Tally {
    cases: usize,
    verdicts: usize,
    tests: usize,
    tests_agree: usize,
}

#[test]
fn every_harness_log_grades_as_the_harness_graded_it() {
    let mut by_repo: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases() {
        let id = case["case_id"].as_str().expect("case_id").to_string();
        let task = row_of(&case);
        assert_eq!(task.family, Family::Swebench, "{id}: a Verified row is a SWE-bench row");
        let log = case["log"].as_str().expect("log");
        // A prediction of None was never run (the harness's `patch_is_None`); an empty patch.diff
        // beside a log was run, and its log is graded.
        let model_patch = (case["patch_is_None"] == json!(true)).then_some("");
        let (plan, grading) = grade_saved_log(&task, log, None, model_patch).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(plan.rules, Rules::Swebench2, "{id}: these logs have no test-output markers: harness 2.x wrote them");
        let tally = by_repo.entry(case["repo"].as_str().unwrap_or_default().to_string()).or_default();
        tally.cases += 1;

        let want_resolved = case["resolved"].as_bool().expect("resolved");
        let verdict_ok = grading.resolved == want_resolved;
        if !verdict_ok {
            failures.push(format!("{id}: resolved {} (harness: {want_resolved}); {:?}", grading.resolved, grading.not_graded));
        }
        tally.verdicts += usize::from(verdict_ok);

        match case.get("expected").filter(|e| !e.is_null()) {
            None if case["patch_is_None"] == json!(true) => {
                // An empty prediction: not run, a failure of the model's.
                if grading.patch_applied != "empty" || grading.not_graded.is_some() {
                    failures.push(format!("{id}: an empty patch grades as empty, ours: {} {:?}", grading.patch_applied, grading.not_graded));
                }
            }
            None => {
                // The harness wrote no tests_status: it did not grade this run.
                if grading.not_graded.is_none() {
                    failures.push(format!("{id}: graded, but the harness did not grade it (patch_successfully_applied {})", case["patch_successfully_applied"]));
                }
            }
            Some(expected) => {
                if let Some(why) = &grading.not_graded {
                    failures.push(format!("{id}: not graded ({why}), the harness graded it"));
                }
                for (list, tests) in [("FAIL_TO_PASS", &grading.fail_to_pass), ("PASS_TO_PASS", &grading.pass_to_pass)] {
                    for side in ["success", "failure"] {
                        let want: Vec<&str> = expected[list][side].as_array().expect("side").iter().filter_map(Value::as_str).collect();
                        let verdict = if side == "success" { Verdict::Success } else { Verdict::Failure };
                        for name in &want {
                            tally.tests += 1;
                            match tests.iter().find(|t| t.name == *name) {
                                Some(t) if t.verdict == Some(verdict) => tally.tests_agree += 1,
                                Some(t) => failures.push(format!("{id}: {list} {name:?}: ours {:?} ({}), harness {side}", t.verdict, status_word(t.status))),
                                None => failures.push(format!("{id}: {list} {name:?} is not in our grading")),
                            }
                        }
                        let ours = tests.iter().filter(|t| t.verdict == Some(verdict)).count();
                        if ours != want.len() {
                            failures.push(format!("{id}: {list}.{side}: ours {ours}, harness {}", want.len()));
                        }
                    }
                }
            }
        }

        // The status each listed test got is the status the harness's parser gave it.
        if let Some(expected_status) = case.get("expected_status").and_then(Value::as_object) {
            for t in grading.fail_to_pass.iter().chain(&grading.pass_to_pass) {
                let want = expected_status.get(&t.name).and_then(Value::as_str).unwrap_or("MISSING");
                if status_word(t.status) != want {
                    failures.push(format!("{id}: {:?} status {} (harness parser: {want})", t.name, status_word(t.status)));
                }
            }
        }
    }
    let total = by_repo.values().fold(Tally::default(), |a, t| Tally { cases: a.cases + t.cases, verdicts: a.verdicts + t.verdicts, tests: a.tests + t.tests, tests_agree: a.tests_agree + t.tests_agree });
    println!("{:<28} {:>6} {:>10} {:>14}", "repository", "cases", "verdicts", "per-test");
    for (repo, t) in by_repo.iter().chain(std::iter::once((&"all".to_string(), &total))) {
        println!("{repo:<28} {:>6} {:>5}/{:<4} {:>7}/{:<6}", t.cases, t.verdicts, t.cases, t.tests_agree, t.tests);
    }
    assert_eq!(total.cases, 68, "cases.jsonl holds 68 cases");
    assert!(failures.is_empty(), "{} disagreements with the harness:\n{}", failures.len(), failures.join("\n"));
}

/// The whole status map, not only the listed tests': what the harness's own parser (SWE-bench
/// 2.0.13's, whose `TestStatus` has no XFAIL) made of each log, key for key. Words that are no
/// status (`ERROR:`, `-E`) are kept as `missing` by agentmill.
#[test]
fn the_parsers_read_each_log_as_the_harnesss_parser_did() {
    use agentmill_worker::grading::rules::{LogSlice, slice_log};
    let mut compared = 0;
    for case in cases() {
        let Some(expected) = case.get("expected_status").and_then(Value::as_object) else { continue };
        let id = case["case_id"].as_str().expect("id");
        let task = row_of(&case);
        let (plan, _) = grade_saved_log(&task, case["log"].as_str().expect("log"), None, None).expect("grades");
        let LogSlice::Read { text, .. } = slice_log(plan.rules, case["log"].as_str().expect("log")) else { panic!("{id}: graded logs are read") };
        let ours = agentmill_worker::grading::parse(&plan, &task, &text).unwrap_or_else(|e| panic!("{id}: {e}"));
        let want: BTreeMap<&str, &str> = expected.iter().map(|(k, v)| (k.as_str(), v.as_str().expect("word"))).collect();
        let got: BTreeMap<&str, &str> = ours.iter().map(|(k, v)| (k.as_str(), status_word(*v))).collect();
        for (k, w) in &want {
            let standard = ["PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL"].contains(w);
            let g = got.get(k).copied().unwrap_or("(absent)");
            assert!(if standard { g == *w } else { g == "MISSING" }, "{id}: {k:?}: ours {g}, the harness's parser {w}");
        }
        assert_eq!(got.len(), want.len(), "{id}: {} keys, the harness's parser {}", got.len(), want.len());
        compared += want.len();
    }
    println!("{compared} statuses compared");
    assert!(compared > 8_000, "every key of the 65 graded logs: {compared}");
}

/// The same logs read by a newer harness's rules: without markers, 4.x and 5.x would not grade
/// them at all — which is why a saved log is read by the rules of the harness that wrote it.
#[test]
fn a_log_without_markers_is_not_graded_by_the_4x_and_5x_rules() {
    let case = cases().into_iter().find(|c| c["case_id"].as_str().is_some_and(|id| id.ends_with("django__django-11099"))).expect("case");
    let task = row_of(&case);
    for rules in [Rules::Swebench4, Rules::Swebench5] {
        let (_, g) = grade_saved_log(&task, case["log"].as_str().expect("log"), Some(rules), None).expect("grades");
        assert!(g.not_graded.as_deref().is_some_and(|w| w.contains("Start Test Output")), "{rules:?}: {:?}", g.not_graded);
        assert!(!g.resolved);
    }
}
