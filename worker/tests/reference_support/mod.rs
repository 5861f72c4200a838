//! The Python reference harnesses as live references, one JSON request per line, for every
//! parser test:
//! * `swebench`: `tests/reference/swebench_ref.py` run with the project's `.venv` (5.x installed
//!   there, 4.1.0 in `.venv/swebench-4.1.0`); [`Reference::start`] picks the package of a
//!   [`Generation`]. 2.0.x is not installed: 4.1.0 stands in for it (see `Generation::V2`) and
//!   answers as 4.1.0 does, so a caller comparing a 2.0.x parser allows for what 2.0.x reads
//!   differently (no `XFAIL` status; `pytest_v2` raising on a one-word status line).
//! * `swesmith`: `tests/reference/swesmith_ref.py` with
//!   `PYTHONPATH=.venv/swesmith-0.0.9:.venv/swebench-4.1.0` (swesmith 0.0.9 imports swebench 4.x
//!   names); [`Reference::start_swesmith`].
//!
//! `deploy/setup.sh` installs all of them; a missing one fails the test with that fix.
//!
//! A status map comes back in the reference's insertion order, read from the answer's text (a
//! `serde_json::Value` object, without the `preserve_order` feature, sorts its keys). A status
//! word the reference's `TestStatus` does not have (its pytest parsers take any first token, so a
//! line `ERROR: usage …` gives `"ERROR:"`) is read as `TestStatus::Missing`, which is how
//! agentmill's parsers keep such an entry, and counted.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use agentmill_proto::TestStatus;
pub use agentmill_testkit::workspace;
use agentmill_worker::grading::parsers::{Generation, StatusMap};
use serde_json::{Value, json};

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
    /// The package version it reports (`4.1.0`, `5.0.2`, `0.0.9`).
    pub version: String,
}

impl Reference {
    /// Starts the `swebench` reference of `generation` (4.1.0 for 4.x and, standing in, for
    /// 2.0.x; 5.x for 5.x); panics with the fix when it is not installed.
    pub fn start(generation: Generation) -> Reference {
        let root = workspace();
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run deploy/setup.sh", python.display());
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("tests/reference/swebench_ref.py"));
        let four = matches!(generation, Generation::V2 | Generation::V4);
        if four {
            let dir = root.join(".venv/swebench-4.1.0");
            assert!(dir.exists(), "{} is missing: run deploy/setup.sh", dir.display());
            cmd.env("PYTHONPATH", dir);
        } else {
            cmd.env_remove("PYTHONPATH");
        }
        let r = Reference::spawn(cmd, "the swebench reference");
        let want = if four { "4." } else { "5." };
        assert!(r.version.starts_with(want), "the reference for {generation:?} is swebench {}: run deploy/setup.sh", r.version);
        r
    }

    /// Starts the `swesmith` 0.0.9 reference; panics with the fix when it is not installed.
    pub fn start_swesmith() -> Reference {
        let (python, pythonpath) = python_env();
        let mut cmd = Command::new(&python);
        cmd.arg(workspace().join("tests/reference/swesmith_ref.py")).env("PYTHONPATH", pythonpath);
        let r = Reference::spawn(cmd, "the swesmith reference");
        assert_eq!(r.version, "0.0.9", "the reference is swesmith {}: run deploy/setup.sh", r.version);
        r
    }

    /// Runs a driver and asks its version.
    fn spawn(mut cmd: Command, what: &str) -> Reference {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut r = Reference { child, stdin, stdout, version: String::new() };
        let v = r.ask(&json!({"op": "version"}));
        r.version = v["version"].as_str().expect("the reference reports its version").to_string();
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

    /// Whether the `swebench` reference has a parser of that name.
    pub fn has(&mut self, parser: &str) -> bool {
        let answer = self.try_ask(&json!({"op": "parse", "parser": parser, "log": ""}));
        !answer.get("error").and_then(Value::as_str).is_some_and(|e| e.contains("no parser named"))
    }

    /// The `swebench` reference parser's status map for `log`, in its insertion order, or what
    /// it raised.
    pub fn parse(&mut self, parser: &str, log: &str, instance_id: &str, version: &str, repo: &str) -> Result<StatusMap, String> {
        self.parse_counted(parser, log, instance_id, version, repo).0
    }

    /// [`Reference::parse`], with how many of its entries had a status word the reference's
    /// `TestStatus` lacks (read as `Missing`).
    pub fn parse_counted(&mut self, parser: &str, log: &str, instance_id: &str, version: &str, repo: &str) -> (Result<StatusMap, String>, usize) {
        self.parse_request(&json!({"op": "parse", "parser": parser, "log": log, "instance_id": instance_id, "version": version, "repo": repo}))
    }

    /// The status map the `log_parser` of the SWE-smith profile class `class` gives `log`, or
    /// the reference's error.
    pub fn parse_class(&mut self, class: &str, log: &str) -> Result<StatusMap, String> {
        self.parse_request(&json!({"op": "parse", "class": class, "log": log})).0
    }

    /// The same by SWE-smith registry key (`<owner>__<repo>.<commit8>` or `swesmith/…`).
    pub fn parse_profile(&mut self, key: &str, log: &str) -> Result<StatusMap, String> {
        self.parse_request(&json!({"op": "parse", "profile": key, "log": log})).0
    }

    /// A `parse` request's map (and its count of unknown words) or error.
    fn parse_request(&mut self, req: &Value) -> (Result<StatusMap, String>, usize) {
        let raw = self.ask_raw(req);
        let answer: ParseAnswer = serde_json::from_str(&raw).expect("the reference answers JSON");
        match (answer.error, answer.status) {
            (Some(e), _) => (Err(e), 0),
            (None, Some(OrderedWords(words))) => {
                let mut map = StatusMap::new();
                let mut unknown = 0;
                for (k, word) in words {
                    let status = status_of(&word, true);
                    unknown += usize::from(status == TestStatus::Missing);
                    map.insert(k, status);
                }
                (Ok(map), unknown)
            }
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

/// A reference's status word as agentmill stores it: a member of its `TestStatus` (`XFAIL` only
/// where `xfail`: SWE-rebench V2's and R2E-Gym's enums lack it), or `TestStatus::Missing` for any
/// other word.
pub fn status_of(word: &str, xfail: bool) -> TestStatus {
    match word {
        "PASSED" => TestStatus::Passed,
        "FAILED" => TestStatus::Failed,
        "SKIPPED" => TestStatus::Skipped,
        "ERROR" => TestStatus::Error,
        "XFAIL" if xfail => TestStatus::Xfail,
        _ => TestStatus::Missing,
    }
}

/// A `parse` answer.
#[derive(serde::Deserialize)]
struct ParseAnswer {
    status: Option<OrderedWords>,
    error: Option<String>,
}

/// A status map's entries in the JSON text's order, duplicates included (inserting them into a
/// `StatusMap` overwrites in place, as the reference's dict does).
struct OrderedWords(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for OrderedWords {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedWords;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of test ids to status words")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<OrderedWords, A::Error> {
                let mut words = Vec::new();
                while let Some(entry) = access.next_entry::<String, String>()? {
                    words.push(entry);
                }
                Ok(OrderedWords(words))
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
