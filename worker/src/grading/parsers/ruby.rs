//! Ruby log parsers: minitest, cucumber's progress format, test-unit, rspec's JSON report through
//! SWE-bench's transform, and jekyll's switch between them, as SWE-bench's `log_parsers/ruby.py`
//! reads them. swebench 4.x and 5.x read these logs the same way.

use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::{self, group};
use super::pystr::strip;
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap};

/// The parser names this module serves, in the 5.x `PARSER_REGISTRY`'s order.
pub(super) const NAMES: &[&str] = &[
    "parse_log_minitest",
    "parse_log_cucumber",
    "parse_log_ruby_unit",
    "parse_log_rspec_transformed_json",
    "parse_log_jekyll",
];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    Some(match name {
        "parse_log_minitest" => parse_log_minitest,
        "parse_log_cucumber" => parse_log_cucumber,
        "parse_log_ruby_unit" => parse_log_ruby_unit,
        "parse_log_rspec_transformed_json" => parse_log_rspec_transformed_json,
        "parse_log_jekyll" => parse_log_jekyll,
        _ => return None,
    })
}

/// Each stripped line through `re`; `read` turns the captures into a name and maybe a status.
fn by_line(log: &str, re: &Regex, read: impl Fn(&regex::Captures<'_>) -> Option<(String, TestStatus)>) -> StatusMap {
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some((name, status)) = re.captures(strip(line)).as_ref().and_then(&read) {
            map.insert(name, status);
        }
    }
    map
}

/// minitest's verbose lines (`Class#test_name = 0.01 s = .`): the name before the last `. `
/// that a `=` and a result mark (`.`, `F`, `E`) follow.
fn parse_log_minitest(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| pyre::compile(r"^(.+)\. .*=.*(\.|F|E).*$"));
    Ok(by_line(log, &RESULT, |c| {
        let status = if group(c, 2) == "." { TestStatus::Passed } else { TestStatus::Failed };
        Some((group(c, 1).to_string(), status))
    }))
}

/// cucumber `--format progress` with scenario names: `name ....F`.
fn parse_log_cucumber(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| pyre::compile(r"^(.*) \.+(\.|F)"));
    Ok(by_line(log, &RESULT, |c| {
        let status = if group(c, 2) == "." { TestStatus::Passed } else { TestStatus::Failed };
        Some((group(c, 1).to_string(), status))
    }))
}

/// test-unit's verbose lines (`test: name: .`, `name: E`, `F`, `O` for omitted).
fn parse_log_ruby_unit(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    // The reference's `(\.|E\b|F\b|O\b)`: `\b` after a letter is "no word character next", which
    // the `regex` crate (no lookahead, its own `\w`) writes as a class or the end of the line.
    static RESULT: LazyLock<Regex> = LazyLock::new(|| pyre::compile(r"^\s*(?:test: )?(.+):\s+(?:(\.)|([EFO])(?:\W|$))"));
    Ok(by_line(log, &RESULT, |c| {
        let status = match (c.get(2), c.get(3).map(|m| m.as_str())) {
            (Some(_), _) => TestStatus::Passed,
            (None, Some("O")) => TestStatus::Skipped,
            _ => TestStatus::Failed,
        };
        Some((group(c, 1).to_string(), status))
    }))
}

/// rspec's JSON report through SWE-bench's jq transform: `name - passed` / `name - failed`.
fn parse_log_rspec_transformed_json(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| pyre::compile(r"^(.+) - (passed|failed)"));
    Ok(by_line(log, &RESULT, |c| {
        let status = if group(c, 2) == "passed" { TestStatus::Passed } else { TestStatus::Failed };
        Some((group(c, 1).to_string(), status))
    }))
}

/// jekyll: PRs 9141, 8047 and 8167 read minitest, 8761 and 8771 cucumber (the PR is the instance
/// id's second `-` field); any other instance raises.
fn parse_log_jekyll(log: &str, ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    let unknown = || ParseError { parser: "parse_log_jekyll", reason: format!("Unknown instance id: {}", ctx.instance_id) };
    let Some(pr) = ctx.instance_id.split('-').nth(1) else {
        return Err(ParseError { parser: "parse_log_jekyll", reason: "IndexError: the instance id has no '-'".into() });
    };
    match pr {
        "9141" | "8047" | "8167" => parse_log_minitest(log, ctx, generation),
        "8761" | "8771" => parse_log_cucumber(log, ctx, generation),
        _ => Err(unknown()),
    }
}
