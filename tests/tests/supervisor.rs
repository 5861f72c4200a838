//! The worker's actors under failure: an episode that panics is reported as an infra error and
//! its container removed, and the host goes on running other episodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext};
use agentmill_cli::client::{self, ClientConfig};
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_proto::v1;
use agentmill_tests::{SANDBOX_IMAGE, TestRedis, docker_or_skip, free_port, noop_record, unique};
use agentmill_worker::actors::episode::Runner;
use agentmill_worker::actors::publisher::{Publisher, PublisherConfig};
use agentmill_worker::actors::supervisor::{HostSupervisor, ObserveHost};
use agentmill_worker::sandbox::SandboxSpec;
use agentmill_worker::session::{SessionConfig, WorkerSession};

#[actix_rt::test]
async fn a_panicking_episode_is_an_infra_error_its_container_goes_and_the_host_goes_on() {
    let Some(engine) = docker_or_skip("a_panicking_episode_is_an_infra_error_its_container_goes_and_the_host_goes_on").await else {
        return;
    };
    let redis = TestRedis::start();
    let cfg = CoordinatorConfig {
        listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: unique("test-sup"),
        max_attempts: 2,
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    let worker_id = unique("w-panic");
    let (session, events) = WorkerSession::start(SessionConfig {
        addr: addr.clone(),
        token: None,
        ca_cert: None,
        worker_id: worker_id.clone(),
        host: "test".into(),
        capacity: v1::Capacity { episodes: 2, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    });
    let con = redis::aio::ConnectionManager::new(redis::Client::open(redis.url.as_str()).expect("url")).await.expect("redis");
    let publisher = Publisher::new(PublisherConfig { stream: unique("test:traj"), ..Default::default() }, con, Some(session.clone())).start();

    // "boom" episodes start a container and panic while holding it; others succeed.
    let (run_engine, run_worker) = (engine.clone(), worker_id.clone());
    let runner: Runner = Arc::new(move |task, id, _progress, _cancel| {
        let (engine, worker) = (run_engine.clone(), run_worker.clone());
        Box::pin(async move {
            if task.instance_id.starts_with("boom") {
                let c = engine.start(&SandboxSpec::new(SANDBOX_IMAGE, "/testbed", &worker, &id.episode)).await.expect("start");
                let _held = c;
                panic!("the episode hit a bug");
            }
            noop_record(&task.instance_id, id.rollout, id.attempt, &worker)
        })
    });
    let (sup_worker, sup_engine) = (worker_id.clone(), engine.clone());
    let supervisor = HostSupervisor::create(move |ctx| {
        ctx.add_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(events));
        HostSupervisor::new(sup_worker, Some(sup_engine), runner, session, publisher, Duration::from_millis(500))
    });

    let mut c = client::connect(&ClientConfig { addr: Some(addr), ..Default::default() }).await.expect("client");
    let rows = ["boom-1", "fine-1"]
        .iter()
        .map(|id| v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(serde_json::json!({"instance_id": id, "FAIL_TO_PASS": ["t::a"]}).to_string())) })
        .collect();
    c.submit_tasks(v1::SubmitTasksRequest { tasks: rows, base_dir: String::new() }).await.expect("submit");

    let deadline = Instant::now() + Duration::from_secs(60);
    let (boom, fine) = loop {
        let boom = c.get_task(v1::GetTaskRequest { task_id: "boom-1".into() }).await.expect("get").into_inner();
        let fine = c.get_task(v1::GetTaskRequest { task_id: "fine-1".into() }).await.expect("get").into_inner();
        if boom.state == v1::TaskState::Failed as i32 && fine.state == v1::TaskState::Done as i32 {
            break (boom, fine);
        }
        assert!(Instant::now() < deadline, "boom {boom:?} / fine {fine:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The panic is the worker's infra failure: retried, then failed with the panic named.
    assert_eq!(boom.rollouts[0].attempt, 2);
    assert!(boom.rollouts[0].last_error.contains("the episode hit a bug"), "{:?}", boom.rollouts[0].last_error);
    assert_eq!(fine.rollouts[0].result.as_ref().map(|r| r.exit_reason), Some(v1::ExitReason::Submitted as i32));
    let state = supervisor.send(ObserveHost).await.expect("the supervisor is alive");
    assert_eq!(state.ended.get("panicked"), Some(&2), "{state:?}");
    assert_eq!(state.ended.get("submitted"), Some(&1), "{state:?}");
    // The containers the panicking episodes held are removed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !engine.containers_of(&worker_id).await.expect("list").is_empty() {
        assert!(Instant::now() < deadline, "the panicked episodes' containers are still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
