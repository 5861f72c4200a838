//! C and C++ log parsers: `swebench.harness.log_parsers.c` (the same in 4.x and 5.x).
//!
//! `parse_log_doctest` reads doctest's `-r=xml` report with `xml.etree.ElementTree`, that is with
//! expat in namespace mode, and raises on anything expat rejects: the document goes through
//! [`xml`], which accepts and rejects what expat 2.5 (the reference's pyexpat) does. The document
//! starts at `<doctest`, so it has no prolog and no DTD.

use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::{group, py_regex};
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, pystr, xml};

/// The parser names this module serves, in the 5.x registry's order.
pub(super) const NAMES: &[&str] = &["parse_log_redis", "parse_log_jq", "parse_log_doctest", "parse_log_micropython_test", "parse_log_googletest"];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    Some(match name {
        "parse_log_redis" => parse_log_redis,
        "parse_log_jq" => parse_log_jq,
        "parse_log_doctest" => parse_log_doctest,
        "parse_log_micropython_test" => parse_log_micropython_test,
        "parse_log_googletest" => parse_log_googletest,
        _ => return None,
    })
}

/// Redis/Valkey's Tcl test suite: `[ok]: name (12 ms)`, `[err]: name in file`, `[skip]: …`,
/// `[ignore]: …`.
fn parse_log_redis(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A\[(ok|err|skip|ignore)\]:\s(.+?)(?:\s\((\d+\s*m?s)\))?\Z"));
    static IN_FILE: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\s+in\s+\S+\Z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let name = group(&caps, 2);
        match group(&caps, 1) {
            "ok" => {
                map.insert(name.to_string(), TestStatus::Passed);
            }
            "err" => {
                // The reference strips the file a failed test names.
                map.insert(IN_FILE.replace_all(name, "").into_owned(), TestStatus::Failed);
            }
            "skip" | "ignore" => {
                map.insert(name.to_string(), TestStatus::Skipped);
            }
            _ => {}
        }
    }
    Ok(map)
}

/// jq's `make check` (automake test driver): `PASS: tests/name`, `FAIL: tests/name`.
fn parse_log_jq(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A\s*(PASS|FAIL):\s(.+)\Z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = if group(&caps, 1) == "PASS" { TestStatus::Passed } else { TestStatus::Failed };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// doctest's XML reporter (`-s -r=xml`): every `SubCase` of every `TestCase`, recorded as
/// `testcase > subcase`, passed when all its `Expression`s have `success="true"`.
fn parse_log_doctest(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    const START: &str = "<doctest";
    const END: &str = "</doctest>";
    let mut map = StatusMap::new();
    let Some(start) = log.find(START) else { return Ok(map) };
    // Without a closing tag the reference parses a slice that cannot be a document (it computes
    // the end as -1 + len("</doctest>")) and raises.
    let Some(end) = log[start..].find(END) else {
        return Err(ParseError { parser: "parse_log_doctest", reason: "`<doctest` without a later `</doctest>`: the reference's XML parse raises (no element found)".to_string() });
    };
    let document = &log[start..start + end + END.len()];
    let tree = xml::parse(document, xml::Dtd::Read).map_err(|reason| ParseError {
        parser: "parse_log_doctest",
        reason: format!("the doctest XML is not well-formed where expat is strict: {reason} (the reference raises ParseError)"),
    })?;

    // Failing expressions before each element, so a subtree's count is one subtraction.
    let mut failing_before = Vec::with_capacity(tree.len() + 1);
    failing_before.push(0usize);
    for e in 0..tree.len() {
        let failing = tree.tag(e) == "Expression" && tree.get(e, "success") != Some("true");
        failing_before.push(failing_before.last().copied().unwrap_or(0) + usize::from(failing));
    }
    let subcases: Vec<usize> = (0..tree.len()).filter(|&e| tree.tag(e) == "SubCase").collect();
    // `root.findall(".//TestCase")`: every descendant of the root (index 0), in document order.
    for tc in tree.descendants(0, "TestCase") {
        let testcase_name = tree.get(tc, "name").unwrap_or("None");
        let first = subcases.partition_point(|&i| i <= tc);
        for &sc in subcases.get(first..).unwrap_or_default().iter().take_while(|&&i| i < tree.end(tc)) {
            let failing = failing_before.get(tree.end(sc)).copied().unwrap_or(0).saturating_sub(failing_before.get(sc + 1).copied().unwrap_or(0));
            let status = if failing == 0 { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(format!("{testcase_name} > {}", tree.get(sc, "name").unwrap_or("None")), status);
        }
    }
    Ok(map)
}

/// MicroPython's `run-tests.py`: `pass  basics/x.py`, `FAIL  …`, `skip  …`.
fn parse_log_micropython_test(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A(pass|FAIL|skip)\s+(.+)\Z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match group(&caps, 1) {
            "pass" => TestStatus::Passed,
            "FAIL" => TestStatus::Failed,
            _ => TestStatus::Skipped,
        };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// GoogleTest: `[       OK ] Suite.Test (0 ms)`, `[  FAILED  ] Suite.Test (1 ms)`.
fn parse_log_googletest(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A.*\[\s*(OK|FAILED)\s*\]\s(.*)\s\(.*\)\Z"));
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = if group(&caps, 1) == "OK" { TestStatus::Passed } else { TestStatus::Failed };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}
