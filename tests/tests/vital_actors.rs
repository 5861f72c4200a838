//! The worker's vital actors and its actors' observable state.
//!
//! - A worker process whose Publisher dies (its Redis goes away for good) drains and exits
//!   non-zero, saying why, instead of running on as a zombie that takes leases it cannot publish.
//! - A Publisher stopped in-process makes the supervisor report it ([`HostState::stopped`]) and
//!   tell the host.
//! - The end of the coordinator session's event stream is reported the same way.
//! - Each running episode's stage is visible in the supervisor's state and in the
//!   `agentmill_worker_episodes_in_stage` gauge.
//!
//! Real coordinator and Redis; the worker process runs episodes as local processes (none is
//! leased here), so no Docker is needed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext};
use agentmill_cli::client::{self, ClientConfig};
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_proto::v1;
use agentmill_tests::{CoordinatorProcess, TestRedis, binary, free_port, noop_record, unique};
use agentmill_worker::actors::episode::Runner;
use agentmill_worker::actors::publisher::{Publisher, PublisherConfig};
use agentmill_worker::actors::supervisor::{HostSupervisor, ObserveHost};
use agentmill_worker::episode::EpisodePhase;
use agentmill_worker::metrics::WorkerMetrics;
use agentmill_worker::session::{SessionConfig, WorkerSession};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_publisher_dies_drains_and_exits_non_zero_saying_why() {
    let coordinator_redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&coordinator_redis.url, &[]).await;
    // A `redis-server` of this test alone (the worker's), so the test can take it away for good.
    let mut redis = TestRedis::private();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worker.toml");
    std::fs::write(&config, "sandbox = \"process\"\nredis_outage_limit = \"2s\"\ndrain_grace = \"5s\"\n").expect("write the config");
    let log = dir.path().join("worker.log");
    let metrics_port = free_port();
    let mut worker = Command::new(binary("agentmill-worker"))
        .arg("--config")
        .arg(&config)
        .args(["--coordinator", &coord.addr, "--redis-url", &redis.url, "--stream", &unique("test:vital"), "--worker-id", &unique("w-vital")])
        .env("RUST_LOG", "warn")
        .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("the worker's log"))
        .spawn()
        .expect("start agentmill-worker");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let worker = Kill(&mut worker);
    let read_log = || {
        let mut text = String::new();
        let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
        text
    };

    // Up and serving: its metrics answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", metrics_port)).await.is_err() {
        if let Ok(Some(status)) = worker.0.try_wait() {
            panic!("the worker exited before Redis went away ({status}):\n{}", read_log());
        }
        assert!(Instant::now() < deadline, "the worker never served its metrics:\n{}", read_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Redis goes away for good.
    redis.stop();

    // The worker exits by itself; on the old code it runs on (the bound only ends the wait).
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = worker.0.try_wait().expect("wait for the worker") {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker still runs 120 s after its Redis went away for good (a zombie):\n{}", read_log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = read_log();
    assert!(!status.success(), "the worker exits non-zero: {status}\n{log}");
    assert!(log.contains("the Publisher stopped"), "the worker says which vital actor stopped:\n{log}");
    assert!(log.contains("redis_outage_limit"), "the log names the key:\n{log}");
}

/// An in-process host: a coordinator, a session, a Publisher and a supervisor whose episodes run
/// `runner`.
struct Host {
    client: agentmill_cli::client::Client,
    supervisor: actix::Addr<HostSupervisor>,
    publisher: actix::Addr<Publisher>,
    metrics: Arc<WorkerMetrics>,
    vital: tokio::sync::oneshot::Receiver<String>,
    _redis: TestRedis,
}

async fn host(runner: Runner) -> Host {
    let redis = TestRedis::start();
    let cfg = CoordinatorConfig {
        listen: format!("127.0.0.1:{}", free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: unique("test-vital"),
        ..Default::default()
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    let (session, events) = WorkerSession::start(SessionConfig {
        addr: addr.clone(),
        token: None,
        ca_cert: None,
        worker_id: unique("w-stages"),
        host: "test".into(),
        capacity: v1::Capacity { episodes: 2, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    });
    let con = redis::aio::ConnectionManager::new(redis::Client::open(redis.url.as_str()).expect("url")).await.expect("redis");
    let publisher = Publisher::new(PublisherConfig { stream: unique("test:traj"), ..Default::default() }, con, Some(session.clone())).start();
    let metrics = Arc::new(WorkerMetrics::new());
    let (tx, vital) = tokio::sync::oneshot::channel();
    let (p, m) = (publisher.clone(), metrics.clone());
    let supervisor = HostSupervisor::create(move |ctx| {
        ctx.add_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(events));
        HostSupervisor::new(unique("w-stages"), None, runner, session, p, Duration::from_secs(3600)).with_metrics(m).with_vital_stop(tx)
    });
    let client = client::connect(&ClientConfig { addr: Some(addr), ..Default::default() }).await.expect("client");
    Host { client, supervisor, publisher, metrics, vital, _redis: redis }
}

#[actix_rt::test]
async fn each_running_episode_stage_is_observable_and_a_stopped_publisher_is_reported() {
    // Episodes enter `run` and wait there until told to go on.
    let go = Arc::new(tokio::sync::Notify::new());
    let gate = go.clone();
    let runner: Runner = Arc::new(move |task, id, progress, _cancel| {
        let gate = gate.clone();
        Box::pin(async move {
            progress(EpisodePhase::Init);
            progress(EpisodePhase::Run);
            gate.notified().await;
            noop_record(&task.instance_id, id.rollout, id.attempt, "w")
        })
    });
    let mut h = host(runner).await;
    let row = serde_json::json!({"instance_id": unique("stage"), "FAIL_TO_PASS": ["t::a"]}).to_string();
    h.client
        .submit_tasks(v1::SubmitTasksRequest { tasks: vec![v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) }], base_dir: String::new() })
        .await
        .expect("submit");

    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let state = h.supervisor.send(ObserveHost).await.expect("the supervisor answers");
        if state.stages.get("run") == Some(&1) {
            break state;
        }
        assert!(Instant::now() < deadline, "the episode never showed as `run`: {state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state.stages.len(), 1, "one episode, in one stage: {state:?}");
    let rendered = h.metrics.render();
    assert!(rendered.contains("agentmill_worker_episodes_in_stage{stage=\"run\"} 1"), "{rendered}");
    assert!(rendered.contains("agentmill_worker_episodes_in_stage{stage=\"init\"} 0"), "{rendered}");
    go.notify_one();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = h.supervisor.send(ObserveHost).await.expect("the supervisor answers");
        if state.running == 0 {
            assert!(state.stages.is_empty(), "no stage counts a finished episode: {state:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the episode never finished: {state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h.metrics.render().contains("agentmill_worker_episodes_in_stage{stage=\"run\"} 0"));

    // The Publisher stops: the supervisor says so and tells the host.
    assert_eq!(h.supervisor.send(ObserveHost).await.expect("state").stopped, None);
    h.publisher.send(StopPublisher).await.expect("the publisher answers");
    let why = tokio::time::timeout(Duration::from_secs(60), &mut h.vital).await.expect("the host is told").expect("a reason");
    assert!(why.contains("the Publisher stopped"), "{why}");
    let state = h.supervisor.send(ObserveHost).await.expect("the supervisor still answers");
    assert_eq!(state.stopped.as_deref(), Some(why.as_str()));
}

/// Stops the Publisher from inside (what a fatal error in it does).
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
struct StopPublisher;

impl actix::Handler<StopPublisher> for Publisher {
    type Result = ();

    fn handle(&mut self, _: StopPublisher, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
    }
}

#[actix_rt::test]
async fn the_end_of_the_coordinator_session_events_is_reported_as_a_vital_stop() {
    let redis = TestRedis::start();
    // A session that never attaches (nothing listens there): its handle is all the supervisor uses.
    let (session, _events) = WorkerSession::start(SessionConfig {
        addr: format!("http://127.0.0.1:{}", free_port()),
        token: None,
        ca_cert: None,
        worker_id: unique("w-session-end"),
        host: "test".into(),
        capacity: v1::Capacity { episodes: 1, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    });
    let con = redis::aio::ConnectionManager::new(redis::Client::open(redis.url.as_str()).expect("url")).await.expect("redis");
    let publisher = Publisher::new(PublisherConfig { stream: unique("test:traj"), ..Default::default() }, con, Some(session.clone())).start();
    let runner: Runner = Arc::new(|task, id, _progress, _cancel| Box::pin(async move { noop_record(&task.instance_id, id.rollout, id.attempt, "w") }));
    // The events the supervisor reads end: their sender is dropped.
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (tx, vital) = tokio::sync::oneshot::channel();
    let supervisor = HostSupervisor::create(move |ctx| {
        ctx.add_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(events_rx));
        HostSupervisor::new(unique("w-session-end"), None, runner, session, publisher, Duration::from_secs(3600)).with_vital_stop(tx)
    });
    drop(events_tx);
    let why = tokio::time::timeout(Duration::from_secs(60), vital).await.expect("the host is told").expect("a reason");
    assert!(why.contains("the coordinator session"), "{why}");
    let state = supervisor.send(ObserveHost).await.expect("the supervisor still answers");
    assert_eq!(state.stopped.as_deref(), Some(why.as_str()));
}
