//! A Redis outage longer than the lease TTL does not expire the leases of workers that kept
//! heartbeating: the coordinator applies the heartbeats queued during the stall before it
//! looks for expired leases, and pushes every deadline back by the length of the stall.
//!
//! The test pauses a redis-server it starts itself (SIGSTOP, then SIGCONT): never a shared one.

use std::time::Duration;

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_proto::v1::{self, TaskState};
use agentmill_tests::{TestRedis, free_port, unique};
use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};

/// How long Redis is paused: well over the lease TTL below.
const PAUSE: Duration = Duration::from_secs(45);
const LEASE_TTL: Duration = Duration::from_secs(3);

fn row(id: &str) -> v1::TaskInput {
    let v = serde_json::json!({"instance_id": id, "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
    v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }
}

async fn stats(c: &mut Client) -> v1::ClusterStatsResponse {
    c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_pause_longer_than_the_lease_ttl_expires_no_heartbeating_lease() {
    // A redis-server of this test's own, so pausing it touches no other test.
    let redis = TestRedis::private();
    let cfg = agentmill_coordinator::config::CoordinatorConfig {
        listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: unique("stall"),
        lease_ttl: LEASE_TTL,
        heartbeat_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    let mut c = client::connect(&ClientConfig { addr: Some(addr.clone()), token: None, ca_cert: None }).await.expect("connect");
    let ids = ["stall-1", "stall-2", "stall-3"];
    c.submit_tasks(v1::SubmitTasksRequest { tasks: ids.iter().map(|id| row(id)).collect(), base_dir: String::new() })
        .await
        .expect("submit");

    // A worker that holds every lease it gets and heartbeats throughout (its episodes never end).
    let (handle, mut events) = WorkerSession::start(SessionConfig {
        addr: addr.clone(),
        token: None,
        ca_cert: None,
        worker_id: "w-steady".into(),
        host: "localhost".into(),
        capacity: v1::Capacity { episodes: ids.len() as u32, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    });
    let mut leases = Vec::new();
    while leases.len() < ids.len() {
        if let Some(SessionEvent::Lease(g)) = events.recv().await {
            handle.progress(&g.lease_id, v1::Stage::Run, "working", 1);
            leases.push(g);
        }
    }
    let before = stats(&mut c).await;
    assert_eq!(before.leases_expired, 0);

    // Redis stops answering for much longer than the lease TTL; the worker keeps heartbeating.
    // A submission during the pause is a write the core must wait for: the core stalls.
    redis.signal("STOP");
    let mut c2 = c.clone();
    let late = tokio::spawn(async move {
        c2.submit_tasks(v1::SubmitTasksRequest { tasks: vec![row("stall-late")], base_dir: String::new() }).await.map(|r| r.into_inner())
    });
    tokio::time::sleep(PAUSE).await;
    redis.signal("CONT");
    let late = late.await.expect("join").expect("the submission made during the pause is answered once Redis is back");
    assert_eq!(late.accepted.len(), 1, "{late:?}");

    // Each of these answers is a turn of the core after the stall: by the second, the turn
    // that follows the stalled write has run (and with it, on the old code, the expiry).
    for _ in 0..3 {
        stats(&mut c).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let after = stats(&mut c).await;
    println!("lease expiries during a {PAUSE:?} Redis pause with lease_ttl {LEASE_TTL:?}: {}", after.leases_expired);
    assert_eq!(after.leases_expired, 0, "leases of a worker that kept heartbeating expired after a Redis stall");
    for g in &leases {
        let id = g.task.as_ref().map(|t| t.instance_id.clone()).expect("spec");
        let t = c.get_task(v1::GetTaskRequest { task_id: id.clone() }).await.expect("get").into_inner();
        let r = &t.rollouts[0];
        assert_eq!((r.attempt, r.worker_id.as_str()), (1, "w-steady"), "{id} was leased again: {t:#?}");
        assert!(matches!(TaskState::try_from(r.state), Ok(TaskState::Leased | TaskState::Running)), "{t:#?}");
    }
    // No cancel reached the worker either.
    while let Ok(ev) = events.try_recv() {
        assert!(!matches!(ev, SessionEvent::Cancel(_)), "the worker was told to drop a lease: {ev:?}");
    }
    drop(running);
}
