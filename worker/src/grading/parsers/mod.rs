//! Log parsers: a test log → each test's status, read exactly as the reference harness reads it.
//!
//! Every parser is named as SWE-bench names it (`parse_log_pytest`, `parse_log_django`,
//! `parse_log_gotest`, … the keys of the 5.x `PARSER_REGISTRY`, which are also the function
//! names 4.x maps repositories to). Where the reference's two generations read a log differently,
//! [`Generation`] picks one: the ids a dataset lists were cut by the parser of its day, so a log
//! must be read the way the dataset's own harness read it.
//!
//! The parsers reproduce the reference's quirks on purpose (ids cut at the first space, a later
//! line overwriting an earlier one, junk keys from nested output): the lists in the datasets were
//! made with them, and a grader that reads "better" than the reference mislabels episodes.
//! `worker/tests/parsers_*.rs` hold every parser to the `swebench` package, output for output.
//!
//! What the reference harnesses share, the ports share: [`pyre`] reads Python `re` patterns on the
//! `regex` crate, [`pystr`] follows Python's `str` rules (whitespace, `splitlines`, digits), and
//! [`xml`] accepts and rejects what expat does for the parsers that read a report with
//! ElementTree.

mod c;
mod go;
mod java;
mod javascript;
mod php;
mod pyre;
mod pystr;
mod python;
mod r2e_gym;
mod rebench_v2;
mod ruby;
mod rust;
mod swesmith;
mod xml;

use agentmill_proto::TestStatus;
use indexmap::IndexMap;

pub use r2e_gym::{RewardError as R2eRewardError, reward as r2e_reward, reward_view as r2e_reward_view};
pub use rebench_v2::{eval_lists as rebench_v2_eval_lists, normalize_test_name as rebench_v2_normalize_test_name, passed_match as rebench_v2_passed_match};

/// Test id → status, in the order the parser first wrote each id (a Python dict's order: a later
/// line overwrites an earlier status but keeps its place). The order matters where the reference
/// takes the first of several matches.
pub type StatusMap = IndexMap<String, TestStatus>;

/// Which generation of the `swebench` package a parser follows where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// swebench 2.0.x: as 4.x, except that its `TestStatus` has no `XFAIL` (a line led by it is
    /// no result) and its `pytest_v2` raises on a one-word status line.
    V2,
    /// swebench 4.x (and 3.x, whose parsers read logs the same way).
    V4,
    /// swebench 5.x.
    V5,
}

/// What a few parsers read besides the log (the reference passes them its `TestSpec`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseContext<'a> {
    /// The instance id (some JavaScript and Ruby parsers choose a format by PR number).
    pub instance_id: &'a str,
    /// The dataset's `version` field.
    pub version: &'a str,
    /// `owner/name`.
    pub repo: &'a str,
}

/// A log the parser cannot read the way the reference would (the reference raises).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parser}: {reason}")]
pub struct ParseError {
    /// The parser's name.
    pub parser: &'static str,
    /// What the reference would have raised, and what to do.
    pub reason: String,
}

/// A parser: the log, what it may read of the task, and the generation to follow.
pub type ParseFn = fn(&str, &ParseContext<'_>, Generation) -> Result<StatusMap, ParseError>;

/// The parser called `name`, if agentmill has it: SWE-bench's names as they are; the other
/// harnesses' under their prefix (`swesmith:<profile class>`, `r2e-gym:<name>`,
/// `swe-rebench-v2:<name>`), since their parsers of the same name read logs differently.
pub fn lookup(name: &str) -> Option<ParseFn> {
    if let Some(rest) = name.strip_prefix("swesmith:") {
        return swesmith::lookup(rest);
    }
    if let Some(rest) = name.strip_prefix("r2e-gym:") {
        return r2e_gym::lookup(rest);
    }
    if let Some(rest) = name.strip_prefix("swe-rebench-v2:") {
        return rebench_v2::lookup(rest);
    }
    python::lookup(name)
        .or_else(|| javascript::lookup(name))
        .or_else(|| go::lookup(name))
        .or_else(|| rust::lookup(name))
        .or_else(|| java::lookup(name))
        .or_else(|| php::lookup(name))
        .or_else(|| ruby::lookup(name))
        .or_else(|| c::lookup(name))
}

/// Every SWE-bench parser name agentmill knows, in the reference's registry order by language
/// (the other harnesses' parsers are listed by their modules, under their prefixes).
pub fn names() -> impl Iterator<Item = &'static str> {
    [python::NAMES, javascript::NAMES, c::NAMES, go::NAMES, java::NAMES, php::NAMES, ruby::NAMES, rust::NAMES]
        .into_iter()
        .flatten()
        .copied()
}

/// Every parser name [`lookup`] answers: SWE-bench's, then the other harnesses' with their
/// prefixes.
pub fn all_names() -> Vec<String> {
    let mut out: Vec<String> = names().map(str::to_string).collect();
    for (prefix, list) in [("swesmith:", swesmith::NAMES), ("r2e-gym:", r2e_gym::NAMES), ("swe-rebench-v2:", rebench_v2::NAMES)] {
        out.extend(list.iter().map(|n| format!("{prefix}{n}")));
    }
    out
}

/// Parses `log` with the parser called `name`; `None` when no parser has that name.
pub fn parse(name: &str, log: &str, ctx: &ParseContext<'_>, generation: Generation) -> Option<Result<StatusMap, ParseError>> {
    lookup(name).map(|f| f(log, ctx, generation))
}

/// The reference's `TestStatus` values, as they appear in logs and status maps.
pub(crate) fn status_from_word(word: &str) -> Option<TestStatus> {
    Some(match word {
        "PASSED" => TestStatus::Passed,
        "FAILED" => TestStatus::Failed,
        "SKIPPED" => TestStatus::Skipped,
        "ERROR" => TestStatus::Error,
        "XFAIL" => TestStatus::Xfail,
        _ => return None,
    })
}

/// The status words in the reference enum's order (`PASSED FAILED SKIPPED ERROR XFAIL`).
pub(crate) const STATUS_WORDS: [&str; 5] = ["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"];
