//! `agentmill top --once` as an operator's script runs it: the real `agentmill` binary against a
//! real coordinator on a real Redis, after the bundled tasks are submitted, and again after a
//! learner has reported into Redis.

use std::process::Output;
use std::time::{Duration, Instant};

use agentmill_proto::stream::{LearnerStatus, publish_learner_status};
use agentmill_tests::{CoordinatorProcess, TestRedis, agentmill, bundled_tasks, unique, workspace};


/// The frame with runs of blanks collapsed, so assertions read like the figures.
fn flat(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
}

/// A coordinator reporting on a stream of its own, so this test's learner report cannot meet
/// another test's on a shared Redis.
async fn coordinator(redis: &TestRedis, stream: &str, dir: &std::path::Path) -> CoordinatorProcess {
    let config = dir.join("coordinator.toml");
    std::fs::write(&config, format!("stream = {stream:?}\nhistory_interval = \"200ms\"\n")).expect("write the coordinator config");
    CoordinatorProcess::start(&redis.url, &["--config", &config.to_string_lossy()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_once_shows_the_submitted_tasks_and_no_learner() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let coord = coordinator(&redis, &unique("top-stream"), dir.path()).await;
    let tasks = workspace().join("deploy/tasks/tasks.jsonl");
    let n = bundled_tasks().len();
    assert!(n > 0, "the bundled corpus has tasks");

    let submit = agentmill(&coord.addr, &["submit", &tasks.to_string_lossy()]);
    assert!(submit.status.success(), "submit: {}", String::from_utf8_lossy(&submit.stderr));

    let top = agentmill(&coord.addr, &["top", "--once"]);
    let screen = flat(&top);
    assert_eq!(top.status.code(), Some(0), "{screen}\n{}", String::from_utf8_lossy(&top.stderr));
    assert_eq!(top.stdout.iter().filter(|b| **b == b'\n').count(), 40, "the default frame is 40 rows");
    let header = screen.lines().next().unwrap_or_default();
    assert!(header.starts_with(&format!("agentmill top {} ", coord.addr)) && header.ends_with("connected"), "{header}");
    assert!(screen.contains(&format!("queued {n} ")), "{screen}");
    assert!(screen.contains(&format!("total {n} ")), "{screen}");
    for state in ["leased", "running", "done", "failed", "cancelled"] {
        assert!(screen.contains(&format!("{state} 0 ")), "{state}: {screen}");
    }
    assert!(screen.contains("results none yet"), "{screen}");
    assert!(screen.contains("no learner reporting"), "{screen}");
    assert!(screen.contains("no workers attached"), "{screen}");
    assert!(screen.contains("length 0 records"), "{screen}");

    let wide = agentmill(&coord.addr, &["top", "--once", "--width", "160", "--height", "30"]);
    assert_eq!(wide.stdout.iter().filter(|b| **b == b'\n').count(), 30);
    assert!(String::from_utf8_lossy(&wide.stdout).lines().any(|l| l.chars().count() == 160));

    // Without a terminal the live view refuses, and says what to run instead.
    let live = agentmill(&coord.addr, &["top"]);
    assert_eq!(live.status.code(), Some(1));
    let err = String::from_utf8_lossy(&live.stderr);
    assert!(err.contains("stdout is not a terminal") && err.contains("agentmill top --once"), "{err}");

    let unreachable = agentmill("http://127.0.0.1:1", &["top", "--once"]);
    assert_eq!(unreachable.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(err.contains("cannot reach the coordinator at http://127.0.0.1:1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_once_shows_the_learner_report_the_coordinator_serves() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let stream = unique("top-stream");
    let coord = coordinator(&redis, &stream, dir.path()).await;
    let client = redis::Client::open(redis.url.as_str()).expect("redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect to redis");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let report = LearnerStatus {
        learner_id: "top-test-learner:1".into(),
        device: "Cpu".into(),
        step: 1234,
        tokens_trained: 2_500_000,
        tokens_per_s: 880.0,
        loss: 2.34567,
        lr: 2e-5,
        grad_norm: 0.5,
        mfu: 0.0,
        records_by_kind: [("env_pass".to_string(), 3), ("ctx".to_string(), 7)].into_iter().collect(),
        packing_efficiency: 0.9,
        updated_unix_ms: now_ms,
        eval_loss: Some(3.125),
    };
    publish_learner_status(&mut con, &stream, &report).await.expect("publish the learner's report");

    // The coordinator samples the learner's report in the background: wait for it to show.
    let deadline = Instant::now() + Duration::from_secs(15);
    let screen = loop {
        let top = agentmill(&coord.addr, &["top", "--once"]);
        assert_eq!(top.status.code(), Some(0), "{}", String::from_utf8_lossy(&top.stderr));
        let screen = flat(&top);
        if !screen.contains("no learner reporting") || Instant::now() > deadline {
            break screen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(!screen.contains("no learner reporting"), "the coordinator did not serve the learner's report within 15s\n{screen}");
    for want in ["id top-test-learner:1 on Cpu", "step 1234 tokens trained 2.50M", "tokens/s 880", "loss 2.3457", "lr 2.00e-5 grad norm 0.500 eval 3.125", "MFU n/a on CPU packing 90.0%", "records ctx 7 · env_pass 3"] {
        assert!(screen.contains(want), "{want:?} missing from\n{screen}");
    }
}
