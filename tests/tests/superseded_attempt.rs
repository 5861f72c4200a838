//! End to end: a worker cut off from the coordinator but not from Redis publishes the record of
//! an attempt whose lease expired, while the rollout's next attempt runs on another worker. The
//! coordinator accepts the second attempt; the real learner (`agentmill-learner train`) trains
//! that record only and counts the first as `superseded`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_proto::v1::{self, TaskState};
use agentmill_proto::{Message, Role, TrajectoryRecord, wire};
use agentmill_tests::{TestRedis, binary, free_port, noop_record, unique};
use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};

fn session(addr: &str, id: &str) -> SessionConfig {
    SessionConfig {
        addr: addr.to_string(),
        token: None,
        ca_cert: None,
        worker_id: id.to_string(),
        host: format!("{id}.host"),
        capacity: v1::Capacity { episodes: 1, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    }
}

/// An episode's record with some text to train on.
fn record(task: &str, attempt: u32, worker: &str) -> TrajectoryRecord {
    let words = "the parser reads each line and returns the value of the key when it is found in the file";
    let mut r = noop_record(task, 0, attempt, worker);
    r.messages = vec![
        Message::text(Role::System, "You are a software engineer."),
        Message::text(Role::User, format!("Fix the config parser. {words}. {words}.")),
        Message::text(Role::Assistant, format!("I read the parser: {words}. Then I fix it: {words}.")),
    ];
    r
}

async fn publish(redis_url: &str, stream: &str, r: &TrajectoryRecord) {
    let mut con = redis::Client::open(redis_url).expect("url").get_multiplexed_async_connection().await.expect("connect");
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(wire::FIELD_ID)
        .arg(&r.record_id)
        .arg(wire::FIELD_KIND)
        .arg(r.kind.as_str())
        .arg(wire::FIELD_CODEC)
        .arg(wire::CODEC_ZSTD_JSON)
        .arg(wire::FIELD_DATA)
        .arg(wire::encode(r).expect("encode"))
        .query_async(&mut con)
        .await
        .expect("XADD");
}

async fn get(c: &mut Client, id: &str) -> v1::TaskStatus {
    c.get_task(v1::GetTaskRequest { task_id: id.into() }).await.expect("get").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_attempt_published_by_a_cut_off_worker_is_not_trained() {
    let redis = TestRedis::start();
    let ns = unique("superseded");
    let stream = unique("superseded:trajectories");
    let cfg = agentmill_coordinator::config::CoordinatorConfig {
        listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: ns.clone(),
        stream: stream.clone(),
        lease_ttl: Duration::from_secs(2),
        heartbeat_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    let mut c = client::connect(&ClientConfig { addr: Some(addr.clone()), token: None, ca_cert: None }).await.expect("connect");
    let v = serde_json::json!({"instance_id": "sup-1", "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
    c.submit_tasks(v1::SubmitTasksRequest { tasks: vec![v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }], base_dir: String::new() })
        .await
        .expect("submit");

    // Worker A takes attempt 1, then loses the coordinator (its session ends; Redis it still reaches).
    let (a, mut a_events) = WorkerSession::start(session(&addr, "w-cut-off"));
    let a_grant = loop {
        if let Some(SessionEvent::Lease(g)) = a_events.recv().await {
            break g;
        }
    };
    assert_eq!(a_grant.attempt, 1);
    drop(a);
    drop(a_events);

    // Worker B gets attempt 2 once A's lease expires. While it runs, A publishes attempt 1's
    // record; then B publishes its own and reports.
    let (b, mut b_events) = WorkerSession::start(session(&addr, "w-healthy"));
    let b_grant = loop {
        if let Some(SessionEvent::Lease(g)) = b_events.recv().await {
            break g;
        }
    };
    assert_eq!(b_grant.attempt, 2, "B runs the rollout's next attempt");
    let late = record("sup-1", 1, "w-cut-off");
    let accepted = record("sup-1", 2, "w-healthy");
    publish(&redis.url, &stream, &late).await;
    publish(&redis.url, &stream, &accepted).await;
    b.result(
        &b_grant.lease_id,
        v1::EpisodeResult {
            record_id: accepted.record_id.clone(),
            exit_reason: v1::ExitReason::Submitted as i32,
            resolution: v1::Resolution::No as i32,
            ..Default::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = get(&mut c, "sup-1").await;
        if t.state == TaskState::Done as i32 {
            assert_eq!((t.rollouts[0].attempt, t.rollouts[0].worker_id.as_str()), (2, "w-healthy"));
            break;
        }
        assert!(Instant::now() < deadline, "the rollout did not finish: {t:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The learner reads both records.
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new(binary("agentmill-learner"))
        .arg("train")
        .args(["--redis-url", &redis.url, "--stream", &stream, "--group", "learner", "--consumer", "e2e"])
        .arg("--output-dir")
        .arg(out.path())
        .args(["--device", "cpu", "--threads", "1", "--seq-len", "64", "--micro-batch-rows", "1", "--grad-accum", "1"])
        .args(["--tokenizer-vocab", "300", "--until-idle", "2", "--metrics-listen", &format!("127.0.0.1:{}", free_port())])
        .env("AGENTMILL_LEARNER_COORDINATOR_NAMESPACE", &ns)
        .env("AGENTMILL_LEARNER_FLUSH_AFTER_IDLE", "30s")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run agentmill-learner");
    assert!(run.status.success(), "the learner failed: {}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).expect("summary.json")).expect("summary JSON");
    let records = &summary["records"];
    assert_eq!((records["env"].as_u64(), records["superseded"].as_u64()), (Some(1), Some(1)), "{records}");
    let ledger = std::fs::read_to_string(out.path().join("trained_records.jsonl")).expect("the ledger");
    let outcome = |id: &str| {
        ledger
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["record_id"] == id)
            .map(|l| l["outcome"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome(&accepted.record_id), ["trained"], "{ledger}");
    assert_eq!(outcome(&late.record_id), ["superseded"], "{ledger}");
    drop(running);
}
