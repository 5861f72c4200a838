//! Python log parsers: `swebench.harness.log_parsers.python`, line for line.
//!
//! pytest's `-rA` short summary (`PASSED path::test`), its "later version" with ANSI colours and
//! `path::test PASSED` lines, parametrised ids holding absolute paths (`test[/a/b/c]` read as
//! `test[/c]`), the Django test runner (`test_x (mod.Class) ... ok`), seaborn's and SymPy's
//! runners, and matplotlib's `MouseButton` ids, plus the per-repository aliases the 5.x
//! `PARSER_REGISTRY` lists (each alias is its base parser, as in the reference).
//!
//! Where 4.x and 5.x read a log differently, [`Generation`] picks the rule:
//! * 5.x drops pytest's `SKIPPED [N] path:line: reason` summary lines (`_is_skip_summary`) in
//!   `parse_log_pytest`, `parse_log_pytest_options`, `parse_log_matplotlib` and
//!   `parse_log_pytest_v2`; 4.x records them under the id `[N]`.
//! * `parse_log_pytest_v2`: 5.x cuts a `FAILED` line at its first `" - "` and joins every token
//!   after the status into the id (and every token before a trailing status); 4.x replaces each
//!   `" - "` with a space and keeps one token.
//! * `parse_log_seaborn`: 5.x skips lines of fewer than two tokens; 4.x raises `IndexError` on
//!   them (here: [`ParseError`]).
//!
//! Patterns are Python `re` patterns compiled by [`py_regex`] with Python 3.11's classes (`\s`
//! also matches `\x1c`–`\x1f`; `\d`/`\w` follow Unicode 14.0; see `pyre.rs`);
//! `worker/tests/parsers_python.rs` checks them against the reference's interpreter.
//!
//! The pytest-style parsers take the status from the line's first (or last) token, so a line such
//! as `ERROR: usage …` gives the reference a status word it does not know (`"ERROR:"`); its
//! grading then counts that id as neither passed nor failed. Such an entry is kept here, at the
//! reference's position, as [`TestStatus::Missing`]: no real status, but present in the map.

use std::borrow::Cow;
use std::sync::LazyLock;

use agentmill_proto::TestStatus;
use regex::Regex;

use super::pyre::py_regex;
use super::{Generation, ParseContext, ParseError, ParseFn, STATUS_WORDS, StatusMap, pystr, status_from_word};

/// The parser names this module serves, in the 5.x registry's order.
pub(super) const NAMES: &[&str] = &[
    "parse_log_pytest",
    "parse_log_pytest_options",
    "parse_log_django",
    "parse_log_pytest_v2",
    "parse_log_seaborn",
    "parse_log_sympy",
    "parse_log_matplotlib",
    "parse_log_astroid",
    "parse_log_flask",
    "parse_log_marshmallow",
    "parse_log_pvlib",
    "parse_log_pyvista",
    "parse_log_sqlfluff",
    "parse_log_xarray",
    "parse_log_pydicom",
    "parse_log_requests",
    "parse_log_pylint",
    "parse_log_astropy",
    "parse_log_scikit",
    "parse_log_sphinx",
];

/// The parser called `name`, if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    Some(match name {
        "parse_log_pytest" | "parse_log_astroid" | "parse_log_flask" | "parse_log_marshmallow" | "parse_log_pvlib" | "parse_log_pyvista"
        | "parse_log_sqlfluff" | "parse_log_xarray" => parse_log_pytest,
        "parse_log_pytest_options" | "parse_log_pydicom" | "parse_log_requests" | "parse_log_pylint" => parse_log_pytest_options,
        "parse_log_django" => parse_log_django,
        "parse_log_pytest_v2" | "parse_log_astropy" | "parse_log_scikit" | "parse_log_sphinx" => parse_log_pytest_v2,
        "parse_log_seaborn" => parse_log_seaborn,
        "parse_log_sympy" => parse_log_sympy,
        "parse_log_matplotlib" => parse_log_matplotlib,
        _ => return None,
    })
}

/// The reference's value for a status token: its `TestStatus`, or [`TestStatus::Missing`] for a
/// word it does not know (see the module doc).
fn status_of(word: &str, generation: Generation) -> TestStatus {
    match status_from_word(word) {
        Some(TestStatus::Xfail) if generation == Generation::V2 => TestStatus::Missing,
        Some(s) => s,
        None => TestStatus::Missing,
    }
}

/// The `TestStatus` values of a generation (2.0.x has no `XFAIL`).
fn status_words(generation: Generation) -> &'static [&'static str] {
    if generation == Generation::V2 { &STATUS_WORDS[..4] } else { &STATUS_WORDS }
}

/// `any(line.startswith(x.value) for x in TestStatus)`.
fn starts_with_status(line: &str, generation: Generation) -> bool {
    status_words(generation).iter().any(|w| line.starts_with(w))
}

/// `any(line.endswith(x.value) for x in TestStatus)`.
fn ends_with_status(line: &str, generation: Generation) -> bool {
    status_words(generation).iter().any(|w| line.ends_with(w))
}

/// `_is_skip_summary` (5.x only): `SKIPPED [N] path:line: reason`, where `[N]` is no test.
fn is_skip_summary(generation: Generation, status: &str, name: &str) -> bool {
    static COUNT: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\A\[\d+\]\Z"));
    generation == Generation::V5 && status == "SKIPPED" && COUNT.is_match(name)
}

/// The `-rA` short-summary reader shared by `parse_log_pytest` and `parse_log_matplotlib`.
fn pytest_summary(log: &str, generation: Generation, mouse_buttons: bool) -> StatusMap {
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        let mut line = Cow::Borrowed(raw);
        if mouse_buttons {
            line = Cow::Owned(line.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3"));
        }
        if !starts_with_status(&line, generation) {
            continue;
        }
        if line.starts_with("FAILED") {
            line = Cow::Owned(line.replace(" - ", " "));
        }
        let tokens = pystr::split(&line);
        let [status, name, ..] = tokens.as_slice() else { continue };
        if is_skip_summary(generation, status, name) {
            continue;
        }
        map.insert((*name).to_string(), status_of(status, generation));
    }
    map
}

/// pytest `-rA` short summary: `PASSED path::test`, `FAILED path::test - message`; the id is the
/// second token.
fn parse_log_pytest(log: &str, _ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    Ok(pytest_summary(log, generation, false))
}

/// pytest `-rA` short summary whose parametrised ids carry absolute paths: `test[/a/b/c]` is
/// recorded as `test[/c]`.
fn parse_log_pytest_options(log: &str, _ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    static OPTION: LazyLock<Regex> = LazyLock::new(|| py_regex(r"(.*?)\[(.*)\]"));
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        if !starts_with_status(raw, generation) {
            continue;
        }
        let line = if raw.starts_with("FAILED") { Cow::Owned(raw.replace(" - ", " ")) } else { Cow::Borrowed(raw) };
        let tokens = pystr::split(&line);
        let [status, name, ..] = tokens.as_slice() else { continue };
        if is_skip_summary(generation, status, name) {
            continue;
        }
        let test_name = match OPTION.captures(name) {
            Some(caps) => {
                let main = caps.get(1).map_or("", |m| m.as_str());
                let mut option = caps.get(2).map_or("", |m| m.as_str());
                if option.starts_with('/') && !option.starts_with("//") && !option.contains('*') {
                    option = option.rsplit('/').next().unwrap_or(option);
                    format!("{main}[/{option}]")
                } else {
                    format!("{main}[{option}]")
                }
            }
            None => (*name).to_string(),
        };
        map.insert(test_name, status_of(status, generation));
    }
    Ok(map)
}

/// The Django test runner at `--verbosity 2`: `test_x (mod.Class) ... ok`, `... FAIL`,
/// `... ERROR`, `... skipped`, `FAIL: test_x (mod.Class)`, a docstring line in place of the id, an
/// `ok` after interleaved output, and three known multi-line interruptions.
fn parse_log_django(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static INTERRUPTED: LazyLock<[Regex; 3]> = LazyLock::new(|| {
        [
            py_regex(r"(?m)^(.*?)\s\.\.\.\sTesting against Django installed in ((?s:.*?)) silenced\)\.\nok$"),
            py_regex(r"(?m)^(.*?)\s\.\.\.\sInternal Server Error: /(.*)/\nok$"),
            py_regex(r"(?m)^(.*?)\s\.\.\.\sSystem check identified no issues \(0 silenced\)\nok$"),
        ]
    });
    let mut map = StatusMap::new();
    let mut prev_test: Option<String> = None;
    for (number, raw) in log.split('\n').enumerate() {
        let mut line = pystr::strip(raw);

        if line.contains("--version is equivalent to version") {
            map.insert("--version is equivalent to version".to_string(), TestStatus::Passed);
        }

        if let Some((before, _)) = line.split_once(" ... ") {
            prev_test = Some(before.to_string());
        }

        for suffix in [" ... ok", " ... OK", " ...  OK"] {
            if line.ends_with(suffix) {
                // The reference's exclusive fix for django__django-7188 (a migration's output and
                // the test's result on one line).
                if pystr::strip(line).starts_with("Applying sites.0002_alter_domain_unique...test_no_migrations") {
                    line = pystr::strip(line.split_once("...").map_or(line, |(_, after)| after));
                }
                let test = line.rsplit_once(suffix).map_or(line, |(before, _)| before);
                map.insert(test.to_string(), TestStatus::Passed);
                break;
            }
        }
        if let Some((test, _)) = line.split_once(" ... skipped") {
            map.insert(test.to_string(), TestStatus::Skipped);
        }
        if line.ends_with(" ... FAIL") {
            let test = line.split_once(" ... FAIL").map_or(line, |(before, _)| before);
            map.insert(test.to_string(), TestStatus::Failed);
        }
        if line.starts_with("FAIL:") {
            let test = second_token(line, number)?;
            map.insert(test.to_string(), TestStatus::Failed);
        }
        if line.ends_with(" ... ERROR") {
            let test = line.split_once(" ... ERROR").map_or(line, |(before, _)| before);
            map.insert(test.to_string(), TestStatus::Error);
        }
        if line.starts_with("ERROR:") {
            let test = second_token(line, number)?;
            map.insert(test.to_string(), TestStatus::Error);
        }

        if pystr::lstrip(line).starts_with("ok")
            && let Some(prev) = &prev_test
        {
            // The test passed, but other output came between its "..." and its "ok".
            map.insert(prev.clone(), TestStatus::Passed);
        }
    }

    for pattern in INTERRUPTED.iter() {
        for caps in pattern.captures_iter(log) {
            let test = caps.get(1).map_or("", |m| m.as_str());
            map.insert(test.to_string(), TestStatus::Passed);
        }
    }
    Ok(map)
}

/// `line.split()[1]` for Django's `FAIL:`/`ERROR:` lines; the reference raises `IndexError`
/// when the line has no second token.
fn second_token(line: &str, number: usize) -> Result<&str, ParseError> {
    pystr::split(line).get(1).copied().ok_or_else(|| ParseError {
        parser: "parse_log_django",
        reason: format!("line {}: {line:?} has no test id after its status (the reference raises IndexError)", number + 1),
    })
}

/// pytest logs of later versions: ANSI colours stripped, `STATUS id` or (older pytest) `id STATUS`.
fn parse_log_pytest_v2(log: &str, _ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    static COLOUR: LazyLock<Regex> = LazyLock::new(|| py_regex(r"\[(\d+)m"));
    let mut map = StatusMap::new();
    for raw in log.split('\n') {
        let uncoloured = COLOUR.replace_all(raw, "");
        // `str.translate` deleting chr(1)..chr(31).
        let line: String = uncoloured.chars().filter(|c| !('\u{1}'..='\u{1f}').contains(c)).collect();
        if starts_with_status(&line, generation) {
            match generation {
                Generation::V5 => {
                    let cut = if line.starts_with("FAILED") { line.split(" - ").next().unwrap_or(&line) } else { &line };
                    let tokens = pystr::split(cut);
                    if let [status, name, rest @ ..] = tokens.as_slice()
                        && !is_skip_summary(generation, status, name)
                    {
                        let mut id = (*name).to_string();
                        for token in rest {
                            id.push(' ');
                            id.push_str(token);
                        }
                        map.insert(id, status_of(status, generation));
                    }
                }
                Generation::V4 | Generation::V2 => {
                    let cut = if line.starts_with("FAILED") { Cow::Owned(line.replace(" - ", " ")) } else { Cow::Borrowed(line.as_str()) };
                    let tokens = pystr::split(&cut);
                    if let [status, name, ..] = tokens.as_slice() {
                        map.insert((*name).to_string(), status_of(status, generation));
                    } else if generation == Generation::V2 {
                        // 2.0.13 indexes `test_case[1]` without a check.
                        return Err(ParseError { parser: "parse_log_pytest_v2", reason: format!("{line:?} has a single token (swebench 2.0.13 raises IndexError)") });
                    }
                }
            }
        } else if ends_with_status(&line, generation) {
            let tokens = pystr::split(&line);
            match generation {
                Generation::V5 => {
                    if let [names @ .., status] = tokens.as_slice()
                        && !names.is_empty()
                    {
                        map.insert(names.join(" "), status_of(status, generation));
                    }
                }
                Generation::V4 | Generation::V2 => {
                    if let [name, status, ..] = tokens.as_slice() {
                        map.insert((*name).to_string(), status_of(status, generation));
                    } else if generation == Generation::V2 {
                        return Err(ParseError { parser: "parse_log_pytest_v2", reason: format!("{line:?} has a single token (swebench 2.0.13 raises IndexError)") });
                    }
                }
            }
        }
    }
    Ok(map)
}

/// seaborn's pytest output: `FAILED id`, `id PASSED …` and `PASSED id`.
fn parse_log_seaborn(log: &str, _ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    let mut map = StatusMap::new();
    for (number, line) in log.split('\n').enumerate() {
        let parts = pystr::split(line);
        if generation == Generation::V5 && parts.len() < 2 {
            continue;
        }
        // 4.x indexes `parts[1]` without a check: a one-token line raises IndexError.
        let second = || {
            parts.get(1).copied().ok_or_else(|| ParseError {
                parser: "parse_log_seaborn",
                reason: format!("line {}: {line:?} has a single token (swebench 4.x raises IndexError)", number + 1),
            })
        };
        if line.starts_with("FAILED") {
            map.insert(second()?.to_string(), TestStatus::Failed);
        } else if line.contains(" PASSED ") {
            if second()? == "PASSED"
                && let Some(first) = parts.first()
            {
                map.insert((*first).to_string(), TestStatus::Passed);
            }
        } else if line.starts_with("PASSED") {
            map.insert(second()?.to_string(), TestStatus::Passed);
        }
    }
    Ok(map)
}

/// SymPy's `bin/test`: `____ path.py:test_name ____` failure headers and `test_x ok`/`F`/`E` lines.
fn parse_log_sympy(log: &str, _ctx: &ParseContext<'_>, _generation: Generation) -> Result<StatusMap, ParseError> {
    static HEADER: LazyLock<Regex> = LazyLock::new(|| py_regex(r"(_*) (.*)\.py:(.*) (_*)"));
    let mut map = StatusMap::new();
    for caps in HEADER.captures_iter(log) {
        let path = caps.get(2).map_or("", |m| m.as_str());
        let name = caps.get(3).map_or("", |m| m.as_str());
        map.insert(format!("{path}.py:{name}"), TestStatus::Failed);
    }
    for raw in log.split('\n') {
        let line = pystr::strip(raw);
        if !line.starts_with("test_") {
            continue;
        }
        let first = || pystr::split(line).first().copied().unwrap_or_default().to_string();
        if line.ends_with(" E") {
            map.insert(first(), TestStatus::Error);
        }
        if line.ends_with(" F") {
            map.insert(first(), TestStatus::Failed);
        }
        if line.ends_with(" ok") {
            map.insert(first(), TestStatus::Passed);
        }
    }
    Ok(map)
}

/// matplotlib's pytest `-rA` summary, with `MouseButton.LEFT`/`RIGHT` in ids read as `1`/`3`.
fn parse_log_matplotlib(log: &str, _ctx: &ParseContext<'_>, generation: Generation) -> Result<StatusMap, ParseError> {
    Ok(pytest_summary(log, generation, true))
}
