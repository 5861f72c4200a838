//! PHP log parsers: `swebench.harness.log_parsers.php` (the same in 4.x and 5.x).

use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::py_regex;
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap};

/// The parser names this module serves, in the 5.x registry's order.
pub(super) const NAMES: &[&str] = &["parse_log_phpunit"];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    match name {
        "parse_log_phpunit" => Some(parse_log_phpunit),
        _ => None,
    }
}

/// PHPUnit `--testdox`: a `Suite Name (Fully\Qualified\Class)` header, then `✔`/`✘`/`↩` test
/// lines, recorded as `Suite Name > test` (`None > test` before any header, as the reference does).
fn parse_log_phpunit(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static SUITE: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A(\w.+) \(.+\)\Z"));
    static TEST: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A\s*([✔✘↩])\s*(.*)\Z"));
    let mut map = StatusMap::new();
    let mut suite: Option<&str> = None;
    for line in log.split('\n') {
        if let Some(caps) = SUITE.captures(line) {
            suite = Some(caps.get(1).map_or("", |m| m.as_str()));
            continue;
        }
        let Some(caps) = TEST.captures(line) else { continue };
        let status = match caps.get(1).map(|m| m.as_str()) {
            Some("✔") => TestStatus::Passed,
            Some("✘") => TestStatus::Failed,
            Some("↩") => TestStatus::Skipped,
            _ => continue,
        };
        let test = caps.get(2).map_or("", |m| m.as_str());
        map.insert(format!("{} > {test}", suite.unwrap_or("None")), status);
    }
    Ok(map)
}
