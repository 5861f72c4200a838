//! A grading in the reference's report shape, for people comparing agentmill with a harness's
//! `report.json`, and the offline re-grading of saved logs (`agentmill-worker grade`).

use agentmill_proto::dataset::{EvalPlan, ScriptOptions, eval_plan};
use agentmill_proto::{Grading, Task, TestOutcome, Verdict};
use serde_json::{Value, json};

use super::rules::for_saved_log;
use super::{GradeError, grade_log};

/// Grades a saved log for `task` as its family's harness would; a SWE-bench log without the
/// test-output markers is read as SWE-bench 2.x read it (see [`for_saved_log`]). `rules`
/// overrides the rules when given. With the `model_patch` that was graded, an empty one is
/// graded as the harness does (not run: every test failed). Returns the plan used with the
/// grading.
pub fn grade_saved_log(task: &Task, log: &str, rules: Option<agentmill_proto::dataset::Rules>, model_patch: Option<&str>) -> Result<(EvalPlan, Grading), String> {
    let mut plan = eval_plan(task, &ScriptOptions::default())?;
    plan.rules = rules.unwrap_or_else(|| for_saved_log(plan.rules, log));
    let mut grading = match model_patch {
        Some(p) if p.trim().is_empty() => Grading::empty_patch(&task.fail_to_pass, &task.pass_to_pass),
        _ => grade_log(task, &plan, log, "unknown").map_err(|e: GradeError| e.to_string())?,
    };
    grading.rules = plan.rules.as_str().to_string();
    grading.log_parser = plan.parser.clone();
    Ok((plan, grading))
}

/// The reference's `report.json` for one instance, with agentmill's additions under `agentmill`.
pub fn report_json(task: &Task, g: &Grading) -> Value {
    fn side(tests: &[TestOutcome], v: Verdict) -> Vec<&str> {
        tests.iter().filter(|t| t.verdict == Some(v) || (t.verdict.is_none() && (v == Verdict::Success) == t.succeeded())).map(|t| t.name.as_str()).collect()
    }
    let empty = g.patch_applied == "empty";
    let graded = g.not_graded.is_none() && !empty;
    let mut entry = json!({
        "patch_is_None": empty,
        "patch_exists": !empty,
        "patch_successfully_applied": graded,
        "resolved": g.resolved,
    });
    if graded {
        entry["tests_status"] = json!({
            "FAIL_TO_PASS": {"success": side(&g.fail_to_pass, Verdict::Success), "failure": side(&g.fail_to_pass, Verdict::Failure)},
            "PASS_TO_PASS": {"success": side(&g.pass_to_pass, Verdict::Success), "failure": side(&g.pass_to_pass, Verdict::Failure)},
        });
    }
    entry["agentmill"] = json!({
        "resolution": g.resolution.as_str(),
        "rules": g.rules,
        "log_parser": g.log_parser,
        "not_graded": g.not_graded,
        "excluded": g.fail_to_pass.iter().chain(&g.pass_to_pass).filter(|t| t.verdict == Some(Verdict::Excluded)).map(|t| &t.name).collect::<Vec<_>>(),
        "statuses": g.fail_to_pass.iter().chain(&g.pass_to_pass).map(|t| (t.name.clone(), json!(t.status))).collect::<serde_json::Map<_, _>>(),
    });
    json!({ task.instance_id.clone(): entry })
}

/// A short human report: the verdict, then each list's counts and its failing tests.
pub fn report_text(task: &Task, g: &Grading) -> String {
    let mut out = format!("{}: {} (rules {}, parser {})\n", task.instance_id, g.resolution.as_str(), g.rules, g.log_parser);
    if let Some(why) = &g.not_graded {
        out.push_str(&format!("not graded: {why}\n"));
        return out;
    }
    if g.patch_applied == "empty" {
        out.push_str("the model's patch is empty: the tests did not run\n");
        return out;
    }
    for (name, tests) in [("FAIL_TO_PASS", &g.fail_to_pass), ("PASS_TO_PASS", &g.pass_to_pass)] {
        let count = |v: Verdict| tests.iter().filter(|t| t.verdict == Some(v)).count();
        out.push_str(&format!("{name}: {} success, {} failure", count(Verdict::Success), count(Verdict::Failure)));
        let excluded = count(Verdict::Excluded);
        if excluded > 0 {
            out.push_str(&format!(", {excluded} in neither"));
        }
        out.push('\n');
        for t in tests.iter().filter(|t| t.verdict == Some(Verdict::Failure)) {
            out.push_str(&format!("  failed: {} ({})\n", t.name, serde_json::to_value(t.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()));
        }
    }
    out
}
