//! Grading: run the repository's own tests and read the log as the task's reference harness
//! reads it.
//!
//! The task's [`EvalPlan`] (from `agentmill_proto::dataset`) says what runs and whose rules read
//! the log; [`parsers`] are the reference's log parsers, name for name; [`rules`] its
//! `get_logs_eval` and report; [`grade_log`] puts them together into a [`Grading`] with the
//! reference's per-list success and failure. [`pytest`] reads agentmill's own rows, whose ids
//! are matched whole; [`test_command`] is what runs for them. [`report`] writes a grading in
//! the reference's `report.json` shape and re-grades saved logs; [`cli`] is the body of
//! `agentmill-worker grade` and `eval-script`.

pub mod cli;
pub mod parsers;
pub mod pytest;
pub mod report;
pub mod rules;

use agentmill_proto::dataset::{AGENTMILL_PARSER, EvalPlan, Rules};
use agentmill_proto::{Grading, Task, TestStatus};

use parsers::{Generation, ParseContext, StatusMap};
use rules::LogSlice;

/// The file the worker writes the listed test ids to, one per line, for agentmill's own rows.
pub const TEST_IDS_FILE: &str = "test-ids.txt";

/// The command that runs agentmill's own rows from the workdir: the row's `test_cmd`, or pytest
/// on exactly the listed ids, read from `ids_file` (one per line) by `xargs` so that any number
/// of ids fits (one argv string holds at most 128 KiB; xargs splits a long list into several
/// pytest runs whose logs the parser reads together). `python -m` puts the repo on the path.
pub fn test_command(task: &Task, ids_file: &str) -> String {
    if let Some(cmd) = &task.test_cmd {
        return cmd.clone();
    }
    format!("xargs -d '\\n' -a {} python -m pytest -rA -p no:cacheprovider", crate::shell::quote(ids_file))
}

/// The generation of the parsers the rules were written against.
pub fn generation(rules: Rules) -> Generation {
    match rules {
        Rules::Swebench5 => Generation::V5,
        Rules::Swebench2 => Generation::V2,
        _ => Generation::V4,
    }
}

/// A log that cannot be graded because the task names something agentmill cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GradeError {
    /// The plan names a parser agentmill does not have.
    #[error("the task's log parser {0:?} is not one agentmill knows; use a SWE-bench parser name (agentmill-worker grade --help lists them)")]
    UnknownParser(String),
    /// The parser would have raised in the reference too.
    #[error(transparent)]
    Parse(#[from] parsers::ParseError),
}

/// Reads `log` with the plan's parser and rules and grades the task's lists. A run the reference
/// would not grade comes back with [`Grading::not_graded`] set.
pub fn grade_log(task: &Task, plan: &EvalPlan, log: &str, patch_applied: &str) -> Result<Grading, GradeError> {
    let mut grading = match rules::slice_log(plan.rules, log) {
        LogSlice::NotGraded(why) => Grading::not_graded(&task.fail_to_pass, &task.pass_to_pass, patch_applied, why),
        LogSlice::Read { .. } if plan.rules == Rules::OpenSwe => {
            use agentmill_proto::Resolution;
            let mut g = Grading::from_outcomes(Vec::new(), Vec::new(), patch_applied);
            let resolved = rules::openswe_resolved(log);
            g.resolution = if resolved { Resolution::Full } else { Resolution::No };
            g.resolved = resolved;
            g
        }
        LogSlice::Read { text, fallback } => {
            let mut status = parse(plan, task, &text)?;
            if status.is_empty()
                && let Some(all) = fallback
            {
                status = parse(plan, task, all)?;
            }
            match rules::check_parsed(plan.rules, log, &status) {
                Some(why) => Grading::not_graded(&task.fail_to_pass, &task.pass_to_pass, patch_applied, why),
                None if plan.rules == Rules::SweRebenchV2 => rebench_v2(task, &status, patch_applied),
                None if plan.rules == Rules::R2eGym => r2e_gym(task, &status, patch_applied),
                None => {
                    let (f2p, p2p) = rules::count(plan.rules, plan.eval_type, &status, &task.fail_to_pass, &task.pass_to_pass);
                    Grading::from_outcomes(f2p, p2p, patch_applied)
                }
            }
        }
    };
    grading.rules = plan.rules.as_str().to_string();
    grading.log_parser = plan.parser.clone();
    Ok(grading)
}

/// SWE-rebench V2: resolved exactly when the PASSED set (names normalised, as its `eval.py` does
/// on both sides) equals FAIL_TO_PASS ∪ PASS_TO_PASS; each listed test succeeds when PASSED.
fn rebench_v2(task: &Task, status: &StatusMap, patch_applied: &str) -> Grading {
    use agentmill_proto::{Resolution, TestOutcome, Verdict};
    use parsers::{rebench_v2_normalize_test_name as norm, rebench_v2_passed_match};
    let normalised: StatusMap = status.iter().map(|(k, v)| (norm(k), *v)).collect();
    let outcomes = |ids: &[String]| -> Vec<TestOutcome> {
        ids.iter()
            .map(|id| {
                let s = normalised.get(&norm(id)).copied().unwrap_or(TestStatus::Missing);
                TestOutcome { name: id.clone(), status: s, verdict: Some(if s == TestStatus::Passed { Verdict::Success } else { Verdict::Failure }) }
            })
            .collect()
    };
    let mut g = Grading::from_outcomes(outcomes(&task.fail_to_pass), outcomes(&task.pass_to_pass), patch_applied);
    let matched = rebench_v2_passed_match(status, &task.fail_to_pass, &task.pass_to_pass);
    // Only an exact match resolves: a test passing outside the lists fails it as well.
    g.resolution = if matched { Resolution::Full } else { Resolution::No };
    g.resolved = matched;
    g
}

/// R2E-Gym: the reward is 1 exactly when the parsed map equals the expected one (keys
/// normalised as its runtime does); the expected tests are recorded with the run's statuses.
fn r2e_gym(task: &Task, status: &StatusMap, patch_applied: &str) -> Grading {
    use agentmill_proto::{Resolution, TestOutcome, Verdict};
    let expected_json = match task.extra.get("expected_output_json") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let reward = match parsers::r2e_reward(status, &expected_json) {
        Ok(r) => r,
        Err(e) => return Grading::not_graded(&[], &[], patch_applied, format!("R2E-Gym's reward raises on this run ({e:?})")),
    };
    let expected: indexmap::IndexMap<String, serde_json::Value> = serde_json::from_str(&expected_json).unwrap_or_default();
    let expected = parsers::r2e_reward_view(&expected);
    let observed = parsers::r2e_reward_view(status);
    let word = |s: TestStatus| serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_ascii_uppercase)).unwrap_or_default();
    let mut g = Grading::from_outcomes(Vec::new(), Vec::new(), patch_applied);
    g.expected = expected
        .iter()
        .map(|(k, want)| {
            let s = observed.get(k).copied().unwrap_or(TestStatus::Missing);
            let ok = want.as_str() == Some(word(s).as_str());
            TestOutcome { name: k.clone(), status: s, verdict: Some(if ok { Verdict::Success } else { Verdict::Failure }) }
        })
        .collect();
    g.resolution = if reward >= 1.0 { Resolution::Full } else { Resolution::No };
    g.resolved = reward >= 1.0;
    g
}

/// The status map of `text` by the plan's parser.
pub fn parse(plan: &EvalPlan, task: &Task, text: &str) -> Result<StatusMap, GradeError> {
    if plan.parser == AGENTMILL_PARSER {
        let log = pytest::PytestLog::parse(text);
        return Ok(task.all_tests().map(|id| (id.to_string(), log.status(id))).filter(|(_, s)| *s != TestStatus::Missing).collect());
    }
    let f = parsers::lookup(&plan.parser).ok_or_else(|| GradeError::UnknownParser(plan.parser.clone()))?;
    let ctx = ParseContext { instance_id: &task.instance_id, version: &task.version, repo: &task.repo };
    Ok(f(text, &ctx, generation(plan.rules))?)
}
