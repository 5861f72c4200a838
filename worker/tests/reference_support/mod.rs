//! The `swebench` package as a live reference: `tests/reference/swebench_ref.py` run with the
//! project's `.venv` (5.x installed there, 4.1.0 in `.venv/swebench-4.1.0`), one JSON request
//! per line. `deploy/setup.sh` installs both; a missing one fails the test with that fix.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use agentmill_proto::TestStatus;
use agentmill_worker::grading::parsers::{Generation, StatusMap};
use serde_json::{Value, json};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running reference process of one generation.
pub struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The package version it reports (`4.1.0`, `5.0.2`).
    pub version: String,
}

impl Reference {
    /// Starts the reference of `generation`; panics with the fix when it is not installed.
    pub fn start(generation: Generation) -> Reference {
        let root = workspace();
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run deploy/setup.sh", python.display());
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("tests/reference/swebench_ref.py")).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if generation == Generation::V4 {
            let dir = root.join(".venv/swebench-4.1.0");
            assert!(dir.exists(), "{} is missing: run deploy/setup.sh", dir.display());
            cmd.env("PYTHONPATH", dir);
        } else {
            cmd.env_remove("PYTHONPATH");
        }
        let mut child = cmd.spawn().expect("starting the swebench reference");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut r = Reference { child, stdin, stdout, version: String::new() };
        let v = r.ask(&json!({"op": "version"}));
        r.version = v["version"].as_str().expect("the reference reports its version").to_string();
        let want = if generation == Generation::V4 { "4." } else { "5." };
        assert!(r.version.starts_with(want), "the reference for {generation:?} is swebench {}: run deploy/setup.sh", r.version);
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

    /// The reference parser's status map for `log`, in its insertion order. (Read from the
    /// answer's text: a `serde_json::Value` object, without the `preserve_order` feature, sorts
    /// its keys.)
    pub fn parse(&mut self, parser: &str, log: &str, instance_id: &str, version: &str, repo: &str) -> Result<StatusMap, String> {
        let raw = self.ask_raw(&json!({"op": "parse", "parser": parser, "log": log, "instance_id": instance_id, "version": version, "repo": repo}));
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

/// A reference status map (JSON object of status words) as agentmill's type. The order is the
/// `Value`'s, which sorts keys (no `preserve_order`): [`Reference::parse`] keeps the reference's.
pub fn status_map(v: &Value) -> StatusMap {
    let obj = v.as_object().expect("a status map is an object");
    obj.iter().map(|(k, s)| (k.clone(), status_word(s.as_str().expect("status word")))).collect()
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

/// Compares two status maps key for key and in order; the message names the first difference.
pub fn diff_maps(ours: &StatusMap, reference: &StatusMap) -> Option<String> {
    if ours == reference && ours.keys().eq(reference.keys()) {
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

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}…", &s[..s.char_indices().take_while(|(i, _)| *i < 300).last().map(|(i, _)| i).unwrap_or(0)]) } else { s }
}
