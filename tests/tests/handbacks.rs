//! A rollout that is handed back again and again (a record that can never be published) fails
//! after `max_handbacks` hand-backs with a reason that says so, instead of going round the
//! workers forever; `agentmill retry` gives it a fresh allowance.

use std::time::{Duration, Instant};

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_proto::v1::{self, TaskState};
use agentmill_tests::{TestRedis, free_port, unique};
use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};

fn row(id: &str) -> v1::TaskInput {
    let v = serde_json::json!({"instance_id": id, "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
    v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }
}

async fn get(c: &mut Client, id: &str) -> v1::TaskStatus {
    c.get_task(v1::GetTaskRequest { task_id: id.into() }).await.expect("get").into_inner()
}

/// Waits (up to a deadline that only catches a hang) until the task is `failed`.
async fn until_failed(c: &mut Client, id: &str) -> v1::TaskStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = get(c, id).await;
        if t.state == TaskState::Failed as i32 {
            return t;
        }
        assert!(Instant::now() < deadline, "{id} is still handed back and leased again: {:#?}", t.rollouts);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_handed_back_max_handbacks_times_fails_with_a_clear_reason() {
    let redis = TestRedis::start();
    let cfg = agentmill_coordinator::config::CoordinatorConfig {
        listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: unique("handbacks"),
        max_handbacks: 4,
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    let mut c = client::connect(&ClientConfig { addr: Some(addr.clone()), token: None, ca_cert: None }).await.expect("connect");
    c.submit_tasks(v1::SubmitTasksRequest { tasks: vec![row("unpublishable")], base_dir: String::new() }).await.expect("submit");

    // A worker whose every record is refused by Redis: it hands each lease back.
    let (handle, mut events) = WorkerSession::start(SessionConfig {
        addr,
        token: None,
        ca_cert: None,
        worker_id: "w-cannot-publish".into(),
        host: "localhost".into(),
        capacity: v1::Capacity { episodes: 1, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    });
    let leases = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = leases.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let SessionEvent::Lease(g) = ev {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                handle.release(&g.lease_id, "publishing the record failed: OOM command not allowed when used memory > 'maxmemory'");
            }
        }
    });

    let t = until_failed(&mut c, "unpublishable").await;
    let r = &t.rollouts[0];
    assert_eq!((r.handbacks, r.failures, r.attempt), (4, 0, 4), "{r:#?}");
    assert!(
        r.last_error.starts_with("failed after 4 hand-backs without a result")
            && r.last_error.contains("last: released by the worker: publishing the record failed"),
        "{}",
        r.last_error
    );
    assert_eq!(leases.load(std::sync::atomic::Ordering::SeqCst), 4, "the failed rollout was leased again");

    // A retry starts the count again: four more hand-backs, then failed again.
    c.retry_tasks(v1::RetryTasksRequest { task_ids: vec!["unpublishable".into()], reason: "Redis has room again".into() })
        .await
        .expect("retry");
    let deadline = Instant::now() + Duration::from_secs(60);
    while leases.load(std::sync::atomic::Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "the retried rollout was not leased four more times");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = until_failed(&mut c, "unpublishable").await;
    assert_eq!((t.rollouts[0].handbacks, t.rollouts[0].attempt), (4, 8), "{:#?}", t.rollouts[0]);
    drop(running);
}
