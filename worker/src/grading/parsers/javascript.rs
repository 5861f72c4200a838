//! JavaScript log parsers: jest, vitest, karma, TAP, mocha and the per-repository readers of
//! SWE-bench's `log_parsers/javascript.py`, read as the reference reads them.
//!
//! The reference's regular expressions are Python `re` patterns, compiled by [`pyre`] with
//! Python's meaning of `\s`, `\S` and `\w` (Python counts `\x1c`–`\x1f` as whitespace and takes
//! only letters, numbers and `_` as word characters; `\w` and `\d` on Python 3.11's Unicode 14.0
//! tables); a pattern the `regex` crate cannot express (a backreference, a `\b` after
//! a letter) is rewritten by hand where it is used. Python's `$` without `re.MULTILINE` also
//! matches before a final `"\n"`; every pattern here that uses it runs on text without a newline,
//! where it is the `regex` crate's `$`.
//!
//! swebench 4.1.0 has eleven of these parsers (`calypso` … `immutable_js`); 5.x adds the rest. The
//! two read logs the same way except `jest`, whose 5.x strips the test name (4.x keeps the space
//! before a ` (5 ms)` timing). A 5.x-only parser reads a log the 5.x way in either generation.
//!
//! One file, long on purpose: it ports one reference file, `log_parsers/javascript.py`, parser
//! for parser, so the two read side by side.

use std::collections::HashSet;
use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use indexmap::IndexMap;
use regex::{NoExpand, Regex};
use serde_json::Value;

use super::pyre::{self, py_re};
use super::pystr::{indent_of, rstrip, split, strip};
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap};

/// The parser names this module serves, in the 5.x `PARSER_REGISTRY`'s order.
pub(super) const NAMES: &[&str] = &[
    "parse_log_calypso",
    "parse_log_bpmn_js",
    "parse_log_carbon",
    "parse_log_eslint",
    "parse_log_grommet",
    "parse_log_highlightjs",
    "parse_log_lighthouse",
    "parse_log_next",
    "parse_log_openlayers",
    "parse_log_prismjs",
    "parse_log_quarto_cli",
    "parse_log_chart_js",
    "parse_log_marked",
    "parse_log_p5js",
    "parse_log_react_pdf",
    "parse_log_jest",
    "parse_log_jest_json",
    "parse_log_vitest",
    "parse_log_karma",
    "parse_log_tap",
    "parse_log_immutable_js",
];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    Some(match name {
        "parse_log_calypso" => parse_log_calypso,
        "parse_log_bpmn_js" => parse_log_bpmn_js,
        "parse_log_carbon" => parse_log_carbon,
        "parse_log_eslint" => parse_log_eslint,
        "parse_log_grommet" => parse_log_grommet,
        "parse_log_highlightjs" => parse_log_highlightjs,
        "parse_log_lighthouse" => parse_log_lighthouse,
        "parse_log_next" => parse_log_next,
        "parse_log_openlayers" => parse_log_openlayers,
        "parse_log_prismjs" => parse_log_prismjs,
        "parse_log_quarto_cli" => parse_log_quarto_cli,
        "parse_log_chart_js" => parse_log_chart_js,
        "parse_log_marked" => parse_log_marked,
        "parse_log_p5js" => parse_log_p5js,
        "parse_log_react_pdf" => parse_log_react_pdf,
        "parse_log_jest" => parse_log_jest,
        "parse_log_jest_json" => parse_log_jest_json,
        "parse_log_vitest" => parse_log_vitest,
        "parse_log_karma" => parse_log_karma,
        "parse_log_tap" => parse_log_tap,
        "parse_log_immutable_js" => parse_log_immutable_js,
        _ => return None,
    })
}

/// `re.sub(r"\s+", " ", s).strip()`: whitespace runs collapsed, ends stripped.
fn squash_space(s: &str) -> String {
    split(s).join(" ")
}

/// `swebench.utils.ansi_escape`: removes ANSI escape sequences (SWE-rebench V2's `ANSI_ESCAPE_RE`
/// is the same pattern).
pub(super) fn ansi_escape(text: &str) -> String {
    py_re!(ANSI, r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])");
    ANSI.replace_all(text, "").into_owned()
}

/// The suite stack of the calypso / next / lighthouse-mocha readers: an indented line that is not
/// a test pops every suite indented as deep or deeper, then becomes the innermost suite.
fn adjust_suite(suite: &mut Vec<(String, usize)>, line: &str) {
    let indent = indent_of(line);
    if indent == 0 {
        return;
    }
    while suite.last().is_some_and(|(_, i)| *i >= indent) {
        suite.pop();
    }
    suite.push((strip(line).to_string(), indent));
}

/// The names on a suite stack, outermost first.
fn suite_names(suite: &[(String, usize)]) -> Vec<&str> {
    suite.iter().map(|(name, _)| name.as_str()).collect()
}

fn error(parser: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError { parser, reason: reason.into() }
}

// ---------------------------------------------------------------------------------------------
// Mocha / jest / karma readers by repository
// ---------------------------------------------------------------------------------------------

/// highlight.js: mocha's spec reporter (`✓ name`, `N) name`, suites as two-space-indented lines),
/// cut at the `N passing` summary; names are `suite.test`.
fn parse_log_highlightjs(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(SUMMARY, r"\n[ \t]*\d+ passing");
    py_re!(TIMING, r"\(\d+ms\)");
    py_re!(FAILED, r"^\d+\)");
    let log = SUMMARY.find(log).map_or(log, |m| &log[..m.start()]);
    let remove_timing = |name: &str| strip(&TIMING.replace_all(name, "")).to_string();
    let mut map = StatusMap::new();
    let mut current_suite: Vec<String> = Vec::new();
    for line in log.split('\n') {
        let stripped = strip(line);
        if stripped.starts_with('✓') || stripped.starts_with('✔') {
            let check = if stripped.starts_with('✓') { '✓' } else { '✔' };
            let after = line.split_once(check).map_or("", |(_, rest)| rest);
            let mut parts = current_suite.clone();
            parts.push(remove_timing(after));
            map.insert(parts.join("."), TestStatus::Passed);
        } else if FAILED.is_match(stripped) {
            let after = line.split_once(')').map_or("", |(_, rest)| rest);
            let mut parts = current_suite.clone();
            parts.push(remove_timing(after));
            map.insert(parts.join("."), TestStatus::Failed);
        } else if line.starts_with("  ") {
            current_suite = vec![stripped.to_string()];
        }
        // The reference's fourth branch (not two spaces but four) can never hold.
    }
    Ok(map)
}

/// PrismJS: the mocha JSON reporter's object after each `mocha tests/run.js --reporter json`
/// command (`failures`, then `passes`, each test's `fullTitle`).
fn parse_log_prismjs(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    const NAME: &str = "parse_log_prismjs";
    const TEST_CMD: &str = "./node_modules/.bin/mocha tests/run.js --reporter json";
    let mut map = StatusMap::new();
    // Python dict keys: equal keys (1, 1.0, True) share the first key's text.
    let mut keys: IndexMap<PyKey, String> = IndexMap::new();
    for part in log.split(TEST_CMD).skip(1) {
        let after_brace = part.split_once('{').map_or(part, |(_, rest)| rest);
        let body = after_brace.rsplit_once('}').map_or(after_brace, |(head, _)| head);
        let text = format!("{{{body}}}");
        let results: Value = serde_json::from_str(&text).map_err(|e| error(NAME, format!("JSONDecodeError: {e}")))?;
        for (field, status) in [("failures", TestStatus::Failed), ("passes", TestStatus::Passed)] {
            let tests = results.get(field).ok_or_else(|| error(NAME, format!("KeyError: '{field}'")))?;
            for test in py_iter(tests).map_err(|e| error(NAME, e))? {
                let title = match test {
                    Value::Object(o) => o.get("fullTitle").ok_or_else(|| error(NAME, "KeyError: 'fullTitle'"))?,
                    _ => return Err(error(NAME, "TypeError: a test is not a JSON object")),
                };
                let (key, text) = py_key(title).map_err(|e| error(NAME, e))?;
                let shown = keys.entry(key).or_insert(text).clone();
                map.insert(shown, status);
            }
        }
    }
    Ok(map)
}

/// `for test in value` in Python over a JSON value: a list's items; an empty object or string
/// gives nothing; a non-empty object or string gives strings (the caller's `["fullTitle"]` then
/// raises); anything else is not iterable.
fn py_iter(value: &Value) -> Result<Vec<&Value>, String> {
    match value {
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Object(o) if o.is_empty() => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::Object(_) | Value::String(_) => Err("TypeError: string indices must be integers".into()),
        _ => Err("TypeError: object is not iterable".into()),
    }
}

/// A JSON value used as a Python dict key, by Python equality (`True == 1 == 1.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PyKey {
    Str(String),
    Null,
    Num(String),
}

/// The key a JSON value makes in a Python dict, and how `json.dumps` writes that key.
fn py_key(v: &Value) -> Result<(PyKey, String), String> {
    Ok(match v {
        Value::String(s) => (PyKey::Str(s.clone()), s.clone()),
        Value::Null => (PyKey::Null, "null".into()),
        Value::Bool(b) => (PyKey::Num(if *b { "1" } else { "0" }.into()), if *b { "true" } else { "false" }.into()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (PyKey::Num(i.to_string()), i.to_string())
            } else if let Some(u) = n.as_u64() {
                (PyKey::Num(u.to_string()), u.to_string())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let canonical = if f == 0.0 {
                    "0".to_string()
                } else if f.is_finite() && f.fract() == 0.0 {
                    format!("{f:.0}")
                } else {
                    py_float_repr(f)
                };
                (PyKey::Num(canonical), py_float_repr(f))
            }
        }
        Value::Array(_) => return Err("TypeError: unhashable type: 'list'".into()),
        Value::Object(_) => return Err("TypeError: unhashable type: 'dict'".into()),
    })
}

/// Python's `repr(float)` (as `json.dumps` writes a float key).
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if (point as usize) >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let mant = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.unsigned_abs())
    }
}

/// ESLint: mocha's failure list (`  N) suite test` up to the `...Error` line); failures only.
fn parse_log_eslint(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(FAILURE, r"(\s{2}\d+\))([\s\S]*?)\s+(?:(.*)Error)");
    let mut map = StatusMap::new();
    for caps in FAILURE.captures_iter(log) {
        let name = caps.get(2).map_or("", |m| m.as_str());
        map.insert(squash_space(name), TestStatus::Failed);
    }
    Ok(map)
}

/// bpmn-js: karma's `PhantomJS …`/`Chrome Headless …`/`HeadlessChrome …` `… FAILED` lines;
/// failures only.
fn parse_log_bpmn_js(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    static PATTERNS: LazyLock<[(Regex, usize); 4]> = LazyLock::new(|| {
        [
            (pyre::compile(r"2KPhantomJS\s[\d\.]+\s\(Linux\s[\d\.]+\)\s(.*)FAILED\n"), 1),
            (pyre::compile(r"2KPhantomJS\s[\d\.]+\s\(Linux\sx86\_64\)\s(.*)FAILED\n"), 1),
            (pyre::compile(r"Chrome\sHeadless\s(.*)\s\(Linux\sx86\_64\)\s(.*)FAILED\n"), 2),
            (pyre::compile(r"HeadlessChrome\s[\d\.]+\s\(Linux\s[\d\.]+\)\s(.*)FAILED\n"), 1),
        ]
    });
    let mut map = StatusMap::new();
    for (re, group) in PATTERNS.iter() {
        for caps in re.captures_iter(log) {
            let name = caps.get(*group).map_or("", |m| m.as_str());
            map.insert(name.to_string(), TestStatus::Failed);
        }
    }
    Ok(map)
}

/// OpenLayers: karma's `Chrome … FAILED` lines, mocha's `  N) … Error:` blocks and rendering
/// `case NAME: mismatch` lines; failures only, whitespace squashed.
fn parse_log_openlayers(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    static PATTERNS: LazyLock<[Regex; 4]> = LazyLock::new(|| {
        [
            pyre::compile(r"(?m)Chrome\sHeadless\s[\d\.]+\s\(Linux\s[\d\.\_\S]+\)\s(.*)\sFAILED\n"),
            pyre::compile(r"(?m)Chrome\s[\d\.]+\s\(Linux\s[\d\.\_\S]+\)\s(.*)FAILED\n"),
            pyre::compile(r"(?m)^\s{2}\d+\)([\s\S]*?)Error:"),
            pyre::compile(r"(?m)^case\s(.*):\smismatch"),
        ]
    });
    let mut map = StatusMap::new();
    for re in PATTERNS.iter() {
        for caps in re.captures_iter(log) {
            let name = caps.get(1).map_or("", |m| m.as_str());
            map.insert(squash_space(name), TestStatus::Failed);
        }
    }
    Ok(map)
}

/// Grommet: jest's per-file `PASS path (1.2 s)` / `FAIL path` lines, timing removed.
fn parse_log_grommet(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(TIMING, r"\s\([\d\.]+\s?(?:ms|s)\)$");
    py_re!(FAIL, r"(?m)^FAIL\s(.*)");
    py_re!(PASS, r"(?m)^PASS\s(.*)");
    let mut map = StatusMap::new();
    for (re, status) in [(&*FAIL, TestStatus::Failed), (&*PASS, TestStatus::Passed)] {
        for caps in re.captures_iter(log) {
            let found = strip(caps.get(1).map_or("", |m| m.as_str()));
            // `found` holds no newline, so Python's `$` is the end of the text.
            map.insert(TIMING.replace_all(found, "").into_owned(), status);
        }
    }
    Ok(map)
}

/// Fusion Next, karma with mocha's reporter (`✓`/`✗` lines under indented suites, one block per
/// ` xvfb-run ` command).
fn parse_log_next_v1(log: &str) -> StatusMap {
    py_re!(ASSERTION, r"(?s)AssertionError:\s+#([\s\S]*?)\n\n");
    py_re!(FAIL, r"^.*?✗\s*(.*)");
    py_re!(PASS, r"^.*?✓\s*(.*)");
    let log = ansi_escape(log);
    let log = ASSERTION.replace_all(&log, "");
    let mut map = StatusMap::new();
    let mut suite: Vec<(String, usize)> = Vec::new();
    for part in log.split(" xvfb-run ").skip(1) {
        let part = part.rsplit("Starting browser Chrome").next().unwrap_or(part);
        for line in part.split('\n') {
            if line.starts_with("TOTAL") {
                break;
            }
            let stripped = strip(line);
            if ["ERROR", "LOG", "WARN", "Check", "in"].iter().any(|p| stripped.starts_with(p)) {
                continue;
            }
            let found = FAIL.captures(line).map(|c| (c, TestStatus::Failed)).or_else(|| PASS.captures(line).map(|c| (c, TestStatus::Passed)));
            if let Some((caps, status)) = found {
                let mut parts = suite_names(&suite);
                parts.push(caps.get(1).map_or("", |m| m.as_str()));
                map.insert(parts.join(" - "), status);
            } else {
                adjust_suite(&mut suite, line);
            }
        }
    }
    map
}

/// Fusion Next 1.27: cypress/mocha spec output by `Running: file` section (`    ✓ name (…)`,
/// `    N) name`), names `suite: test`.
fn parse_log_next_v2(log: &str) -> StatusMap {
    py_re!(SUITES, r"Running\:(.*)\)\n{3}\s{2}(.*)\n");
    py_re!(FAILURE, r"(?m)^\s{4}\d+\)\s(.*)");
    py_re!(SUCCESS, r"(?m)^\s{4}✓\s(.*)\(");
    let mut map = StatusMap::new();
    let found: Vec<regex::Captures<'_>> = SUITES.captures_iter(log).collect();
    for (idx, caps) in found.iter().enumerate() {
        let suite = caps.get(2).map_or("", |m| m.as_str());
        let start = caps.get(0).map_or(0, |m| m.end());
        let end = found.get(idx + 1).and_then(|c| c.get(0)).map_or(log.len(), |m| m.start());
        let part = &log[start..end];
        for f in FAILURE.captures_iter(part) {
            map.insert(format!("{suite}: {}", strip(f.get(1).map_or("", |m| m.as_str()))), TestStatus::Failed);
        }
        for s in SUCCESS.captures_iter(part) {
            map.insert(format!("{suite}: {}", strip(s.get(1).map_or("", |m| m.as_str()))), TestStatus::Passed);
        }
    }
    map
}

/// Fusion Next: version 1.27 reads the cypress form ([`parse_log_next_v2`]), every other the karma
/// form ([`parse_log_next_v1`]).
fn parse_log_next(log: &str, ctx: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    Ok(if ctx.version == "1.27" { parse_log_next_v2(log) } else { parse_log_next_v1(log) })
}

/// Carbon (and react-pdf, prettier, scratch-gui, lighthouse ≥ 3): jest's per-file
/// `PASS path (12 ms)` / `FAIL path` lines.
fn parse_log_carbon(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    Ok(jest_files(log))
}

/// The jest per-file reader shared by carbon and react-pdf.
fn jest_files(log: &str) -> StatusMap {
    static PATTERNS: LazyLock<Vec<(Regex, TestStatus)>> = LazyLock::new(|| {
        [("PASS", TestStatus::Passed), ("FAIL", TestStatus::Failed)]
            .into_iter()
            .flat_map(|(word, status)| {
                [r"\s\([\d\.]+ms\)", r"\s\([\d\.]+\ss\)", r"\s\([\d\.]+s\)", ""]
                    .into_iter()
                    .map(move |timing| (pyre::compile(&format!(r"^{word}\s(.*){timing}")), status))
            })
            .collect()
    });
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        for (re, status) in PATTERNS.iter() {
            if let Some(caps) = re.captures(line) {
                map.insert(caps.get(1).map_or("", |m| m.as_str()).to_string(), *status);
                break;
            }
        }
    }
    map
}

/// Lighthouse 9.5–10.2: mocha's spec reporter after `running N test files`, up to `N passing`
/// (`✔ name (N ms)`, `N) name`, suites by indentation, names joined with ` - `).
fn parse_log_lighthouse_mocha(log: &str) -> StatusMap {
    py_re!(RUNNING, r"running\s\d+\stest\sfiles");
    py_re!(PASSING, r"\d+\spassing");
    static PATTERNS: LazyLock<[(Regex, TestStatus); 4]> = LazyLock::new(|| {
        [
            (pyre::compile(r"^✔\s(.*)\s\(\d+m+s\)"), TestStatus::Passed),
            (pyre::compile(r"^✔\s(.*)"), TestStatus::Passed),
            (pyre::compile(r"^\d+\)\s(.*)\s\(\d+m+s\)"), TestStatus::Failed),
            (pyre::compile(r"^\d+\)\s(.*)"), TestStatus::Failed),
        ]
    });
    let mut map = StatusMap::new();
    for run in RUNNING.split(log).skip(1) {
        let run = strip(PASSING.split(run).next().unwrap_or(run));
        let mut suite: Vec<(String, usize)> = Vec::new();
        for line in run.split('\n') {
            let stripped = strip(line);
            let found = PATTERNS.iter().find_map(|(re, status)| re.captures(stripped).map(|c| (c, *status)));
            if let Some((caps, status)) = found {
                let mut parts = suite_names(&suite);
                parts.push(caps.get(1).map_or("", |m| m.as_str()));
                map.insert(parts.join(" - "), status);
            } else {
                adjust_suite(&mut suite, line);
            }
        }
    }
    map
}

/// Lighthouse: versions 9.5, 10.0 and 10.2 read mocha's spec reporter, other versions ≥ 3 jest's
/// per-file lines, older ones the mocha JSON reporter's `"fullTitle"` lines; a version Python's
/// `float()` cannot read raises.
fn parse_log_lighthouse(log: &str, ctx: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(FULL_TITLE, r#"(?m)\"fullTitle\"\:\s\"(.*)\",\n"#);
    if ["9.5", "10.0", "10.2"].contains(&ctx.version) {
        return Ok(parse_log_lighthouse_mocha(log));
    }
    let version = py_float(ctx.version)
        .ok_or_else(|| error("parse_log_lighthouse", format!("ValueError: could not convert string to float: {:?}", ctx.version)))?;
    if version >= 3.0 {
        return Ok(jest_files(log));
    }
    let mut map = StatusMap::new();
    for part in log.split("./node_modules/.bin/mocha --reporter json").skip(1) {
        let passes = part.rsplit("\"passes\": [").next().unwrap_or(part);
        let passes = passes.rsplit_once(']').map_or(passes, |(head, _)| head);
        for caps in FULL_TITLE.captures_iter(passes) {
            map.insert(caps.get(1).map_or("", |m| m.as_str()).to_string(), TestStatus::Passed);
        }
        let failures = part.rsplit("\"failures\": [").next().unwrap_or(part);
        let failures = failures.rsplit_once("],").map_or(failures, |(head, _)| head);
        for caps in FULL_TITLE.captures_iter(failures) {
            map.insert(caps.get(1).map_or("", |m| m.as_str()).to_string(), TestStatus::Failed);
        }
    }
    Ok(map)
}

/// Python's `float(s)`, `None` where it raises `ValueError`: non-ASCII whitespace and decimal
/// digits count as ASCII ones, ASCII whitespace around the number is ignored, `_` may sit
/// between digits, `inf`/`infinity`/`nan` in any case.
fn py_float(s: &str) -> Option<f64> {
    py_re!(DECIMAL, r"\p{Nd}");
    let is_decimal = |c: char| DECIMAL.is_match(c.encode_utf8(&mut [0; 4]));
    let mut ascii = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else if super::pystr::is_space(c) {
            ascii.push(' ');
        } else if is_decimal(c) {
            // Unicode encodes decimal digits in runs of ten, zero first: the digit is the
            // distance from the start of the code point run, modulo ten.
            let mut start = c as u32;
            while char::from_u32(start.wrapping_sub(1)).is_some_and(is_decimal) {
                start -= 1;
            }
            ascii.push(char::from_digit((c as u32 - start) % 10, 10)?);
        } else {
            return None;
        }
    }
    let t = ascii.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (sign, body) = match t.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    py_re!(NUMBER, r"^(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?$");
    if !NUMBER.is_match(body) {
        return None;
    }
    body.replace('_', "").parse::<f64>().ok().map(|v| sign * v)
}

/// quarto-cli: deno's test reporter (`[smoke] name ... ok`/`FAILED` in ANSI colours), `/tmp` paths
/// numbered by first appearance, a test line without a result counted as failed, stopping at
/// `ERRORS` or `failures:`.
fn parse_log_quarto_cli(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(PREFIX, r"\[(smoke|unit)\]");
    static TMP: LazyLock<[Regex; 2]> = LazyLock::new(|| [pyre::compile(r"/tmp/(\w+)\.qmd"), pyre::compile(r"/tmp/(\w+)/")]);
    let mut tmp_keys: IndexMap<String, usize> = IndexMap::new();
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if line.contains("ERRORS") || line.contains("failures:") {
            break;
        }
        if !PREFIX.is_match(line) {
            continue;
        }
        let mut line = line.to_string();
        for re in TMP.iter() {
            if let Some(m) = re.find(&line) {
                let next = tmp_keys.len();
                let n = *tmp_keys.entry(m.as_str().to_string()).or_insert(next);
                line = re.replace_all(&line, NoExpand(&format!("/tmp/{n}"))).into_owned();
            }
        }
        let test_name = strip(line.split("...").next().unwrap_or("")).to_string();
        let reject = line.starts_with("test result:")
            || (line.contains("passed") && line.contains("failed") && line.contains("steps"))
            || line.contains("34mINFO");
        if !reject {
            if line.contains("32mok") {
                map.insert(test_name.clone(), TestStatus::Passed);
            } else if line.contains("31mFAILED") {
                map.insert(test_name.clone(), TestStatus::Failed);
            }
            if !map.contains_key(&test_name) {
                map.insert(test_name, TestStatus::Failed);
            }
        }
    }
    Ok(map)
}

/// wp-calypso: jest's verbose reporter after each ` ./node_modules/.bin/jest ` command
/// (`✓ name (5ms)`, `✕ name`, suites by indentation, names joined with ` - `); a result line the
/// reference's pattern does not fit (no indentation, a timing not at the end) raises.
fn parse_log_calypso(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(TIMING, r"\(\d+ms\)");
    py_re!(PASS_TIMED, r"^\s+✓\s(.*)\(\d+ms\)$");
    py_re!(PASS, r"^\s+✓\s(.*)");
    py_re!(FAIL_TIMED, r"^\s+✕\s(.*)\(\d+ms\)$");
    py_re!(FAIL, r"^\s+✕\s(.*)");
    let mut map = StatusMap::new();
    let mut suite: Vec<(String, usize)> = Vec::new();
    for part in log.split(" ./node_modules/.bin/jest ").skip(1) {
        for line in part.split('\n') {
            if line.starts_with("Test Suites") || line.starts_with("  ● ") {
                break;
            }
            let stripped = strip(line);
            let result = if stripped.starts_with('✓') {
                Some((if TIMING.is_match(line) { &*PASS_TIMED } else { &*PASS }, TestStatus::Passed))
            } else if stripped.starts_with('✕') {
                Some((if TIMING.is_match(line) { &*FAIL_TIMED } else { &*FAIL }, TestStatus::Failed))
            } else {
                None
            };
            match result {
                Some((re, status)) => {
                    let caps = re.captures(line).ok_or_else(|| {
                        error("parse_log_calypso", format!("AttributeError: 'NoneType' object has no attribute 'group' (line {line:?})"))
                    })?;
                    let name = format!("{} - {}", suite_names(&suite).join(" - "), caps.get(1).map_or("", |m| m.as_str()));
                    map.insert(strip(&name).to_string(), status);
                }
                None => adjust_suite(&mut suite, line),
            }
        }
    }
    Ok(map)
}

/// Chart.js: karma's `Chrome N (OS) suite test FAILED` lines (ANSI removed); failures only.
fn parse_log_chart_js(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(FAILURE, r"(?m)Chrome\s[\d\.]+[^\S\r\n]\(.+?\)[^\S\r\n](.*)FAILED$");
    let log = ansi_escape(log);
    let mut map = StatusMap::new();
    for caps in FAILURE.captures_iter(&log) {
        map.insert(caps.get(1).map_or("", |m| m.as_str()).to_string(), TestStatus::Failed);
    }
    Ok(map)
}

/// marked: the failure list's `N) name` lines; failures only.
fn parse_log_marked(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(FAILURE, r"^\d+\)\s(.*)");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = FAILURE.captures(line) {
            map.insert(strip(caps.get(1).map_or("", |m| m.as_str())).to_string(), TestStatus::Failed);
        }
    }
    Ok(map)
}

/// p5.js: mocha's failure list (`N) suite` then each nested title indented deeper, up to `:`),
/// after ANSI codes, JSON blocks and `<tag>…</tag>` blocks are removed; failures only.
fn parse_log_p5js(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(FAILURE, r"(?ms)^\s*(\d+)\)(.{0,1000}?):");
    let log = ansi_escape(log);
    let log = p5js_remove_json_blocks(&log);
    let log = p5js_remove_xml_blocks(log);
    let mut map = StatusMap::new();
    for caps in FAILURE.captures_iter(&log) {
        let body = caps.get(2).map_or("", |m| m.as_str());
        let mut last_indent = 0;
        let valid = body.split('\n').all(|line| {
            let indent = indent_of(line);
            let deeper = indent > last_indent;
            last_indent = indent;
            deeper
        });
        if valid {
            let name: Vec<&str> = body.split('\n').map(strip).collect();
            map.insert(name.join(":"), TestStatus::Failed);
        }
    }
    Ok(map)
}

/// p5.js's `remove_json_blocks`: drops lines from one ending in `{`/`[` to a closing `}`/`]` line,
/// and one-line `{…}`/`[…]`.
pub(super) fn p5js_remove_json_blocks(log: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let (mut in_object, mut in_list) = (false, false);
    for line in log.split('\n') {
        let s = rstrip(line);
        if s.ends_with('{') {
            in_object = true;
            continue;
        }
        if s.ends_with('[') {
            in_list = true;
            continue;
        }
        if s == "}" && in_object {
            in_object = false;
            continue;
        }
        if s == "]" && in_list {
            in_list = false;
            continue;
        }
        if in_object || in_list {
            continue;
        }
        if (s.starts_with('{') && s.ends_with('}')) || (s.starts_with('[') && s.ends_with(']')) {
            continue;
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// p5.js's `remove_xml_blocks`: while `<(\w+)>[\s\S]*?</\1>` matches, the leftmost match becomes
/// as many `<tag>` as it held beyond its first. The backreference is done by hand: a candidate
/// `<name>` (the whole word run, as `\w+` must reach the `>`) matches up to the first `</name>`.
pub(super) fn p5js_remove_xml_blocks(mut log: String) -> String {
    py_re!(OPEN, r"<(\w+)>");
    loop {
        let mut unclosed: HashSet<String> = HashSet::new();
        let mut found: Option<(usize, usize, String)> = None;
        for caps in OPEN.captures_iter(&log) {
            let (Some(whole), Some(name)) = (caps.get(0), caps.get(1)) else { continue };
            let name = name.as_str();
            if unclosed.contains(name) {
                continue;
            }
            let closing = format!("</{name}>");
            match log[whole.end()..].find(&closing) {
                Some(at) => {
                    found = Some((whole.start(), whole.end() + at + closing.len(), name.to_string()));
                    break;
                }
                None => {
                    unclosed.insert(name.to_string());
                }
            }
        }
        let Some((start, end, name)) = found else { return log };
        let opening = format!("<{name}>");
        let extra = log[start..end].matches(&opening).count().saturating_sub(1);
        log = format!("{}{}{}", &log[..start], opening.repeat(extra), &log[end..]);
    }
}

/// react-pdf: jest's per-file `PASS path (12 ms)` / `FAIL path` lines (the carbon reader).
fn parse_log_react_pdf(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    Ok(jest_files(log))
}

/// jest `--verbose`: `✓ name (5 ms)`, `✕ name`, `○ skipped name`, by the bare test title; 5.x
/// strips the title, 4.x keeps a space left before the timing.
fn parse_log_jest(log: &str, _: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    py_re!(RESULT, r"^\s*(✓|✕|○)\s(.+?)(?:\s\((\d+\s*m?s)\))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = RESULT.captures(strip(line)) {
            let mut name = caps.get(2).map_or("", |m| m.as_str());
            if generation == Generation::V5 {
                name = strip(name);
            }
            let status = match caps.get(1).map(|m| m.as_str()) {
                Some("✓") => TestStatus::Passed,
                Some("✕") => TestStatus::Failed,
                _ => TestStatus::Skipped,
            };
            map.insert(name.to_string(), status);
        }
    }
    Ok(map)
}

/// jest `--json` through SWE-bench's jq transform: `[PASSED] name` / `[FAILED] name` lines.
fn parse_log_jest_json(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(RESULT, r"^\[(PASSED|FAILED)\]\s(.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = RESULT.captures(strip(line)) {
            let status = if caps.get(1).map(|m| m.as_str()) == Some("PASSED") { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(caps.get(2).map_or("", |m| m.as_str()).to_string(), status);
        }
    }
    Ok(map)
}

/// vitest `--reporter=verbose`: `✓ file > suite > name 12ms`, `× name`, `↓ name [skipped]`.
fn parse_log_vitest(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(RESULT, r"^\s*(✓|×|↓)\s(.+?)(?:\s(\d+\s*m?s?|\[skipped\]))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = RESULT.captures(strip(line)) {
            let status = match caps.get(1).map(|m| m.as_str()) {
                Some("✓") => TestStatus::Passed,
                Some("×") => TestStatus::Failed,
                _ => TestStatus::Skipped,
            };
            map.insert(caps.get(2).map_or("", |m| m.as_str()).to_string(), status);
        }
    }
    Ok(map)
}

/// karma's mocha-style reporter after `Starting browser`, up to `SUMMARY:`: indented suite lines
/// and `✔`/`✖` results, names joined with ` > `; a dedent past the outermost suite raises (the
/// reference pops an empty list).
fn parse_log_karma(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(LINE, r"^(\s*)?([✔✖])?\s(.*)$");
    let mut map = StatusMap::new();
    let mut current_indent: isize = -1;
    let mut current_suite: Vec<String> = Vec::new();
    let mut started = false;
    for line in log.split('\n') {
        if line.starts_with("SUMMARY:") {
            return Ok(map);
        }
        if line.contains("Starting browser") {
            started = true;
            continue;
        }
        if !started {
            continue;
        }
        let Some(caps) = LINE.captures(line) else { continue };
        let indent = caps.get(1).map_or("", |m| m.as_str());
        let status = caps.get(2).map(|m| m.as_str());
        let name = caps.get(3).map_or("", |m| m.as_str());
        if !indent.is_empty() && status.is_none() {
            let new_indent = indent.chars().count() as isize;
            if new_indent > current_indent {
                current_indent = new_indent;
                current_suite.push(name.to_string());
            } else if new_indent < current_indent {
                current_indent = new_indent;
                if current_suite.pop().is_none() {
                    return Err(error("parse_log_karma", "IndexError: pop from empty list"));
                }
                continue;
            }
        }
        if let Some(symbol) = status {
            let mut parts = current_suite.clone();
            parts.push(name.to_string());
            map.insert(parts.join(" > "), if symbol == "✔" { TestStatus::Passed } else { TestStatus::Failed });
        }
    }
    Ok(map)
}

/// TAP: `ok N name` / `not ok N name` lines (directives such as `# SKIP` stay in the name).
fn parse_log_tap(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    py_re!(RESULT, r"^(ok|not ok) (\d+) (.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = RESULT.captures(strip(line)) {
            let status = if caps.get(1).map(|m| m.as_str()) == Some("ok") { TestStatus::Passed } else { TestStatus::Failed };
            map.insert(caps.get(3).map_or("", |m| m.as_str()).to_string(), status);
        }
    }
    Ok(map)
}

/// immutable-js: PR 2006 reads jest's verbose reporter, PR 2005 the jest-json lines (the number
/// after the instance id's last `-`); any other instance raises.
fn parse_log_immutable_js(log: &str, ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    match ctx.instance_id.rsplit('-').next().unwrap_or("") {
        "2006" => parse_log_jest(log, ctx, generation),
        "2005" => parse_log_jest_json(log, ctx, generation),
        _ => Err(error("parse_log_immutable_js", format!("ValueError: Unknown instance id: {}", ctx.instance_id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
            (9999999999999998.0, "9999999999999998.0"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn python_float_parsing() {
        assert_eq!(py_float(" 10.2 "), Some(10.2));
        assert_eq!(py_float("1_0"), Some(10.0));
        assert_eq!(py_float("٣.٥"), Some(3.5));
        assert_eq!(py_float("\u{a0}3"), Some(3.0));
        assert_eq!(py_float("\x1c3"), None);
        assert_eq!(py_float("1__0"), None);
        assert_eq!(py_float(""), None);
        assert_eq!(py_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(py_float("nAn").is_some_and(f64::is_nan));
    }
}
