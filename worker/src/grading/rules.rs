//! The reference harnesses' grading rules: which part of a log is read, when a run is not
//! graded at all, and how each listed test is counted.
//!
//! Each [`Rules`] is one harness at one generation (`grading.py` of SWE-bench 2.0.13, 4.1.0 and
//! 5.0.2, and of the SWE-rebench and SWE-Gym forks). [`read_log`] is their `get_logs_eval`;
//! [`count`] their `get_eval_tests_report` (the test's [`Verdict`] is the side of the report it
//! lands on); the resolution is then SWE-bench's rule over the counted tests.

use std::borrow::Cow;
use std::sync::OnceLock;

use agentmill_proto::dataset::{EvalType, Rules};
use agentmill_proto::{TestOutcome, TestStatus, Verdict};
use regex::Regex;

use super::parsers::StatusMap;

/// SWE-bench's log markers.
pub const APPLY_PATCH_FAIL: &str = ">>>>> Patch Apply Failed";
/// See [`APPLY_PATCH_FAIL`].
pub const APPLY_PATCH_PASS: &str = ">>>>> Applied Patch";
/// See [`APPLY_PATCH_FAIL`].
pub const RESET_FAILED: &str = ">>>>> Reset Failed";
/// See [`APPLY_PATCH_FAIL`].
pub const TESTS_ERROR: &str = ">>>>> Tests Errored";
/// See [`APPLY_PATCH_FAIL`].
pub const TESTS_TIMEOUT: &str = ">>>>> Tests Timed Out";
/// The line the harnesses append to a log whose run hit its timeout (no report is written).
pub const TIMEOUT_ERROR: &str = "Timeout error: ";

pub use agentmill_proto::dataset::{END_TEST_OUTPUT, START_TEST_OUTPUT, TEST_EXIT_CODE};

/// The prefix of the line an OpenSWE eval script ends with (`echo "OPENSWE_EXIT_CODE=$rc"`).
pub const OPENSWE_EXIT_CODE: &str = "OPENSWE_EXIT_CODE=";

/// OpenSWE's rule (its swe-bench fork): resolved exactly when `^OPENSWE_EXIT_CODE=0$` matches
/// with Python's `re.M` (a line ends before `\n` only, so `\r` before it is part of the line).
pub fn openswe_resolved(log: &str) -> bool {
    log.split('\n').any(|line| line == "OPENSWE_EXIT_CODE=0")
}

/// The code the last `OPENSWE_EXIT_CODE=<n>` line reports (for the record; the rule is
/// [`openswe_resolved`]).
pub fn openswe_exit_code(log: &str) -> Option<i64> {
    log.lines().rev().find_map(|l| l.strip_prefix(OPENSWE_EXIT_CODE)).and_then(|c| c.trim().parse().ok())
}

/// The part of a log a parser reads, or why the harness would not grade it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSlice<'a> {
    /// Parse this text; `fallback` is the whole log, parsed when the slice gives no result
    /// (4.x and 5.x), `None` where the rules have no fallback.
    Read { text: Cow<'a, str>, fallback: Option<&'a str> },
    /// The harness would not grade this log: why.
    NotGraded(String),
}

/// The first steps of `get_logs_eval`: the markers that stop grading, and the slice to parse.
pub fn slice_log(rules: Rules, log: &str) -> LogSlice<'_> {
    if let Some(why) = timed_out(log) {
        return LogSlice::NotGraded(why);
    }
    match rules {
        Rules::Agentmill => LogSlice::Read { text: Cow::Borrowed(log), fallback: None },
        Rules::SweRebenchV2 => {
            if log.contains(agentmill_proto::dataset::PATCH_APPLY_FAILED) {
                return LogSlice::NotGraded("the model's patch does not apply (git apply --3way)".into());
            }
            LogSlice::Read { text: Cow::Borrowed(log), fallback: None }
        }
        Rules::R2eGym => {
            // The runtime's output: colour codes and carriage returns removed.
            static RE: OnceLock<Regex> = OnceLock::new();
            let re = RE.get_or_init(|| Regex::new("\x1b\\[[0-9;]*m|\r").expect("static regex"));
            LogSlice::Read { text: re.replace_all(log, ""), fallback: None }
        }
        Rules::SweSmith => swesmith_slice(log),
        // Graded whole by [`openswe_resolved`]; here only the line's presence matters.
        Rules::OpenSwe => {
            if !log.contains(OPENSWE_EXIT_CODE) {
                return LogSlice::NotGraded(format!("the log has no {OPENSWE_EXIT_CODE:?} line: the eval script did not report its tests' exit code (the task's fault)"));
            }
            LogSlice::Read { text: Cow::Borrowed(log), fallback: None }
        }
        Rules::Swebench2 | Rules::SweGym => {
            let mut bad = vec![APPLY_PATCH_FAIL, RESET_FAILED, TESTS_ERROR, TESTS_TIMEOUT, "Failed to reset task environment"];
            bad.retain(|m| log.contains(m));
            if let Some(m) = bad.first() {
                return LogSlice::NotGraded(format!("the log holds {m:?}"));
            }
            if !log.to_lowercase().contains("applied patch") {
                return LogSlice::NotGraded("the log never says a patch applied (\"Applied patch\"): the test patch did not go in".into());
            }
            let marker = format!("{APPLY_PATCH_PASS} (pred)");
            let text = log.rsplit(marker.as_str()).next().unwrap_or(log);
            LogSlice::Read { text: Cow::Borrowed(text), fallback: None }
        }
        Rules::Swebench4 | Rules::Swebench5 | Rules::SweRebench => {
            if let Some(m) = [APPLY_PATCH_FAIL, RESET_FAILED, TESTS_ERROR, TESTS_TIMEOUT].into_iter().find(|m| log.contains(m)) {
                return LogSlice::NotGraded(format!("the log holds {m:?}"));
            }
            let Some(start) = log.find(START_TEST_OUTPUT) else {
                return LogSlice::NotGraded(format!("the log has no {START_TEST_OUTPUT:?} marker: the eval script did not reach its tests"));
            };
            if !log.contains(END_TEST_OUTPUT) {
                return LogSlice::NotGraded(format!("the log has no {END_TEST_OUTPUT:?} marker: the eval script did not finish its tests"));
            }
            let after = &log[start + START_TEST_OUTPUT.len()..];
            let text = after.split(END_TEST_OUTPUT).next().unwrap_or(after);
            let fallback = matches!(rules, Rules::Swebench4 | Rules::Swebench5).then_some(log);
            LogSlice::Read { text: Cow::Borrowed(text), fallback }
        }
    }
}

/// The rules a saved log is read by: a SWE-bench log without either test-output marker was
/// written by a harness before 3.0.15 (which had none) and is read as 2.x read it.
pub fn for_saved_log(rules: Rules, log: &str) -> Rules {
    match rules {
        Rules::Swebench4 | Rules::Swebench5 if !log.contains(START_TEST_OUTPUT) && !log.contains(END_TEST_OUTPUT) => Rules::Swebench2,
        other => other,
    }
}

/// SWE-smith's `read_test_output`: the log read with universal newlines; the text between the
/// markers as `set -x` prints them (`+ : '…'`), sliced with Python's index rules.
fn swesmith_slice(log: &str) -> LogSlice<'static> {
    let content = log.replace("\r\n", "\n").replace('\r', "\n");
    if let Some(m) = [APPLY_PATCH_FAIL, TESTS_TIMEOUT].into_iter().find(|m| content.contains(m)) {
        return LogSlice::NotGraded(format!("the log holds {m:?}"));
    }
    if !content.contains(START_TEST_OUTPUT) || !content.contains(END_TEST_OUTPUT) {
        return LogSlice::NotGraded("the log lacks a test-output marker: the eval script did not run its tests".into());
    }
    let start_sep = format!("+ : '{START_TEST_OUTPUT}'");
    let end_sep = format!("+ : '{END_TEST_OUTPUT}'");
    let index = |sep: &str| content.find(sep).map_or(-1, |i| i as i64);
    let (start, end) = (index(&start_sep), index(&end_sep));
    if start > end {
        return LogSlice::NotGraded("the test-output markers are out of order (SWE-smith raises)".into());
    }
    // content[start:end][len(start_sep):] with Python's negative indices.
    let len = content.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) } as usize;
    let (a, b) = (norm(start), norm(end));
    let sliced = if a < b { &content[a..b] } else { "" };
    let text = sliced.get(start_sep.len()..).unwrap_or("").to_string();
    LogSlice::Read { text: Cow::Owned(text), fallback: None }
}

/// `Timeout error: N seconds exceeded.`: the harness raised before grading.
fn timed_out(log: &str) -> Option<String> {
    let i = log.rfind(TIMEOUT_ERROR)?;
    let rest = &log[i + TIMEOUT_ERROR.len()..];
    let secs: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!secs.is_empty() && rest[secs.len()..].starts_with(" seconds exceeded")).then(|| format!("the tests ran past their timeout ({secs} s)"))
}

/// 5.x's checks after parsing: an empty map with no sign a suite ran, or a non-zero exit code
/// with no failure in the map, is not graded.
pub fn check_parsed(rules: Rules, log: &str, status: &StatusMap) -> Option<String> {
    if rules != Rules::Swebench5 {
        return None;
    }
    if status.is_empty() && !suite_ran(log) {
        return Some("no test results in the log and no sign that a test suite ran".into());
    }
    if let Some(code) = recorded_exit_code(log)
        && code != 0
        && !status.is_empty()
        && !status.values().any(|s| matches!(s, TestStatus::Failed | TestStatus::Error))
    {
        return Some(format!("the test command exited {code} but the log reports no failure: it does not describe the run"));
    }
    None
}

/// 5.x's `SUITE_RAN`: evidence that a test runner executed.
fn suite_ran(log: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?m)Executed [1-9]\d* of \d+",
            r"|TOTAL: [1-9]\d* (?:SUCCESS|FAILED)",
            r"|[1-9]\d* passing",
            r"|Tests:\s+[1-9]\d*",
            r"|Test Suites:\s+(?:\d+ \w+, )*[1-9]\d* total",
            r"|^# tests [1-9]\d*",
            r"|[1-9]\d* specs?, \d+ failures?",
            r"|': ok$",
        ))
        .expect("static regex")
    })
    .is_match(log)
}

/// The test command's exit status the 5.x eval script records (`>>>>> Test Exit Code: N`).
pub fn recorded_exit_code(log: &str) -> Option<i64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r">>>>> Test Exit Code:\s*(-?\d+)").expect("static regex"));
    re.captures(log).and_then(|c| c[1].parse().ok())
}

/// `get_eval_tests_report`: each listed test with its status and the side it lands on.
pub fn count(rules: Rules, eval_type: EvalType, status: &StatusMap, fail_to_pass: &[String], pass_to_pass: &[String]) -> (Vec<TestOutcome>, Vec<TestOutcome>) {
    let f2p = fail_to_pass.iter().map(|t| outcome(rules, eval_type, status, t, false)).collect();
    let p2p = pass_to_pass.iter().map(|t| outcome(rules, eval_type, status, t, true)).collect();
    (f2p, p2p)
}

fn outcome(rules: Rules, eval_type: EvalType, sm: &StatusMap, test: &str, p2p: bool) -> TestOutcome {
    if eval_type == EvalType::FailOnly && rules != Rules::Agentmill {
        // `check_fail_only`: only a test the log says FAILED fails; exact ids only.
        let status = sm.get(test).copied().unwrap_or(TestStatus::Missing);
        let verdict = if status == TestStatus::Failed { Verdict::Failure } else { Verdict::Success };
        return TestOutcome { name: test.to_string(), status, verdict: Some(verdict) };
    }
    let found = match rules {
        Rules::Swebench5 => resolve_case(test, sm).map(|k| sm[k]),
        _ => sm.get(test).copied(),
    };
    let status = found.unwrap_or(TestStatus::Missing);
    // A parser keeps whatever word led its line (`ERROR:` from pip, `-E` from a 4.x
    // `pytest_v2` trailing status); the map holds it as `Missing`. The reference's test_passed
    // and test_failed both say no to such a word: the test lands on neither side of the report,
    // unlike a test absent from the log, which failed.
    if found == Some(TestStatus::Missing) && rules != Rules::Agentmill {
        return TestOutcome { name: test.to_string(), status, verdict: Some(Verdict::Excluded) };
    }
    let verdict = match (rules, status) {
        (Rules::Agentmill, s) => {
            if s.is_pass() {
                Verdict::Success
            } else {
                Verdict::Failure
            }
        }
        // 2.0.x: only PASSED passes; XFAIL and SKIPPED count for neither side.
        (Rules::Swebench2, TestStatus::Passed) => Verdict::Success,
        (Rules::Swebench2, TestStatus::Xfail | TestStatus::Skipped) => Verdict::Excluded,
        // 5.x: a skipped F2P test fails; a skipped P2P test is maintained.
        (Rules::Swebench5, TestStatus::Passed | TestStatus::Xfail) => Verdict::Success,
        (Rules::Swebench5, TestStatus::Skipped) => {
            if p2p {
                Verdict::Success
            } else {
                Verdict::Failure
            }
        }
        // 4.x and the forks: PASSED and XFAIL pass; SKIPPED counts for neither side.
        (_, TestStatus::Passed | TestStatus::Xfail) => Verdict::Success,
        (_, TestStatus::Skipped) => Verdict::Excluded,
        (_, TestStatus::Failed | TestStatus::Error | TestStatus::Missing) => Verdict::Failure,
    };
    TestOutcome { name: test.to_string(), status, verdict: Some(verdict) }
}

/// 5.x's `_resolve_case`: the exact id, or — for an id cut inside its parametrisation (more `[`
/// than `]`) — the first key it prefixes, when every such key agrees on pass or fail.
fn resolve_case<'a>(case: &str, sm: &'a StatusMap) -> Option<&'a str> {
    if let Some((k, _)) = sm.get_key_value(case) {
        return Some(k.as_str());
    }
    if case.matches('[').count() > case.matches(']').count() {
        let passing = |s: TestStatus| matches!(s, TestStatus::Passed | TestStatus::Xfail);
        let mut matches = sm.iter().filter(|(k, _)| k.starts_with(case));
        let (first, first_status) = matches.next()?;
        let agree = matches.all(|(_, s)| passing(*s) == passing(*first_status));
        return agree.then_some(first.as_str());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenSWE's grade of a log: None when not graded, else resolved or not.
    fn openswe(log: &str) -> Option<bool> {
        match slice_log(Rules::OpenSwe, log) {
            LogSlice::NotGraded(_) => None,
            LogSlice::Read { .. } => Some(openswe_resolved(log)),
        }
    }

    #[test]
    fn openswe_resolves_exactly_on_the_line_exit_code_0() {
        assert_eq!(openswe("+ pytest\n1 passed\nOPENSWE_EXIT_CODE=0\n"), Some(true));
        assert_eq!(openswe("1 passed\nOPENSWE_EXIT_CODE=0"), Some(true), "the last line, without its newline");
        assert_eq!(openswe("1 failed\nOPENSWE_EXIT_CODE=1\n"), Some(false));
        assert_eq!(openswe("1 passed\n"), None, "no exit-code line: not graded (the task's fault)");
        assert_eq!(openswe(""), None);
        assert_eq!(openswe("OPENSWE_EXIT_CODE=00\n"), Some(false));
        assert_eq!(openswe("OPENSWE_EXIT_CODE=0 \n"), Some(false), "a trailing space is part of the line");
        // Python's re.M: `$` matches before `\n` only, so a CRLF line's `\r` stays in it.
        assert_eq!(openswe("1 passed\r\nOPENSWE_EXIT_CODE=0\r\n"), Some(false));
        // `set -x` echoes the command, which is not the line itself.
        assert_eq!(openswe("+ echo OPENSWE_EXIT_CODE=0\nOPENSWE_EXIT_CODE=1\n"), Some(false));
        // A run past its timeout is not graded, whatever it printed.
        assert_eq!(openswe("OPENSWE_EXIT_CODE=0\n\nTimeout error: 5 seconds exceeded."), None);
        assert_eq!(openswe_exit_code("x\nOPENSWE_EXIT_CODE=3\r\n"), Some(3));
        assert_eq!(openswe_exit_code("+ echo OPENSWE_EXIT_CODE=0\n"), None);
    }

    fn sm(pairs: &[(&str, TestStatus)]) -> StatusMap {
        pairs.iter().map(|(k, s)| (k.to_string(), *s)).collect()
    }

    #[test]
    fn skipped_tests_count_as_each_generation_counts_them() {
        let m = sm(&[("a", TestStatus::Skipped), ("b", TestStatus::Xfail)]);
        let tests = ["a".to_string(), "b".to_string()];
        let (f, p) = count(Rules::Swebench4, EvalType::PassAndFail, &m, &tests, &tests);
        assert_eq!(f[0].verdict, Some(Verdict::Excluded));
        assert_eq!(p[1].verdict, Some(Verdict::Success));
        let (f, p) = count(Rules::Swebench5, EvalType::PassAndFail, &m, &tests, &tests);
        assert_eq!(f[0].verdict, Some(Verdict::Failure));
        assert_eq!(p[0].verdict, Some(Verdict::Success));
        let (f, _) = count(Rules::Swebench2, EvalType::PassAndFail, &m, &tests, &tests);
        assert_eq!(f[1].verdict, Some(Verdict::Excluded));
    }

    #[test]
    fn truncated_ids_match_by_prefix_only_in_5x_and_only_when_the_matches_agree() {
        let m = sm(&[("t.py::f[a b]", TestStatus::Passed), ("t.py::f[a c]", TestStatus::Xfail)]);
        let id = ["t.py::f[a".to_string()];
        assert_eq!(count(Rules::Swebench5, EvalType::PassAndFail, &m, &id, &[]).0[0].verdict, Some(Verdict::Success));
        assert_eq!(count(Rules::Swebench4, EvalType::PassAndFail, &m, &id, &[]).0[0].verdict, Some(Verdict::Failure));
        let m = sm(&[("t.py::f[a b]", TestStatus::Passed), ("t.py::f[a c]", TestStatus::Failed)]);
        assert_eq!(count(Rules::Swebench5, EvalType::PassAndFail, &m, &id, &[]).0[0].status, TestStatus::Missing);
    }

    #[test]
    fn a_test_under_a_word_that_is_no_status_counts_for_neither_side() {
        let m = sm(&[("a", TestStatus::Missing)]);
        let ids = ["a".to_string(), "b".to_string()];
        for rules in [Rules::Swebench2, Rules::Swebench4, Rules::Swebench5] {
            let (f, p) = count(rules, EvalType::PassAndFail, &m, &ids, &ids);
            assert_eq!((f[0].verdict, p[0].verdict), (Some(Verdict::Excluded), Some(Verdict::Excluded)), "{rules:?}");
            assert_eq!(f[1].verdict, Some(Verdict::Failure), "{rules:?}: an absent test failed");
        }
    }

    #[test]
    fn fail_only_fails_only_what_the_log_says_failed() {
        let m = sm(&[("a", TestStatus::Failed), ("b", TestStatus::Error)]);
        let ids = ["a".to_string(), "b".to_string(), "c".to_string()];
        let (f, _) = count(Rules::Swebench5, EvalType::FailOnly, &m, &ids, &[]);
        let v: Vec<_> = f.iter().map(|t| t.verdict).collect();
        assert_eq!(v, [Some(Verdict::Failure), Some(Verdict::Success), Some(Verdict::Success)]);
    }

    #[test]
    fn markers_and_stop_codes_decide_whether_a_log_is_graded() {
        let log = "x\n+ : '>>>>> Start Test Output'\nPASSED a\n+ : '>>>>> End Test Output'\ny\n";
        assert_eq!(slice_log(Rules::Swebench4, log), LogSlice::Read { text: Cow::Borrowed("'\nPASSED a\n+ : '"), fallback: Some(log) });
        assert!(matches!(slice_log(Rules::Swebench4, "PASSED a\n"), LogSlice::NotGraded(_)));
        assert!(matches!(slice_log(Rules::Swebench5, &format!("{log}\n\nTimeout error: 1800 seconds exceeded.")), LogSlice::NotGraded(_)));
        assert!(matches!(slice_log(Rules::Swebench2, "PASSED a\n"), LogSlice::NotGraded(_)));
        assert_eq!(slice_log(Rules::Swebench2, "Applied patch x cleanly.\nPASSED a\n"), LogSlice::Read { text: Cow::Borrowed("Applied patch x cleanly.\nPASSED a\n"), fallback: None });
        let smith = "x\r\n+ : '>>>>> Start Test Output'\r\nt.py::a PASSED\r\n+ : '>>>>> End Test Output'\r\n";
        assert_eq!(slice_log(Rules::SweSmith, smith), LogSlice::Read { text: Cow::Owned("\nt.py::a PASSED\n".into()), fallback: None });
        assert!(matches!(slice_log(Rules::SweSmith, "+ : '>>>>> End Test Output'\n+ : '>>>>> Start Test Output'\n"), LogSlice::NotGraded(_)));
    }

    #[test]
    fn a_nonzero_exit_with_no_failure_is_not_graded_in_5x() {
        let m = sm(&[("a", TestStatus::Passed)]);
        assert!(check_parsed(Rules::Swebench5, ">>>>> Test Exit Code: 1", &m).is_some());
        assert!(check_parsed(Rules::Swebench5, ">>>>> Test Exit Code: 0", &m).is_none());
        assert!(check_parsed(Rules::Swebench4, ">>>>> Test Exit Code: 1", &m).is_none());
        assert!(check_parsed(Rules::Swebench5, "nothing ran", &StatusMap::new()).is_some());
        assert!(check_parsed(Rules::Swebench5, "Tests: 3 passed", &StatusMap::new()).is_none());
    }
}
