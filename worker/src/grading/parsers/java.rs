//! Java log parsers: maven (one `mvn test -Dtest=…` per test, traced by `set -x`), ant's junit
//! lines and gradle's `Class > method PASSED` lines, as SWE-bench's `log_parsers/java.py` reads them.
//!
//! The generations differ: 4.x pairs each `BUILD SUCCESS|FAILURE` with the last `-Dtest=` seen
//! and reads gradle results from one line only; 5.x pairs results with tests first in, first out
//! (results seen before any test are kept for tests that come later) and also reads a gradle
//! result split onto a line of its own after the test's name.

use std::collections::VecDeque;
use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::py_regex;
use super::pystr::strip;
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap};

/// The parser names this module serves, in the 5.x `PARSER_REGISTRY`'s order.
pub(super) const NAMES: &[&str] = &["parse_log_maven", "parse_log_ant", "parse_log_gradle_custom"];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    Some(match name {
        "parse_log_maven" => parse_log_maven,
        "parse_log_ant" => parse_log_ant,
        "parse_log_gradle_custom" => parse_log_gradle_custom,
        _ => return None,
    })
}

static MAVEN_TEST: LazyLock<Regex> = LazyLock::new(|| py_regex(r"^.*-Dtest=(\S+).*$"));
static MAVEN_RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"^.*BUILD (SUCCESS|FAILURE)$"));

fn maven_status(word: &str) -> TestStatus {
    if word == "SUCCESS" { TestStatus::Passed } else { TestStatus::Failed }
}

/// maven: the test from each traced `mvn … -Dtest=NAME` command, its status from the next
/// `BUILD SUCCESS|FAILURE` (4.x: the last test named before the result, a placeholder name before
/// any; 5.x: tests and results paired in order, early results kept for later tests).
fn parse_log_maven(log: &str, _: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    let mut map = StatusMap::new();
    let mut current = "---NO TEST NAME FOUND YET---".to_string();
    let mut pending: VecDeque<String> = VecDeque::new();
    let mut unmatched: VecDeque<TestStatus> = VecDeque::new();
    for line in log.split('\n') {
        let line = strip(line);
        if let Some(name) = MAVEN_TEST.captures(line).and_then(|c| c.get(1)) {
            match generation {
                Generation::V4 | Generation::V2 => current = name.as_str().to_string(),
                Generation::V5 => pending.push_back(name.as_str().to_string()),
            }
        }
        if let Some(word) = MAVEN_RESULT.captures(line).and_then(|c| c.get(1)) {
            let status = maven_status(word.as_str());
            match generation {
                Generation::V4 | Generation::V2 => {
                    map.insert(current.clone(), status);
                }
                Generation::V5 => match pending.pop_front() {
                    Some(test) => {
                        map.insert(test, status);
                    }
                    None => unmatched.push_back(status),
                },
            }
        }
    }
    while let (Some(test), Some(status)) = (pending.front(), unmatched.front()) {
        map.insert(test.clone(), *status);
        pending.pop_front();
        unmatched.pop_front();
    }
    // 5.x prints a warning for tests left without a result; the status map is the same.
    Ok(map)
}

/// ant: `[junit] [PASS] name`, `[junit] [FAIL] name`, `[junit] [ERR] name` lines.
fn parse_log_ant(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"^\s*\[junit\]\s+\[(PASS|FAIL|ERR)\]\s+(.*)$"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = RESULT.captures(strip(line)) {
            let status = if caps.get(1).map(|m| m.as_str()) == Some("PASS") { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(caps.get(2).map_or("", |m| m.as_str()).to_string(), status);
        }
    }
    Ok(map)
}

/// gradle (with SWE-bench's test logging): `Class > method PASSED|FAILED` lines; 5.x also reads
/// `Class > method` followed, after other lines, by a bare `PASSED|FAILED` line.
fn parse_log_gradle_custom(log: &str, _: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    static FULL: LazyLock<Regex> = LazyLock::new(|| py_regex(r"^([^>].+)\s+(PASSED|FAILED)$"));
    static NAME_ONLY: LazyLock<Regex> = LazyLock::new(|| py_regex(r"^([^>]\S*\s+>\s+\S+)$"));
    static STATUS_ONLY: LazyLock<Regex> = LazyLock::new(|| py_regex(r"^(PASSED|FAILED)$"));
    let word_status = |w: &str| if w == "PASSED" { TestStatus::Passed } else { TestStatus::Failed };
    let mut map = StatusMap::new();
    let mut pending: Option<String> = None;
    for line in log.split('\n') {
        let stripped = strip(line);
        if let Some(caps) = FULL.captures(stripped) {
            let status = word_status(caps.get(2).map_or("", |m| m.as_str()));
            map.insert(caps.get(1).map_or("", |m| m.as_str()).to_string(), status);
            pending = None;
            continue;
        }
        if generation != Generation::V5 {
            continue;
        }
        if let Some(name) = NAME_ONLY.captures(stripped).and_then(|c| c.get(1)) {
            pending = Some(name.as_str().to_string());
            continue;
        }
        if let Some(test) = pending.as_ref().filter(|t| !t.is_empty())
            && let Some(word) = STATUS_ONLY.captures(stripped).and_then(|c| c.get(1))
        {
            map.insert(test.clone(), word_status(word.as_str()));
            pending = None;
        }
    }
    Ok(map)
}
