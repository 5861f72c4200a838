//! R2E-Gym's and SWE-rebench V2's log parsers against the references themselves, output for
//! output: every parser (`r2e-gym:parse_log_pytest`; all 76 names of SWE-rebench V2's
//! `NAME_TO_PARSER`) reads every log of its harness's corpus in each variant (as written, CRLF
//! line ends, cut at a third, a half and two thirds of its characters, without its final
//! newline) and must give the reference's status map — keys, statuses and order — or fail where
//! the reference raises.
//!
//! The corpus (`worker/tests/data/logs/{r2e-gym,swe-rebench-v2}/<case>.log`) was made for
//! agentmill: `real_*` logs by the real tools (pytest 9.2, `cargo test`, `node --test` with its
//! spec, TAP and dot reporters), `hand_*` logs written in each runner's format to reach every
//! branch of every parser (and the reference's exceptions), `hostile_*` inputs (empty, CR only,
//! NUL, separators, other scripts' digits, a 5000-character line, …). The expected outputs
//! (`<case>.expected.json`) were recorded from the references by
//! `tests/reference/record_parser_fixtures.py`:
//!
//! * SWE-rebench V2 at `SWE-rebench/SWE-rebench-V2@c71902a8cf8d2b725f63d51f199f4d3e56f68d2d`
//!   (`lib/agent/log_parsers.py`, `scripts/eval.py`),
//! * R2E-Gym at `R2E-Gym/R2E-Gym@69bc953542b428d1e4c8a59ce3ea1a32e50ef0f0`
//!   (`src/r2egym/repo_analysis/execution_log_parser.py`, `agenthub/runtime/docker.py`),
//!
//! under CPython 3.11.7 (expat 2.5.0). To re-record after changing the corpus or moving to a
//! newer reference: export each reference (`git archive`), then run
//! `.venv/bin/python tests/reference/record_parser_fixtures.py --rebench DIR --rebench-commit SHA
//! --r2e DIR --r2e-commit SHA` and update the commits above.
//!
//! A reference status outside `PASSED FAILED SKIPPED ERROR` (a pytest line's first token such as
//! `PASSED:` or `XFAIL`, ScalaTest's `*** TIMEOUT ***`) is [`TestStatus::Missing`] here
//! (`reference_support::status_of` without `XFAIL`). Three parsers fill part of their map by
//! iterating a Python `set` (`parse_java_mvn`, `parse_log_haskell_v2`, `parse_log_ocaml_v2`):
//! their order is the interpreter's hash order, so those are compared as sets. The grading rules beside the parsers (`_normalize_test_name`,
//! `passed_match`, R2E-Gym's reward) are checked against the same recordings by the unit tests
//! of `worker/src/grading/parsers/{rebench_v2,r2e_gym}.rs`.

mod reference_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentmill_proto::TestStatus;
use agentmill_worker::grading::parsers::{self, Generation, ParseContext, StatusMap};
use reference_support::status_of;
use serde_json::Value;

/// The parsers whose reference order comes from a Python `set`.
const SET_ORDER: &[&str] = &["parse_java_mvn", "parse_log_haskell_v2", "parse_log_ocaml_v2"];

/// The keys of an expected file that are no variant of the log.
const NOT_VARIANTS: &[&str] = &["reference", "eval", "rewards"];

fn data_dir(harness: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/logs").join(harness)
}

/// The corpus of a harness: `(case, log, expected file)`, sorted by case.
fn corpus(harness: &str) -> Vec<(String, String, Value)> {
    let dir = data_dir(harness);
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .expect("the corpus directory exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".log")).map(str::to_string))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no logs in {}", dir.display());
    cases
        .into_iter()
        .map(|case| {
            let log = std::fs::read_to_string(dir.join(format!("{case}.log"))).expect("the log reads as UTF-8");
            let expected_path = dir.join(format!("{case}.expected.json"));
            let text = std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e} (re-record: tests/reference/record_parser_fixtures.py)", expected_path.display()));
            let expected: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            (case, log, expected)
        })
        .collect()
}

/// A log cut after `n` characters.
fn cut(log: &str, n: usize) -> String {
    log.chars().take(n).collect()
}

/// The variants the recorder made, by name (see the recorder's `variants`).
fn variants(log: &str) -> BTreeMap<String, String> {
    let n = log.chars().count();
    let mut out = BTreeMap::new();
    out.insert("as written".to_string(), log.to_string());
    out.insert("crlf".to_string(), log.replace('\n', "\r\n"));
    for (what, at) in [("cut 1/3", n / 3), ("cut 1/2", n / 2), ("cut 2/3", 2 * n / 3)] {
        if at > 0 && at < n {
            out.insert(what.to_string(), cut(log, at));
        }
    }
    if let Some(trimmed) = log.strip_suffix('\n') {
        out.insert("no final newline".to_string(), trimmed.to_string());
    }
    out
}

/// The recorded map as `(test, status)` pairs, or `None` where the reference raised.
fn expected_pairs(recorded: &Value) -> Option<Vec<(String, TestStatus)>> {
    if recorded.get("error").is_some() {
        return None;
    }
    let pairs = recorded.get("status").and_then(Value::as_array).expect("a recorded result has a status or an error");
    Some(
        pairs
            .iter()
            .map(|p| {
                let k = p.get(0).and_then(Value::as_str).expect("a test id");
                let v = p.get(1).and_then(Value::as_str).expect("a status word");
                (k.to_string(), status_of(v, false))
            })
            .collect(),
    )
}

/// Where the port differs from the recording, in a line; `None` when it does not.
fn compare(recorded: &Value, got: &Result<StatusMap, parsers::ParseError>, unordered: bool) -> Option<String> {
    match (expected_pairs(recorded), got) {
        (None, Err(_)) => None,
        (None, Ok(map)) => Some(format!("the reference raises ({}), the port gave {} entries", recorded["error"], map.len())),
        (Some(_), Err(e)) => Some(format!("the port failed: {e}")),
        (Some(mut want), Ok(map)) => {
            let mut have: Vec<(String, TestStatus)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
            if unordered {
                want.sort_by(|a, b| a.0.cmp(&b.0));
                have.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if want == have {
                return None;
            }
            let at = want.iter().zip(&have).position(|(a, b)| a != b).unwrap_or(want.len().min(have.len()));
            Some(format!(
                "{} entries vs the reference's {}; first difference at {at}: port {:?}, reference {:?}",
                have.len(),
                want.len(),
                have.get(at),
                want.get(at)
            ))
        }
    }
}

/// Runs `check` over the corpus; panics with every mismatch (the first 40 in full).
fn report(harness: &str, mismatches: &[String], checked: usize) {
    if mismatches.is_empty() {
        eprintln!("{harness}: {checked} parser runs equal the reference's");
        return;
    }
    let shown: Vec<&String> = mismatches.iter().take(40).collect();
    panic!("{harness}: {} of {checked} parser runs differ from the reference:\n{}", mismatches.len(), shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"));
}

/// `NAME_TO_PARSER.json`: every name in the reference's order, with its function.
fn rebench_registry() -> Vec<(String, String)> {
    let path = data_dir("swe-rebench-v2").join("NAME_TO_PARSER.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the registry is recorded")).expect("the registry is JSON");
    v["names"]
        .as_array()
        .expect("a list of names")
        .iter()
        .map(|p| (p[0].as_str().expect("a name").to_string(), p[1].as_str().expect("a function").to_string()))
        .collect()
}

#[test]
fn rebench_names_are_the_references_names_in_order() {
    let registry: Vec<String> = rebench_registry().into_iter().map(|(n, _)| n).collect();
    assert_eq!(registry.len(), 76);
    let ours: Vec<String> = parsers::all_names().into_iter().filter_map(|n| n.strip_prefix("swe-rebench-v2:").map(str::to_string)).collect();
    assert_eq!(ours, registry);
    for name in &registry {
        assert!(parsers::lookup(&format!("swe-rebench-v2:{name}")).is_some(), "{name} has no parser");
    }
    assert!(parsers::lookup("swe-rebench-v2:parse_log_django").is_none(), "not in NAME_TO_PARSER");
}

#[test]
fn rebench_parsers_match_the_reference_on_the_corpus() {
    let registry = rebench_registry();
    let empty = serde_json::json!({"status": []});
    let ctx = ParseContext::default();
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (case, log, expected) in corpus("swe-rebench-v2") {
        let made = variants(&log);
        let obj = expected.as_object().expect("an object");
        for (variant, by_function) in obj.iter().filter(|(k, _)| !NOT_VARIANTS.contains(&k.as_str())) {
            let text = made.get(variant).unwrap_or_else(|| panic!("{case}: the recorder's variant {variant:?} is not made here"));
            for (name, function) in &registry {
                // The recorder leaves out the parsers that gave an empty map.
                let recorded = by_function.get(function).unwrap_or(&empty);
                let got = parsers::parse(&format!("swe-rebench-v2:{name}"), text, &ctx, Generation::V5).expect("the parser exists");
                checked += 1;
                if let Some(why) = compare(recorded, &got, SET_ORDER.contains(&function.as_str())) {
                    mismatches.push(format!("{case} [{variant}] {name}: {why}"));
                }
            }
        }
        assert_eq!(obj.len() - NOT_VARIANTS.iter().filter(|k| obj.contains_key(**k)).count(), made.len(), "{case}: the variants differ");
    }
    report("swe-rebench-v2", &mismatches, checked);
}

#[test]
fn r2e_parser_matches_the_reference_on_the_corpus() {
    assert_eq!(parsers::all_names().iter().filter(|n| n.starts_with("r2e-gym:")).count(), 1);
    let empty = serde_json::json!({"status": []});
    let ctx = ParseContext::default();
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (case, log, expected) in corpus("r2e-gym") {
        let made = variants(&log);
        let obj = expected.as_object().expect("an object");
        for (variant, by_function) in obj.iter().filter(|(k, _)| !NOT_VARIANTS.contains(&k.as_str())) {
            let text = made.get(variant).unwrap_or_else(|| panic!("{case}: the recorder's variant {variant:?} is not made here"));
            let got = parsers::parse("r2e-gym:parse_log_pytest", text, &ctx, Generation::V5).expect("the parser exists");
            checked += 1;
            if let Some(why) = compare(by_function.get("parse_log_pytest").unwrap_or(&empty), &got, false) {
                mismatches.push(format!("{case} [{variant}]: {why}"));
            }
        }
    }
    report("r2e-gym", &mismatches, checked);
}

#[test]
fn every_log_has_a_recording_and_every_recording_a_log() {
    for harness in ["r2e-gym", "swe-rebench-v2"] {
        let dir = data_dir(harness);
        for entry in std::fs::read_dir(&dir).expect("the corpus directory exists").filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(case) = name.strip_suffix(".expected.json") {
                assert!(dir.join(format!("{case}.log")).exists(), "{harness}/{name} has no log");
            } else if let Some(case) = name.strip_suffix(".log") {
                assert!(dir.join(format!("{case}.expected.json")).exists(), "{harness}/{name} was never recorded");
            }
        }
    }
}

/// No input makes a parser panic: every log cut at many points, and byte-level noise.
#[test]
fn no_parser_panics_on_cut_or_noisy_input() {
    let ctx = ParseContext::default();
    let names: Vec<String> = parsers::all_names().into_iter().filter(|n| n.starts_with("swe-rebench-v2:") || n.starts_with("r2e-gym:")).collect();
    let mut inputs: Vec<String> = Vec::new();
    for harness in ["swe-rebench-v2", "r2e-gym"] {
        for (_, log, _) in corpus(harness) {
            let chars: Vec<char> = log.chars().collect();
            let step = (chars.len() / 7).max(1);
            for at in (0..chars.len()).step_by(step) {
                inputs.push(chars[at..].iter().collect());
            }
        }
    }
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet: Vec<char> = "<>?/![]{}()\"'=&#;: \n\r\t-_.xXmsPASFILEDok✓✔✕✖×○↓⨯0123456789٣²\u{1b}\u{0}\u{1c}é".chars().collect();
    for _ in 0..300 {
        let mut s = String::new();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        inputs.push(s);
    }
    for input in &inputs {
        for name in &names {
            let _ = parsers::parse(name, input, &ctx, Generation::V5);
        }
    }
}
