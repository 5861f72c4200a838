//! Corpora of SWE-bench rows under `deploy/` (`multilingual/`, `swebench/`) as their tests use
//! them: the rows as JSON by instance id, their test lists, their images (built by the corpus's
//! own script, never here), and a local `agentmill-worker run --policy replay --validate` over a
//! rows file with the records it writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use agentmill_proto::{TestStatus, TrajectoryRecord};
use serde_json::Value;

use crate::binary;

/// The rows of a JSON-lines file by instance id, as JSON.
pub fn rows(path: &Path) -> BTreeMap<String, Value> {
    agentmill_testkit::read(path)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON row"))
        .map(|r| (r["instance_id"].as_str().expect("an instance_id").to_string(), r))
        .collect()
}

/// A JSON-encoded test list of a row (`FAIL_TO_PASS`, `PASS_TO_PASS`), decoded.
pub fn listed(row: &Value, key: &str) -> Vec<String> {
    serde_json::from_str(row[key].as_str().unwrap_or_else(|| panic!("{key} is a JSON-encoded string"))).expect("a list of test ids")
}

/// Panics, naming `fix` (the script that builds them), unless every row's image is on this host.
pub fn images_or_fail(rows: &BTreeMap<String, Value>, fix: &str) {
    for row in rows.values() {
        agentmill_testkit::docker::require_image(row["image"].as_str().expect("an image"), fix);
    }
}

/// Starts `agentmill-worker run` on `tasks` with the replay policy, validating (exit 1 when a
/// gold patch does not resolve), its records written to `out`; stdout and stderr piped.
pub fn run_worker(worker_id: &str, tasks: &Path, out: &Path) -> Child {
    Command::new(binary("agentmill-worker"))
        .args(["--worker-id", worker_id, "--episodes", "2", "run"])
        .arg(tasks)
        .args(["--policy", "replay", "--validate", "--out"])
        .arg(out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start agentmill-worker run")
}

/// The records of a run's `--out` file by task id.
pub fn records(path: &Path) -> BTreeMap<String, TrajectoryRecord> {
    agentmill_testkit::read(path).lines().map(|l| serde_json::from_str::<TrajectoryRecord>(l).expect("a record")).map(|r| (r.task_id.clone(), r)).collect()
}

/// Every listed test of the record with its status, F2P first, in the row's order.
pub fn statuses(r: &TrajectoryRecord) -> Vec<(String, TestStatus)> {
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("{}: no grading", r.task_id));
    g.fail_to_pass.iter().chain(&g.pass_to_pass).map(|t| (t.name.clone(), t.status)).collect()
}

/// A process's stderr as text.
pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
