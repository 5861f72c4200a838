//! `agentmill top --once` as an operator's script runs it: the real `agentmill` binary against a
//! real coordinator on a real Redis, after the bundled tasks are submitted, and again after a
//! learner has reported into Redis. Each frame is compared whole; what differs from run to run
//! (the coordinator's address, the clock, the age of the learner's report) is written as a
//! placeholder first.

use std::process::Output;
use std::time::{Duration, Instant};

use agentmill_proto::stream::{LearnerStatus, publish_learner_status};
use agentmill_tests::{CoordinatorProcess, TestRedis, agentmill, bundled_tasks, unique, workspace};

/// The frame `top --once` printed, with the coordinator's address written `ADDR`, the header's
/// time `TIME` and the age of the learner's report `N` (its panel's width kept).
fn frame(o: &Output, addr: &str) -> String {
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(header) = lines.first_mut() {
        let prefix = format!(" agentmill top  {addr}  ");
        assert!(header.starts_with(&prefix), "the header names the coordinator:\n{text}");
        // The time is RFC 3339 to the second: 2026-01-01T00:00:00Z.
        let rest = &header[prefix.len()..];
        assert!(rest.len() >= 20 && rest.as_bytes()[19] == b'Z', "the header's time:\n{text}");
        *header = format!(" agentmill top  ADDR  TIME{}", &rest[20..]);
    }
    for line in &mut lines {
        if let Some(at) = line.find("│ reported ") {
            let digits = at + "│ reported ".len();
            let n = line[digits..].find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
            if n > 0 && line[digits + n..].starts_with("s ago") {
                line.replace_range(digits..digits + n + "s ago".len(), &format!("Ns ago{}", " ".repeat(n - 1)));
            }
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A frame written in a test: the text after the opening line break.
fn want(text: &str) -> &str {
    text.strip_prefix('\n').unwrap_or(text)
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
    assert_eq!(bundled_tasks().len(), 9, "the frames below show the 9 bundled tasks");

    let submit = agentmill(&coord.addr, &["submit", &tasks.to_string_lossy()]);
    assert!(submit.status.success(), "submit: {}", String::from_utf8_lossy(&submit.stderr));

    let top = agentmill(&coord.addr, &["top", "--once"]);
    let screen = frame(&top, &coord.addr);
    assert_eq!(top.status.code(), Some(0), "{screen}\n{}", String::from_utf8_lossy(&top.stderr));
    let default = r#"
 agentmill top  ADDR  TIME  connected
┌ tasks ─────────────────────────────┐┌ throughput ──────────────────────┐┌ learner ───────────────────────────────────┐
│ queued          9 ████████████████ ││ episodes/s 0.00 (1m)  0.00 (10m) ││ no learner reporting                       │
│ leased          0                  ││                                  ││ (a running learner reports every few       │
│ running         0                  ││                                  ││seconds; a report older than a minute is    │
│ done            0                  ││ leases 0 granted · 0 expired     ││dropped)                                    │
│ failed          0                  ││ stale results refused 0          ││                                            │
│ cancelled       0                  ││ episodes 0/0 slots on 0 workers  ││                                            │
│ total           9                  │└──────────────────────────────────┘│                                            │
│ results none yet                   │┌ stream ──────────────────────────┐│                                            │
│ exits none yet                     ││ length 0 records                 ││                                            │
│                                    ││ lag    0 not yet trained         ││                                            │
└────────────────────────────────────┘└──────────────────────────────────┘└────────────────────────────────────────────┘
┌ workers 0 ───────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│ no workers attached                                                                                                  │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
    assert_eq!(screen, want(default), "the default frame (120 x 40) as printed:\n{screen}");

    let wide = agentmill(&coord.addr, &["top", "--once", "--width", "160", "--height", "30"]);
    let screen = frame(&wide, &coord.addr);
    let wide_want = r#"
 agentmill top  ADDR  TIME  connected
┌ tasks ──────────────────────────────────────────┐┌ throughput ──────────────────────────────────┐┌ learner ──────────────────────────────────────────────────┐
│ queued          9 █████████████████████████████ ││ episodes/s 0.00 (1m)  0.00 (10m)             ││ no learner reporting                                      │
│ leased          0                               ││                                              ││ (a running learner reports every few seconds; a report    │
│ running         0                               ││                                              ││older than a minute is dropped)                            │
│ done            0                               ││ leases 0 granted · 0 expired                 ││                                                           │
│ failed          0                               ││ stale results refused 0                      ││                                                           │
│ cancelled       0                               ││ episodes 0/0 slots on 0 workers              ││                                                           │
│ total           9                               │└──────────────────────────────────────────────┘│                                                           │
│ results none yet                                │┌ stream ──────────────────────────────────────┐│                                                           │
│ exits none yet                                  ││ length 0 records                             ││                                                           │
│                                                 ││ lag    0 not yet trained                     ││                                                           │
└─────────────────────────────────────────────────┘└──────────────────────────────────────────────┘└───────────────────────────────────────────────────────────┘
┌ workers 0 ───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│ no workers attached                                                                                                                                          │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
│                                                                                                                                                              │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
    assert_eq!(screen, want(wide_want), "the 160 x 30 frame as printed:\n{screen}");

    // Without a terminal the live view refuses, and says what to run instead.
    let live = agentmill(&coord.addr, &["top"]);
    assert_eq!(live.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&live.stderr), "agentmill: stdout is not a terminal; for one frame as text (logs, scripts) use `agentmill top --once`\n");
    assert!(live.stdout.is_empty());

    let unreachable = agentmill("http://127.0.0.1:1", &["top", "--once"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unreachable.stderr),
        "agentmill: cannot reach the coordinator at http://127.0.0.1:1: transport error (is agentmill-coordinator running? set --addr or AGENTMILL_ADDR)\n"
    );
    assert!(unreachable.stdout.is_empty(), "nothing is drawn without an answer");
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
        let screen = frame(&top, &coord.addr);
        if !screen.contains("no learner reporting") || Instant::now() > deadline {
            break screen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(!screen.contains("no learner reporting"), "the coordinator did not serve the learner's report within 15s\n{screen}");
    let with_learner = r#"
 agentmill top  ADDR  TIME  connected
┌ tasks ─────────────────────────────┐┌ throughput ──────────────────────┐┌ learner ───────────────────────────────────┐
│ queued          0                  ││ episodes/s 0.00 (1m)  0.00 (10m) ││ id top-test-learner:1 on Cpu               │
│ leased          0                  ││                                  ││ step 1234  tokens trained 2.50M            │
│ running         0                  ││                                  ││ tokens/s 880       █                       │
│ done            0                  ││ leases 0 granted · 0 expired     ││ loss 2.3457        ▄                       │
│ failed          0                  ││ stale results refused 0          ││ lr 2.00e-5  grad norm 0.500  eval 3.125    │
│ cancelled       0                  ││ episodes 0/0 slots on 0 workers  ││ MFU n/a on CPU  packing 90.0%              │
│ total           0                  │└──────────────────────────────────┘│ records ctx 7 · env_pass 3                 │
│ results none yet                   │┌ stream ──────────────────────────┐│                                            │
│ exits none yet                     ││ length 0 records                 ││ reported Ns ago                            │
│                                    ││ lag    0 not yet trained         ││                                            │
└────────────────────────────────────┘└──────────────────────────────────┘└────────────────────────────────────────────┘
┌ workers 0 ───────────────────────────────────────────────────────────────────────────────────────────────────────────┐
│ no workers attached                                                                                                  │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
│                                                                                                                      │
└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
"#;
    assert_eq!(screen, want(with_learner), "the frame with the learner's report as printed:\n{screen}");
}
