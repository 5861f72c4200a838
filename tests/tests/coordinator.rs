//! The coordinator as its users meet it: a real `agentmill-coordinator` process on loopback,
//! a real Redis, workers attached through the real worker session (in-process, or as separate
//! `agentmill-noop-worker` processes where a process must die).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_proto::v1::{self, TaskState, coordinator_message::Msg as Out, worker_message::Msg as In};
use agentmill_tests::{CoordinatorProcess, TestRedis, binary, http_get, unique};
use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};
use futures::StreamExt;
use tokio::sync::mpsc;

fn row(id: &str, extra: serde_json::Value) -> v1::TaskInput {
    let mut v = serde_json::json!({"instance_id": id, "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }
}

async fn connect(addr: &str, token: Option<&str>) -> Client {
    client::connect(&ClientConfig { addr: Some(addr.to_string()), token: token.map(str::to_string), ca_cert: None }).await.expect("connect")
}

async fn submit(c: &mut Client, rows: Vec<v1::TaskInput>) -> v1::SubmitTasksResponse {
    c.submit_tasks(v1::SubmitTasksRequest { tasks: rows, base_dir: String::new() }).await.expect("submit").into_inner()
}

async fn get(c: &mut Client, id: &str) -> v1::TaskStatus {
    c.get_task(v1::GetTaskRequest { task_id: id.into() }).await.expect("get").into_inner()
}

async fn wait_state(c: &mut Client, id: &str, state: TaskState, within: Duration) -> v1::TaskStatus {
    let deadline = Instant::now() + within;
    loop {
        let t = get(c, id).await;
        if t.state == state as i32 {
            return t;
        }
        assert!(Instant::now() < deadline, "{id} did not reach {state:?} within {within:?}: {t:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A worker session's settings for tests: plain HTTP, no token, quick reconnects.
fn session_config(addr: &str, id: &str, capacity: u32, labels: &[(&str, &str)]) -> SessionConfig {
    SessionConfig {
        addr: addr.to_string(),
        token: None,
        ca_cert: None,
        worker_id: id.to_string(),
        host: "localhost".into(),
        capacity: v1::Capacity { episodes: capacity, ..Default::default() },
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    }
}

/// A coordinator in this process on a free port and a fresh namespace, with `cfg`'s other
/// settings; answers the server (stopped when dropped) and its `http://` address.
async fn in_process(redis: &TestRedis, prefix: &str, cfg: agentmill_coordinator::config::CoordinatorConfig) -> (agentmill_coordinator::server::Running, String) {
    let cfg = agentmill_coordinator::config::CoordinatorConfig {
        listen: format!("127.0.0.1:{}", agentmill_tests::free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: unique(prefix),
        ..cfg
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    (running, addr)
}

/// An in-process worker that completes every lease after `episode`, resolved.
fn noop_worker(addr: &str, id: &str, capacity: u32, episode: Duration, labels: &[(&str, &str)]) -> mpsc::UnboundedReceiver<String> {
    let (handle, mut events) = WorkerSession::start(session_config(addr, id, capacity, labels));
    let (log_tx, log_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let SessionEvent::Lease(g) = ev {
                let task = g.task.as_ref().map(|t| t.instance_id.clone()).unwrap_or_default();
                let _ = log_tx.send(format!("{task}/{}", g.rollout));
                let h = handle.clone();
                tokio::spawn(async move {
                    h.progress(&g.lease_id, v1::Stage::Run, "working", 1);
                    tokio::time::sleep(episode).await;
                    h.result(
                        &g.lease_id,
                        v1::EpisodeResult {
                            record_id: agentmill_proto::TrajectoryRecord::episode_record_id(&task, g.rollout, g.attempt),
                            exit_reason: v1::ExitReason::Submitted as i32,
                            resolution: v1::Resolution::Full as i32,
                            resolved: true,
                            reward: 1.0,
                            ..Default::default()
                        },
                    );
                });
            }
        }
    });
    log_rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_goes_from_submission_to_result_and_rollouts_give_one_result_each() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let mut c = connect(&coord.addr, None).await;
    let mut watch = c.watch_events(v1::WatchEventsRequest { task_ids: vec!["life-1".into(), "life-4".into()] }).await.expect("watch").into_inner();

    let resp = submit(&mut c, vec![row("life-1", serde_json::json!({})), row("life-4", serde_json::json!({"rollouts": 4}))]).await;
    assert_eq!(resp.accepted, ["life-1", "life-4"]);
    assert_eq!(get(&mut c, "life-4").await.state, TaskState::Queued as i32);

    let mut leased = noop_worker(&coord.addr, "w-life", 3, Duration::from_millis(50), &[]);
    let one = wait_state(&mut c, "life-1", TaskState::Done, Duration::from_secs(20)).await;
    let four = wait_state(&mut c, "life-4", TaskState::Done, Duration::from_secs(20)).await;
    assert_eq!(one.task.as_ref().map(|t| t.problem_statement.as_str()), Some("fix it"), "GetTask returns the spec");
    let r = &one.rollouts[0];
    assert_eq!((r.attempt, r.worker_id.as_str()), (1, "w-life"));
    assert_eq!(r.result.as_ref().map(|r| r.resolution), Some(v1::Resolution::Full as i32));
    assert_eq!(four.rollouts.len(), 4);
    let ids: std::collections::BTreeSet<String> = four.rollouts.iter().filter_map(|r| r.result.as_ref().map(|x| x.record_id.clone())).collect();
    assert_eq!(ids.len(), 4, "four distinct results: {ids:?}");

    let mut granted = Vec::new();
    while let Ok(Some(l)) = tokio::time::timeout(Duration::from_millis(200), leased.recv()).await {
        granted.push(l);
    }
    granted.sort();
    assert_eq!(granted, ["life-1/0", "life-4/0", "life-4/1", "life-4/2", "life-4/3"], "each rollout leased exactly once");

    // The event stream saw every step of life-1: queued → leased → running → done.
    let mut states = Vec::new();
    while let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_secs(2), watch.next()).await {
        if ev.task_id == "life-1" {
            states.push(TaskState::try_from(ev.state).expect("state"));
            if ev.state == TaskState::Done as i32 {
                break;
            }
        }
    }
    assert_eq!(states, [TaskState::Queued, TaskState::Leased, TaskState::Running, TaskState::Done]);

    let stats = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert_eq!(stats.tasks_by_state.get("done"), Some(&2));

    // Prometheus metrics name what operators watch (the task gauges refresh every second).
    let mut metrics = http_get(coord.metrics_port, "/metrics").await;
    for _ in 0..30 {
        if metrics.contains("agentmill_coordinator_tasks{state=\"done\"} 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = http_get(coord.metrics_port, "/metrics").await;
    }
    for name in [
        "agentmill_coordinator_tasks{state=\"done\"} 2",
        "agentmill_coordinator_leases_granted_total 5",
        "agentmill_coordinator_dispatch_latency_seconds_count 5",
        "agentmill_coordinator_workers_connected 1",
        "agentmill_coordinator_results_total{exit_reason=\"submitted\",resolution=\"FULL\"} 5",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert_eq!(stats.results_by_resolution.get("FULL"), Some(&5));
    assert_eq!(stats.workers.len(), 1);
    assert!(stats.episodes_per_s_1m > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmission_is_idempotent_and_bad_rows_do_not_sink_good_ones() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let mut c = connect(&coord.addr, None).await;
    let first = submit(&mut c, vec![row("idem-1", serde_json::json!({})), row("idem-2", serde_json::json!({}))]).await;
    assert_eq!(first.accepted.len(), 2);
    let bad_f2p = v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(r#"{"instance_id": "bad-1", "FAIL_TO_PASS": "not a list"}"#.into())) };
    let again = submit(&mut c, vec![row("idem-1", serde_json::json!({})), bad_f2p, row("idem-3", serde_json::json!({}))]).await;
    assert_eq!(again.existing, ["idem-1"]);
    assert_eq!(again.accepted, ["idem-3"]);
    assert_eq!(again.rejected.len(), 1);
    let e = &again.rejected[0];
    assert_eq!((e.row, e.field.as_str(), e.task_id.as_str()), (2, "FAIL_TO_PASS", "bad-1"));
    assert!(e.reason.contains("not a JSON list of test names"), "{}", e.reason);

    // A batch with no good row at all is INVALID_ARGUMENT naming the row and field.
    let only_bad = v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(r#"{"FAIL_TO_PASS": []}"#.into())) };
    let err = c.submit_tasks(v1::SubmitTasksRequest { tasks: vec![only_bad], base_dir: String::new() }).await.expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("task row 1: instance_id: is missing"), "{}", err.message());

    // Only one lease per rollout ever: three tasks, three results.
    let _w = noop_worker(&coord.addr, "w-idem", 4, Duration::from_millis(10), &[]);
    for id in ["idem-1", "idem-2", "idem-3"] {
        wait_state(&mut c, id, TaskState::Done, Duration::from_secs(20)).await;
    }
    let stats = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert_eq!(stats.leases_granted, 3);
    assert_eq!(c.get_task(v1::GetTaskRequest { task_id: "nope".into() }).await.expect_err("unknown").code(), tonic::Code::NotFound);
}

/// A raw worker session speaking the Attach protocol message by message.
struct RawWorker {
    tx: mpsc::UnboundedSender<v1::WorkerMessage>,
    rx: tonic::Streaming<v1::CoordinatorMessage>,
}

impl RawWorker {
    async fn attach(c: &mut Client, id: &str, labels: &[(&str, &str)]) -> RawWorker {
        let (tx, out) = mpsc::unbounded_channel();
        let reg = v1::Register {
            worker_id: id.into(),
            capacity: Some(v1::Capacity { episodes: 8, ..Default::default() }),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        tx.send(v1::WorkerMessage { msg: Some(In::Register(reg)) }).expect("send");
        let rx = c.attach(tokio_stream::wrappers::UnboundedReceiverStream::new(out)).await.expect("attach").into_inner();
        let mut w = RawWorker { tx, rx };
        assert!(matches!(w.next().await, Out::Registered(_)));
        w
    }

    fn send(&self, m: In) {
        self.tx.send(v1::WorkerMessage { msg: Some(m) }).expect("send");
    }

    async fn next(&mut self) -> Out {
        let m = tokio::time::timeout(Duration::from_secs(20), self.rx.message()).await.expect("a message in time").expect("stream ok").expect("not closed");
        m.msg.expect("message body")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_queued_and_a_leased_task() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let mut c = connect(&coord.addr, None).await;
    submit(&mut c, vec![row("cx-queued", serde_json::json!({"priority": -1})), row("cx-leased", serde_json::json!({"priority": 5}))]).await;

    let mut w = RawWorker::attach(&mut c, "w-cancel", &[]).await;
    w.send(In::Credit(v1::Credit { n: 1 }));
    let Out::Lease(grant) = w.next().await else { panic!("expected a lease") };
    assert_eq!(grant.task.as_ref().map(|t| t.instance_id.as_str()), Some("cx-leased"), "priority 5 goes first");
    w.send(In::Progress(v1::Progress { lease_id: grant.lease_id.clone(), stage: v1::Stage::Run as i32, detail: "agent".into(), step: 1 }));
    wait_state(&mut c, "cx-leased", TaskState::Running, Duration::from_secs(10)).await;

    let resp = c.cancel_tasks(v1::CancelTasksRequest { task_ids: vec!["cx-queued".into(), "cx-leased".into(), "cx-nope".into()], reason: "operator".into() }).await.expect("cancel").into_inner();
    assert_eq!(resp.cancelled, ["cx-queued", "cx-leased"]);
    assert_eq!(resp.not_found, ["cx-nope"]);
    let Out::Cancel(cancel) = w.next().await else { panic!("the running episode is told to stop") };
    assert_eq!(cancel.lease_id, grant.lease_id);
    assert_eq!(cancel.reason, "operator");
    assert_eq!(get(&mut c, "cx-queued").await.state, TaskState::Cancelled as i32);
    assert_eq!(get(&mut c, "cx-leased").await.state, TaskState::Cancelled as i32);

    // A late result on the cancelled lease is refused.
    w.send(In::Result(v1::Result { lease_id: grant.lease_id.clone(), result: Some(v1::EpisodeResult { exit_reason: v1::ExitReason::Submitted as i32, ..Default::default() }) }));
    let Out::Ack(ack) = w.next().await else { panic!("an ack") };
    assert!(!ack.accepted);
    // The queued one never runs: more credit brings nothing.
    w.send(In::Credit(v1::Credit { n: 4 }));
    assert!(tokio::time::timeout(Duration::from_millis(500), w.rx.message()).await.is_err(), "no lease for a cancelled task");
    let again = c.cancel_tasks(v1::CancelTasksRequest { task_ids: vec!["cx-queued".into()], reason: String::new() }).await.expect("cancel").into_inner();
    assert_eq!(again.already_finished, ["cx-queued"]);
}

/// A child process SIGKILLed when dropped, so a failing test leaves no worker behind (one would
/// also hold the test's output pipe open).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn_noop_process(addr: &str, id: &str, capacity: u32, episode_ms: u64) -> (Reaped, mpsc::UnboundedReceiver<String>) {
    let mut child = Command::new(binary("agentmill-noop-worker"))
        .args(["--addr", addr, "--worker-id", id, "--capacity", &capacity.to_string(), "--episode-ms", &episode_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start agentmill-noop-worker");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Reaped(child), rx)
}

async fn line_starting(rx: &mut mpsc::UnboundedReceiver<String>, prefix: &str) -> String {
    loop {
        let l = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a line in time").expect("process output");
        if l.starts_with(prefix) {
            return l;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_worker_loses_its_lease_to_another_and_its_late_result_is_refused() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--lease-ttl", "2s", "--heartbeat-interval", "500ms"]).await;
    let mut c = connect(&coord.addr, None).await;
    submit(&mut c, vec![row("gone-1", serde_json::json!({})), row("gone-2", serde_json::json!({}))]).await;

    // Worker A is a process mid-episode when it is SIGKILLed.
    let (mut a, mut a_out) = spawn_noop_process(&coord.addr, "w-doomed", 1, 600_000);
    let leased = line_starting(&mut a_out, "lease ").await;
    let task_a = leased.split(' ').nth(2).expect("task id").to_string();
    a.kill().expect("kill worker A");
    a.wait().expect("reap worker A");

    // Worker B is a raw session that will hold a lease and then go silent.
    let mut b = RawWorker::attach(&mut c, "w-silent", &[]).await;
    b.send(In::Credit(v1::Credit { n: 1 }));
    let Out::Lease(b_grant) = b.next().await else { panic!("B gets the other task") };

    // Worker C takes over both after their leases expire.
    let mut c_log = noop_worker(&coord.addr, "w-rescue", 4, Duration::from_millis(20), &[]);
    let done_a = wait_state(&mut c, &task_a, TaskState::Done, Duration::from_secs(20)).await;
    assert_eq!(done_a.rollouts[0].attempt, 2, "the task came back with attempt + 1");
    assert_eq!(done_a.rollouts[0].worker_id, "w-rescue");
    let task_b = b_grant.task.as_ref().map(|t| t.instance_id.clone()).expect("spec");
    wait_state(&mut c, &task_b, TaskState::Done, Duration::from_secs(20)).await;
    let mut rescued = vec![c_log.recv().await.expect("lease"), c_log.recv().await.expect("lease")];
    rescued.sort();
    assert_eq!(rescued, ["gone-1/0", "gone-2/0"]);

    // B wakes up and reports on its dead lease: refused and counted.
    b.send(In::Result(v1::Result { lease_id: b_grant.lease_id.clone(), result: Some(v1::EpisodeResult { exit_reason: v1::ExitReason::Submitted as i32, ..Default::default() }) }));
    loop {
        match b.next().await {
            Out::Ack(ack) => {
                assert_eq!(ack.lease_id, b_grant.lease_id);
                assert!(!ack.accepted, "a result on an expired lease is refused");
                break;
            }
            Out::Cancel(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert_eq!(stats.leases_expired, 2);
    assert_eq!(stats.stale_results_refused, 1);
    assert_eq!(get(&mut c, &task_b).await.rollouts[0].worker_id, "w-rescue", "the refused result changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_run_loses_nothing_and_finishes_every_task_once() {
    let redis = TestRedis::start();
    let mut coord = CoordinatorProcess::start(&redis.url, &["--lease-ttl", "5s", "--heartbeat-interval", "500ms"]).await;
    let mut c = connect(&coord.addr, None).await;
    let ids: Vec<String> = (0..40).map(|i| format!("crash-{i:02}")).collect();
    submit(&mut c, ids.iter().map(|id| row(id, serde_json::json!({}))).collect()).await;
    let (mut worker, mut out) = spawn_noop_process(&coord.addr, "w-steady", 2, 150);

    // Let some finish, then SIGKILL the coordinator mid-run and start it again.
    let mut seen = Vec::new();
    while seen.iter().filter(|l: &&String| l.starts_with("result ")).count() < 8 {
        seen.push(line_starting(&mut out, "").await);
    }
    coord.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    coord.restart().await;
    let mut c = connect(&coord.addr, None).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        if stats.tasks_by_state.get("done") == Some(&40) {
            break;
        }
        assert!(Instant::now() < deadline, "not every task finished after the restart: {:?}", stats.tasks_by_state);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every task has exactly one result, from one lease.
    for id in &ids {
        let t = get(&mut c, id).await;
        assert_eq!(t.rollouts.len(), 1);
        let r = &t.rollouts[0];
        assert!(r.result.is_some(), "{id} has no result");
    }
    // The worker ran each rollout once. A result recorded just before the kill whose ack was lost
    // is resent and refused as a copy (a `refused` line): it is not run again.
    while let Ok(Some(l)) = tokio::time::timeout(Duration::from_millis(300), out.recv()).await {
        seen.push(l);
    }
    let mut finished: HashMap<String, usize> = HashMap::new();
    for l in seen.iter().filter(|l| l.starts_with("result ")) {
        *finished.entry(l.split(' ').nth(2).unwrap_or_default().to_string()).or_default() += 1;
    }
    assert_eq!(finished.len(), 40, "every task was run");
    let twice: Vec<_> = finished.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "tasks the worker ran more than once: {twice:?}");
    worker.kill().expect("kill worker");
    worker.wait().expect("reap");
}

/// A result in flight when the coordinator dies, on a lease the next coordinator does not hold
/// (it recorded the result but the ack was lost in the kill, or it lost the lease): the new
/// coordinator cancels the lease and refuses the resent result, and the worker's slot comes
/// back. It used to be lost for good: the cancel dropped the pending result, so the refusal that
/// followed returned no credit, and a worker of capacity 1 never took another task. Here the new
/// coordinator has a fresh namespace, so it knows nothing of the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_restarted_coordinator_does_not_know_gives_its_slot_back() {
    let redis = TestRedis::start();
    let mut coord = CoordinatorProcess::start(&redis.url, &["--heartbeat-interval", "500ms"]).await;
    let mut c = connect(&coord.addr, None).await;
    submit(&mut c, vec![row("lost-1", serde_json::json!({}))]).await;
    let (worker, mut events) = WorkerSession::start(session_config(&coord.addr, "w-one", 1, &[]));
    let grant = next_lease(&mut events).await;

    // The coordinator freezes; the worker reports its result into the void and then the
    // coordinator is SIGKILLed and replaced by one that never heard of the lease.
    let stop = Command::new("kill").args(["-STOP", &coord.pid().to_string()]).status().expect("kill -STOP");
    assert!(stop.success());
    worker.result(&grant.lease_id, v1::EpisodeResult { exit_reason: v1::ExitReason::Submitted as i32, resolved: true, ..Default::default() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    coord.namespace = unique("test-forgot");
    coord.restart().await;
    let mut c = connect(&coord.addr, None).await;

    // The worker is back with its one credit, and takes the next task.
    worker_until(&mut c, "w-one", "came back with its credit", |w| w.credits == 1).await;
    submit(&mut c, vec![row("next-1", serde_json::json!({}))]).await;
    let mut refused = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await.expect("the next lease in time").expect("session") {
            SessionEvent::Lease(g) => {
                assert_eq!(g.task.map(|t| t.instance_id).as_deref(), Some("next-1"));
                break;
            }
            SessionEvent::Refused { lease_id, .. } => {
                assert_eq!(lease_id, grant.lease_id, "only the forgotten lease's result is refused");
                refused = true;
            }
            SessionEvent::Cancel(cancel) => panic!("nothing runs to cancel: {cancel:?}"),
            SessionEvent::Connected { .. } => continue,
        }
    }
    // On a loaded machine the refusal may come after the next lease: wait for it.
    while !refused {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await.expect("the refusal in time").expect("session") {
            SessionEvent::Refused { lease_id, .. } => {
                assert_eq!(lease_id, grant.lease_id, "only the forgotten lease's result is refused");
                refused = true;
            }
            SessionEvent::Cancel(cancel) => panic!("nothing runs to cancel: {cancel:?}"),
            SessionEvent::Lease(g) => panic!("no third task was submitted: {g:?}"),
            SessionEvent::Connected { .. } => continue,
        }
    }
}

async fn stats(c: &mut Client) -> v1::ClusterStatsResponse {
    c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner()
}

/// Polls ClusterStats until worker `id` is attached and `ok` holds for it (20 s at most); panics
/// naming `what` it never did.
async fn worker_until(c: &mut Client, id: &str, what: &str, ok: impl Fn(&v1::WorkerInfo) -> bool) -> v1::WorkerInfo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = stats(c).await;
        if let Some(w) = s.workers.iter().find(|w| w.worker_id == id && ok(w)) {
            return w.clone();
        }
        assert!(Instant::now() < deadline, "{id} never {what}: {:#?}", s.workers);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs the `agentmill` CLI against `addr`: exit code, stdout, stderr.
fn agentmill_cli(addr: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary("agentmill")).arg("--addr").arg(addr).args(args).env_remove("AGENTMILL_TOKEN").output().expect("run agentmill");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The session's next lease, within 20 s.
async fn next_lease(events: &mut mpsc::UnboundedReceiver<SessionEvent>) -> v1::LeaseGrant {
    let lease = async {
        loop {
            if let SessionEvent::Lease(g) = events.recv().await.expect("session open") {
                return g;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), lease).await.expect("a lease within 20 s")
}

/// A failed rollout is run again on request, under the next attempt (its own record id) and with
/// a fresh allowance of failures; done rollouts are not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_runs_a_failed_rollout_again_with_a_fresh_allowance() {
    use agentmill_coordinator::config::CoordinatorConfig;
    let redis = TestRedis::start();
    let (_running, addr) = in_process(&redis, "test-retry", CoordinatorConfig { max_attempts: 1, ..Default::default() }).await;
    let mut c = connect(&addr, None).await;
    let (handle, mut events) = WorkerSession::start(session_config(&addr, "w-retry", 1, &[]));
    submit(&mut c, vec![row("retry-task", serde_json::json!({"labels": {"team": "core"}}))]).await;
    let first = next_lease(&mut events).await;
    handle.result(&first.lease_id, v1::EpisodeResult { exit_reason: v1::ExitReason::SandboxError as i32, error: "the disk filled up".into(), ..Default::default() });
    let failed = wait_state(&mut c, "retry-task", TaskState::Failed, Duration::from_secs(20)).await;
    assert_eq!((failed.rollouts[0].attempt, failed.rollouts[0].failures), (1, 1));

    let empty = c.retry_tasks(v1::RetryTasksRequest::default()).await.expect_err("no ids");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let unknown = c.retry_tasks(v1::RetryTasksRequest { task_ids: vec!["no-such-task".into()], reason: String::new() }).await.expect("retry").into_inner();
    assert_eq!((unknown.retried.len(), unknown.not_found), (0, vec!["no-such-task".to_string()]));
    // The operator's way: every failed task, narrowed by label.
    let cli = |args: &[&str]| agentmill_cli(&addr, args);
    assert_eq!(cli(&["retry", "--failed", "--label", "team=other"]), (Some(0), "retried: 0\n".into(), String::new()));
    let (code, _, err) = cli(&["retry", "--label", "team=core"]);
    assert_eq!(code, Some(2), "a usage error");
    assert!(err.contains("--failed"), "the error names the missing flag: {err}");
    assert_eq!(get(&mut c, "retry-task").await.state, TaskState::Failed as i32, "nothing was retried yet");
    assert_eq!(cli(&["retry", "--failed", "--label", "team=core", "--reason", "disk cleaned"]), (Some(0), "retried: 1\n".into(), String::new()));
    let second = next_lease(&mut events).await;
    assert_eq!(second.attempt, 2, "the retry takes the next attempt");
    let t = get(&mut c, "retry-task").await;
    assert_eq!(t.rollouts[0].failures, 0, "a fresh allowance: {t:#?}");
    assert_eq!(t.rollouts[0].last_error, "retried: disk cleaned");
    let record_id = agentmill_proto::TrajectoryRecord::episode_record_id("retry-task", 0, second.attempt);
    handle.result(&second.lease_id, v1::EpisodeResult { record_id: record_id.clone(), exit_reason: v1::ExitReason::Submitted as i32, resolution: v1::Resolution::Full as i32, resolved: true, ..Default::default() });
    let done = wait_state(&mut c, "retry-task", TaskState::Done, Duration::from_secs(20)).await;
    assert_eq!(done.rollouts[0].result.as_ref().map(|r| r.record_id.as_str()), Some(record_id.as_str()));

    let again = c.retry_tasks(v1::RetryTasksRequest { task_ids: vec!["retry-task".into()], reason: String::new() }).await.expect("retry").into_inner();
    assert_eq!(again.nothing_to_retry, ["retry-task"], "a done rollout is kept");
    assert_eq!(get(&mut c, "retry-task").await.state, TaskState::Done as i32);
}

/// A result reported on a lease the coordinator has cancelled is not sent: the cancel already
/// returned the slot, and the refusal of the result would return it a second time, so the worker
/// would be sent more leases than it has slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_on_a_cancelled_lease_does_not_return_its_slot_twice() {
    use agentmill_coordinator::config::CoordinatorConfig;
    let redis = TestRedis::start();
    let (_running, addr) = in_process(&redis, "test-late", CoordinatorConfig::default()).await;
    let mut c = connect(&addr, None).await;
    let (handle, mut events) = WorkerSession::start(session_config(&addr, "w-late", 1, &[]));
    submit(&mut c, vec![row("late-task", serde_json::json!({}))]).await;
    let grant = next_lease(&mut events).await;
    c.cancel_tasks(v1::CancelTasksRequest { task_ids: vec!["late-task".into()], reason: "changed my mind".into() }).await.expect("cancel");
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await.expect("the cancel in time").expect("session") {
            SessionEvent::Cancel(cancel) => {
                assert_eq!(cancel.lease_id, grant.lease_id);
                break;
            }
            _ => continue,
        }
    }
    // The episode did not notice in time and reports anyway.
    handle.result(&grant.lease_id, v1::EpisodeResult { exit_reason: v1::ExitReason::Submitted as i32, ..Default::default() });
    worker_until(&mut c, "w-late", "got its slot back from the cancel", |w| w.credits >= 1).await;
    // A refusal would come back within milliseconds; a second returned slot would show here.
    let watch_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch_until {
        let credits = stats(&mut c).await.workers.iter().find(|w| w.worker_id == "w-late").map(|w| w.credits);
        assert_eq!(credits, Some(1), "a worker of one slot holds more than one credit");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stats(&mut c).await.stale_results_refused, 0, "the late result was sent");
}

/// Two workers sharing one id from different hosts are counted (and warned about); the same
/// worker reconnecting from its own host is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_with_one_worker_id_are_counted_as_a_conflict() {
    use agentmill_coordinator::config::CoordinatorConfig;
    let redis = TestRedis::start();
    let (running, addr) = in_process(&redis, "test-dup-id", CoordinatorConfig::default()).await;
    let mut c = connect(&addr, None).await;
    let attach = |c: &mut Client, host: &str| {
        let (tx, out) = mpsc::unbounded_channel();
        let reg = v1::Register { worker_id: "w-twin".into(), host: host.into(), capacity: Some(v1::Capacity { episodes: 1, ..Default::default() }), ..Default::default() };
        tx.send(v1::WorkerMessage { msg: Some(In::Register(reg)) }).expect("send");
        let mut c = c.clone();
        async move {
            let mut rx = c.attach(tokio_stream::wrappers::UnboundedReceiverStream::new(out)).await.expect("attach").into_inner();
            let first = rx.message().await.expect("stream").and_then(|m| m.msg);
            assert!(matches!(first, Some(Out::Registered(_))), "{first:?}");
            (tx, rx)
        }
    };
    let _a = attach(&mut c, "host-a").await;
    let _a_again = attach(&mut c, "host-a").await;
    assert_eq!(running.core.metrics.worker_id_conflicts.get(), 0, "a reconnect from the same host is no conflict");
    let _b = attach(&mut c, "host-b").await;
    assert_eq!(running.core.metrics.worker_id_conflicts.get(), 1);
    let stats = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    let twins: Vec<&str> = stats.workers.iter().filter(|w| w.worker_id == "w-twin").map(|w| w.host.as_str()).collect();
    assert_eq!(twins, ["host-b"], "one session per worker id: the latest");
}

/// A cordoned worker is sent no new lease, the cordon outlives a coordinator restart (it is in
/// Redis), and uncordoning lets the queued work through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cordoned_worker_gets_no_lease_across_a_restart_until_uncordoned() {
    let redis = TestRedis::start();
    let mut coord = CoordinatorProcess::start(&redis.url, &["--heartbeat-interval", "500ms"]).await;
    let mut c = connect(&coord.addr, None).await;
    // Cordoned before it ever attached: the cordon is by id.
    assert_eq!(agentmill_cli(&coord.addr, &["cordon", "w-cordon", "w-other"]), (Some(0), "cordoned: w-cordon, w-other\n".into(), String::new()));
    let blank = c.cordon_workers(v1::CordonWorkersRequest { worker_ids: vec![" ".into()], uncordon: false }).await.expect_err("a blank id");
    assert_eq!(blank.code(), tonic::Code::InvalidArgument);

    coord.kill();
    coord.restart().await;
    let mut c = connect(&coord.addr, None).await;
    let (_handle, mut events) = WorkerSession::start(session_config(&coord.addr, "w-cordon", 1, &[]));
    submit(&mut c, vec![row("cordon-task", serde_json::json!({}))]).await;
    let w = worker_until(&mut c, "w-cordon", "attached with its credit", |w| w.credits == 1).await;
    assert!(w.cordoned, "{w:?}");
    assert_eq!(stats(&mut c).await.cordoned_workers, ["w-cordon", "w-other"], "the cordons came back from Redis");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(get(&mut c, "cordon-task").await.state, TaskState::Queued as i32, "a cordoned worker was sent a lease");

    assert_eq!(agentmill_cli(&coord.addr, &["uncordon", "w-cordon"]), (Some(0), "cordoned: w-other\n".into(), String::new()));
    let grant = next_lease(&mut events).await;
    assert_eq!(grant.task.map(|t| t.instance_id).as_deref(), Some("cordon-task"));
}

/// Images that appear on a worker's host after it registered are reported at once, and the
/// scheduler then prefers that worker for tasks on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_reported_after_registration_steer_the_scheduler() {
    use agentmill_coordinator::config::CoordinatorConfig;
    let redis = TestRedis::start();
    let cfg = CoordinatorConfig { heartbeat_interval: Duration::from_secs(30), ..Default::default() };
    let (_running, addr) = in_process(&redis, "test-images", cfg).await;
    let mut c = connect(&addr, None).await;
    let (worker, mut events) = WorkerSession::start(SessionConfig { cached_images: vec!["base:1".into()], ..session_config(&addr, "w-img", 1, &[]) });
    worker_until(&mut c, "w-img", "showed 1 image with its credit", |w| w.cached_images == 1 && w.credits == 1).await;
    // The heartbeat interval is 30 s: only the immediate report can pass.
    worker.set_cached_images(vec!["late:2".into(), "base:1".into(), "late:2".into()]);
    worker_until(&mut c, "w-img", "showed 2 images with its credit", |w| w.cached_images == 2 && w.credits == 1).await;

    // Two tasks queued in one call, the other image first: the worker's one credit goes to the
    // task on the image it now has.
    submit(&mut c, vec![row("img-other", serde_json::json!({"image": "other:9"})), row("img-late", serde_json::json!({"image": "late:2"}))]).await;
    let grant = next_lease(&mut events).await;
    assert_eq!(grant.task.map(|t| t.instance_id).as_deref(), Some("img-late"));

    // Every image removed from the host: the empty list is a report too, not "unchanged".
    worker.set_cached_images(Vec::new());
    worker_until(&mut c, "w-img", "showed no image after they were all removed", |w| w.cached_images == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_token_are_refused() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--token", "s3cret"]).await;
    let mut anon = connect(&coord.addr, None).await;
    let err = anon.cluster_stats(v1::ClusterStatsRequest {}).await.expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut wrong = connect(&coord.addr, Some("guess")).await;
    assert_eq!(wrong.cluster_stats(v1::ClusterStatsRequest {}).await.expect_err("wrong token").code(), tonic::Code::Unauthenticated);
    let mut ok = connect(&coord.addr, Some("s3cret")).await;
    ok.cluster_stats(v1::ClusterStatsRequest {}).await.expect("the right token passes");
    let resp = submit(&mut ok, vec![row("tok-1", serde_json::json!({}))]).await;
    assert_eq!(resp.accepted, ["tok-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_affinity_and_priority_decide_who_runs_what() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let mut c = connect(&coord.addr, None).await;
    submit(
        &mut c,
        vec![
            row("aff-gpu", serde_json::json!({"worker_selector": {"accel": "gpu"}})),
            row("aff-any-low", serde_json::json!({"priority": -5})),
            row("aff-any-high", serde_json::json!({"priority": 9})),
        ],
    )
    .await;
    let mut cpu = RawWorker::attach(&mut c, "w-cpu", &[("accel", "none")]).await;
    cpu.send(In::Credit(v1::Credit { n: 3 }));
    let mut got = Vec::new();
    for _ in 0..2 {
        let Out::Lease(g) = cpu.next().await else { panic!("lease") };
        got.push(g.task.map(|t| t.instance_id).unwrap_or_default());
    }
    assert_eq!(got, ["aff-any-high", "aff-any-low"]);
    assert!(tokio::time::timeout(Duration::from_millis(400), cpu.rx.message()).await.is_err(), "the gpu task never goes to a cpu worker");
    let mut gpu = RawWorker::attach(&mut c, "w-gpu", &[("accel", "gpu")]).await;
    gpu.send(In::Credit(v1::Credit { n: 1 }));
    let Out::Lease(g) = gpu.next().await else { panic!("lease") };
    assert_eq!(g.task.map(|t| t.instance_id).unwrap_or_default(), "aff-gpu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_size_limits_are_served() {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest, server_reflection_response::MessageResponse};

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let channel = tonic::transport::Endpoint::from_shared(coord.addr.clone()).expect("addr").connect().await.expect("connect");

    let mut health = HealthClient::new(channel.clone());
    let status = health.check(HealthCheckRequest { service: "agentmill.v1.Coordinator".into() }).await.expect("health").into_inner();
    assert_eq!(status.status, ServingStatus::Serving as i32);

    let mut reflection = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut stream = reflection.server_reflection_info(tokio_stream::iter(vec![req])).await.expect("reflection").into_inner();
    let resp = stream.message().await.expect("reply").expect("a message");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("a service list") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"agentmill.v1.Coordinator".to_string()), "{names:?}");

    let mut c = connect(&coord.addr, None).await;
    let too_many: Vec<v1::TaskInput> = (0..10_001).map(|i| row(&format!("big-{i}"), serde_json::json!({}))).collect();
    let err = c.submit_tasks(v1::SubmitTasksRequest { tasks: too_many, base_dir: String::new() }).await.expect_err("too big");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(err.message().contains("at most 10000"), "{}", err.message());
}

/// A coordinator process serving TLS with a fresh self-signed certificate for `localhost`:
/// the directory holding it (removed when dropped), the certificate's path and the process.
async fn tls_coordinator(redis: &TestRedis) -> (tempfile::TempDir, std::path::PathBuf, CoordinatorProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert_path, key_path) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, format!("tls_cert = {:?}\ntls_key = {:?}\n", cert_path, key_path)).expect("write config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8 path")]).await;
    (dir, cert_path, coord)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_when_configured() {
    let redis = TestRedis::start();
    let (_dir, cert_path, coord) = tls_coordinator(&redis).await;
    let https = format!("https://localhost:{}", coord.port);
    let mut c = client::connect(&ClientConfig { addr: Some(https), token: None, ca_cert: Some(cert_path) }).await.expect("connect over TLS");
    c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("a call over TLS");
    // Plain text to a TLS port fails.
    let mut plain = connect(&coord.addr, None).await;
    assert!(plain.cluster_stats(v1::ClusterStatsRequest {}).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_attaches_over_tls_with_its_ca_cert_and_says_why_it_cannot_without() {
    let redis = TestRedis::start();
    let (_dir, cert_path, coord) = tls_coordinator(&redis).await;
    let https = format!("https://localhost:{}", coord.port);

    let worker = |id: &str, ca: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(binary("agentmill-worker"));
        cmd.args(["--coordinator", &https, "--redis-url", &redis.url, "--worker-id", id])
            .env("AGENTMILL_SANDBOX", "process")
            .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{}", agentmill_tests::free_port()))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(ca) = ca {
            cmd.env("AGENTMILL_CA_CERT", ca);
        }
        cmd.spawn().expect("start agentmill-worker")
    };
    let (trusted, untrusted) = (unique("tls-ok"), unique("tls-no-ca"));
    let mut ok = worker(&trusted, Some(&cert_path));
    let mut refused = worker(&untrusted, None);
    // The refused worker's log, line by line: its first attach attempt may come after the
    // trusted one has attached.
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    let stderr = refused.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });

    let mut c = client::connect(&ClientConfig { addr: Some(https.clone()), token: None, ca_cert: Some(cert_path.clone()) }).await.expect("connect over TLS");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        let ids: Vec<&str> = s.workers.iter().map(|w| w.worker_id.as_str()).collect();
        if ids.contains(&trusted.as_str()) {
            assert!(!ids.contains(&untrusted.as_str()), "a worker without the CA must not attach: {ids:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the worker with ca_cert did not attach over TLS: {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut log = Vec::new();
    let why = loop {
        match log_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("cannot attach to the coordinator") => break line,
            Ok(line) => log.push(line),
            Err(e) => panic!("the failure is logged at the default level ({e}); the log:\n{}", log.join("\n")),
        }
    };
    let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert!(!s.workers.iter().any(|w| w.worker_id == untrusted), "a worker without the CA must not attach: {why}");
    let _ = ok.kill();
    let _ = ok.wait();
    let _ = refused.kill();
    let _ = refused.wait();
}

/// A worker that starts draining says so at once (not at its next heartbeat, 30 s away here):
/// ClusterStats shows it draining, and the coordinator sends it no new lease even though it
/// has credits; queued work waits for another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_worker_is_shown_at_once_and_sent_no_new_lease() {
    use agentmill_coordinator::config::CoordinatorConfig;
    let redis = TestRedis::start();
    let cfg = CoordinatorConfig { heartbeat_interval: Duration::from_secs(30), lease_ttl: Duration::from_secs(90), ..Default::default() };
    let (_running, addr) = in_process(&redis, "test-drain", cfg).await;
    let mut c = connect(&addr, None).await;
    let (draining, mut events) = WorkerSession::start(session_config(&addr, "w-drain", 2, &[]));
    let w = worker_until(&mut c, "w-drain", "attached with its credits", |w| w.credits == 2).await;
    assert!(!w.draining, "{w:?}");

    draining.drain();
    let w = worker_until(&mut c, "w-drain", "showed as draining", |w| w.draining).await;
    assert_eq!(w.credits, 2, "its credits are still there, and still no lease may use them");
    submit(&mut c, vec![row("drain-task", serde_json::json!({}))]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&mut c, "drain-task").await.state, TaskState::Queued as i32, "the task was leased to a draining worker");

    // Another worker takes it; the draining one never sees a lease.
    let mut ran = noop_worker(&addr, "w-fresh", 1, Duration::from_millis(10), &[]);
    wait_state(&mut c, "drain-task", TaskState::Done, Duration::from_secs(20)).await;
    assert_eq!(ran.recv().await.as_deref(), Some("drain-task/0"));
    while let Ok(ev) = events.try_recv() {
        assert!(!matches!(ev, SessionEvent::Lease(_)), "the draining worker got a lease: {ev:?}");
    }
}

/// Hand-backs (a worker releasing a lease it will not run) take the next attempt number but are
/// not failures: with max_attempts = 2, a rollout handed back twice still gets two real tries,
/// and fails only after the second infrastructure error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_backs_do_not_use_up_attempts() {
    use agentmill_coordinator::config::CoordinatorConfig;
    let redis = TestRedis::start();
    let (_running, addr) = in_process(&redis, "test-handback", CoordinatorConfig { max_attempts: 2, ..Default::default() }).await;
    let mut c = connect(&addr, None).await;
    let (handle, mut events) = WorkerSession::start(session_config(&addr, "w-handback", 1, &[]));
    submit(&mut c, vec![row("handback-task", serde_json::json!({}))]).await;
    // Leases 1 and 2 are handed back; 3 and 4 end in sandbox errors.
    let mut attempts = Vec::new();
    while attempts.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv()).await.expect("a lease within 20 s").expect("session open");
        let SessionEvent::Lease(g) = ev else { continue };
        attempts.push(g.attempt);
        if attempts.len() <= 2 {
            handle.release(&g.lease_id, "the worker is draining");
        } else {
            let error = v1::EpisodeResult {
                record_id: agentmill_proto::TrajectoryRecord::episode_record_id("handback-task", g.rollout, g.attempt),
                exit_reason: v1::ExitReason::SandboxError as i32,
                error: format!("docker went away (try {})", attempts.len() - 2),
                ..Default::default()
            };
            handle.result(&g.lease_id, error);
        }
        if attempts.len() == 3 {
            // After one failure the rollout is queued again, not failed. (Waiting for a state
            // would race: attempt 3 is itself `leased` until its result lands.)
            let deadline = Instant::now() + Duration::from_secs(20);
            let t = loop {
                let t = get(&mut c, "handback-task").await;
                if t.rollouts[0].failures == 1 {
                    break t;
                }
                assert!(Instant::now() < deadline, "the sandbox error was never counted: {t:#?}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            };
            assert_ne!(t.rollouts[0].state, TaskState::Failed as i32, "one failure of two failed it: {t:#?}");
        }
    }
    assert_eq!(attempts, [1, 2, 3, 4], "every lease takes the next attempt number");
    let t = wait_state(&mut c, "handback-task", TaskState::Failed, Duration::from_secs(20)).await;
    let r = &t.rollouts[0];
    assert_eq!((r.attempt, r.failures), (4, 2), "{r:#?}");
    assert!(r.last_error.starts_with("failed after 2 attempts; last: sandbox_error: docker went away (try 2)"), "{}", r.last_error);
}
