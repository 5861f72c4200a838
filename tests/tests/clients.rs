//! The coordinator's clients as users run them: the `agentmill` CLI (each output compared
//! whole) and a Python client generated from the `.proto` files by grpcio-tools.

use std::process::{Command, Output};
use std::time::Duration;

use agentmill_tests::{CoordinatorProcess, TestRedis, agentmill, binary, workspace};

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ROWS: &str = r#"{"instance_id": "cli-1", "repo": "agentmill/x", "FAIL_TO_PASS": "[\"t.py::a\"]", "labels": {"team": "core"}}
{"instance_id": "cli-bad", "FAIL_TO_PASS": "t.py::a"}

{"instance_id": "cli-2", "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::b"], "rollouts": 2, "priority": 3}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_end_to_end() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tasks.jsonl");
    std::fs::write(&file, ROWS).expect("write tasks");
    let file = file.to_string_lossy().into_owned();

    let out = agentmill(&coord.addr, &["submit", &file]);
    assert_eq!(out.status.code(), Some(2), "some rows refused → exit 2");
    let refused = "  line 2 (cli-bad): FAIL_TO_PASS: is not a JSON list of test names: \"t.py::a\"; write an array such as [\"tests/test_x.py::test_y\"] (or that array JSON-encoded as a string)\n";
    assert_eq!(text(&out), format!("{file}: 2 accepted, 0 already known, 1 rows rejected\n{refused}"));
    let again = agentmill(&coord.addr, &["submit", &file]);
    assert_eq!(text(&again), format!("{file}: 0 accepted, 2 already known, 1 rows rejected\n{refused}"));

    let get = agentmill(&coord.addr, &["get", "cli-2"]);
    assert!(get.status.success());
    assert_eq!(text(&get), "cli-2  queued\n  rollout 0  queued  attempt 1\n  rollout 1  queued  attempt 1\n");

    let list = agentmill(&coord.addr, &["list", "--state", "queued", "--label", "team=core"]);
    assert_eq!(text(&list), "cli-1  queued\n  rollout 0  queued  attempt 1\n");

    let json = agentmill(&coord.addr, &["--json", "get", "cli-2"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(v["task"]["instanceId"], "cli-2");
    assert_eq!(v["task"]["priority"], 3);
    assert_eq!(v["state"], "TASK_STATE_QUEUED");
    assert_eq!(v["rollouts"].as_array().map(Vec::len), Some(2));

    let cancel = agentmill(&coord.addr, &["cancel", "cli-1", "nope"]);
    assert_eq!(cancel.status.code(), Some(2));
    assert_eq!(text(&cancel), "cancelled: 1\n  nope: not found\n");

    let stats = agentmill(&coord.addr, &["stats"]);
    assert_eq!(
        text(&stats),
        "tasks: cancelled 1, queued 1\nepisodes/s: 0.00 (1 min), 0.00 (10 min)\nresults: \nleases: 0 granted, 0 expired, 0 stale results refused\nworkers: 0\n"
    );
    // A reader gone before the output comes (`agentmill stats | head -0`): quiet, exit 0.
    let mut gone = Command::new(binary("agentmill"))
        .arg("--addr")
        .arg(&coord.addr)
        .arg("stats")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run agentmill");
    drop(gone.stdout.take());
    let gone = gone.wait_with_output().expect("agentmill ends");
    assert_eq!((gone.status.code(), String::from_utf8_lossy(&gone.stderr).as_ref()), (Some(0), ""));

    let retry = agentmill(&coord.addr, &["retry", "cli-1", "cli-2", "nope"]);
    assert_eq!(retry.status.code(), Some(2));
    assert_eq!(text(&retry), "retried: 1\n  cli-2: nothing to retry (no failed or cancelled rollout)\n  nope: not found\n");
    let get = agentmill(&coord.addr, &["get", "cli-1"]);
    assert_eq!(text(&get), "cli-1  queued\n  rollout 0  queued  attempt 2  (retried by a client)\n");

    let unreachable = agentmill("http://127.0.0.1:1", &["stats"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unreachable.stderr),
        "agentmill: cannot reach the coordinator at http://127.0.0.1:1: transport error (is agentmill-coordinator running? set --addr or AGENTMILL_ADDR)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_generated_from_the_proto_submits_and_watches() {
    let python = workspace().join(".venv/bin/python");
    assert!(python.is_file(), "{} is missing; run deploy/setup.sh", python.display());
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let addr = format!("127.0.0.1:{}", coord.port);
    let script = workspace().join("deploy/examples/python_client.py");

    // Start watching first, then submit the bundled tasks from Python too.
    let watcher = Command::new(&python).arg(&script).args(["--addr", &addr, "watch", "--count", "9"]).stdout(std::process::Stdio::piped()).spawn().expect("python watch");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tasks = workspace().join("deploy/tasks/tasks.jsonl");
    let submit = Command::new(&python).arg(&script).args(["--addr", &addr, "submit"]).arg(&tasks).output().expect("python submit");
    assert!(submit.status.success(), "{}", String::from_utf8_lossy(&submit.stderr));
    let v: serde_json::Value = serde_json::from_slice(&submit.stdout).expect("json");
    assert_eq!(v["accepted"].as_array().map(Vec::len), Some(9), "{v}");

    let out = tokio::time::timeout(Duration::from_secs(60), tokio::task::spawn_blocking(move || watcher.wait_with_output()))
        .await
        .expect("the watcher saw 9 events in time")
        .expect("join")
        .expect("watcher output");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(events.len(), 9);
    let mut ids: Vec<&str> = events.iter().filter_map(|e| e["task_id"].as_str()).collect();
    ids.sort();
    assert_eq!(ids.first(), Some(&"agentmill__calc-1"));
    assert!(events.iter().all(|e| e["state"] == "TASK_STATE_QUEUED"), "{events:?}");
}

/// `agentmill trajectory` (GetTrajectory): an episode's record read from the stream through the
/// workers' publish index, as a transcript or as the record itself, and a reason — with the
/// right status code — when there is none to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trajectory_shows_an_episodes_record_and_says_why_when_there_is_none() {
    use agentmill_proto::{ExitReason, FunctionCall, Grading, Message, RecordKind, Role, TestOutcome, TestStatus, ToolCall, TrajectoryRecord, stream, wire};

    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let traj = agentmill_tests::unique("test:traj");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, format!("stream = {traj:?}\n")).expect("write config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8 path")]).await;
    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(&tasks, r#"{"instance_id": "traj-1", "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "rollouts": 2}"#).expect("write tasks");
    assert!(agentmill(&coord.addr, &["submit", tasks.to_str().expect("utf-8 path")]).status.success());

    // Exit 1, nothing on stdout, and the coordinator's status (its code's description, then
    // its message) on stderr.
    let refused = |args: &[&str], want: &str| {
        let o = agentmill(&coord.addr, args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!((o.status.code(), err.as_str(), o.stdout.is_empty()), (Some(1), format!("agentmill: {want}\n").as_str(), true), "{args:?}");
    };
    let not_found = "Some requested entity was not found";
    let unpublished = |n: u32| format!("{not_found}: rollout {n} of traj-1 has published no record (it is queued, attempt 1); a record is published when an episode ends");
    refused(&["trajectory", "traj-1"], &unpublished(0));
    refused(&["trajectory", "traj-1", "--rollout", "5"], "Client specified an invalid argument: rollout: traj-1 has rollouts 0 to 1");
    refused(&["trajectory", "nope-9"], &format!("{not_found}: task \"nope-9\" is not known to this coordinator"));

    // A worker publishes the episode: XADD, and the record id in the publish index.
    let mut call = Message::text(Role::Assistant, "Run the failing test.");
    call.tool_calls = vec![ToolCall { id: "c1".into(), kind: "function".into(), function: FunctionCall { name: "bash".into(), arguments: r#"{"command": "python -m pytest t.py"}"#.into() } }];
    let mut obs = Message::text(Role::Tool, "1 passed in 0.01s");
    (obs.tool_call_id, obs.name, obs.exit_code, obs.duration_ms) = (Some("c1".into()), Some("bash".into()), Some(0), Some(5));
    let record = TrajectoryRecord {
        worker: "w-7".into(),
        messages: vec![Message::text(Role::User, "t.py::a fails"), call, obs],
        exit_reason: Some(ExitReason::Submitted),
        grading: Some(Grading::from_outcomes(vec![TestOutcome::new("t.py::a", TestStatus::Passed)], vec![], "git apply")),
        model_patch: Some("diff --git a/t.py b/t.py\n".into()),
        ..TrajectoryRecord::new(RecordKind::Env, TrajectoryRecord::episode_record_id("traj-1", 0, 1), "traj-1")
    };
    let client = redis::Client::open(redis.url.as_str()).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    let entry: String = redis::cmd("XADD")
        .arg(&traj)
        .arg("*")
        .arg(wire::FIELD_ID)
        .arg(&record.record_id)
        .arg(wire::FIELD_KIND)
        .arg("env")
        .arg(wire::FIELD_CODEC)
        .arg(wire::CODEC_ZSTD_JSON)
        .arg(wire::FIELD_DATA)
        .arg(wire::encode(&record).expect("encode"))
        .query_async(&mut con)
        .await
        .expect("XADD");
    let _: u64 = redis::cmd("HSET").arg(stream::publish_index_key(&traj)).arg(&record.record_id).arg(&entry).query_async(&mut con).await.expect("HSET");

    let o = agentmill(&coord.addr, &["trajectory", "traj-1"]);
    let shown = text(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = r#"traj-1 rollout 0 attempt 1 · worker w-7 · policy - · submitted · 1 steps · 0.0 s
graded FULL: FAIL_TO_PASS 1/1, PASS_TO_PASS 0/0 (patch applied by git apply)

── user ──
t.py::a fails

── assistant ──
Run the failing test.
→ bash({"command": "python -m pytest t.py"})

── tool (bash, exit 0, 5 ms) ──
1 passed in 0.01s

── grading ──
FAIL_TO_PASS passed   t.py::a

── patch ──
diff --git a/t.py b/t.py

"#;
    assert_eq!(shown, format!("{want}(env:traj-1:r0:a1 · stream entry {entry})\n"), "the transcript as printed:\n{shown}");
    let json: serde_json::Value = serde_json::from_str(&text(&agentmill(&coord.addr, &["--json", "trajectory", "traj-1"]))).expect("--json prints the record");
    assert_eq!(json, serde_json::to_value(&record).expect("json"), "the record as the worker published it");
    // A client generated from the .proto reads it too, and sees NOT_FOUND as a status code.
    let python = |args: &[&str]| {
        Command::new(workspace().join(".venv/bin/python"))
            .arg(workspace().join("deploy/examples/python_client.py"))
            .args(["--addr", &format!("127.0.0.1:{}", coord.port), "trajectory"])
            .args(args)
            .output()
            .expect("python trajectory")
    };
    let o = python(&["traj-1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!((v["record_id"].as_str(), v["resolution"].as_str(), v["tool_calls"].clone()), (Some("env:traj-1:r0:a1"), Some("FULL"), serde_json::json!(["bash"])), "{v}");
    let o = python(&["traj-1", "--rollout", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(!o.status.success() && v["error"] == "NOT_FOUND", "{v}");
    refused(&["trajectory", "traj-1", "--rollout", "1"], &unpublished(1));

    // Trimmed from the stream once every group acknowledged it: said so, not "never published".
    let _: u64 = redis::cmd("XDEL").arg(&traj).arg(&entry).query_async(&mut con).await.expect("XDEL");
    refused(
        &["trajectory", "traj-1"],
        &format!("{not_found}: env:traj-1:r0:a1 was entry {entry} of {traj}, trimmed after every consumer group acknowledged it (trim_acknowledged); the learner's ledger still lists it"),
    );
}
