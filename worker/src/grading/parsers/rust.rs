//! Rust log parsers: `swebench.harness.log_parsers.rust` (the same in 4.x and 5.x).

use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::py_regex;
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, pystr};

/// The parser names this module serves, in the 5.x registry's order.
pub(super) const NAMES: &[&str] = &["parse_log_cargo"];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    match name {
        "parse_log_cargo" => Some(parse_log_cargo),
        _ => None,
    }
}

/// `cargo test` (libtest): `test path::name ... ok` / `... FAILED` (other outcomes are not recorded).
fn parse_log_cargo(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\Atest\s+(\S+)\s+\.\.\.\s+(\w+)\Z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match caps.get(2).map(|m| m.as_str()) {
            Some("ok") => TestStatus::Passed,
            Some("FAILED") => TestStatus::Failed,
            _ => continue,
        };
        map.insert(caps.get(1).map_or("", |m| m.as_str()).to_string(), status);
    }
    Ok(map)
}
