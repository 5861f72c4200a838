//! Reading pytest's log: per-test status from `-rA` summary lines and `-v` result lines.
//!
//! Test ids are matched against the ids the task lists rather than split on `" - "`, because a
//! parametrized id may itself contain `" - "` or spaces (`test_sub[a - b]`). A file that failed to
//! collect (`ERROR tests/test_x.py`) gives every listed test in that file the status `error`.

use std::collections::HashMap;

use agentmill_proto::TestStatus;

/// Per-test statuses read from one pytest log.
#[derive(Debug, Clone, Default)]
pub struct PytestLog {
    /// Candidate id → status. A line `FAILED a - b - msg` yields candidates `a - b - msg`,
    /// `a - b` and `a`; the listed ids pick the right one.
    statuses: HashMap<String, TestStatus>,
    /// Files whose collection errored.
    collection_errors: Vec<String>,
}

const STATUS_WORDS: [(&str, TestStatus); 6] = [
    ("PASSED", TestStatus::Passed),
    ("FAILED", TestStatus::Failed),
    ("ERROR", TestStatus::Error),
    ("SKIPPED", TestStatus::Skipped),
    ("XFAIL", TestStatus::Xfail),
    ("XPASS", TestStatus::Passed),
];

fn severity(s: TestStatus) -> u8 {
    match s {
        TestStatus::Missing => 0,
        TestStatus::Skipped | TestStatus::Xfail => 1,
        TestStatus::Passed => 2,
        TestStatus::Failed => 3,
        TestStatus::Error => 4,
    }
}

impl PytestLog {
    /// Parses a log. Lines are split on `\n` only; ANSI colour codes are ignored.
    pub fn parse(log: &str) -> PytestLog {
        let mut parsed = PytestLog::default();
        for raw in log.split('\n') {
            let line = strip_ansi(raw.trim_end_matches('\r'));
            let line = line.trim();
            if let Some((status, rest)) = summary_line(line) {
                parsed.record(status, rest);
            } else if let Some((id, status)) = verbose_line(line) {
                parsed.insert(id.to_string(), status);
            }
        }
        parsed
    }

    fn record(&mut self, status: TestStatus, rest: &str) {
        if status == TestStatus::Error && !rest.contains("::") {
            // `ERROR tests/test_x.py - ImportError: ...`: the whole file failed to collect.
            let file = rest.split(" - ").next().unwrap_or(rest).trim();
            self.collection_errors.push(file.to_string());
            return;
        }
        self.insert(rest.to_string(), status);
        let mut search = rest;
        let mut end = rest.len();
        while let Some(pos) = search.rfind(" - ") {
            end = pos;
            self.insert(rest[..end].to_string(), status);
            search = &rest[..end];
        }
        let _ = end;
    }

    fn insert(&mut self, id: String, status: TestStatus) {
        let entry = self.statuses.entry(id).or_insert(TestStatus::Missing);
        if severity(status) > severity(*entry) {
            *entry = status;
        }
    }

    /// The status of one listed test id.
    pub fn status(&self, id: &str) -> TestStatus {
        if let Some(s) = self.statuses.get(id) {
            return *s;
        }
        let file = id.split("::").next().unwrap_or(id);
        if self.collection_errors.iter().any(|f| f == file) {
            return TestStatus::Error;
        }
        TestStatus::Missing
    }

    /// How many test results the log holds (0 means pytest never reported a test).
    pub fn len(&self) -> usize {
        self.statuses.len()
    }

    /// Whether the log holds no test result.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }
}

/// `PASSED tests/a.py::t`, `FAILED tests/a.py::t - msg`, `SKIPPED [1] tests/a.py:3: why`.
fn summary_line(line: &str) -> Option<(TestStatus, &str)> {
    let (word, rest) = line.split_once(' ')?;
    let status = STATUS_WORDS.iter().find(|(w, _)| *w == word)?.1;
    let rest = rest.trim();
    if status == TestStatus::Skipped && rest.starts_with('[') {
        // Skips are reported by location, not id; the id then counts as missing → skipped
        // tests listed in a task are rare and SWE-bench treats them the same way.
        return None;
    }
    Some((status, rest))
}

/// `tests/a.py::t PASSED [ 10%]` (pytest -v).
fn verbose_line(line: &str) -> Option<(&str, TestStatus)> {
    if !line.contains("::") {
        return None;
    }
    let line = match line.rfind(" [") {
        Some(pos) if line.ends_with("%]") => line[..pos].trim_end(),
        _ => line,
    };
    let (id, word) = line.rsplit_once(' ')?;
    let status = STATUS_WORDS.iter().find(|(w, _)| *w == word)?.1;
    Some((id.trim(), status))
}

fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\u{1b}') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
============================= test session starts ==============================
collected 6 items

tests/test_a.py ..F.                                                     [ 66%]
tests/test_b.py F.                                                       [100%]

=========================== short test summary info ============================
PASSED tests/test_a.py::test_one
PASSED tests/test_a.py::test_param[x-1]
FAILED tests/test_a.py::test_sub[a - b] - AssertionError: 1 - 2 != 0
PASSED tests/test_a.py::test_two
FAILED tests/test_b.py::test_three - assert False
PASSED tests/test_b.py::test_four
ERROR tests/test_c.py - ModuleNotFoundError: No module named 'nope'
XFAIL tests/test_b.py::test_expected - known bug
========================= 2 failed, 4 passed in 0.12s ==========================
";

    #[test]
    fn summary_lines_give_each_listed_test_its_status() {
        let log = PytestLog::parse(LOG);
        assert_eq!(log.status("tests/test_a.py::test_one"), TestStatus::Passed);
        assert_eq!(log.status("tests/test_a.py::test_param[x-1]"), TestStatus::Passed);
        assert_eq!(log.status("tests/test_a.py::test_sub[a - b]"), TestStatus::Failed);
        assert_eq!(log.status("tests/test_b.py::test_three"), TestStatus::Failed);
        assert_eq!(log.status("tests/test_b.py::test_expected"), TestStatus::Xfail);
        assert_eq!(log.status("tests/test_b.py::test_missing"), TestStatus::Missing);
    }

    #[test]
    fn a_collection_error_marks_every_test_of_its_file() {
        let log = PytestLog::parse(LOG);
        assert_eq!(log.status("tests/test_c.py::test_anything"), TestStatus::Error);
    }

    #[test]
    fn verbose_lines_and_colours_are_read() {
        let log = PytestLog::parse(
            "tests/t.py::test_x PASSED                     [ 50%]\n\u{1b}[31mtests/t.py::test_y FAILED\u{1b}[0m [100%]\n",
        );
        assert_eq!(log.status("tests/t.py::test_x"), TestStatus::Passed);
        assert_eq!(log.status("tests/t.py::test_y"), TestStatus::Failed);
    }

    #[test]
    fn an_error_after_a_pass_wins() {
        let log = PytestLog::parse("PASSED t.py::a\nERROR t.py::a - teardown failed\n");
        assert_eq!(log.status("t.py::a"), TestStatus::Error);
    }
}
