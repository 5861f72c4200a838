//! R2E-Gym's log parser and reward rule: `src/r2egym/repo_analysis/execution_log_parser.py`
//! (`parse_log_pytest`, the one parser `parse_log_fn` hands every R2E repository) and what
//! `src/r2egym/agenthub/runtime/docker.py::_calculate_reward_r2e` does to the keys of both maps
//! before it compares them.
//!
//! The parser reads only the text between the first and the second `short test summary info`
//! (`log.split(...)[1]`), stripped, line by line: a line containing `PASSED` anywhere is passed
//! (checked first: `FAILED … - …PASSED…` is passed, with its message in the id), else one
//! containing `FAILED` failed, else one containing `ERROR` errored. The id is the line's
//! `::`-separated parts after the first, joined with `.` (a line with no `::` gives the id
//! `""`); a failed or errored id is cut at its first `" - "`, a passed one is not. Statuses are
//! `PASSED`, `FAILED`, `ERROR` only.

use agentmill_proto::TestStatus;
use indexmap::IndexMap;

use super::{Generation, ParseContext, ParseError, ParseFn, StatusMap, pystr};

/// The parser names this module serves (without the module's prefix).
pub(super) const NAMES: &[&str] = &["parse_log_pytest"];

/// The parser called `name` (without the prefix), if this module has it.
pub(super) fn lookup(name: &str) -> Option<ParseFn> {
    match name {
        "parse_log_pytest" => Some(parse_log_pytest),
        _ => None,
    }
}

/// The marker before pytest's `-rA` summary.
const SUMMARY_MARKER: &str = "short test summary info";

/// `".".join(line.split("::")[1:])`.
fn joined_id(line: &str) -> String {
    line.split("::").skip(1).collect::<Vec<_>>().join(".")
}

/// `s.split(" - ")[0]`.
fn cut_message(s: &str) -> &str {
    s.split(" - ").next().unwrap_or(s)
}

/// R2E-Gym's `parse_log_pytest` (see the module doc).
fn parse_log_pytest(log: &str, _: &ParseContext<'_>, _: Generation) -> Result<StatusMap, ParseError> {
    let mut map = StatusMap::new();
    let Some(section) = log.split(SUMMARY_MARKER).nth(1) else { return Ok(map) };
    for line in pystr::strip(section).split('\n') {
        if line.contains("PASSED") {
            map.insert(joined_id(line), TestStatus::Passed);
        } else if line.contains("FAILED") {
            map.insert(cut_message(&joined_id(line)).to_string(), TestStatus::Failed);
        } else if line.contains("ERROR") {
            map.insert(cut_message(&joined_id(line)).to_string(), TestStatus::Error);
        }
    }
    Ok(map)
}

/// `decolor_dict_keys`'s key rule: `re.sub(r"\u001b\[\d+m", "", key)` (`\d`: any decimal digit).
pub fn decolor(key: &str) -> String {
    use std::sync::LazyLock;
    static COLOUR: LazyLock<regex::Regex> = LazyLock::new(|| super::pyre::compile(r"\x1b\[\d+m"));
    COLOUR.replace_all(key, "").into_owned()
}

/// The map `_calculate_reward_r2e` compares, from a map in its original order: keys decoloured
/// (a key that decolours onto an earlier one overwrites its value in place), then, in sorted
/// key order, each key cut at its first `" - "` (a later key that cuts onto an earlier one
/// overwrites its value).
pub fn reward_view<V: Clone>(map: &IndexMap<String, V>) -> IndexMap<String, V> {
    let mut decoloured: IndexMap<String, V> = IndexMap::new();
    for (k, v) in map {
        decoloured.insert(decolor(k), v.clone());
    }
    let mut keys: Vec<&String> = decoloured.keys().collect();
    keys.sort();
    let mut out: IndexMap<String, V> = IndexMap::new();
    for k in keys {
        if let Some(v) = decoloured.get(k) {
            out.insert(cut_message(k).to_string(), v.clone());
        }
    }
    out
}

/// Why `_calculate_reward_r2e` gives no reward at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardError {
    /// `json.loads(expected_output_json)` failed, or gave no object (`.items()` raises).
    BadExpected(String),
    /// The maps have the same size but the first parsed key (in sorted order) that is not
    /// matched is missing from the expected map: `expected[k]` raises `KeyError`.
    KeyError(String),
}

/// `_calculate_reward_r2e`'s comparison: both maps through [`reward_view`] (the expected one in
/// the JSON's own key order); 0 when their sizes differ; else, over the parsed keys in order, 0
/// at the first whose expected status differs, `KeyError` at the first that the expected map
/// lacks, 1 when none does. Only a JSON string equal to the parsed status word matches.
pub fn reward(parsed: &StatusMap, expected_output_json: &str) -> Result<f64, RewardError> {
    let expected: OrderedObject = serde_json::from_str(expected_output_json).map_err(|e| RewardError::BadExpected(e.to_string()))?;
    let mut expected_map: IndexMap<String, serde_json::Value> = IndexMap::new();
    for (k, v) in expected.0 {
        expected_map.insert(k, v);
    }
    let expected = reward_view(&expected_map);
    let parsed: IndexMap<String, TestStatus> = parsed.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let parsed = reward_view(&parsed);
    if parsed.len() != expected.len() {
        return Ok(0.0);
    }
    for (k, status) in &parsed {
        let Some(want) = expected.get(k) else { return Err(RewardError::KeyError(k.clone())) };
        let word = match status {
            TestStatus::Passed => "PASSED",
            TestStatus::Failed => "FAILED",
            TestStatus::Error => "ERROR",
            TestStatus::Skipped => "SKIPPED",
            TestStatus::Xfail => "XFAIL",
            TestStatus::Missing => return Ok(0.0),
        };
        if want.as_str() != Some(word) {
            return Ok(0.0);
        }
    }
    Ok(1.0)
}

/// A JSON object's members in the document's order (duplicates kept; the caller folds them).
#[derive(Debug)]
struct OrderedObject(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<OrderedObject, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = access.next_entry::<String, serde_json::Value>()? {
                    members.push((k, v));
                }
                Ok(OrderedObject(members))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, TestStatus)]) -> StatusMap {
        pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
    }

    #[test]
    fn the_reward_compares_cut_decoloured_keys() {
        let parsed = map(&[("test_a", TestStatus::Passed), ("T.test_b - msg", TestStatus::Failed)]);
        assert_eq!(reward(&parsed, r#"{"test_a": "PASSED", "T.test_b": "FAILED"}"#), Ok(1.0));
        assert_eq!(reward(&parsed, r#"{"\u001b[32mtest_a": "PASSED", "T.test_b - other": "FAILED"}"#), Ok(1.0));
        assert_eq!(reward(&parsed, r#"{"test_a": "PASSED", "T.test_b": "PASSED"}"#), Ok(0.0));
        assert_eq!(reward(&parsed, r#"{"test_a": "PASSED"}"#), Ok(0.0));
        assert_eq!(reward(&parsed, r#"{"test_a": "PASSED", "T.test_c": "FAILED"}"#), Err(RewardError::KeyError("T.test_b".into())));
        assert!(matches!(reward(&parsed, "[]"), Err(RewardError::BadExpected(_))));
    }

    /// `_calculate_reward_r2e` as recorded by `tests/reference/record_parser_fixtures.py` (its own
    /// source run against a stand-in runtime) for `expected_output_json` values built from each
    /// corpus log's parse.
    #[test]
    fn the_reward_is_docker_pys_on_the_corpus() {
        use std::path::{Path, PathBuf};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/logs/r2e-gym");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("the corpus").filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().ends_with(".expected.json")).collect();
        files.sort();
        let mut checked = 0;
        let mut bad = Vec::new();
        for path in files {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("JSON");
            let log = std::fs::read_to_string(path.to_string_lossy().replace(".expected.json", ".log")).expect("the log");
            let parsed = parse_log_pytest(&log, &ParseContext::default(), Generation::V5).expect("parses");
            for entry in v["rewards"].as_array().into_iter().flatten() {
                checked += 1;
                let expected = entry["expected_output_json"].as_str().expect("a JSON text");
                let got = reward(&parsed, expected);
                let ok = match (entry.get("reward").and_then(serde_json::Value::as_f64), entry.get("error").and_then(serde_json::Value::as_str)) {
                    (Some(r), _) => got == Ok(r),
                    (None, Some(e)) if e.starts_with("KeyError") => matches!(got, Err(RewardError::KeyError(_))),
                    (None, Some(_)) => matches!(got, Err(RewardError::BadExpected(_))),
                    (None, None) => false,
                };
                if !ok {
                    bad.push(format!("{}: {got:?} for {entry}", path.display()));
                }
            }
        }
        assert!(checked > 100, "only {checked} rewards recorded");
        assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
    }

    #[test]
    fn a_later_sorted_key_that_cuts_onto_an_earlier_one_wins() {
        let m: IndexMap<String, u8> = [("b - 2".to_string(), 2), ("b - 1".to_string(), 1), ("a".to_string(), 0)].into_iter().collect();
        let view = reward_view(&m);
        assert_eq!(view.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("a", 0), ("b", 2)]);
    }
}
