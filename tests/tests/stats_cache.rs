//! `/api/stats` and `ClusterStats` are served from counts kept incrementally: polling them
//! re-counts no task, and the counts are exact right after every change.

use std::time::{Duration, Instant};

use agentmill_cli::client::{self, ClientConfig};
use agentmill_proto::v1;
use agentmill_tests::{TestRedis, free_port, http_get, unique};

fn row(id: &str) -> v1::TaskInput {
    let v = serde_json::json!({"instance_id": id, "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
    v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }
}

/// `tasksByState` of `/api/stats`, as numbers.
async fn counts(port: u16) -> (u64, u64) {
    let body = http_get(port, "/api/stats").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/stats is not JSON ({e}): {body}"));
    let n = |s: &str| v["tasksByState"][s].as_str().and_then(|x| x.parse().ok()).unwrap_or(0);
    (n("queued"), n("cancelled"))
}

async fn recounts(port: u16) -> u64 {
    let text = http_get(port, "/metrics").await;
    text.lines()
        .find(|l| l.starts_with("agentmill_coordinator_task_recounts_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no agentmill_coordinator_task_recounts_total in /metrics"))
}

/// Polls `/api/stats` until it shows `want` (the count follows a change within a second).
async fn until_counts(port: u16, want: (u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = counts(port).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "/api/stats shows (queued, cancelled) = {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_stats_readers_share_one_count_and_the_count_follows_changes() {
    let redis = TestRedis::start();
    let http = free_port();
    let cfg = agentmill_coordinator::config::CoordinatorConfig {
        listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
        metrics_listen: Some(format!("127.0.0.1:{http}").parse().expect("addr")),
        redis_url: redis.url.clone(),
        namespace: unique("stats-cache"),
        history_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let mut c = client::connect(&ClientConfig { addr: Some(format!("http://{}", running.addr)), token: None, ca_cert: None })
        .await
        .expect("connect");
    let ids: Vec<String> = (0..200).map(|i| format!("stats-{i}")).collect();
    c.submit_tasks(v1::SubmitTasksRequest { tasks: ids.iter().map(|id| row(id)).collect(), base_dir: String::new() })
        .await
        .expect("submit");
    until_counts(http, (200, 0)).await;

    // Nothing changes now (no worker): 300 readers at once, and the observer and the gauges
    // ticking meanwhile, are all served the counts as they stand, re-counting no task.
    let before = recounts(http).await;
    let readers: Vec<_> = (0..300).map(|_| tokio::spawn(counts(http))).collect();
    for r in readers {
        assert_eq!(r.await.expect("join"), (200, 0), "a reader saw other counts");
    }
    let grpc = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert_eq!(grpc.tasks_by_state.get("queued"), Some(&200));
    assert_eq!(recounts(http).await, before, "stats requests without a change re-counted tasks");

    // A change is counted at once: the numbers are exact as soon as the cancel is answered,
    // re-counting only the changed tasks.
    c.cancel_tasks(v1::CancelTasksRequest { task_ids: ids[..7].to_vec(), reason: String::new() }).await.expect("cancel");
    assert_eq!(counts(http).await, (193, 7));
    let grpc = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert_eq!((grpc.tasks_by_state.get("queued"), grpc.tasks_by_state.get("cancelled")), (Some(&193), Some(&7)));
    let after = recounts(http).await;
    assert!(after > before && after - before <= 7, "re-counted {} tasks for 7 changes", after - before);
    drop(running);
}
