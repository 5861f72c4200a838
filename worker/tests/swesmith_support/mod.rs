//! SWE-smith's harness as a live reference: `tests/reference/swesmith_ref.py` run with the
//! project's `.venv` and `PYTHONPATH=.venv/swesmith-0.0.9:.venv/swebench-4.1.0` (swesmith 0.0.9
//! imports swebench 4.x names), one JSON request per line. `deploy/setup.sh` installs both
//! folders; a missing one fails the test with that fix.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use agentmill_proto::TestStatus;
use agentmill_worker::grading::parsers::StatusMap;
use serde_json::{Value, json};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python interpreter and the `PYTHONPATH` that import swesmith 0.0.9; panics with the fix
/// when they are not installed.
pub fn python_env() -> (PathBuf, String) {
    let root = workspace();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run deploy/setup.sh", python.display());
    let swesmith = root.join(".venv/swesmith-0.0.9");
    let swebench4 = root.join(".venv/swebench-4.1.0");
    for dir in [&swesmith, &swebench4] {
        assert!(dir.exists(), "{} is missing: run deploy/setup.sh (it installs swesmith 0.0.9 and swebench 4.1.0 beside the venv)", dir.display());
    }
    (python, format!("{}:{}", swesmith.display(), swebench4.display()))
}

/// A running reference process.
pub struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The package version it reports (`0.0.9`).
    pub version: String,
}

impl Reference {
    /// Starts the reference; panics with the fix when it is not installed.
    pub fn start() -> Reference {
        let (python, pythonpath) = python_env();
        let mut child = Command::new(&python)
            .arg(workspace().join("tests/reference/swesmith_ref.py"))
            .env("PYTHONPATH", pythonpath)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the swesmith reference");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut r = Reference { child, stdin, stdout, version: String::new() };
        let v = r.ask(&json!({"op": "version"}));
        r.version = v["version"].as_str().expect("the reference reports its version").to_string();
        assert_eq!(r.version, "0.0.9", "the reference is swesmith {}: run deploy/setup.sh", r.version);
        r
    }

    /// One request, one answer; an `error` answer panics with the reference's message.
    pub fn ask(&mut self, req: &Value) -> Value {
        let v = self.try_ask(req);
        if let Some(e) = v.get("error") {
            panic!("the reference failed on {}: {e}", short(req));
        }
        v
    }

    /// One request, one answer, errors included.
    pub fn try_ask(&mut self, req: &Value) -> Value {
        serde_json::from_str(&self.ask_raw(req)).expect("the reference answers JSON")
    }

    /// One request, the answer's JSON text.
    fn ask_raw(&mut self, req: &Value) -> String {
        let mut line = serde_json::to_string(req).expect("request");
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).expect("writing to the reference");
        self.stdin.flush().expect("flush");
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).expect("reading the reference");
        assert!(!answer.is_empty(), "the reference exited");
        answer
    }

    /// The status map the `log_parser` of the profile class `class` gives `log`, in its insertion
    /// order, or the reference's error. (Read from the answer's text: a `serde_json::Value`
    /// object, without the `preserve_order` feature, sorts its keys.)
    pub fn parse_class(&mut self, class: &str, log: &str) -> Result<StatusMap, String> {
        self.parse_request(&json!({"op": "parse", "class": class, "log": log}))
    }

    /// The same by registry key (`<owner>__<repo>.<commit8>` or `swesmith/…`).
    pub fn parse_profile(&mut self, key: &str, log: &str) -> Result<StatusMap, String> {
        self.parse_request(&json!({"op": "parse", "profile": key, "log": log}))
    }

    fn parse_request(&mut self, req: &Value) -> Result<StatusMap, String> {
        let raw = self.ask_raw(req);
        let answer: ParseAnswer = serde_json::from_str(&raw).expect("the reference answers JSON");
        match (answer.error, answer.status) {
            (Some(e), _) => Err(e),
            (None, Some(OrderedStatus(map))) => Ok(map),
            (None, None) => panic!("the reference answered neither a status nor an error: {raw}"),
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_word(word: &str) -> TestStatus {
    match word {
        "PASSED" => TestStatus::Passed,
        "FAILED" => TestStatus::Failed,
        "SKIPPED" => TestStatus::Skipped,
        "ERROR" => TestStatus::Error,
        "XFAIL" => TestStatus::Xfail,
        other => panic!("the reference gave an unknown status {other:?}"),
    }
}

/// A `parse` answer.
#[derive(serde::Deserialize)]
struct ParseAnswer {
    status: Option<OrderedStatus>,
    error: Option<String>,
}

/// A status map read in the JSON text's order (a later duplicate key overwrites in place, as
/// `StatusMap::insert` does).
struct OrderedStatus(StatusMap);

impl<'de> serde::Deserialize<'de> for OrderedStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedStatus;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of test ids to status words")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<OrderedStatus, A::Error> {
                let mut map = StatusMap::new();
                while let Some((k, word)) = access.next_entry::<String, String>()? {
                    map.insert(k, status_word(&word));
                }
                Ok(OrderedStatus(map))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Compares two status maps key for key and, where `ordered`, in order; the message names the
/// first difference.
pub fn diff_maps(ours: &StatusMap, reference: &StatusMap, ordered: bool) -> Option<String> {
    if ours == reference && (!ordered || ours.keys().eq(reference.keys())) {
        return None;
    }
    for (k, v) in reference {
        match ours.get(k) {
            None => return Some(format!("missing key {k:?} (reference: {v:?}); ours has {} keys, the reference {}", ours.len(), reference.len())),
            Some(o) if o != v => return Some(format!("key {k:?}: ours {o:?}, reference {v:?}")),
            _ => {}
        }
    }
    for k in ours.keys() {
        if !reference.contains_key(k) {
            return Some(format!("extra key {k:?} (ours: {:?})", ours[k]));
        }
    }
    let first = ours.keys().zip(reference.keys()).position(|(a, b)| a != b).unwrap_or(0);
    Some(format!("same entries, different order from position {first}"))
}

/// A request, shortened for a message.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 { format!("{}…", s.chars().take(300).collect::<String>()) } else { s }
}
