//! SWE-rebench V2's log parsers: `lib/agent/log_parsers.py` of `SWE-rebench/SWE-rebench-V2`
//! (`NAME_TO_PARSER`, 76 names over 68 functions), line for line, and the name normalisation its
//! `scripts/eval.py` applies before grading.
//!
//! Each reference parser is `fn(log) -> dict[str, str]`: one argument, no test spec. Its
//! `TestStatus` enum has four members (`PASSED FAILED SKIPPED ERROR`, no `XFAIL`), so every
//! "any status" test here (`line.startswith(status)`, `status in TestStatus.__members__`) uses
//! those four. A few parsers store a status word they read from the log as it is (the pytest
//! family takes the line's first token, `parse_log_scala_v3` keeps an unknown `*** WORD ***`);
//! such a value, or `XFAIL`, is no status of the reference's enum and is kept here, at its
//! position, as [`TestStatus::Missing`]. `scripts/eval.py` only ever reads `PASSED` (and lists
//! `FAILED`), so nothing is lost.
//!
//! Python's `re` is not the `regex` crate: patterns go through [`pyre`] (Python's `\s`, `\w`;
//! `\d` as Python 3.11's Unicode 14.0 decimal digits), and every `\b` is spelled out
//! by hand at its place (the comments say why each rewrite is exact there). `int()` of a log's digits follows Python: any decimal
//! digit script, at most 4300 digits (more raises), `str.isdigit()` tokens that `int()` refuses
//! (`²`) raise. XML goes through [`xml`], an expat-compatible reader (what `ET.fromstring`
//! accepts and rejects), and `parse_log_dart`'s JSON through [`pyjson`] (what `json.loads`
//! accepts: `NaN`, big integers, duplicate keys; Python's dict-key equality `1 == 1.0 == True`).
//!
//! Quirks reproduced on purpose (the dataset's lists were cut by them) are named where they
//! happen. Three parsers fill part of their map by iterating a Python `set`
//! (`parse_java_mvn`'s fallback, `parse_log_haskell_v2`'s failures, `parse_log_ocaml_v2`'s
//! finalize): the reference's order of those keys depends on the interpreter's string hashing,
//! so only their order is not reproduced (here: first-seen order).
//!
//! One file, long on purpose: it is the reference's table of parsers ported in one piece, so each
//! port can be read beside its original in `log_parsers.py`.

use agentmill_proto::TestStatus;
use indexmap::IndexMap;
use regex::Regex;

use super::javascript::{ansi_escape, p5js_remove_json_blocks, p5js_remove_xml_blocks};
use super::pyre::{group, py_re};
use super::pystr::{self, decimal_value, indent_of, splitlines};
use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, xml};

/// The parser names this module serves (without the module's prefix), in `NAME_TO_PARSER`'s order.
pub(super) const NAMES: &[&str] = &[
    "parse_log_pytest",
    "parse_log_pytest_options",
    "parse_log_pytest_v2",
    "parse_log_pytest_nebo",
    "parse_combined_test_reports",
    "parse_log_gotest",
    "parse_log_redis",
    "parse_log_jq",
    "parse_log_doctest",
    "parse_log_micropython_test",
    "parse_log_googletest",
    "parse_log_minitest",
    "parse_log_cucumber",
    "parse_log_ruby_unit",
    "parse_log_rspec_transformed_json",
    "parse_log_cargo",
    "parse_log_phpunit",
    "parse_log_maven",
    "parse_log_ant",
    "parse_log_gradle_custom",
    "parse_log_calypso",
    "parse_log_chart_js",
    "parse_log_marked",
    "parse_log_p5js",
    "parse_log_react_pdf",
    "parse_log_jest",
    "parse_log_jest_json",
    "parse_log_vitest",
    "parse_log_karma",
    "parse_log_tap",
    "parse_log_elixir",
    "parse_log_ruby_v1",
    "parse_log_cpp",
    "parse_log_cpp_v2",
    "parse_log_cpp_v3",
    "parse_log_cpp_v4",
    "parse_lue_nvim",
    "parse_lua_nvim",
    "parse_log_lua_nvim",
    "parse_java_mvn",
    "parse_log_java_mvn",
    "parse_java_mvn_v2",
    "parse_log_java_mvn_v2",
    "parse_log_php_v1",
    "parse_log_ruby_v2",
    "parse_log_haskell",
    "parse_log_haskell_v2",
    "parse_log_js",
    "parse_log_js_2",
    "parse_log_js_3",
    "parse_log_js_4",
    "parse_log_gradlew_v1",
    "parse_log_julia",
    "parse_log_npx",
    "parse_log_r",
    "parse_log_r_v2",
    "parse_log_lein",
    "parse_log_dart",
    "parse_log_dart_v2",
    "parse_log_dart_v3",
    "parse_log_scala",
    "parse_log_scala_v2",
    "parse_log_scala_v3",
    "parse_log_ocaml",
    "parse_log_ocaml_v2",
    "parse_log_ocaml_v3",
    "parse_log_ocaml_v4",
    "parse_log_ocaml_v5",
    "parse_log_sbt",
    "parse_log_junit",
    "parse_logs_r_junit",
    "parse_logs_kotlin_junit",
    "parse_log_r_junit",
    "parse_log_kotlin_junit",
    "parse_log_swift",
    "parse_log_csharp",
];

/// The parser called `name` (without the prefix), if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    use wrapped as w;
    Some(match name {
        "parse_log_pytest" => w::parse_log_pytest,
        "parse_log_pytest_options" => w::parse_log_pytest_options,
        "parse_log_pytest_v2" => w::parse_log_pytest_v2,
        "parse_log_pytest_nebo" => w::parse_log_pytest_nebo,
        "parse_combined_test_reports" => w::parse_combined_test_reports,
        "parse_log_gotest" => w::parse_log_gotest,
        "parse_log_redis" => w::parse_log_redis,
        "parse_log_jq" => w::parse_log_jq,
        "parse_log_doctest" => w::parse_log_doctest,
        "parse_log_micropython_test" => w::parse_log_micropython_test,
        "parse_log_googletest" => w::parse_log_googletest,
        "parse_log_minitest" => w::parse_log_minitest,
        "parse_log_cucumber" => w::parse_log_cucumber,
        "parse_log_ruby_unit" => w::parse_log_ruby_unit,
        "parse_log_rspec_transformed_json" => w::parse_log_rspec_transformed_json,
        "parse_log_cargo" => w::parse_log_cargo,
        "parse_log_phpunit" => w::parse_log_phpunit,
        "parse_log_maven" => w::parse_log_maven,
        "parse_log_ant" => w::parse_log_ant,
        "parse_log_gradle_custom" => w::parse_log_gradle_custom,
        "parse_log_calypso" => w::parse_log_calypso,
        "parse_log_chart_js" => w::parse_log_chart_js,
        "parse_log_marked" => w::parse_log_marked,
        "parse_log_p5js" => w::parse_log_p5js,
        "parse_log_react_pdf" => w::parse_log_react_pdf,
        "parse_log_jest" => w::parse_log_jest,
        "parse_log_jest_json" => w::parse_log_jest_json,
        "parse_log_vitest" => w::parse_log_vitest,
        "parse_log_karma" => w::parse_log_karma,
        "parse_log_tap" => w::parse_log_tap,
        "parse_log_elixir" => w::parse_log_elixir,
        "parse_log_ruby_v1" => w::parse_log_ruby_v1,
        "parse_log_cpp" => w::parse_log_cpp,
        "parse_log_cpp_v2" => w::parse_log_cpp_v2,
        "parse_log_cpp_v3" => w::parse_log_cpp_v3,
        "parse_log_cpp_v4" => w::parse_log_cpp_v4,
        "parse_lue_nvim" | "parse_lua_nvim" | "parse_log_lua_nvim" => w::parse_lue_nvim,
        "parse_java_mvn" | "parse_log_java_mvn" => w::parse_java_mvn,
        "parse_java_mvn_v2" | "parse_log_java_mvn_v2" => w::parse_java_mvn_v2,
        "parse_log_php_v1" => w::parse_log_php_v1,
        "parse_log_ruby_v2" => w::parse_log_ruby_v2,
        "parse_log_haskell" => w::parse_log_haskell,
        "parse_log_haskell_v2" => w::parse_log_haskell_v2,
        "parse_log_js" => w::parse_log_js,
        "parse_log_js_2" => w::parse_log_js_2,
        "parse_log_js_3" => w::parse_log_js_3,
        "parse_log_js_4" => w::parse_log_js_4,
        "parse_log_gradlew_v1" => w::parse_log_gradlew_v1,
        "parse_log_julia" => w::parse_log_julia,
        "parse_log_npx" => w::parse_log_npx,
        "parse_log_r" => w::parse_log_r,
        "parse_log_r_v2" => w::parse_log_r_v2,
        "parse_log_lein" => w::parse_log_lein,
        "parse_log_dart" => w::parse_log_dart,
        "parse_log_dart_v2" => w::parse_log_dart_v2,
        "parse_log_dart_v3" => w::parse_log_dart_v3,
        "parse_log_scala" => w::parse_log_scala,
        "parse_log_scala_v2" => w::parse_log_scala_v2,
        "parse_log_scala_v3" => w::parse_log_scala_v3,
        "parse_log_ocaml" => w::parse_log_ocaml,
        "parse_log_ocaml_v2" => w::parse_log_ocaml_v2,
        "parse_log_ocaml_v3" => w::parse_log_ocaml_v3,
        "parse_log_ocaml_v4" | "parse_log_ocaml_v5" => w::parse_log_ocaml_v4,
        "parse_log_sbt" | "parse_log_junit" => w::parse_log_sbt,
        "parse_logs_r_junit" | "parse_log_r_junit" => w::parse_logs_r_junit,
        "parse_logs_kotlin_junit" | "parse_log_kotlin_junit" => w::parse_logs_kotlin_junit,
        "parse_log_swift" => w::parse_log_swift,
        "parse_log_csharp" => w::parse_log_csharp,
        _ => return None,
    })
}

/// The reference parsers as [`ParseFn`]s: each reads the log alone; an `Err` is what the
/// reference raises.
macro_rules! wrappers {
    ($($f:ident),* $(,)?) => {
        mod wrapped {
            use super::{Generation, ParseContext, ParseError, StatusMap};
            $(
                pub(super) fn $f(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
                    super::$f(log).map_err(|reason| ParseError { parser: stringify!($f), reason })
                }
            )*
        }
    };
}

wrappers!(
    parse_log_pytest,
    parse_log_pytest_options,
    parse_log_pytest_v2,
    parse_log_pytest_nebo,
    parse_combined_test_reports,
    parse_log_gotest,
    parse_log_redis,
    parse_log_jq,
    parse_log_doctest,
    parse_log_micropython_test,
    parse_log_googletest,
    parse_log_minitest,
    parse_log_cucumber,
    parse_log_ruby_unit,
    parse_log_rspec_transformed_json,
    parse_log_cargo,
    parse_log_phpunit,
    parse_log_maven,
    parse_log_ant,
    parse_log_gradle_custom,
    parse_log_calypso,
    parse_log_chart_js,
    parse_log_marked,
    parse_log_p5js,
    parse_log_react_pdf,
    parse_log_jest,
    parse_log_jest_json,
    parse_log_vitest,
    parse_log_karma,
    parse_log_tap,
    parse_log_elixir,
    parse_log_ruby_v1,
    parse_log_cpp,
    parse_log_cpp_v2,
    parse_log_cpp_v3,
    parse_log_cpp_v4,
    parse_lue_nvim,
    parse_java_mvn,
    parse_java_mvn_v2,
    parse_log_php_v1,
    parse_log_ruby_v2,
    parse_log_haskell,
    parse_log_haskell_v2,
    parse_log_js,
    parse_log_js_2,
    parse_log_js_3,
    parse_log_js_4,
    parse_log_gradlew_v1,
    parse_log_julia,
    parse_log_npx,
    parse_log_r,
    parse_log_r_v2,
    parse_log_lein,
    parse_log_dart,
    parse_log_dart_v2,
    parse_log_dart_v3,
    parse_log_scala,
    parse_log_scala_v2,
    parse_log_scala_v3,
    parse_log_ocaml,
    parse_log_ocaml_v2,
    parse_log_ocaml_v3,
    parse_log_ocaml_v4,
    parse_log_sbt,
    parse_logs_r_junit,
    parse_logs_kotlin_junit,
    parse_log_swift,
    parse_log_csharp,
);

/// What a parser gives or the reference's exception, as text.
type Parsed = Result<StatusMap, String>;

// ---------------------------------------------------------------------------------------------
// scripts/eval.py: the timing normalisation and `passed_match`
// ---------------------------------------------------------------------------------------------

/// `scripts/eval.py::_normalize_test_name`: the three `_TIMING_NORMALIZE_RES` substitutions in
/// order (` [1.3 ms]` at the end, ` in 29.08 msec` anywhere, ` (12ms)` at the end, each
/// case-insensitive), then `strip()`. eval.py applies it to the parser's keys and to every
/// `FAIL_TO_PASS`/`PASS_TO_PASS` name.
pub fn normalize_test_name(name: &str) -> String {
    py_re!(BRACKET, r"(?i)\s*\[\s*\d+(?:\.\d+)?\s*(?:ms|s)\s*\]\s*$");
    // `\s+in\s+\d+(?:\.\d+)?\s+(?:msec|sec)\b`: the `\b` follows `c`, a word character, so it
    // holds where the next character is not one (or at the end): checked per match below.
    py_re!(BOTAN, r"(?i)\s+in\s+\d+(?:\.\d+)?\s+(?:msec|sec)");
    py_re!(PAREN, r"(?i)\s*\(\s*\d+(?:\.\d+)?\s*(?:ms|s)\s*\)\s*$");
    let name = py_end_sub(&BRACKET, name);
    let name = sub_word_end(&BOTAN, &name);
    let name = py_end_sub(&PAREN, &name);
    pystr::strip(&name).to_string()
}

/// `scripts/eval.py::evaluate_instance`'s `passed_match`: the parser's keys normalised (a key
/// that normalises onto an earlier one overwrites its status), the `PASSED` ones sorted, equal
/// to the sorted list of normalised `PASS_TO_PASS + FAIL_TO_PASS` names. A list, not a set: a
/// name listed twice can never match.
pub fn passed_match(parsed: &StatusMap, fail_to_pass: &[String], pass_to_pass: &[String]) -> bool {
    let (passed, _) = eval_lists(parsed);
    let mut expected: Vec<String> = pass_to_pass.iter().chain(fail_to_pass).map(|n| normalize_test_name(n)).collect();
    expected.sort();
    passed == expected
}

/// `scripts/eval.py`'s `passed_actual` and `failed_actual`: the parser's keys normalised (a key
/// that normalises onto an earlier one overwrites its status), those `PASSED` and those
/// `FAILED`, each sorted.
pub fn eval_lists(parsed: &StatusMap) -> (Vec<String>, Vec<String>) {
    let mut normalised: IndexMap<String, TestStatus> = IndexMap::new();
    for (k, v) in parsed {
        normalised.insert(normalize_test_name(k), *v);
    }
    let pick = |want: TestStatus| {
        let mut v: Vec<String> = normalised.iter().filter(|(_, s)| **s == want).map(|(k, _)| k.clone()).collect();
        v.sort();
        v
    };
    (pick(TestStatus::Passed), pick(TestStatus::Failed))
}

// ---------------------------------------------------------------------------------------------
// Python on Rust: `re`, `str`, `int`
// ---------------------------------------------------------------------------------------------

/// The reference's value for a status word it stored: one of its four `TestStatus` values, or
/// [`TestStatus::Missing`] for anything else (`XFAIL` included: not a member here).
fn status_of(word: &str) -> TestStatus {
    match word {
        "PASSED" => TestStatus::Passed,
        "FAILED" => TestStatus::Failed,
        "SKIPPED" => TestStatus::Skipped,
        "ERROR" => TestStatus::Error,
        _ => TestStatus::Missing,
    }
}

/// The four status words, in the reference enum's order.
const STATUS4: [&str; 4] = ["PASSED", "FAILED", "SKIPPED", "ERROR"];

const PASSED: TestStatus = TestStatus::Passed;
const FAILED: TestStatus = TestStatus::Failed;
const SKIPPED: TestStatus = TestStatus::Skipped;
const ERROR: TestStatus = TestStatus::Error;

/// `s.strip(chars)` for a set of characters.
fn strip_chars<'a>(s: &'a str, chars: &[char]) -> &'a str {
    s.trim_matches(|c| chars.contains(&c))
}

/// Python's `\w` for one character.
fn is_word(c: char) -> bool {
    py_re!(WORD, r"\A\w\z");
    let mut buf = [0u8; 4];
    WORD.is_match(c.encode_utf8(&mut buf))
}

/// Whether a `\b` holds at byte `at` of `s`.
fn boundary_at(s: &str, at: usize) -> bool {
    let before = s[..at].chars().next_back().is_some_and(is_word);
    let after = s[at..].chars().next().is_some_and(is_word);
    before != after
}

/// `re.search(r"\bW\b|…", s)` for words `W` that start and end with word characters, one
/// anchored (`\A`) pattern per alternative: a start where `\b` holds and an alternative that
/// ends where `\b` holds again.
fn search_words(s: &str, words: &[&Regex]) -> bool {
    s.char_indices().any(|(i, _)| {
        boundary_at(s, i) && words.iter().any(|w| w.find(&s[i..]).is_some_and(|m| boundary_at(s, i + m.end())))
    })
}

/// `pattern.sub("", s)` for a pattern ending in `\s*$` (no newline can be in `s`'s lines, and
/// `\s*` takes a final newline anyway): its one match is the leftmost that reaches the end.
fn py_end_sub(re: &Regex, s: &str) -> String {
    re.replace_all(s, "").into_owned()
}

/// `re.sub(pattern + r"\b", "", s)` for a pattern ending in a word character: every leftmost
/// match whose end `\b` holds is removed; a match where it fails is retried one character on.
fn sub_word_end(re: &Regex, s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut at = 0;
    while at <= s.len() {
        let Some(m) = re.find_at(s, at) else { break };
        if boundary_at(s, m.end()) {
            out.push_str(&s[copied..m.start()]);
            copied = m.end();
            at = m.end();
        } else {
            at = m.start() + s[m.start()..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// The text of the named capture group `name` (empty when it did not take part).
fn named<'t>(caps: &regex::Captures<'t>, name: &str) -> &'t str {
    caps.name(name).map_or("", |m| m.as_str())
}

/// `s[:n]` in characters.
fn char_prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `int(s)` for a run of digits: its value as ASCII decimal without leading zeros, or the
/// `ValueError` Python raises (a non-decimal digit; more than 4300 digits).
fn py_int(s: &str) -> Result<String, String> {
    let mut digits = String::with_capacity(s.len());
    for c in s.chars() {
        let Some(d) = decimal_value(c) else { return Err(format!("ValueError: invalid literal for int() with base 10: {s:?}")) };
        digits.push(char::from_digit(d, 10).unwrap_or('0'));
    }
    if digits.is_empty() {
        return Err("ValueError: invalid literal for int() with base 10: ''".into());
    }
    if digits.len() > 4300 {
        return Err("ValueError: Exceeds the limit (4300 digits) for integer string conversion".into());
    }
    let trimmed = digits.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0".into() } else { trimmed.into() })
}

/// `int(s) > 0` (as a `Result`: `int()` may raise).
fn py_int_positive(s: &str) -> Result<bool, String> {
    py_int(s).map(|v| v != "0")
}

/// `_update_status_by_precedence` (`OCAML_STATUS_PRECEDENCE`: passed < skipped < failed < error):
/// an empty name is ignored; a status replaces one of lower or equal precedence.
fn update_by_precedence(results: &mut StatusMap, name: &str, status: TestStatus) {
    fn rank(s: TestStatus) -> i32 {
        match s {
            TestStatus::Passed => 0,
            TestStatus::Skipped => 1,
            TestStatus::Failed => 2,
            TestStatus::Error => 3,
            _ => -1,
        }
    }
    if name.is_empty() {
        return;
    }
    match results.get(name) {
        Some(current) if rank(status) < rank(*current) => {}
        _ => {
            results.insert(name.to_string(), status);
        }
    }
}

/// `results.setdefault(name, status)`.
fn setdefault(results: &mut StatusMap, name: impl Into<String>, status: TestStatus) {
    results.entry(name.into()).or_insert(status);
}

// ---------------------------------------------------------------------------------------------
// Python (pytest)
// ---------------------------------------------------------------------------------------------

/// `any(line.startswith(x.value) for x in TestStatus)` (four members).
fn starts_with_status(line: &str) -> bool {
    STATUS4.iter().any(|w| line.starts_with(w))
}

/// `any(line.endswith(x.value) for x in TestStatus)`.
fn ends_with_status(line: &str) -> bool {
    STATUS4.iter().any(|w| line.ends_with(w))
}

/// pytest `-rA` summary: a line starting with a status word (a `FAILED` line's `" - "`s become
/// spaces); the second token is the id, the first the status (`PASSED:` stays as read).
fn parse_log_pytest(log: &str) -> Parsed {
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        if !starts_with_status(raw) {
            continue;
        }
        let line = if raw.starts_with("FAILED") { raw.replace(" - ", " ") } else { raw.to_string() };
        let tokens = pystr::split(&line);
        if let [status, name, ..] = tokens.as_slice() {
            map.insert((*name).to_string(), status_of(status));
        }
    }
    Ok(map)
}

/// `parse_log_pytest` with `(.*?)\[(.*)\]` ids: an option that is a path (`/…`, not `//…`, no
/// `*`) keeps only its last component; text after the last `]` is dropped.
fn parse_log_pytest_options(log: &str) -> Parsed {
    py_re!(OPTION, r"(.*?)\[(.*)\]");
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        if !starts_with_status(raw) {
            continue;
        }
        let line = if raw.starts_with("FAILED") { raw.replace(" - ", " ") } else { raw.to_string() };
        let tokens = pystr::split(&line);
        let [status, name, ..] = tokens.as_slice() else { continue };
        let test_name = match OPTION.captures(name) {
            Some(caps) => {
                let (main, option) = (group(&caps, 1), group(&caps, 2));
                let option = if option.starts_with('/') && !option.starts_with("//") && !option.contains('*') {
                    format!("/{}", option.rsplit('/').next().unwrap_or_default())
                } else {
                    option.to_string()
                };
                format!("{main}[{option}]")
            }
            None => (*name).to_string(),
        };
        map.insert(test_name, status_of(status));
    }
    Ok(map)
}

/// `[Nm` colour remnants removed, then the characters `\x01`–`\x1f`.
fn decolour_controls(line: &str) -> String {
    py_re!(COLOUR, r"\[(\d+)m");
    COLOUR.replace_all(line, "").chars().filter(|&c| !('\x01'..='\x1f').contains(&c)).collect()
}

/// pytest, later versions: colour codes and control characters removed; a line starting with a
/// status word gives `tokens[1]`, one ending with one `tokens[0]`. A line of one token raises
/// (`IndexError`) — `PASSED` alone, or any `…FAILED` word alone on a line.
fn parse_log_pytest_v2(log: &str) -> Parsed {
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        let mut line = decolour_controls(raw);
        if starts_with_status(&line) {
            if line.starts_with("FAILED") {
                line = line.replace(" - ", " ");
            }
            let tokens = pystr::split(&line);
            let [status, name, ..] = tokens.as_slice() else {
                return Err(format!("IndexError: list index out of range (line {line:?})"));
            };
            map.insert((*name).to_string(), status_of(status));
        } else if ends_with_status(&line) {
            let tokens = pystr::split(&line);
            let [name, status, ..] = tokens.as_slice() else {
                return Err(format!("IndexError: list index out of range (line {line:?})"));
            };
            map.insert((*name).to_string(), status_of(status));
        }
    }
    Ok(map)
}

/// pytest with xdist (`[gw0] [ 50%] PASSED id`), `id PASSED [ 50%] in 0.1s`, or `PASSED id`;
/// ids are cut at `" in "`.
fn parse_log_pytest_nebo(log: &str) -> Parsed {
    py_re!(GW, r"^\[gw\d+\]\s+\[[^\]]*\]\s+(\w+)\s+(.*)$");
    py_re!(STANDARD, r"^([^\s].*?)\s+(PASSED|FAILED|SKIPPED|ERROR)\s+\[[^\]]*\]\s+in\s+\d+(?:\.\d+)?s$");
    py_re!(STATUS_FIRST, r"^(PASSED|FAILED|SKIPPED|ERROR)\s+(.*)$");
    let mut map = StatusMap::new();
    for raw in splitlines(log) {
        let cleaned = decolour_controls(raw);
        let line = pystr::strip(&cleaned);
        if let Some(caps) = GW.captures(line) {
            let status = group(&caps, 1);
            if STATUS4.contains(&status) {
                let name = pystr::strip(group(&caps, 2).split(" in ").next().unwrap_or_default());
                map.insert(name.to_string(), status_of(status));
                continue;
            }
        }
        if let Some(caps) = STANDARD.captures(line) {
            map.insert(pystr::strip(group(&caps, 1)).to_string(), status_of(pystr::strip(group(&caps, 2))));
            continue;
        }
        if let Some(caps) = STATUS_FIRST.captures(line) {
            let name = pystr::strip(group(&caps, 2).split(" in ").next().unwrap_or_default());
            map.insert(name.to_string(), status_of(pystr::strip(group(&caps, 1))));
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// JUnit XML
// ---------------------------------------------------------------------------------------------

/// `parse_test_report`: one XML document; `classname::name` (`None` for a missing attribute) of
/// every `testcase` below the root, failure before skipped before error; a document expat
/// rejects gives nothing.
fn parse_test_report(doc: &str) -> StatusMap {
    let mut results = StatusMap::new();
    let Ok(tree) = xml::parse(doc, xml::Dtd::Read) else { return results };
    for tc in tree.descendants(0, "testcase") {
        let classname = tree.get(tc, "classname").unwrap_or("None");
        let name = tree.get(tc, "name").unwrap_or("None");
        let status = if tree.find(tc, "failure").is_some() {
            FAILED
        } else if tree.find(tc, "skipped").is_some() {
            SKIPPED
        } else if tree.find(tc, "error").is_some() {
            ERROR
        } else {
            PASSED
        };
        results.insert(format!("{classname}::{name}"), status);
    }
    results
}

/// Every `<?xml … </testsuites>` document in the log through [`parse_test_report`], later ones
/// overwriting; a `<?xml` with no `</testsuites>` after it is skipped.
fn parse_combined_test_reports(content: &str) -> Parsed {
    let mut combined = StatusMap::new();
    let mut pos = 0;
    while pos < content.len() {
        let Some(start) = content[pos..].find("<?xml").map(|i| i + pos) else { break };
        let Some(end) = content[start..].find("</testsuites>").map(|i| i + start) else {
            pos = start + "<?xml".len();
            continue;
        };
        let end = end + "</testsuites>".len();
        for (k, v) in parse_test_report(&content[start..end]) {
            combined.insert(k, v);
        }
        pos = end;
    }
    Ok(combined)
}

/// Gradle's JUnit XML printed in the log: blocks from a line starting (after white space) with
/// `<?xml` to one starting with `</testsuite>`, each parsed alone (the line's leading white
/// space stays: expat then rejects the declaration, and the block is skipped); `name
/// (classname)`, skipped before failure before error.
fn parse_log_gradlew_v1(log: &str) -> Parsed {
    let mut blocks: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut in_xml = false;
    for line in log.split('\n') {
        let s = pystr::strip(line);
        if s.starts_with("<?xml") {
            in_xml = true;
            current = vec![line];
        } else if in_xml {
            current.push(line);
            if s.starts_with("</testsuite>") {
                blocks.push(current.join("\n"));
                current = Vec::new();
                in_xml = false;
            }
        }
    }
    let mut results = StatusMap::new();
    for block in blocks {
        let Ok(tree) = xml::parse(&block, xml::Dtd::Read) else { continue };
        for tc in tree.descendants(0, "testcase") {
            let name = tree.get(tc, "name").unwrap_or("");
            let classname = tree.get(tc, "classname").unwrap_or("");
            let full = if !classname.is_empty() && !name.is_empty() { format!("{name} ({classname})") } else { name.to_string() };
            let status = if tree.find(tc, "skipped").is_some() {
                SKIPPED
            } else if tree.find(tc, "failure").is_some() {
                FAILED
            } else if tree.find(tc, "error").is_some() {
                ERROR
            } else {
                PASSED
            };
            results.insert(full, status);
        }
    }
    Ok(results)
}

/// testthat's JUnit reporter: the log from its first `<?xml` to the first `</testsuites>` after
/// it (or the end) as one document; `classname::name` of each `testcase` child of every
/// `testsuite` below the root; nothing when expat rejects it.
fn parse_logs_r_junit(log: &str) -> Parsed {
    let mut results = StatusMap::new();
    let Some(start) = log.find("<?xml") else { return Ok(results) };
    let mut content = &log[start..];
    if let Some(end) = content.find("</testsuites>") {
        content = &content[..end + "</testsuites>".len()];
    }
    let Ok(tree) = xml::parse(content, xml::Dtd::Read) else { return Ok(results) };
    for suite in tree.descendants(0, "testsuite") {
        for tc in tree.children(suite, "testcase") {
            let name = tree.get(tc, "name").unwrap_or("");
            let classname = tree.get(tc, "classname").unwrap_or("");
            let full = if classname.is_empty() { name.to_string() } else { format!("{classname}::{name}") };
            let status = if tree.find(tc, "failure").is_some() {
                FAILED
            } else if tree.find(tc, "error").is_some() {
                ERROR
            } else if tree.find(tc, "skipped").is_some() {
                SKIPPED
            } else {
                PASSED
            };
            results.insert(full, status);
        }
    }
    Ok(results)
}

/// `_parse_junit_testcases_from_text` with `" "` (`parse_log_sbt`, `parse_log_junit`): every
/// `<testcase …>` tag found by text, its `(\w+)="…"` attributes; a tag without a `name` is
/// skipped; the body up to the next `</testcase>` (or, with none, the next 4096 characters)
/// says failure, error, skipped or passed.
fn junit_testcases_from_text(log: &str, joiner: &str) -> StatusMap {
    // `<testcase\b([^>]*)>`: after `testcase` the `\b` needs a non-word character (or the end,
    // where `>` fails anyway), so the attributes are empty or start with a non-word non-`>`.
    py_re!(OPEN, r"<testcase((?:[^\w>][^>]*)?)>");
    py_re!(ATTR, r#"(\w+)="([^"]*)""#);
    let mut results = StatusMap::new();
    let mut pos = 0;
    while pos <= log.len() {
        let Some(caps) = OPEN.captures_at(log, pos) else { break };
        let (Some(whole), raw_attrs) = (caps.get(0), group(&caps, 1)) else { break };
        let mut attrs: IndexMap<&str, &str> = IndexMap::new();
        for a in ATTR.captures_iter(raw_attrs) {
            attrs.insert(a.get(1).map_or("", |m| m.as_str()), a.get(2).map_or("", |m| m.as_str()));
        }
        let name = attrs.get("name").copied().unwrap_or("");
        let classname = attrs.get("classname").copied().unwrap_or("");
        if name.is_empty() {
            pos = whole.end();
            continue;
        }
        let self_closing = pystr::strip(raw_attrs).ends_with('/');
        let mut content = "";
        if self_closing {
            pos = whole.end();
        } else if let Some(close) = log[whole.end()..].find("</testcase>") {
            content = &log[whole.end()..whole.end() + close];
            pos = whole.end() + close + "</testcase>".len();
        } else {
            content = char_prefix(&log[whole.end()..], 4096);
            pos = whole.end();
        }
        let full = if classname.is_empty() { name.to_string() } else { pystr::strip(&format!("{classname}{joiner}{name}")).to_string() };
        let status = if content.contains("<failure") {
            FAILED
        } else if content.contains("<error") {
            ERROR
        } else if content.contains("<skipped") {
            SKIPPED
        } else {
            PASSED
        };
        results.insert(full, status);
    }
    results
}

/// sbt's (and any) JUnit XML, read as text (`parse_log_sbt`, alias `parse_log_junit`).
fn parse_log_sbt(log: &str) -> Parsed {
    Ok(junit_testcases_from_text(log, " "))
}

/// doctest's XML reporter: from the first `<doctest` to the first `</doctest>` after it; every
/// `SubCase` of every `TestCase` as `testcase > subcase`, passed when all its `Expression`s
/// succeeded. A malformed document raises (`ET.ParseError`); so does a `<doctest` with no
/// `</doctest>`: `find` gives -1, the slice ends at character 9.
fn parse_log_doctest(log: &str) -> Parsed {
    let mut map = StatusMap::new();
    let Some(start) = log.find("<doctest") else { return Ok(map) };
    let doc: &str = match log[start..].find("</doctest>") {
        Some(end) => &log[start..start + end + "</doctest>".len()],
        None => {
            // log[start_index:9], in characters.
            let start_chars = log[..start].chars().count();
            if start_chars >= 9 { "" } else { &char_prefix(log, 9)[start..] }
        }
    };
    let tree = xml::parse(doc, xml::Dtd::Read).map_err(|e| format!("ParseError: {e}"))?;
    for tc in tree.descendants(0, "TestCase") {
        let tc_name = tree.get(tc, "name").unwrap_or("None");
        for sc in tree.descendants(tc, "SubCase") {
            let sc_name = tree.get(sc, "name").unwrap_or("None");
            let passed = tree.descendants(sc, "Expression").all(|e| tree.get(e, "success") == Some("true"));
            map.insert(format!("{tc_name} > {sc_name}"), if passed { PASSED } else { FAILED });
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// Line-pattern parsers (Go, C, C++, Rust, Ruby, Java, PHP, …)
// ---------------------------------------------------------------------------------------------

/// `go test -v`: `--- PASS: TestX (0.00s)`, `--- FAIL: …`, `--- SKIP: …`.
fn parse_log_gotest(log: &str) -> Parsed {
    py_re!(RESULT, r"^--- (PASS|FAIL|SKIP): (.+) \((.+)\)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match group(&caps, 1) {
            "PASS" => PASSED,
            "FAIL" => FAILED,
            _ => SKIPPED,
        };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// Redis's Tcl suite: `[ok]: name (12 ms)`, `[err]: name in file` (the `in file` cut),
/// `[skip]`/`[ignore]`.
fn parse_log_redis(log: &str) -> Parsed {
    py_re!(RESULT, r"^\[(ok|err|skip|ignore)\]:\s(.+?)(?:\s\((\d+\s*m?s)\))?$");
    py_re!(IN_FILE, r"\s+in\s+\S+$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let name = group(&caps, 2);
        match group(&caps, 1) {
            "ok" => {
                map.insert(name.to_string(), PASSED);
            }
            "err" => {
                map.insert(IN_FILE.replace_all(name, "").into_owned(), FAILED);
            }
            _ => {
                map.insert(name.to_string(), SKIPPED);
            }
        }
    }
    Ok(map)
}

/// jq's automake driver: `PASS: name`, `FAIL: name`.
fn parse_log_jq(log: &str) -> Parsed {
    py_re!(RESULT, r"^\s*(PASS|FAIL):\s(.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 2).to_string(), if group(&caps, 1) == "PASS" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// MicroPython's `run-tests.py`: `pass name`, `FAIL name`, `skip name`.
fn parse_log_micropython_test(log: &str) -> Parsed {
    py_re!(RESULT, r"^(pass|FAIL|skip)\s+(.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match group(&caps, 1) {
            "pass" => PASSED,
            "FAIL" => FAILED,
            _ => SKIPPED,
        };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// GoogleTest: `[       OK ] Suite.Test (0 ms)`, `[  FAILED  ] Suite.Test (1 ms)`.
fn parse_log_googletest(log: &str) -> Parsed {
    py_re!(RESULT, r"^.*\[\s*(OK|FAILED)\s*\]\s(.*)\s\(.*\)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 2).to_string(), if group(&caps, 1) == "OK" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// Minitest's verbose lines: `Name#test_x = 0.00 s = .` (`.` passed; `F`/`E` failed).
fn parse_log_minitest(log: &str) -> Parsed {
    py_re!(RESULT, r"^(.+)\. .*=.*(\.|F|E).*$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 1).to_string(), if group(&caps, 2) == "." { PASSED } else { FAILED });
    }
    Ok(map)
}

/// Cucumber's progress format: `name ....F`.
fn parse_log_cucumber(log: &str) -> Parsed {
    py_re!(RESULT, r"^(.*) \.+(\.|F)");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 1).to_string(), if group(&caps, 2) == "." { PASSED } else { FAILED });
    }
    Ok(map)
}

/// test-unit: `test: name: .` / `E` / `F` / `O` (omitted).
fn parse_log_ruby_unit(log: &str) -> Parsed {
    // `(\.|E\b|F\b|O\b)` ends the pattern: `X\b` is `X` before a non-word character or the end;
    // the extra character is consumed outside the groups.
    py_re!(RESULT, r"^\s*(?:test: )?(.+):\s+(?:(\.)|([EFO])(?:\W|\z))");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let outcome = if caps.get(2).is_some() { "." } else { group(&caps, 3) };
        let status = match outcome {
            "." => PASSED,
            "E" | "F" => FAILED,
            _ => SKIPPED,
        };
        map.insert(group(&caps, 1).to_string(), status);
    }
    Ok(map)
}

/// RSpec's JSON turned into lines by jq: `name - passed` / `name - failed`.
fn parse_log_rspec_transformed_json(log: &str) -> Parsed {
    py_re!(RESULT, r"^(.+) - (passed|failed)");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 1).to_string(), if group(&caps, 2) == "passed" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// `cargo test`: `test path ... ok` / `... FAILED` (`ignored` and others are not recorded).
fn parse_log_cargo(log: &str) -> Parsed {
    py_re!(RESULT, r"^test\s+(\S+)\s+\.\.\.\s+(\w+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        match group(&caps, 2) {
            "ok" => {
                map.insert(group(&caps, 1).to_string(), PASSED);
            }
            "FAILED" => {
                map.insert(group(&caps, 1).to_string(), FAILED);
            }
            _ => {}
        }
    }
    Ok(map)
}

/// PHPUnit `--testdox`: a `Suite (Class)` header, then `✔ name`, `✘ name`, `↩ name`, each
/// `suite > name` without a `[1.3 ms]` timing (`None > name` before any header).
fn parse_log_phpunit(log: &str) -> Parsed {
    py_re!(SUITE, r"^(\w.+) \(.+\)$");
    py_re!(TEST, r"^\s*([✔✘↩])\s*(.*)$");
    py_re!(TIMING, r"(?i)\s*\[\s*\d+(?:\.\d+)?\s*(?:ms|s)\s*\]\s*$");
    let mut map = StatusMap::new();
    let mut suite: Option<String> = None;
    for line in log.split('\n') {
        if let Some(caps) = SUITE.captures(line) {
            suite = Some(group(&caps, 1).to_string());
            continue;
        }
        let Some(caps) = TEST.captures(line) else { continue };
        let name = py_end_sub(&TIMING, group(&caps, 2));
        let full = format!("{} > {}", suite.as_deref().unwrap_or("None"), pystr::strip(&name));
        let status = match group(&caps, 1) {
            "✔" => PASSED,
            "✘" => FAILED,
            _ => SKIPPED,
        };
        map.insert(full, status);
    }
    Ok(map)
}

/// `mvn test -Dtest=X` per test, with `set -x`: the last `-Dtest=` name gets the next
/// `BUILD SUCCESS`/`BUILD FAILURE` (`---NO TEST NAME FOUND YET---` before any).
fn parse_log_maven(log: &str) -> Parsed {
    py_re!(TEST_NAME, r"^.*-Dtest=(\S+).*$");
    py_re!(RESULT, r"^.*BUILD (SUCCESS|FAILURE)$");
    let mut map = StatusMap::new();
    let mut current = "---NO TEST NAME FOUND YET---".to_string();
    for line in log.split('\n') {
        let s = pystr::strip(line);
        if let Some(caps) = TEST_NAME.captures(s) {
            current = group(&caps, 1).to_string();
        }
        if let Some(caps) = RESULT.captures(s) {
            map.insert(current.clone(), if group(&caps, 1) == "SUCCESS" { PASSED } else { FAILED });
        }
    }
    Ok(map)
}

/// Ant's JUnit output: `[junit] [PASS] name`, `[FAIL]`/`[ERR]` failed.
fn parse_log_ant(log: &str) -> Parsed {
    py_re!(RESULT, r"^\s*\[junit\]\s+\[(PASS|FAIL|ERR)\]\s+(.*)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 2).to_string(), if group(&caps, 1) == "PASS" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// Surefire's `Running Class` then `Tests run: …, Failures: …, Errors: …, Skipped: …`: the class
/// is failed with failures or errors, skipped with skips, else passed.
fn parse_logs_kotlin_junit(log: &str) -> Parsed {
    py_re!(RUNNING, r"^Running\s+(.+)$");
    py_re!(SUMMARY, r"^Tests run:\s+(\d+),\s+Failures:\s+(\d+),\s+Errors:\s+(\d+),\s+Skipped:\s+(\d+)");
    let mut results = StatusMap::new();
    let mut current: Option<String> = None;
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = RUNNING.captures(line) {
            current = Some(group(&caps, 1).to_string());
            continue;
        }
        if let Some(caps) = SUMMARY.captures(line)
            && let Some(test) = current.take().filter(|t| !t.is_empty())
        {
            py_int(group(&caps, 1))?;
            let failures = py_int_positive(group(&caps, 2))?;
            let errors = py_int_positive(group(&caps, 3))?;
            let skipped = py_int_positive(group(&caps, 4))?;
            let status = if failures || errors {
                FAILED
            } else if skipped {
                SKIPPED
            } else {
                PASSED
            };
            results.insert(test, status);
        }
    }
    Ok(results)
}

/// Gradle with a custom test logger: `Class > test PASSED (0.1s)` / `FAILED`.
fn parse_log_gradle_custom(log: &str) -> Parsed {
    py_re!(RESULT, r"^([^>].+?)\s+(PASSED|FAILED)(?:\s+\(\d+(?:\.\d+)?s\))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 1).to_string(), if group(&caps, 2) == "PASSED" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// ExUnit `--trace`: `* test name (12.3ms) [L#42]` passed unless failed already, `(skipped)`,
/// and `1) test name (Module)` failure headers.
fn parse_log_elixir(log: &str) -> Parsed {
    py_re!(SKIPPED_RE, r"^\*\s+test\s+(.*?)\s+\(skipped\)\s+\[L#\d+\]$");
    py_re!(PASSED_TIMED, r"^\*\s+test\s+(.*?)\s+\([0-9]+(?:\.[0-9]+)?ms\)\s+\[L#\d+\]$");
    py_re!(PASSED_BASIC, r"^\*\s+test\s+(.*?)\s+\[L#\d+\]$");
    py_re!(FAILURE_HEADER, r"^\d+\)\s+test\s+(.*?)\s+\([^)]+\)$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = SKIPPED_RE.captures(line) {
            results.insert(group(&caps, 1).to_string(), SKIPPED);
        } else if let Some(caps) = FAILURE_HEADER.captures(line) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = PASSED_TIMED.captures(line) {
            setdefault(&mut results, group(&caps, 1), PASSED);
        } else if let Some(caps) = PASSED_BASIC.captures(line) {
            setdefault(&mut results, group(&caps, 1), PASSED);
        }
    }
    Ok(results)
}

/// Minitest (`rake test`, verbose): a `SuiteName` header line, then `  test_x   PASS (0.02s)`
/// lines keyed `Suite::test_x`; a worse status (failed < error) replaces a better one.
fn parse_log_ruby_v1(log: &str) -> Parsed {
    // The `\b` after the status word is followed by `(?:\s*\(…s\))?$`: white space, `(` or the
    // end, never a word character, so it always holds where the rest matches.
    py_re!(STATUS, r"^\s*(test[^A-Z\n]+?)\s+(PASS|PASS(?:ED)?|FAIL|FAILURE|ERROR|SKIP|SKIPPED)(?:\s*\([0-9.]+s\))?$");
    py_re!(SUITE, r"^[A-Z][A-Za-z0-9_]*$");
    fn rank(s: TestStatus) -> u8 {
        match s {
            TestStatus::Failed => 1,
            TestStatus::Error => 2,
            _ => 0,
        }
    }
    let mut results = StatusMap::new();
    let mut suite: Option<&str> = None;
    for raw in splitlines(log) {
        let line = pystr::rstrip(raw);
        if line.is_empty() || line.starts_with("Finished in ") {
            continue;
        }
        if !line.starts_with(' ') && SUITE.is_match(line) {
            suite = Some(line);
            continue;
        }
        let Some(caps) = STATUS.captures(line) else { continue };
        let test = pystr::strip(group(&caps, 1));
        let full = match suite {
            Some(s) => format!("{s}::{test}"),
            None => test.to_string(),
        };
        let status = match group(&caps, 2) {
            "PASS" | "PASSED" => PASSED,
            "FAIL" | "FAILURE" => FAILED,
            "SKIP" | "SKIPPED" => SKIPPED,
            _ => ERROR,
        };
        match results.get(&full) {
            Some(prev) if rank(status) <= rank(*prev) => {}
            _ => {
                results.insert(full, status);
            }
        }
    }
    Ok(results)
}

/// pytest output read by a C++ repository's harness: `path::test PASSED` lines (the part after
/// the last `::`), passed unless recorded already; every header in the `FAILURES` section failed.
fn parse_log_cpp(log: &str) -> Parsed {
    py_re!(PASSED_RE, r"^(.*?)\s+PASSED");
    py_re!(FAILED_RE, r"^(.*?)\s+FAILED");
    py_re!(SKIPPED_RE, r"^(.*?)\s+SKIPPED");
    py_re!(ERROR_RE, r"^(.*?)\s+ERROR");
    py_re!(FAILURE_TEST, r"^___________________________ (.*?) ___________________________$");
    fn last_part(full: &str) -> &str {
        full.rsplit("::").next().unwrap_or(full)
    }
    let mut results = StatusMap::new();
    let mut in_failures = false;
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if line.starts_with("=================================== FAILURES ===================================") {
            in_failures = true;
            continue;
        }
        if in_failures {
            if let Some(caps) = FAILURE_TEST.captures(line) {
                results.insert(group(&caps, 1).to_string(), FAILED);
            }
            continue;
        }
        if let Some(caps) = PASSED_RE.captures(line) {
            setdefault(&mut results, last_part(group(&caps, 1)), PASSED);
        } else if let Some(caps) = FAILED_RE.captures(line) {
            results.insert(last_part(group(&caps, 1)).to_string(), FAILED);
        } else if let Some(caps) = SKIPPED_RE.captures(line) {
            results.insert(last_part(group(&caps, 1)).to_string(), SKIPPED);
        } else if let Some(caps) = ERROR_RE.captures(line) {
            results.insert(last_part(group(&caps, 1)).to_string(), ERROR);
        }
    }
    Ok(results)
}

/// `Test name ...... passed` (tentative) / `failed` / `skipped`.
fn parse_log_cpp_v2(log: &str) -> Parsed {
    py_re!(PASSED_RE, r"^Test\s+(.*?)\s+passed$");
    py_re!(FAILED_RE, r"^Test\s+(.*?)\s+failed$");
    py_re!(SKIPPED_RE, r"^Test\s+(.*?)\s+skipped$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = PASSED_RE.captures(line) {
            setdefault(&mut results, group(&caps, 1), PASSED);
        } else if let Some(caps) = FAILED_RE.captures(line) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = SKIPPED_RE.captures(line) {
            results.insert(group(&caps, 1).to_string(), SKIPPED);
        }
    }
    Ok(results)
}

/// `[12/414] name... OK` lines, Botan's `NAME ran N tests in X msec all ok` summaries (keyed
/// without the timing), and any other line holding `SKIPPED`/`FAIL…`/`OK`/`PASSED` as a word,
/// keyed by the whole line.
fn parse_log_cpp_v3(log: &str) -> Parsed {
    py_re!(BOTAN, r"(?i)^(.*?)\s+ran\s+(\d+)\s+tests\s+in\s+[\d.]+\s+(?:msec|sec)\s+(.+)$");
    py_re!(LINE, r"^(?:\[[0-9]+/[0-9]+\]\s*)?(.*?)\s*\.\.\.\s*(\w+)$");
    py_re!(W_FAILED_LOWER, r"(?i)\Afailed");
    py_re!(W_FAILED, r"(?i)\AFAILED");
    py_re!(W_FAIL, r"(?i)\AFAIL");
    py_re!(W_FAILURE, r"(?i)\AFailure");
    py_re!(W_SKIPPED, r"(?i)\ASKIPPED");
    py_re!(W_OK, r"(?i)\AOK");
    py_re!(W_PASSED, r"(?i)\APASSED");
    let failed = |s: &str| search_words(s, &[&W_FAILED, &W_FAIL, &W_FAILURE]);
    let skipped = |s: &str| search_words(s, &[&W_SKIPPED]);
    let passed = |s: &str| search_words(s, &[&W_OK, &W_PASSED]);
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = BOTAN.captures(line) {
            let (name, count, tail) = (pystr::strip(group(&caps, 1)), group(&caps, 2), pystr::strip(group(&caps, 3)));
            let key = format!("{name} ran {count} tests {tail}");
            results.insert(key, if search_words(tail, &[&W_FAILED_LOWER]) { FAILED } else { PASSED });
            continue;
        }
        if let Some(caps) = LINE.captures(line) {
            let name = pystr::strip(group(&caps, 1)).to_string();
            let token = group(&caps, 2).to_uppercase();
            let status = if skipped(&token) || skipped(line) {
                SKIPPED
            } else if failed(&token) || failed(line) {
                FAILED
            } else if passed(&token) || passed(line) {
                PASSED
            } else {
                ERROR
            };
            results.insert(name, status);
            continue;
        }
        if skipped(line) {
            results.insert(line.to_string(), SKIPPED);
        } else if failed(line) {
            results.insert(line.to_string(), FAILED);
        } else if passed(line) {
            results.insert(line.to_string(), PASSED);
        }
    }
    Ok(results)
}

/// CTest's summary: `1/9 Test #1: name ......   Passed` (`Failed`/`Timeout` failed, anything
/// else matched skipped).
fn parse_log_cpp_v4(log: &str) -> Parsed {
    // `(Passed|Failed|Skipped|Timeout)\b` ends the pattern: the word before a non-word character
    // or the end; the extra character is consumed outside the groups.
    py_re!(SUMMARY, r"(?i)^\s*\d+/\d+\s+Test\s+#\d+:\s+(.+?)\s+\.+\s+(Passed|Failed|Skipped|Timeout)(?:\W|\z)");
    let mut results = StatusMap::new();
    for line in splitlines(log) {
        if pystr::strip(line).is_empty() {
            continue;
        }
        let Some(caps) = SUMMARY.captures(line) else { continue };
        let name = pystr::strip(group(&caps, 1)).to_string();
        let status = match pystr::strip(group(&caps, 2)).to_uppercase().as_str() {
            "PASSED" => PASSED,
            "FAILED" | "TIMEOUT" => FAILED,
            _ => SKIPPED,
        };
        results.insert(name, status);
    }
    Ok(results)
}

/// plenary.nvim / busted: `Success || name`, `Fail || name` (overrides), `Skip || name`; the
/// `Success: 3` counters are skipped.
fn parse_lue_nvim(log: &str) -> Parsed {
    py_re!(ANSI, r"\x1b\[[0-9;]*m");
    py_re!(SUCCESS, r"^Success\s*\|\|\s*(.+?)\s*$");
    py_re!(FAIL, r"^(?:Fail|Failed)\s*\|\|\s*(.+?)\s*$");
    py_re!(SKIP, r"(?i)^(?:Skip|Skipped)\s*\|\|\s*(.+?)\s*$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        if pystr::strip(raw).is_empty() {
            continue;
        }
        let cleaned = ANSI.replace_all(raw, "");
        let line = pystr::rstrip(&cleaned);
        if line.split('\t').next().unwrap_or_default().contains(':') && !line.contains("||") {
            continue;
        }
        if let Some(caps) = FAIL.captures(line) {
            results.insert(pystr::strip(group(&caps, 1)).to_string(), FAILED);
        } else if let Some(caps) = SKIP.captures(line) {
            setdefault(&mut results, pystr::strip(group(&caps, 1)), SKIPPED);
        } else if let Some(caps) = SUCCESS.captures(line) {
            setdefault(&mut results, pystr::strip(group(&caps, 1)), PASSED);
        }
    }
    Ok(results)
}

/// `^\[ERROR\]\s+(?P<class>[A-Za-z0-9_$.]+)\.(?P<method>[A-Za-z0-9_$.]+?)(?::(?P<line>\d+))?\b`
/// by hand (a `\b` after `$` or `.` needs a word character next): the class as long as possible,
/// the method as short as possible, `:line` tried before none — the backtracking order.
fn mvn_failure(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("[ERROR]")?;
    let body = pystr::lstrip(rest);
    if body.len() == rest.len() {
        return None;
    }
    let run_len = body.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.')).count();
    let run = &body[..run_len];
    for class_end in (1..run_len).rev() {
        if run.as_bytes()[class_end] != b'.' {
            continue;
        }
        for method_end in class_end + 2..=run_len {
            if method_end == run_len
                && let Some(after_colon) = body[run_len..].strip_prefix(':')
            {
                let digits: usize = after_colon.chars().take_while(|&c| decimal_value(c).is_some()).map(char::len_utf8).sum();
                if digits > 0 && !after_colon[digits..].chars().next().is_some_and(is_word) {
                    return Some((&run[..class_end], &run[class_end + 1..method_end]));
                }
            }
            if boundary_at(body, method_end) {
                return Some((&run[..class_end], &run[class_end + 1..method_end]));
            }
        }
    }
    None
}

/// Maven: `Running Class` / `Tests run: …` summaries (a class is failed, skipped or passed by its
/// counts, unless recorded already), `[ERROR] Class.method:12 …` lines (error when the line
/// names an `Exception` that is not an `AssertionError`), then the JUnit-XML and
/// `-Dtest=`/`BUILD` readers as fallbacks; with nothing found, every class seen running passed.
fn parse_java_mvn(log: &str) -> Parsed {
    py_re!(RUNNING, r"^(?:\[INFO\]\s+)?Running\s+([A-Za-z0-9_$.]+)$");
    py_re!(SUMMARY, r"Tests run:\s*(\d+),\s*Failures:\s*(\d+),\s*Errors:\s*(\d+),\s*Skipped:\s*(\d+)");
    let mut results = StatusMap::new();
    let mut seen_running: IndexMap<String, ()> = IndexMap::new();
    let mut current: Option<String> = None;
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = RUNNING.captures(line) {
            let name = group(&caps, 1).to_string();
            seen_running.insert(name.clone(), ());
            current = Some(name);
            continue;
        }
        if let Some((class, method)) = mvn_failure(line) {
            let status = if line.contains("Exception") && !line.contains("AssertionError") { ERROR } else { FAILED };
            results.insert(format!("{class}.{method}"), status);
            setdefault(&mut results, class, FAILED);
            continue;
        }
        if let Some(caps) = SUMMARY.captures(line) {
            py_int(group(&caps, 1))?;
            let failures = py_int_positive(group(&caps, 2))?;
            let errors = py_int_positive(group(&caps, 3))?;
            let skipped = py_int_positive(group(&caps, 4))?;
            let class = match line.rsplit_once(" in ") {
                Some((_, tail)) => Some(pystr::strip(tail).trim_end_matches(['.', ':', ';']).to_string()),
                None => current.clone(),
            };
            if let Some(class) = class.filter(|c| !c.is_empty()) {
                let status = if !failures && !errors {
                    if skipped { SKIPPED } else { PASSED }
                } else {
                    FAILED
                };
                setdefault(&mut results, class, status);
            }
            current = None;
        }
    }
    for (name, status) in junit_testcases_from_text(log, " ") {
        setdefault(&mut results, name, status);
    }
    for (name, status) in parse_log_maven(log)? {
        setdefault(&mut results, name, status);
    }
    if results.is_empty() {
        for (class, ()) in seen_running {
            setdefault(&mut results, class, PASSED);
        }
    }
    Ok(results)
}

/// Maven's reactor summary: `[INFO] Module name ........ SUCCESS [ 1.2 s]` (`FAILURE` failed,
/// `SKIPPED` skipped), and one `__suite__` entry from the first `Tests run:` line.
fn parse_java_mvn_v2(log: &str) -> Parsed {
    py_re!(LINE, r"^\[INFO\]\s+(?P<name>.+?)\s+\.\.+\s+(?P<status>SUCCESS|FAILURE|SKIPPED)(?:\s|\[|$)");
    py_re!(SUMMARY, r"Tests run:\s*(\d+),\s*Failures:\s*(\d+),\s*Errors:\s*(\d+),\s*Skipped:\s*(\d+)");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = LINE.captures(line) {
            let status = match named(&caps, "status") {
                "SUCCESS" => PASSED,
                "FAILURE" => FAILED,
                _ => SKIPPED,
            };
            results.insert(named(&caps, "name").to_string(), status);
            continue;
        }
        if let Some(caps) = SUMMARY.captures(line) {
            let run = py_int(group(&caps, 1))?;
            let failures = py_int_positive(group(&caps, 2))?;
            let errors = py_int_positive(group(&caps, 3))?;
            let skipped = py_int(group(&caps, 4))?;
            let status = if failures {
                FAILED
            } else if errors {
                ERROR
            } else if skipped == run {
                SKIPPED
            } else {
                PASSED
            };
            setdefault(&mut results, "__suite__", status);
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// JavaScript / TypeScript
// ---------------------------------------------------------------------------------------------

/// Calypso: each chunk after ` ./node_modules/.bin/jest ` up to `Test Suites`/`  ● `; indented
/// lines are describe blocks (kept across chunks), `✓`/`✕` lines tests named `suite - … - test`
/// (`- test` with no suite). A `✓`/`✕` line the pattern does not fit raises (`ValueError`): one
/// at column 0, or one whose `(12ms)` is not at its end.
fn parse_log_calypso(log: &str) -> Parsed {
    py_re!(MS, r"\(\d+ms\)");
    py_re!(PASS_MS, r"^\s+✓\s(.*)\(\d+ms\)$");
    py_re!(PASS, r"^\s+✓\s(.*)");
    py_re!(FAIL_MS, r"^\s+✕\s(.*)\(\d+ms\)$");
    py_re!(FAIL, r"^\s+✕\s(.*)");
    fn test_name(suite: &[(String, usize)], pattern: &Regex, line: &str) -> Result<String, String> {
        let names: Vec<&str> = suite.iter().map(|(n, _)| n.as_str()).collect();
        let Some(caps) = pattern.captures(line) else {
            return Err(format!("ValueError: Pattern {} doesn't match line: {line}", pattern.as_str()));
        };
        Ok(pystr::strip(&format!("{} - {}", names.join(" - "), group(&caps, 1))).to_string())
    }
    let mut map = StatusMap::new();
    let mut suite: Vec<(String, usize)> = Vec::new();
    for chunk in log.split(" ./node_modules/.bin/jest ").skip(1) {
        for line in chunk.split('\n') {
            if line.starts_with("Test Suites") || line.starts_with("  ● ") {
                break;
            }
            let s = pystr::strip(line);
            if s.starts_with('✓') {
                let pattern: &Regex = if MS.is_match(line) { &PASS_MS } else { &PASS };
                map.insert(test_name(&suite, pattern, line)?, PASSED);
            } else if s.starts_with('✕') {
                let pattern: &Regex = if MS.is_match(line) { &FAIL_MS } else { &FAIL };
                map.insert(test_name(&suite, pattern, line)?, FAILED);
            } else if indent_of(line) > 0 {
                let indent = indent_of(line);
                if suite.is_empty() {
                    suite = vec![(s.to_string(), indent)];
                } else {
                    while suite.last().is_some_and(|(_, i)| *i >= indent) {
                        suite.pop();
                    }
                    suite.push((s.to_string(), indent));
                }
            }
        }
    }
    Ok(map)
}

/// Chart.js (karma): `Chrome 1.2 (Linux) suite test FAILED` at a line's end; failures only.
fn parse_log_chart_js(log: &str) -> Parsed {
    py_re!(FAILURE, r"(?m)Chrome\s[\d\.]+[^\S\r\n]\(.+?\)[^\S\r\n](.*)FAILED$");
    let log = ansi_escape(log);
    let mut map = StatusMap::new();
    for caps in FAILURE.captures_iter(&log) {
        map.insert(group(&caps, 1).to_string(), FAILED);
    }
    Ok(map)
}

/// Marked: mocha's failure list, `1) name` (stripped); failures only.
fn parse_log_marked(log: &str) -> Parsed {
    py_re!(FAILURE, r"^\d+\)\s(.*)");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = FAILURE.captures(line) {
            map.insert(pystr::strip(group(&caps, 1)).to_string(), FAILED);
        }
    }
    Ok(map)
}

/// p5.js: after ANSI codes, JSON-looking blocks and `<tag>…</tag>` blocks are removed, mocha's
/// `N) suite` headers whose continuation lines are each indented deeper, joined with `:`;
/// failures only.
fn parse_log_p5js(log: &str) -> Parsed {
    py_re!(FAILURE, r"(?ms)^\s*(\d+)\)(.{0,1000}?):");
    let log = ansi_escape(log);
    let log = p5js_remove_json_blocks(&log);
    let log = p5js_remove_xml_blocks(log);
    let mut map = StatusMap::new();
    for caps in FAILURE.captures_iter(&log) {
        let body = group(&caps, 2);
        let mut last = 0;
        let valid = body.split('\n').all(|line| {
            let indent = indent_of(line);
            let deeper = indent > last;
            last = indent;
            deeper
        });
        if valid {
            let parts: Vec<&str> = body.split('\n').map(pystr::strip).collect();
            map.insert(parts.join(":"), FAILED);
        }
    }
    Ok(map)
}

/// react-pdf (jest per file): `PASS path (1.2 s)` / `FAIL path`, the timing dropped.
fn parse_log_react_pdf(log: &str) -> Parsed {
    py_re!(PASS, r"^PASS\s(.*?)(?:\s\([\d.]+\s*(?:ms|s)\))?$");
    py_re!(FAIL, r"^FAIL\s(.*?)(?:\s\([\d.]+\s*(?:ms|s)\))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        if let Some(caps) = PASS.captures(line) {
            map.insert(pystr::rstrip(group(&caps, 1)).to_string(), PASSED);
        } else if let Some(caps) = FAIL.captures(line) {
            map.insert(pystr::rstrip(group(&caps, 1)).to_string(), FAILED);
        }
    }
    Ok(map)
}

/// Jest `--verbose`: `✓ name (12 ms)`, `✕ name`, `○ name` (skipped).
fn parse_log_jest(log: &str) -> Parsed {
    py_re!(RESULT, r"^\s*(✓|✕|○)\s(.+?)(?:\s\((\d+\s*m?s)\))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match group(&caps, 1) {
            "✓" => PASSED,
            "✕" => FAILED,
            _ => SKIPPED,
        };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// Jest `--json` through jq: `[PASSED] name`, `[FAILED] name`.
fn parse_log_jest_json(log: &str) -> Parsed {
    py_re!(RESULT, r"^\[(PASSED|FAILED)\]\s(.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 2).to_string(), if group(&caps, 1) == "PASSED" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// Vitest `--reporter=verbose`: `✓ name 12ms`, `× name`, `↓ name [skipped]`.
fn parse_log_vitest(log: &str) -> Parsed {
    py_re!(RESULT, r"^\s*(✓|×|↓)\s(.+?)(?:\s(\d+\s*m?s?|\[skipped\]))?$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        let status = match group(&caps, 1) {
            "✓" => PASSED,
            "×" => FAILED,
            _ => SKIPPED,
        };
        map.insert(group(&caps, 2).to_string(), status);
    }
    Ok(map)
}

/// Karma's mocha reporter after `Starting browser` up to `SUMMARY:`: indented lines are suites
/// (a shallower one pops one), `✔`/`✖` lines tests named `suite > … > test`. A pop with no suite
/// left raises (`IndexError`).
fn parse_log_karma(log: &str) -> Parsed {
    py_re!(LINE, r"^(\s*)?([✔✖])?\s(.*)$");
    let mut map = StatusMap::new();
    let mut current_indent: i64 = -1;
    let mut suite: Vec<String> = Vec::new();
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
        let indent = group(&caps, 1);
        let status = caps.get(2).map(|m| m.as_str());
        let name = group(&caps, 3);
        if !indent.is_empty() && status.is_none() {
            let new_indent = i64::try_from(indent.chars().count()).unwrap_or(i64::MAX);
            if new_indent > current_indent {
                current_indent = new_indent;
                suite.push(name.to_string());
            } else if new_indent < current_indent {
                current_indent = new_indent;
                if suite.pop().is_none() {
                    return Err("IndexError: pop from empty list".into());
                }
                continue;
            }
        }
        if let Some(status) = status {
            let mut parts: Vec<&str> = suite.iter().map(String::as_str).collect();
            parts.push(name);
            map.insert(parts.join(" > "), if status == "✔" { PASSED } else { FAILED });
        }
    }
    Ok(map)
}

/// TAP: `ok 1 name` / `not ok 2 name`.
fn parse_log_tap(log: &str) -> Parsed {
    py_re!(RESULT, r"^(ok|not ok) (\d+) (.+)$");
    let mut map = StatusMap::new();
    for line in log.split('\n') {
        let Some(caps) = RESULT.captures(pystr::strip(line)) else { continue };
        map.insert(group(&caps, 3).to_string(), if group(&caps, 1) == "ok" { PASSED } else { FAILED });
    }
    Ok(map)
}

/// `_strip_js_duration_suffix`: a trailing `53ms`, `(1.2 s)` removed, then `strip()`.
fn strip_js_duration(name: &str) -> String {
    py_re!(SUFFIX, r"(?i)\s*(?:\(\s*)?\d+(?:\.\d+)?\s*(?:ms|s)\s*(?:\))?\s*$");
    pystr::strip(&py_end_sub(&SUFFIX, name)).to_string()
}

/// Mocha: `✔ name` passed (unless recorded), `- name` skipped, `[W] 1) name` and `1) name:`
/// failed; durations stripped.
fn parse_log_js(log: &str) -> Parsed {
    py_re!(PASSED_RE, r"^\s*✔\s+(.*?)$");
    py_re!(SKIPPED_RE, r"^\s*-\s+(.*?)$");
    py_re!(FAILED_RE, r"^\s*\[W\]\s*\d+\)\s+(.*?)$");
    py_re!(FAILED_HEADER, r"^\s*\d+\)\s+(.*?):$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = SKIPPED_RE.captures(line) {
            let name = strip_js_duration(group(&caps, 1));
            if !name.is_empty() {
                results.insert(name, SKIPPED);
            }
        } else if let Some(caps) = FAILED_HEADER.captures(line) {
            let name = strip_js_duration(group(&caps, 1));
            if !name.is_empty() {
                results.insert(name, FAILED);
            }
        } else if let Some(caps) = FAILED_RE.captures(line) {
            let name = strip_js_duration(pystr::rstrip(group(&caps, 1)));
            if !name.is_empty() {
                results.insert(name, FAILED);
            }
        } else if let Some(caps) = PASSED_RE.captures(line) {
            let name = strip_js_duration(group(&caps, 1));
            if !name.is_empty() {
                setdefault(&mut results, name, PASSED);
            }
        }
    }
    Ok(results)
}

/// Mocha: `✔ name` passed (unless recorded), `1) name` failed, `- name` skipped.
fn parse_log_js_2(log: &str) -> Parsed {
    py_re!(PASSED_RE, r"^\s*✔\s+(.*?)$");
    py_re!(FAILED_RE, r"^\s*\d+\)\s+(.*?)$");
    py_re!(SKIPPED_RE, r"^\s*-\s+(.*?)$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = SKIPPED_RE.captures(line) {
            let name = strip_js_duration(group(&caps, 1));
            if !name.is_empty() {
                results.insert(name, SKIPPED);
            }
        } else if let Some(caps) = FAILED_RE.captures(line) {
            let name = strip_js_duration(group(&caps, 1));
            if !name.is_empty() {
                results.insert(name, FAILED);
            }
        } else if let Some(caps) = PASSED_RE.captures(line) {
            let name = strip_js_duration(group(&caps, 1));
            if !name.is_empty() {
                setdefault(&mut results, name, PASSED);
            }
        }
    }
    Ok(results)
}

/// TAP with `{`/`}` nesting (tap, node-tap): `ok 1 - name` passed unless recorded, `not ok`
/// failed, `# SKIP`/`# TODO` skipped; nested names joined with ` :: `.
fn parse_log_js_3(log: &str) -> Parsed {
    py_re!(TAP, r"^(?P<status>not ok|ok)\s+\d+\s+-\s+(?P<name>.*?)(?:\s+#.*)?$");
    py_re!(COMMENT, r"\s+#");
    let mut results = StatusMap::new();
    let mut stack: Vec<String> = Vec::new();
    for raw in splitlines(log) {
        let mut line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if line.chars().all(|c| c == '}') {
            for _ in 0..line.len() {
                stack.pop();
            }
            continue;
        }
        let opens = line.ends_with('{');
        if opens {
            line = pystr::rstrip(&line[..line.len() - 1]);
        }
        let Some(caps) = TAP.captures(line) else { continue };
        let raw_name = named(&caps, "name");
        let first = COMMENT.splitn(raw_name, 2).next().unwrap_or_default();
        let name = strip_js_duration(pystr::strip(first));
        if name.is_empty() {
            continue;
        }
        let lower = raw_name.to_lowercase();
        let skip = ["# skip", "# skipped", "# todo"].iter().any(|t| lower.contains(t));
        let full = if stack.is_empty() {
            name.clone()
        } else {
            let mut parts: Vec<&str> = stack.iter().map(String::as_str).collect();
            parts.push(&name);
            parts.join(" :: ")
        };
        if skip {
            results.insert(full, SKIPPED);
        } else {
            let status = if named(&caps, "status") == "ok" { PASSED } else { FAILED };
            if status == FAILED || !results.contains_key(&full) {
                results.insert(full, status);
            }
        }
        if opens {
            stack.push(name);
        }
    }
    Ok(results)
}

/// A line's first character as a status symbol (`✔ ✓` passed unless recorded; `✘ ✖ ×` failed;
/// `○ ◌ ◦ ⚪` skipped), the rest after a `[tag]:` prefix and a `:`; else a `(skipped)`,
/// `[skip]`, … marker anywhere skips the line minus the markers.
fn parse_log_js_4(log: &str) -> Parsed {
    const MARKERS: [&str; 5] = ["(skipped)", "[skip]", "[skipped]", "[pending]", "[todo]"];
    fn strip_tag(payload: &str) -> &str {
        let mut p = pystr::strip(payload);
        if p.starts_with('[') && (p.contains("]: ") || p.contains("]:")) {
            p = pystr::strip(p.split_once("]:").map_or("", |(_, rest)| rest));
        }
        if let Some(rest) = p.strip_prefix(':') {
            p = pystr::strip(rest);
        }
        p
    }
    let normalize = |name: &str| strip_js_duration(pystr::strip(name));
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        let mut chars = line.chars();
        let Some(symbol) = chars.next() else { continue };
        let payload = pystr::strip(chars.as_str());
        if matches!(symbol, '✔' | '✓') {
            let name = normalize(strip_tag(payload));
            if !name.is_empty() {
                setdefault(&mut results, name, PASSED);
            }
            continue;
        }
        if matches!(symbol, '✘' | '✖' | '×') {
            let name = normalize(strip_tag(payload));
            if !name.is_empty() {
                results.insert(name, FAILED);
            }
            continue;
        }
        if matches!(symbol, '○' | '◌' | '◦' | '⚪') {
            let name = normalize(strip_tag(payload));
            if !name.is_empty() {
                results.insert(name, SKIPPED);
            }
            continue;
        }
        let lower = line.to_lowercase();
        if MARKERS.iter().any(|m| lower.contains(m)) {
            let mut candidate = line.to_string();
            for m in MARKERS {
                candidate = candidate.replace(m, "");
            }
            let name = normalize(&candidate);
            if !name.is_empty() {
                results.insert(name, SKIPPED);
            }
        }
    }
    Ok(results)
}

/// `npx mocha`-style: `✔ name (12ms)` passed, `1) name (Module)` failed.
fn parse_log_npx(log: &str) -> Parsed {
    py_re!(PASSED_RE, r"^\s*✔\s+(.+?)(?:\s+\(\d+(?:ms)?\))?$");
    py_re!(FAILED_RE, r"^\s*\d+\)\s+(.+)$");
    py_re!(MODULE, r"\s+\([^)]+\)$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::rstrip(raw);
        if pystr::strip(line).is_empty() {
            continue;
        }
        if let Some(caps) = PASSED_RE.captures(line) {
            results.insert(pystr::strip(group(&caps, 1)).to_string(), PASSED);
        } else if let Some(caps) = FAILED_RE.captures(line) {
            let name = pystr::strip(group(&caps, 1));
            results.insert(MODULE.replace_all(name, "").into_owned(), FAILED);
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// PHP, Ruby, Haskell
// ---------------------------------------------------------------------------------------------

/// Pest/Collision-style PHPUnit output: `✓ name  0.03s` passed (unless recorded), `⨯`/`x` name
/// failed, `- name` skipped, `FAIL Suite` lines failed, and a `SKIPPED`/`(skipped)` marker on
/// any other line skips it (unless recorded); timings cut. `___`/`---`/`Tests:`/`Duration:`
/// lines are ignored.
fn parse_log_php_v1(log: &str) -> Parsed {
    // Each `s\b.*$` below follows `s`, a word character: `\b` holds before a non-word character
    // or at the end, and `.*` then runs to the line's end (no newline in a line).
    py_re!(PASS_LINE, r"^\s*(?:✓|✔)\s+(?P<name>.+?)\s{2,}\d+\.?\d*s(?:\W.*)?$");
    py_re!(PASS_NO_TIMING, r"^\s*(?:✓|✔)\s+(?P<name>.+?)\s*$");
    py_re!(FAIL_LINE, r"(?i)^\s*(?:⨯|x)\s+(?P<name>.+?)\s{2,}\d+\.?\d*s(?:\W.*)?$");
    py_re!(FAIL_NO_TIMING, r"(?i)^\s*(?:⨯|x)\s+(?P<name>.+?)\s*$");
    py_re!(SUITE_FAIL, r"(?i)^\s*FAIL(?:ED)?\s+(?P<name>\S.+)$");
    py_re!(SKIPPED_LINE, r"^\s*-\s+(?P<name>.+?)\s{2,}\d+\.?\d*s(?:\W.*)?$");
    py_re!(SKIPPED_NO_TIMING, r"^\s*-\s+(?P<name>.+?)\s*$");
    py_re!(INLINE_SKIPPED_PAREN, r"(?i)\(skipped\)");
    py_re!(W_SKIPPED, r"(?i)\ASKIPPED");
    py_re!(LEADING_MARK, r"^\s*(?:✓|✔|⨯|x|-)\s+");
    py_re!(TIMING_WIDE, r"\s{2,}\d+(?:\.\d+)?s\s*$");
    py_re!(TIMING, r"\s+\d+(?:\.\d+)?s\s*$");
    fn clean(name: &str) -> String {
        let name = pystr::rstrip(name);
        let name = py_end_sub(&TIMING_WIDE, name);
        let name = py_end_sub(&TIMING, &name);
        pystr::strip(&name).to_string()
    }
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::rstrip(raw);
        if line.is_empty() {
            continue;
        }
        let stripped = pystr::strip(line);
        if ["___", "---", "Tests:"].iter().any(|p| stripped.starts_with(p)) || stripped.starts_with("Duration:") {
            continue;
        }
        if let Some(caps) = SUITE_FAIL.captures(line) {
            results.insert(clean(named(&caps, "name")), FAILED);
            continue;
        }
        if let Some(caps) = FAIL_LINE.captures(line).or_else(|| FAIL_NO_TIMING.captures(line)) {
            let name = clean(named(&caps, "name"));
            if !name.is_empty() {
                results.insert(name, FAILED);
            }
            continue;
        }
        if let Some(caps) = SKIPPED_LINE.captures(line).or_else(|| SKIPPED_NO_TIMING.captures(line)) {
            let name = clean(named(&caps, "name"));
            if !name.is_empty() {
                results.insert(name, SKIPPED);
            }
            continue;
        }
        if let Some(caps) = PASS_LINE.captures(line).or_else(|| PASS_NO_TIMING.captures(line)) {
            let name = clean(named(&caps, "name"));
            if !name.is_empty() {
                setdefault(&mut results, name, PASSED);
            }
            continue;
        }
        if INLINE_SKIPPED_PAREN.is_match(line) || search_words(line, &[&W_SKIPPED]) {
            let token = clean(&LEADING_MARK.replace_all(line, ""));
            if !token.is_empty() && !results.contains_key(&token) {
                results.insert(token, SKIPPED);
            }
        }
    }
    Ok(results)
}

/// Minitest's `Class#test = 5.30 s = .` lines (`F`/`E` failed, `S` skipped).
fn parse_log_ruby_v2(log: &str) -> Parsed {
    py_re!(RESULT, r"^(.+?#.+?)\s+=\s+[\d.]+\s+s\s+=\s+([.FES])$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        let Some(caps) = RESULT.captures(line) else { continue };
        let status = match group(&caps, 2) {
            "." => PASSED,
            "F" | "E" => FAILED,
            _ => SKIPPED,
        };
        results.insert(group(&caps, 1).to_string(), status);
    }
    Ok(results)
}

/// tasty (`name: OK`), hspec (`✓ name`, `name [✔]`, `1) name`), HUnit (`### Failure in: name`);
/// a later failure replaces a pass, a pass never replaces anything.
fn parse_log_haskell(log: &str) -> Parsed {
    py_re!(ANSI, r"\x1b\[[0-9;]*m");
    // `(?:\b|\s|$)` after a status word (ending in a letter): a non-word character or the end.
    py_re!(TASTY, r"^\s*(?P<name>.+?)\s*:\s*(?P<status>OK|PASS|FAIL|ERROR|SKIP|PENDING)(?:\W|\z)");
    py_re!(HSPEC_PASS, r"^\s*(?:✓|✔)\s+(?P<name>.+?)(?:\s+\(.*?\))?\s*$");
    py_re!(HSPEC_FAIL, r"^\s*(?:✗|✘)\s+(?P<name>.+?)\s*$");
    py_re!(BRACKET_PASS, r"^\s+(?P<name>.+?)\s+\[(?:✓|✔)\]\s*$");
    py_re!(BRACKET_FAIL, r"^\s+(?P<name>.+?)\s+\[(?:✗|✘)\]\s*$");
    py_re!(FAILURE_HEADER, r"^\s*\d+\)\s+(?P<name>.+?)\s*$");
    py_re!(HUNIT_FAILURE, r"^###\s+Failure\s+in:\s+(?P<name>.+)$");
    py_re!(HUNIT_ERROR, r"^###\s+Error\s+in:\s+(?P<name>.+)$");
    // `(?:SKIP|PENDING)\b.*$`: a non-word character and the rest, or the end.
    py_re!(PENDING_INLINE, r"^\s*(?P<name>.+?)\s*:\s*(?:SKIP|PENDING)(?:\W.*)?$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let cleaned = ANSI.replace_all(raw, "");
        let line = pystr::rstrip(&cleaned);
        if line.is_empty() {
            continue;
        }
        if ["Test suite ", "Linking ", "Building ", "Running  "].iter().any(|k| line.contains(k)) {
            continue;
        }
        let name_of = |caps: &regex::Captures<'_>| pystr::strip(named(caps, "name")).to_string();
        if let Some(caps) = TASTY.captures(line) {
            let status = match named(&caps, "status") {
                "OK" | "PASS" => PASSED,
                "FAIL" => FAILED,
                "ERROR" => ERROR,
                _ => SKIPPED,
            };
            results.insert(name_of(&caps), status);
        } else if let Some(caps) = PENDING_INLINE.captures(line) {
            results.insert(name_of(&caps), SKIPPED);
        } else if let Some(caps) = BRACKET_PASS.captures(line) {
            setdefault(&mut results, name_of(&caps), PASSED);
        } else if let Some(caps) = BRACKET_FAIL.captures(line) {
            results.insert(name_of(&caps), FAILED);
        } else if let Some(caps) = HSPEC_PASS.captures(line) {
            setdefault(&mut results, name_of(&caps), PASSED);
        } else if let Some(caps) = HSPEC_FAIL.captures(line) {
            results.insert(name_of(&caps), FAILED);
        } else if let Some(caps) = FAILURE_HEADER.captures(line) {
            results.insert(name_of(&caps), FAILED);
        } else if let Some(caps) = HUNIT_FAILURE.captures(line) {
            results.insert(name_of(&caps), FAILED);
        } else if let Some(caps) = HUNIT_ERROR.captures(line) {
            results.insert(name_of(&caps), ERROR);
        }
    }
    Ok(results)
}

/// hspec's tree: from the line after `Test suite …: RUNNING...` (or a guessed first line) to
/// `Failures:`, nesting by two-space indentation; a line with no deeper line after it is an
/// example named by its path joined with `.` (`FAILED [1]` failed, `PENDING`/`SKIPPED`
/// skipped, else passed); then every `1) a, b` header of the `Failures:` section (`a.b`) failed.
fn parse_log_haskell_v2(log: &str) -> Parsed {
    py_re!(FAILURE_HEADER, r"^\s*\d+\)\s+(.*)$");
    py_re!(INLINE_FAIL, r"^(.*?)\s+FAILED\s*\[\d+\]$");
    // `(?:PENDING|SKIPPED)\b.*$`: a non-word character and the rest, or the end.
    py_re!(INLINE_PENDING, r"(?i)^(.*?)\s+(?:PENDING|SKIPPED)(?:\W.*)?$");
    const NOISE: [&str; 14] = [
        "Downloading",
        "Building",
        "Installing",
        "Completed",
        "Starting",
        "Preprocessing",
        "Configuring",
        "Linking",
        "Resolving dependencies",
        "Build profile",
        "In order, the following will be built",
        "Error:",
        "Test suite ",
        "Running ",
    ];
    let lines = splitlines(log);
    let is_info = |s: &str| s == "Golden and Actual output didn't change";
    let leading_spaces = |s: &str| s.len() - s.trim_start_matches(' ').len();

    let failures_idx = lines.iter().position(|l| pystr::strip(l) == "Failures:");
    let mut failed_fullnames: IndexMap<String, ()> = IndexMap::new();
    if let Some(fi) = failures_idx {
        for line in &lines[fi + 1..] {
            let s = pystr::strip(line);
            if s.is_empty() {
                continue;
            }
            if ["To rerun use:", "Randomized with seed", "Finished in ", "Test suite "].iter().any(|p| s.starts_with(p)) {
                break;
            }
            if let Some(caps) = FAILURE_HEADER.captures(s) {
                let header = pystr::strip(group(&caps, 1));
                let parts: Vec<&str> = header.split(',').map(pystr::strip).collect();
                failed_fullnames.insert(parts.join("."), ());
            }
        }
    }

    let mut start_idx = lines.iter().position(|l| l.starts_with("Test suite ") && l.contains(": RUNNING...")).map(|i| i + 1);
    if start_idx.is_none() {
        start_idx = lines.iter().position(|l| !l.is_empty() && !l.starts_with(' ') && l.contains('.') && !NOISE.iter().any(|k| l.contains(k)));
    }
    let end_idx = failures_idx.unwrap_or(lines.len());
    let next_sig = |k: usize| (k + 1..end_idx).find(|&m| lines.get(m).is_some_and(|l| !pystr::strip(l).is_empty() && !is_info(pystr::strip(l))));

    let mut results = StatusMap::new();
    let mut stack: Vec<String> = Vec::new();
    let mut i = start_idx.unwrap_or(0);
    while i < end_idx {
        let Some(raw) = lines.get(i).copied() else { break };
        let s = pystr::strip(raw);
        if s.is_empty() || is_info(s) {
            i += 1;
            continue;
        }
        let indent = leading_spaces(raw);
        let level = indent / 2;
        let (name_core, hint) = if let Some(caps) = INLINE_FAIL.captures(s) {
            (pystr::strip(group(&caps, 1)).to_string(), Some(FAILED))
        } else if let Some(caps) = INLINE_PENDING.captures(s) {
            (pystr::strip(group(&caps, 1)).to_string(), Some(SKIPPED))
        } else {
            (s.to_string(), None)
        };
        if level < stack.len() {
            stack.truncate(level);
            stack.push(name_core);
        } else {
            stack.resize(level, String::new());
            stack.push(name_core);
        }
        let is_leaf = next_sig(i).is_none_or(|j| lines.get(j).is_none_or(|l| leading_spaces(l) <= indent));
        if is_leaf {
            let full: Vec<&str> = stack.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
            results.insert(full.join("."), hint.unwrap_or(PASSED));
        }
        i += 1;
    }
    for (full, ()) in failed_fullnames {
        results.insert(full, FAILED);
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Julia, R, Clojure
// ---------------------------------------------------------------------------------------------

/// Julia's `Test Summary:` table: after the header, each `name | counts` row; its `isdigit()`
/// columns decide (two: `Pass Total`, or with ten leading spaces an error count; three: the
/// header's `Fail`/`Error` column; four or more: `Pass Fail Error …`). `int()` of a column it
/// reads raises on a non-decimal digit (`²`).
fn parse_log_julia(log: &str) -> Parsed {
    py_re!(ROW, r"^(\s*)(.+?)\s+\|(.+)$");
    let mut results = StatusMap::new();
    let mut in_summary = false;
    let (mut has_fail, mut has_error) = (false, false);
    for raw in splitlines(log) {
        if raw.contains("Test Summary:") {
            in_summary = true;
            if raw.contains("| Pass") {
                let header = raw.split('|').nth(1).unwrap_or(raw);
                has_fail = header.contains("Fail");
                has_error = header.contains("Error");
            }
            continue;
        }
        if !in_summary {
            continue;
        }
        let Some(caps) = ROW.captures(raw) else { continue };
        let name = pystr::strip(group(&caps, 2)).to_string();
        let columns = group(&caps, 3);
        let numeric: Vec<&str> = pystr::split(columns).into_iter().filter(|p| pystr::isdigit(p)).collect();
        if numeric.len() < 2 {
            continue;
        }
        let total = py_int(numeric[numeric.len() - 1])?;
        let mut status = PASSED;
        match numeric.len() {
            2 => {
                let first = py_int(numeric[0])?;
                if indent_of(columns) >= 10 || first != total {
                    status = ERROR;
                }
            }
            3 => {
                if py_int_positive(numeric[1])? {
                    status = if has_fail && !has_error { FAILED } else { ERROR };
                }
            }
            _ => {
                let fail = py_int_positive(numeric[1])?;
                let error = py_int_positive(numeric[2])?;
                if error {
                    status = ERROR;
                } else if fail {
                    status = FAILED;
                }
            }
        }
        results.insert(name, status);
    }
    Ok(results)
}

/// testthat's progress reporter: `✔ | 60 | context` passed, `✖ | 2 2 9 | context` failed, then
/// the `── Failed tests ──` section's `Failure ('file:8:5'): name` / `Error (…): name`; timings
/// like `[0.1s]` cut.
fn parse_log_r(log: &str) -> Parsed {
    py_re!(PASSED_CONTEXT, r"^✔\s+\|[^|]+\|\s+(.+)$");
    py_re!(FAILED_CONTEXT, r"^✖\s+\|[^|]+\|\s+(.+)$");
    py_re!(FAILURE, r"^Failure\s+\([^)]+\):\s+(.+)$");
    py_re!(ERROR_RE, r"^Error\s+\([^)]+\):\s+(.+)$");
    py_re!(TIMING, r"\s*\[\s*\d+(?:\.\d+)?\s*[a-zA-Z]+\]$");
    let strip_timing = |name: &str| pystr::strip(&TIMING.replace_all(name, "")).to_string();
    let mut results = StatusMap::new();
    let lines = splitlines(log);
    for raw in &lines {
        let line = pystr::strip(raw);
        if let Some(caps) = PASSED_CONTEXT.captures(line) {
            results.insert(strip_timing(pystr::strip(group(&caps, 1))), PASSED);
        } else if let Some(caps) = FAILED_CONTEXT.captures(line) {
            results.insert(strip_timing(pystr::strip(group(&caps, 1))), FAILED);
        }
    }
    let mut in_failed = false;
    for raw in &lines {
        let line = pystr::strip(raw);
        if line.starts_with("── Failed tests ──") || line.starts_with("== Failed tests ==") {
            in_failed = true;
            continue;
        }
        if in_failed && (line.starts_with("[ FAIL") || line.starts_with("══ Results ══")) {
            break;
        }
        if in_failed && !line.is_empty() {
            if let Some(caps) = FAILURE.captures(line) {
                results.insert(strip_timing(pystr::strip(group(&caps, 1))), FAILED);
            } else if let Some(caps) = ERROR_RE.captures(line) {
                results.insert(strip_timing(pystr::strip(group(&caps, 1))), ERROR);
            }
        }
    }
    Ok(results)
}

/// `R CMD check`: `* checking name ... OK` lines (`NOTE` passed, `WARNING`/`FAIL…` failed,
/// `ERROR` error, `SKIPPED`, anything else passed); a `* checking name ...` line takes its
/// status from the next line it knows, or passes at the end. A continuation line that is
/// only `.`, `:` and `!` raises (`IndexError`).
fn parse_log_r_v2(log: &str) -> Parsed {
    py_re!(WITH_STATUS, r"^\* checking (.+?) \.\.\. ([A-Z]+)$");
    py_re!(WITHOUT_STATUS, r"^\* checking (.+?) \.\.\.$");
    fn known(token: &str) -> Option<TestStatus> {
        Some(match token {
            "OK" | "NOTE" | "NOTES" => PASSED,
            "WARNING" | "WARNINGS" | "FAIL" | "FAILED" => FAILED,
            "ERROR" | "ERRORS" => ERROR,
            "SKIPPED" => SKIPPED,
            _ => return None,
        })
    }
    let mut results = StatusMap::new();
    let mut pending: Option<String> = None;
    for raw in splitlines(log) {
        let stripped = pystr::strip(raw);
        if stripped.is_empty() {
            continue;
        }
        if let Some(check) = pending.as_ref() {
            let Some(first) = pystr::split(strip_chars(stripped, &['.', ':', '!'])).first().copied() else {
                return Err("IndexError: list index out of range".into());
            };
            if let Some(status) = known(&first.to_uppercase()) {
                results.insert(check.clone(), status);
                pending = None;
            }
            continue;
        }
        if let Some(caps) = WITH_STATUS.captures(stripped) {
            let status = known(&group(&caps, 2).to_uppercase()).unwrap_or(PASSED);
            results.insert(group(&caps, 1).to_string(), status);
            continue;
        }
        if let Some(caps) = WITHOUT_STATUS.captures(stripped) {
            pending = Some(group(&caps, 1).to_string());
        }
    }
    if let Some(check) = pending {
        setdefault(&mut results, check, PASSED);
    }
    Ok(results)
}

/// Leiningen: `lein test ns` (each namespace passed unless recorded; `:only ns/test` its
/// namespace), then `FAIL in`/`ERROR in` lines mark the current namespace.
fn parse_log_lein(log: &str) -> Parsed {
    py_re!(LEIN, r"^lein test (.+)$");
    let mut results = StatusMap::new();
    let mut current: Option<String> = None;
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = LEIN.captures(line) {
            let payload = pystr::strip(group(&caps, 1));
            if payload.is_empty() {
                current = None;
                continue;
            }
            let tokens = pystr::split(payload);
            if tokens.first() == Some(&":only") {
                let target = tokens[1..].join(" ");
                let target = pystr::strip(&target);
                if target.is_empty() {
                    current = None;
                    continue;
                }
                let base = pystr::strip(target.split('/').next().unwrap_or_default());
                if base.is_empty() {
                    current = None;
                } else {
                    setdefault(&mut results, base, PASSED);
                    current = Some(base.to_string());
                }
            } else {
                for token in tokens {
                    let base = pystr::strip(token);
                    if !base.is_empty() {
                        setdefault(&mut results, base, PASSED);
                        current = Some(base.to_string());
                    }
                }
            }
            continue;
        }
        if let Some(ns) = current.as_ref().filter(|c| !c.is_empty()) {
            if line.starts_with("FAIL in") {
                results.insert(ns.clone(), FAILED);
            } else if line.starts_with("ERROR in") {
                results.insert(ns.clone(), ERROR);
            }
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Dart
// ---------------------------------------------------------------------------------------------

/// `dart test --reporter json`: each line that `json.loads` reads (an object, or a list's
/// objects) is an event; `testStart` names a test id (not `loading …`), `testDone` gives it
/// `success`/`failure`/`error` or `skipped`. Python's raises are kept: a name that is not a
/// string, an id that is a list or object, an integer of more than 4300 digits.
fn parse_log_dart(log: &str) -> Parsed {
    use pyjson::Value;
    let mut events: Vec<Value> = Vec::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        match pyjson::loads(line) {
            Ok(Value::Dict(d)) => events.push(Value::Dict(d)),
            Ok(Value::List(items)) => events.extend(items.into_iter().filter(|v| matches!(v, Value::Dict(_)))),
            Ok(_) | Err(pyjson::Error::Decode) => {}
            Err(pyjson::Error::Raise(e)) => return Err(e),
        }
    }
    let mut names: IndexMap<pyjson::Key, String> = IndexMap::new();
    let mut results = StatusMap::new();
    for event in &events {
        let Value::Dict(ev) = event else { continue };
        let kind = pyjson::get(ev, "type");
        if kind.is_some_and(|k| k.is_str("testStart")) {
            let Some(Value::Dict(test)) = pyjson::get(ev, "test") else { continue };
            let id = pyjson::get(test, "id").filter(|v| !matches!(v, Value::Null));
            let Some(id) = id else { continue };
            let name = pyjson::get(test, "name");
            let Some(name) = name.filter(|n| n.truthy()) else { continue };
            let Value::Str(name) = name else {
                return Err(format!("AttributeError: {} object has no attribute 'startswith'", name.type_name()));
            };
            if name.starts_with("loading ") {
                continue;
            }
            names.insert(id.key()?, name.clone());
        } else if kind.is_some_and(|k| k.is_str("testDone")) {
            let Some(id) = pyjson::get(ev, "testID").filter(|v| !matches!(v, Value::Null)) else { continue };
            if pyjson::get(ev, "hidden").is_some_and(Value::truthy) {
                continue;
            }
            let Some(name) = names.get(&id.key()?) else { continue };
            let result = pyjson::get(ev, "result");
            let status = if result.is_some_and(|r| r.is_str("success")) {
                PASSED
            } else if result.is_some_and(|r| r.is_str("failure")) {
                FAILED
            } else if result.is_some_and(|r| r.is_str("error")) {
                ERROR
            } else if pyjson::get(ev, "skipped").is_some_and(Value::truthy) {
                SKIPPED
            } else {
                continue;
            };
            results.insert(name.clone(), status);
        }
    }
    Ok(results)
}

/// `[pkg]: 00:01 +3: /path/x.dart: name` lines (not ones saying `loading`): a test seen twice
/// or more passed, once errored; keyed `path: name`.
fn parse_log_dart_v2(log: &str) -> Parsed {
    py_re!(LINE, r"^\[[\w_]+\]:\s+\d{2}:\d{2}\s+\+(\d+):\s+(/[^:]+\.dart):\s+(.+)$");
    let mut seen: IndexMap<(String, String), usize> = IndexMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() || line.to_lowercase().contains("loading") {
            continue;
        }
        let Some(caps) = LINE.captures(line) else { continue };
        py_int(group(&caps, 1))?;
        *seen.entry((group(&caps, 2).to_string(), group(&caps, 3).to_string())).or_insert(0) += 1;
    }
    let mut results = StatusMap::new();
    for ((path, name), count) in seen {
        results.insert(format!("{path}: {name}"), if count >= 2 { PASSED } else { ERROR });
    }
    Ok(results)
}

/// Flutter's expanded reporter: `00:01 +64: /path/x.dart: name` passed (unless recorded),
/// `… [E]` failed; `00:06 +2 -3: loading /path/x.dart [E]` errored (keyed by the path). The
/// "negative counter" rule looks before the first `:`, the timestamp's, so it never fires.
fn parse_log_dart_v3(log: &str) -> Parsed {
    py_re!(LINE, r"^\d+:\d+\s+\+\d+(?:\s+-\d+)?:\s+(/[^:]+\.dart):\s+(.+?)(?:\s+\[E\])?$");
    py_re!(LOADING_ERROR, r"^\d+:\d+\s+\+\d+\s+-\d+:\s+loading\s+(/[^:]+\.dart)\s+\[E\]$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = LOADING_ERROR.captures(line) {
            results.insert(group(&caps, 1).to_string(), ERROR);
            continue;
        }
        if let Some(caps) = LINE.captures(line) {
            let full = format!("{}: {}", group(&caps, 1), pystr::strip(group(&caps, 2)));
            if line.contains("[E]") {
                results.insert(full, FAILED);
            } else if line.split(':').next().unwrap_or_default().contains(" -") {
                setdefault(&mut results, full, FAILED);
            } else {
                setdefault(&mut results, full, PASSED);
            }
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Scala, OCaml, Swift, C#
// ---------------------------------------------------------------------------------------------

/// ScalaTest via sbt: `[info] - name (12 ms)` passed (unless recorded), `*** FAILED ***` failed,
/// `!!! CANCELED !!!`/`!!! IGNORED !!!` skipped.
fn parse_log_scala(log: &str) -> Parsed {
    py_re!(FAILED_RE, r"^\[info\]\s+-\s+(.*?)\s+\*\*\*\s+FAILED\s+\*\*\*\s+\([^)]+\)$");
    py_re!(CANCELED, r"^\[info\]\s+-\s+(.*?)\s+!!!\s+CANCELED\s+!!!\s+\([^)]+\)$");
    py_re!(IGNORED, r"^\[info\]\s+-\s+(.*?)\s+!!!\s+IGNORED\s+!!!");
    py_re!(PASSED_RE, r"^\[info\]\s+-\s+(.*?)\s+\([^)]+\)$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = FAILED_RE.captures(line) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = CANCELED.captures(line) {
            results.insert(group(&caps, 1).to_string(), SKIPPED);
        } else if let Some(caps) = IGNORED.captures(line) {
            results.insert(group(&caps, 1).to_string(), SKIPPED);
        } else if let Some(caps) = PASSED_RE.captures(line) {
            setdefault(&mut results, group(&caps, 1), PASSED);
        }
    }
    Ok(results)
}

/// munit/Scala with colours: `+ name 0.01s` passed, `x name 0.1s` failed (coloured or not).
fn parse_log_scala_v2(log: &str) -> Parsed {
    py_re!(ANSI, r"\x1b\[[0-9;]*m|\[(?:[0-9]{1,2}m)");
    py_re!(PASSED_RE, r"^\s*\+\s+(.*?)\s+[\d.]+[mμn]?s\s*$");
    py_re!(FAILED_RE, r"^\s*x\s+(.*?)\s+[\d.]+[mμn]?s\s*$");
    py_re!(PASSED_COLOUR, r"^\s*\+\s+\[0m\[32m(.*?)\[0m\s+\[90m[\d.]+[mμn]?s\[0m\s*$");
    py_re!(FAILED_COLOUR, r"^\s*x\s+\[0m\[31m(.*?)\[0m\s+\[90m[\d.]+[mμn]?s\[0m\s*$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        let clean = ANSI.replace_all(line, "");
        if let Some(caps) = FAILED_COLOUR.captures(line) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = FAILED_RE.captures(&clean) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = PASSED_COLOUR.captures(line) {
            results.insert(group(&caps, 1).to_string(), PASSED);
        } else if let Some(caps) = PASSED_RE.captures(&clean) {
            results.insert(group(&caps, 1).to_string(), PASSED);
        }
    }
    Ok(results)
}

/// ScalaTest with suites: `[info] Suite:` lines name the suite, `[info] - name (5 ms)` tests
/// (`suite: name`) passed unless recorded, `*** WORD ***` the word's status (an unknown word is
/// kept as read: [`TestStatus::Missing`] here).
fn parse_log_scala_v3(log: &str) -> Parsed {
    py_re!(TEST, r"^\[info\]\s+-\s+(.*?)(?:\s+\*{3}\s+([A-Z]+)\s+\*{3})?$");
    py_re!(SUITE, r"^\[info\]\s+([^\-].*)$");
    py_re!(TIMING, r"\s*\(\d+\s+\w+\)$");
    const NOT_SUITES: [&str; 10] =
        ["Run completed", "Total number", "Suites:", "Tests:", "All tests", "compiling", "done compiling", "loading", "welcome to", "set current"];
    let mut results = StatusMap::new();
    let mut suite: Option<String> = None;
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if !line.starts_with("[info]") {
            continue;
        }
        if line.starts_with("[info] -") {
            let Some(caps) = TEST.captures(line) else { continue };
            let name = pystr::strip(group(&caps, 1));
            let name = TIMING.replace_all(name, "").into_owned();
            let full = match &suite {
                Some(s) if !s.is_empty() => format!("{s}: {name}"),
                _ => name,
            };
            match caps.get(2) {
                Some(token) if !token.as_str().is_empty() => {
                    let status = match token.as_str().to_uppercase().as_str() {
                        "PASSED" => PASSED,
                        "FAILED" => FAILED,
                        "ERROR" | "ABORTED" => ERROR,
                        "SKIPPED" | "IGNORED" | "CANCELED" | "CANCELLED" | "PENDING" => SKIPPED,
                        other => status_of(other),
                    };
                    results.insert(full, status);
                }
                _ => setdefault(&mut results, full, PASSED),
            }
        } else if let Some(caps) = SUITE.captures(line) {
            let potential = pystr::strip(group(&caps, 1));
            if !potential.is_empty() && !NOT_SUITES.iter().any(|k| potential.contains(k)) {
                suite = Some(potential.to_string());
            }
        }
    }
    Ok(results)
}

/// Alcotest/QCheck: `[OK] suite 0 description` (`suite index description`), passed unless
/// recorded; other known words overwrite; an unknown word is an error.
fn parse_log_ocaml(log: &str) -> Parsed {
    py_re!(ENTRY, r"^\s*\[(?P<status>[A-Z]+)\]\s+(?P<suite>.*?)\s+(?P<index>\d+)\s+(?P<name>.+)$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::rstrip(raw);
        let Some(caps) = ENTRY.captures(line) else { continue };
        let parts: Vec<&str> =
            [named(&caps, "suite"), named(&caps, "index"), named(&caps, "name")].into_iter().map(pystr::strip).filter(|p| !p.is_empty()).collect();
        let test = parts.join(" ");
        let status = match named(&caps, "status") {
            "OK" | "PASS" => PASSED,
            "FAIL" | "FAILED" => FAILED,
            "SKIP" | "SKIPPED" | "TODO" => SKIPPED,
            _ => ERROR,
        };
        if status == PASSED {
            setdefault(&mut results, test, PASSED);
        } else {
            results.insert(test, status);
        }
    }
    Ok(results)
}

/// dune's `Running[N]: (cd … && ./test.exe)` / `Output[N]:` blocks: each output line of a
/// binary's run says failed (`FAIL`, `ERROR`, …), skipped (`SKIP`) or passed (`OK`), by
/// precedence; a binary with output and no verdict passed.
fn parse_log_ocaml_v2(log: &str) -> Parsed {
    py_re!(RUNNING, r"^Running\[(?P<id>\d+)\]:\s+\((?P<command>.+)\)$");
    py_re!(OUTPUT, r"^Output\[(?P<id>\d+)\]:");
    fn test_name(command: &str) -> String {
        let mut cmd = pystr::strip(command.rsplit("&&").next().unwrap_or_default());
        if let Some(rest) = cmd.strip_prefix("exec ") {
            cmd = pystr::strip(rest);
        }
        if let Some(rest) = cmd.strip_prefix("./") {
            cmd = rest;
        }
        let binary = pystr::split(cmd).first().copied().unwrap_or("");
        binary.rsplit('/').next().unwrap_or_default().to_string()
    }
    let mut results = StatusMap::new();
    let mut runs: IndexMap<String, String> = IndexMap::new();
    let mut active: Option<String> = None;
    let mut seen: IndexMap<String, ()> = IndexMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = RUNNING.captures(line) {
            let id = py_int(named(&caps, "id"))?;
            let name = test_name(named(&caps, "command"));
            let name = if name.is_empty() { format!("run_{id}") } else { name };
            runs.insert(id, name);
            active = None;
            continue;
        }
        if let Some(caps) = OUTPUT.captures(line) {
            active = runs.get(&py_int(named(&caps, "id"))?).cloned();
            continue;
        }
        let Some(test) = active.as_ref().filter(|t| !t.is_empty()) else { continue };
        seen.insert(test.clone(), ());
        let upper = line.to_uppercase();
        if ["FAIL", "ERROR", "EXCEPTION", "CRASH", "FATAL"].iter().any(|t| upper.contains(t)) {
            update_by_precedence(&mut results, test, FAILED);
        } else if ["SKIP", "SKIPPED"].iter().any(|t| upper.contains(t)) {
            update_by_precedence(&mut results, test, SKIPPED);
        } else if upper == "OK" {
            update_by_precedence(&mut results, test, PASSED);
        }
    }
    for (test, ()) in seen {
        setdefault(&mut results, test, PASSED);
    }
    Ok(results)
}

/// `[OK] name`, `[FAIL] name`, … lines (many spellings), by precedence; white space in names
/// squashed.
fn parse_log_ocaml_v3(log: &str) -> Parsed {
    py_re!(LINE, r"^\[(?P<token>[A-Za-z][A-Za-z0-9_-]*)\]\s+(?P<body>.+)$");
    py_re!(SPACES, r"\s+");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if !line.starts_with('[') {
            continue;
        }
        let Some(caps) = LINE.captures(line) else { continue };
        let status = match named(&caps, "token").to_uppercase().as_str() {
            "OK" | "PASS" | "PASSED" | "SUCCESS" => PASSED,
            "SKIP" | "SKIPPED" | "TODO" | "PENDING" | "DISABLED" => SKIPPED,
            "FAIL" | "FAILED" | "ERROR" | "EXCEPTION" | "CRASH" | "FATAL" | "KO" | "PANIC" => FAILED,
            _ => continue,
        };
        let name = SPACES.replace_all(named(&caps, "body"), " ");
        let name = pystr::strip(&name);
        if name.is_empty() {
            continue;
        }
        update_by_precedence(&mut results, name, status);
    }
    Ok(results)
}

/// ocamlbuild-style `PASSED name  detail` lines (colour codes become spaces), by precedence; the
/// name ends at two spaces (`parse_log_ocaml_v4`, alias `parse_log_ocaml_v5`).
fn parse_log_ocaml_v4(log: &str) -> Parsed {
    py_re!(COLOUR, r"\x1B\[[0-9;]*m");
    py_re!(PREFIX, r"^(PASSED|FAILED|SKIPPED|ERROR)\s+(.*)$");
    py_re!(WIDE, r"\s{2,}");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let spaced = COLOUR.replace_all(raw, " ");
        let cleaned = ansi_escape(&spaced);
        let line = pystr::strip(&cleaned);
        if line.is_empty() {
            continue;
        }
        let Some(caps) = PREFIX.captures(line) else { continue };
        let remainder = pystr::strip(group(&caps, 2));
        if remainder.is_empty() {
            continue;
        }
        let mut name = pystr::strip(WIDE.splitn(remainder, 2).next().unwrap_or_default()).to_string();
        if name.is_empty() {
            name = pystr::split(remainder).first().map(|t| (*t).to_string()).unwrap_or_default();
        }
        if name.is_empty() {
            continue;
        }
        update_by_precedence(&mut results, &name, status_of(group(&caps, 1)));
    }
    Ok(results)
}

/// XCTest: `Test Case 'Class.test' passed (0.001 seconds)` / `failed`.
fn parse_log_swift(log: &str) -> Parsed {
    py_re!(RESULT, r"^Test Case '([^']+)'\s+(passed|failed)\s+\([0-9.]+\s+seconds\)$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::strip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = RESULT.captures(line) {
            results.insert(group(&caps, 1).to_string(), if group(&caps, 2) == "passed" { PASSED } else { FAILED });
        }
    }
    Ok(results)
}

/// `dotnet test` (xUnit): `  Passed name [1 ms]` (unless recorded), `  Failed name [1 ms]`,
/// `  Skipped name`, and `[xUnit.net 00:00:01.23]     name [FAIL]`.
fn parse_log_csharp(log: &str) -> Parsed {
    py_re!(PASSED_RE, r"^\s+Passed\s+(.+?)\s+\[.+?\]$");
    py_re!(FAILED_RE, r"^\s+Failed\s+(.+?)\s+\[.+?\]$");
    py_re!(SKIPPED_RE, r"^\s+Skipped\s+(.+?)(?:\s+\[.+?\])?$");
    py_re!(XUNIT_FAIL, r"^\[xUnit\.net\s+[\d:\.]+\]\s+(.+?)\s+\[FAIL\]$");
    let mut results = StatusMap::new();
    for raw in splitlines(log) {
        let line = pystr::rstrip(raw);
        if line.is_empty() {
            continue;
        }
        if let Some(caps) = XUNIT_FAIL.captures(line) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = FAILED_RE.captures(line) {
            results.insert(group(&caps, 1).to_string(), FAILED);
        } else if let Some(caps) = SKIPPED_RE.captures(line) {
            results.insert(group(&caps, 1).to_string(), SKIPPED);
        } else if let Some(caps) = PASSED_RE.captures(line) {
            setdefault(&mut results, group(&caps, 1), PASSED);
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// JSON as Python's `json.loads` reads it
// ---------------------------------------------------------------------------------------------

/// `json.loads` (the C scanner) for one line: `NaN`/`Infinity`/`-Infinity`, integers of any size
/// (more than 4300 digits raise `ValueError`, not a decode error), duplicate keys (the first
/// position, the last value), strict strings (no raw control characters). A lone surrogate
/// escape, which Python keeps in its `str`, becomes U+FFFD here. Nesting deeper than Python's
/// recursion limit raises there (`RecursionError`); here past 900 levels.
mod pyjson {
    /// A decoded value.
    #[derive(Debug, Clone)]
    pub(super) enum Value {
        Null,
        Bool(bool),
        /// An integer, as ASCII decimal: optional `-`, no leading zeros.
        Int(String),
        Float(f64),
        Str(String),
        List(Vec<Value>),
        Dict(Vec<(String, Value)>),
    }

    /// Why a line gave no value.
    #[derive(Debug)]
    pub(super) enum Error {
        /// `json.JSONDecodeError` (the parser skips the line).
        Decode,
        /// Another exception, which the parser does not catch.
        Raise(String),
    }

    /// A value as a Python dict key: by Python equality (`True == 1 == 1.0`, one `NaN` object).
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub(super) enum Key {
        Str(String),
        /// A number, as its exact value: an integer's decimal digits, or a float's bits.
        Num(String),
    }

    impl Value {
        /// Python truthiness.
        pub(super) fn truthy(&self) -> bool {
            match self {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Int(i) => i != "0",
                Value::Float(f) => *f != 0.0,
                Value::Str(s) => !s.is_empty(),
                Value::List(l) => !l.is_empty(),
                Value::Dict(d) => !d.is_empty(),
            }
        }

        /// `value == s` for a Python string `s`.
        pub(super) fn is_str(&self, s: &str) -> bool {
            matches!(self, Value::Str(v) if v == s)
        }

        /// The Python type's name.
        pub(super) fn type_name(&self) -> &'static str {
            match self {
                Value::Null => "'NoneType'",
                Value::Bool(_) => "'bool'",
                Value::Int(_) => "'int'",
                Value::Float(_) => "'float'",
                Value::Str(_) => "'str'",
                Value::List(_) => "'list'",
                Value::Dict(_) => "'dict'",
            }
        }

        /// The value as a dict key, or Python's `TypeError` for an unhashable one.
        pub(super) fn key(&self) -> Result<Key, String> {
            Ok(match self {
                Value::Str(s) => Key::Str(s.clone()),
                Value::Null => Key::Str("\u{0}None".into()),
                Value::Bool(b) => Key::Num(if *b { "1" } else { "0" }.into()),
                Value::Int(i) => Key::Num(i.clone()),
                Value::Float(f) => Key::Num(float_key(*f)),
                Value::List(_) => return Err("TypeError: unhashable type: 'list'".into()),
                Value::Dict(_) => return Err("TypeError: unhashable type: 'dict'".into()),
            })
        }
    }

    /// A float's key: an integral value as its integer digits (so `1.0` is `1`), else its bits.
    fn float_key(f: f64) -> String {
        if f == 0.0 {
            "0".into()
        } else if f.is_finite() && f.fract() == 0.0 {
            format!("{f:.0}")
        } else if f.is_nan() {
            "nan".into()
        } else {
            format!("f{:x}", f.to_bits())
        }
    }

    /// `d.get(key)` for a decoded object.
    pub(super) fn get<'v>(d: &'v [(String, Value)], key: &str) -> Option<&'v Value> {
        d.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `json.loads(s)`.
    pub(super) fn loads(s: &str) -> Result<Value, Error> {
        let mut p = Parser { s: s.as_bytes(), text: s, pos: 0 };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(Error::Decode);
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        text: &'a str,
        pos: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.s.get(self.pos..).is_some_and(|r| r.starts_with(lit.as_bytes())) {
                self.pos += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, Error> {
            if depth > 900 {
                return Err(Error::Raise("RecursionError: maximum recursion depth exceeded while decoding a JSON array/object".into()));
            }
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    self.string().map(Value::Str)
                }
                Some(b'{') => {
                    self.pos += 1;
                    self.object(depth)
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.array(depth)
                }
                Some(b'n') if self.eat("null") => Ok(Value::Null),
                Some(b't') if self.eat("true") => Ok(Value::Bool(true)),
                Some(b'f') if self.eat("false") => Ok(Value::Bool(false)),
                Some(b'N') if self.eat("NaN") => Ok(Value::Float(f64::NAN)),
                Some(b'I') if self.eat("Infinity") => Ok(Value::Float(f64::INFINITY)),
                Some(b'-') if self.s.get(self.pos + 1) == Some(&b'I') => {
                    if self.eat("-Infinity") { Ok(Value::Float(f64::NEG_INFINITY)) } else { Err(Error::Decode) }
                }
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => Err(Error::Decode),
            }
        }

        fn digits(&mut self) -> usize {
            let start = self.pos;
            while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                self.pos += 1;
            }
            self.pos - start
        }

        fn number(&mut self) -> Result<Value, Error> {
            let start = self.pos;
            let negative = self.s.get(self.pos) == Some(&b'-');
            if negative {
                self.pos += 1;
            }
            match self.s.get(self.pos) {
                Some(b'0') => self.pos += 1,
                Some(b'1'..=b'9') => {
                    self.digits();
                }
                _ => return Err(Error::Decode),
            }
            let int_end = self.pos;
            let mut is_float = false;
            if self.s.get(self.pos) == Some(&b'.') && self.s.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
                self.pos += 1;
                self.digits();
                is_float = true;
            }
            if matches!(self.s.get(self.pos), Some(b'e' | b'E')) {
                let save = self.pos;
                self.pos += 1;
                if matches!(self.s.get(self.pos), Some(b'+' | b'-')) {
                    self.pos += 1;
                }
                if self.digits() == 0 {
                    self.pos = save;
                } else {
                    is_float = true;
                }
            }
            let text = self.text.get(start..self.pos).unwrap_or_default();
            if is_float {
                return Ok(Value::Float(text.parse::<f64>().unwrap_or(f64::NAN)));
            }
            let digits = self.text.get(start + usize::from(negative)..int_end).unwrap_or_default();
            if digits.len() > 4300 {
                return Err(Error::Raise("ValueError: Exceeds the limit (4300 digits) for integer string conversion".into()));
            }
            let trimmed = digits.trim_start_matches('0');
            let magnitude = if trimmed.is_empty() { "0" } else { trimmed };
            Ok(Value::Int(if negative && magnitude != "0" { format!("-{magnitude}") } else { magnitude.to_string() }))
        }

        fn hex4(&mut self) -> Result<u32, Error> {
            let hex = self.s.get(self.pos..self.pos + 4).ok_or(Error::Decode)?;
            let text = std::str::from_utf8(hex).map_err(|_| Error::Decode)?;
            if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Decode);
            }
            self.pos += 4;
            u32::from_str_radix(text, 16).map_err(|_| Error::Decode)
        }

        /// After the opening quote.
        fn string(&mut self) -> Result<String, Error> {
            let mut out = String::new();
            loop {
                let rest = self.text.get(self.pos..).ok_or(Error::Decode)?;
                let mut chars = rest.chars();
                let c = chars.next().ok_or(Error::Decode)?;
                self.pos += c.len_utf8();
                match c {
                    '"' => return Ok(out),
                    '\\' => {
                        let e = *self.s.get(self.pos).ok_or(Error::Decode)?;
                        self.pos += 1;
                        match e {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let hi = self.hex4()?;
                                let mut code = hi;
                                if (0xD800..0xDC00).contains(&hi) && self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                    let save = self.pos;
                                    self.pos += 2;
                                    match self.hex4() {
                                        Ok(lo) if (0xDC00..0xE000).contains(&lo) => code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                                        Ok(_) => self.pos = save,
                                        Err(e) => return Err(e),
                                    }
                                }
                                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            }
                            _ => return Err(Error::Decode),
                        }
                    }
                    c if u32::from(c) < 0x20 => return Err(Error::Decode),
                    c => out.push(c),
                }
            }
        }

        fn object(&mut self, depth: usize) -> Result<Value, Error> {
            let mut pairs: Vec<(String, Value)> = Vec::new();
            self.ws();
            if self.eat("}") {
                return Ok(Value::Dict(pairs));
            }
            loop {
                if !self.eat("\"") {
                    return Err(Error::Decode);
                }
                let key = self.string()?;
                self.ws();
                if !self.eat(":") {
                    return Err(Error::Decode);
                }
                self.ws();
                let value = self.value(depth + 1)?;
                match pairs.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => pairs.push((key, value)),
                }
                self.ws();
                if self.eat("}") {
                    return Ok(Value::Dict(pairs));
                }
                if !self.eat(",") {
                    return Err(Error::Decode);
                }
                self.ws();
            }
        }

        fn array(&mut self, depth: usize) -> Result<Value, Error> {
            let mut items = Vec::new();
            self.ws();
            if self.eat("]") {
                return Ok(Value::List(items));
            }
            loop {
                items.push(self.value(depth + 1)?);
                self.ws();
                if self.eat("]") {
                    return Ok(Value::List(items));
                }
                if !self.eat(",") {
                    return Err(Error::Decode);
                }
                self.ws();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::super::pyre;
    use super::*;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/logs/swe-rebench-v2")
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
    }

    /// `scripts/eval.py::_normalize_test_name` on every id the corpus gave and on constructed
    /// timing suffixes, as recorded by `tests/reference/record_parser_fixtures.py`.
    #[test]
    fn normalize_test_name_is_eval_pys() {
        let text = std::fs::read_to_string(dir().join("normalize_test_name.json")).expect("recorded");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        let pairs = v["pairs"].as_array().expect("pairs");
        assert!(pairs.len() > 100);
        let bad: Vec<String> = pairs
            .iter()
            .filter_map(|p| {
                let (input, want) = (p[0].as_str()?, p[1].as_str()?);
                let got = normalize_test_name(input);
                (got != want).then(|| format!("{input:?}: {got:?}, eval.py {want:?}"))
            })
            .collect();
        assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
    }

    /// `passed_actual`, `failed_actual` and `passed_match` as `scripts/eval.py::evaluate_instance`
    /// gave them for each corpus log and parser, with lists built from the parser's own ids.
    #[test]
    fn eval_lists_and_passed_match_are_eval_pys() {
        let mut checked = 0;
        let mut bad = Vec::new();
        let mut cases: Vec<PathBuf> = std::fs::read_dir(dir())
            .expect("the corpus")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".expected.json"))
            .collect();
        cases.sort();
        for path in cases {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("JSON");
            let log_path = PathBuf::from(path.to_string_lossy().replace(".expected.json", ".log"));
            let log = std::fs::read_to_string(&log_path).expect("the log");
            for entry in v["eval"].as_array().into_iter().flatten() {
                let parser = entry["parser"].as_str().expect("a parser");
                let f = lookup(parser).expect("a known parser");
                let parsed = f(&log, &ParseContext::default(), Generation::V5).expect("the parser gave a map");
                let (passed, failed) = eval_lists(&parsed);
                if passed != strings(&entry["passed_actual"]) || failed != strings(&entry["failed_actual"]) {
                    bad.push(format!("{} {parser}: passed/failed lists differ", path.display()));
                }
                for check in entry["checks"].as_array().into_iter().flatten() {
                    checked += 1;
                    let got = passed_match(&parsed, &strings(&check["fail_to_pass"]), &strings(&check["pass_to_pass"]));
                    if Some(got) != check["passed_match"].as_bool() {
                        bad.push(format!("{} {parser}: passed_match {got} for {check}", path.display()));
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} checks recorded");
        assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
    }

    #[test]
    fn python_helpers() {
        assert_eq!(py_int("٠٠٣"), Ok("3".to_string()));
        assert!(py_int("²").is_err());
        assert!(py_int(&"1".repeat(4301)).is_err());
        assert!(search_words("a FAIL.", &[&pyre::compile(r"(?i)\AFAIL")]));
        assert!(!search_words("FAILx", &[&pyre::compile(r"(?i)\AFAIL")]));
        assert_eq!(sub_word_end(&pyre::compile(r"(?i)\s+in\s+\d+\s+sec"), "a in 1 secs in 2 sec b"), "a in 1 secs b");
        assert_eq!(mvn_failure("[ERROR] com.x.Foo.bar:12 boom"), Some(("com.x.Foo", "bar")));
        assert_eq!(mvn_failure("[ERROR] com.x.Foo$Inner.m$1 x"), Some(("com.x.Foo$Inner", "m")));
    }
}
