//! Go log parsers: `swebench.harness.log_parsers.go` (the same in 4.x and 5.x).

use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::py_regex;
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, pystr};

/// The parser names this module serves, in the 5.x registry's order.
pub(super) const NAMES: &[&str] = &["parse_log_gotest"];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    match name {
        "parse_log_gotest" => Some(parse_log_gotest),
        _ => None,
    }
}

/// `go test -v`: `--- PASS: TestX (0.00s)`, `--- FAIL: …`, `--- SKIP: …` (subtests too, indented).
fn parse_log_gotest(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A--- (PASS|FAIL|SKIP): (.+) \((.+)\)\Z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match caps.get(1).map(|m| m.as_str()) {
            Some("PASS") => TestStatus::Passed,
            Some("FAIL") => TestStatus::Failed,
            Some("SKIP") => TestStatus::Skipped,
            _ => continue,
        };
        map.insert(caps.get(2).map_or("", |m| m.as_str()).to_string(), status);
    }
    Ok(map)
}
