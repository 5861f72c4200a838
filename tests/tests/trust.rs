//! Trust boundaries at the coordinator (issue 17): credentials with roles, workers bound to their
//! ids, leases bound to the session they were granted on, lease ids kept out of client views,
//! credits capped at a session's capacity, bounded session buffers and heartbeats, and task rows
//! whose fields are too large refused. A real coordinator (in this process, on loopback) and a
//! real Redis; workers speak the real Attach stream.

use std::time::{Duration, Instant};

use agentmill_coordinator::auth::{CredentialConfig, Role};
use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_coordinator::config::CoordinatorConfig;
use agentmill_proto::v1::{self, TaskState, coordinator_message::Msg as Out, worker_message::Msg as In};
use agentmill_tests::{TestRedis, unique};
use tokio::sync::mpsc;
use tonic::Streaming;

const CLIENT: &str = "client-token-1";
const OPERATOR: &str = "operator-token-1";
const WORKER_A: &str = "worker-token-a";
const WORKER_B: &str = "worker-token-b";

fn cred(name: &str, role: Role, token: &str, ids: &[&str]) -> CredentialConfig {
    CredentialConfig { name: name.into(), role: Some(role), token: Some(token.into()), worker_ids: ids.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// The credentials every test here runs with: a client, an operator, and two workers each bound
/// to its own id.
fn credentials() -> Vec<CredentialConfig> {
    vec![
        cred("alice", Role::Client, CLIENT, &[]),
        cred("ops", Role::Operator, OPERATOR, &[]),
        cred("worker-a", Role::Worker, WORKER_A, &["w-a"]),
        cred("worker-b", Role::Worker, WORKER_B, &["w-b"]),
    ]
}

/// A coordinator in this process with `cfg`, on a free port and a fresh namespace.
async fn coordinator(redis: &TestRedis, cfg: CoordinatorConfig) -> (agentmill_coordinator::server::Running, String) {
    let cfg = CoordinatorConfig {
        listen: format!("127.0.0.1:{}", agentmill_tests::free_port()).parse().expect("addr"),
        metrics_listen: None,
        redis_url: redis.url.clone(),
        namespace: unique("test-trust"),
        ..cfg
    };
    let running = agentmill_coordinator::server::start(cfg, futures::future::pending()).await.expect("coordinator");
    let addr = format!("http://{}", running.addr);
    (running, addr)
}

async fn connect(addr: &str, token: &str) -> Client {
    client::connect(&ClientConfig { addr: Some(addr.to_string()), token: Some(token.to_string()), ca_cert: None }).await.expect("connect")
}

fn row(id: &str) -> v1::TaskInput {
    let v = serde_json::json!({"instance_id": id, "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
    v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }
}

async fn submit(c: &mut Client, rows: Vec<v1::TaskInput>) -> v1::SubmitTasksResponse {
    c.submit_tasks(v1::SubmitTasksRequest { tasks: rows, base_dir: String::new() }).await.expect("submit").into_inner()
}

async fn get(c: &mut Client, id: &str) -> v1::TaskStatus {
    c.get_task(v1::GetTaskRequest { task_id: id.into() }).await.expect("get").into_inner()
}

fn register(id: &str, episodes: u32, held: &[&str]) -> v1::Register {
    v1::Register {
        worker_id: id.into(),
        host: "localhost".into(),
        capacity: Some(v1::Capacity { episodes, ..Default::default() }),
        held_leases: held.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A worker session spoken by hand: the sender of its messages and the coordinator's replies.
struct Raw {
    tx: mpsc::UnboundedSender<v1::WorkerMessage>,
    rx: Streaming<v1::CoordinatorMessage>,
}

impl Raw {
    /// Attaches with `token` and `reg`; the first reply must be Registered.
    async fn attach(addr: &str, token: &str, reg: v1::Register) -> Result<Raw, tonic::Status> {
        let mut c = connect(addr, token).await;
        let (tx, out) = mpsc::unbounded_channel();
        tx.send(v1::WorkerMessage { msg: Some(In::Register(reg)) }).expect("send");
        let mut rx = c.attach(tokio_stream::wrappers::UnboundedReceiverStream::new(out)).await?.into_inner();
        match rx.message().await? {
            Some(v1::CoordinatorMessage { msg: Some(Out::Registered(_)) }) => Ok(Raw { tx, rx }),
            other => panic!("the first reply on Attach is Registered, not {other:?}"),
        }
    }

    fn send(&self, m: In) {
        self.tx.send(v1::WorkerMessage { msg: Some(m) }).expect("session open");
    }

    /// The next message from the coordinator (20 s at most).
    async fn next(&mut self) -> Out {
        let m = tokio::time::timeout(Duration::from_secs(20), self.rx.message()).await.expect("a message within 20 s");
        m.expect("stream ok").and_then(|m| m.msg).expect("a message")
    }

    /// The next lease, skipping other messages.
    async fn lease(&mut self) -> v1::LeaseGrant {
        loop {
            if let Out::Lease(g) = self.next().await {
                return g;
            }
        }
    }

    /// The answer to the result on `lease_id`, skipping other messages.
    async fn ack(&mut self, lease_id: &str) -> v1::ResultAck {
        loop {
            match self.next().await {
                Out::Ack(a) if a.lease_id == lease_id => return a,
                _ => continue,
            }
        }
    }
}

fn full_result() -> v1::EpisodeResult {
    v1::EpisodeResult { exit_reason: v1::ExitReason::Submitted as i32, resolution: v1::Resolution::Full as i32, resolved: true, reward: 1.0, ..Default::default() }
}

/// Polls ClusterStats (as the operator) until `ok` holds (20 s at most).
async fn stats_until(c: &mut Client, what: &str, ok: impl Fn(&v1::ClusterStatsResponse) -> bool) -> v1::ClusterStatsResponse {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never {what}: {s:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn denied(r: Result<impl std::fmt::Debug, tonic::Status>, what: &str) -> String {
    let e = r.expect_err(what);
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{what}: {e:?}");
    e.message().to_string()
}

/// Each credential reaches what its role allows and is refused the rest with PermissionDenied
/// naming the role needed; a worker credential attaches only as the worker ids it is bound to;
/// the legacy single `token` is still an operator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reaches_only_its_calls_and_a_worker_only_its_own_id() {
    let redis = TestRedis::start();
    let (_running, addr) = coordinator(&redis, CoordinatorConfig { token: Some("legacy-token".into()), credentials: credentials(), ..Default::default() }).await;

    let mut client = connect(&addr, CLIENT).await;
    assert_eq!(submit(&mut client, vec![row("role-1")]).await.accepted, ["role-1"]);
    get(&mut client, "role-1").await;
    client.cluster_stats(v1::ClusterStatsRequest {}).await.expect("a client reads stats");
    let msg = denied(client.cordon_workers(v1::CordonWorkersRequest { worker_ids: vec!["w-a".into()], uncordon: false }).await, "a client cordons");
    assert!(msg.contains("CordonWorkers needs role operator") && msg.contains("\"alice\" has role client"), "{msg}");
    let msg = denied(Raw::attach(&addr, CLIENT, register("w-a", 1, &[])).await.map(|_| ()), "a client attaches");
    assert!(msg.contains("Attach needs role worker or operator"), "{msg}");
    let msg = denied(client.get_content(v1::GetContentRequest { sha256: "0".repeat(64) }).await.map(|_| ()), "a client reads content");
    assert!(msg.contains("GetContent needs role worker"), "{msg}");

    let mut worker = connect(&addr, WORKER_A).await;
    let msg = denied(worker.submit_tasks(v1::SubmitTasksRequest { tasks: vec![row("role-2")], base_dir: String::new() }).await, "a worker submits");
    assert!(msg.contains("SubmitTasks needs role client or operator") && msg.contains("\"worker-a\" has role worker"), "{msg}");
    denied(worker.get_task(v1::GetTaskRequest { task_id: "role-1".into() }).await, "a worker reads a task");
    Raw::attach(&addr, WORKER_A, register("w-a", 1, &[])).await.expect("worker-a attaches as w-a");
    let msg = denied(Raw::attach(&addr, WORKER_A, register("w-b", 1, &[])).await.map(|_| ()), "worker-a attaches as w-b");
    assert!(msg.contains("may attach as worker ids [\"w-a\"], not \"w-b\""), "{msg}");

    let mut ops = connect(&addr, OPERATOR).await;
    ops.cordon_workers(v1::CordonWorkersRequest { worker_ids: vec!["w-x".into()], uncordon: false }).await.expect("an operator cordons");
    let mut legacy = connect(&addr, "legacy-token").await;
    legacy.cordon_workers(v1::CordonWorkersRequest { worker_ids: vec!["w-x".into()], uncordon: true }).await.expect("the legacy token is an operator's");
    let err = connect(&addr, "guess").await.cluster_stats(v1::ClusterStatsRequest {}).await.expect_err("an unknown token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}

/// A token holder attaching with another worker's id cannot finish that worker's lease: a FULL
/// result on its own session is refused, claiming the lease at Register with another credential
/// is refused, a heartbeat does not claim it, and the rollout is left as it was. The worker it
/// belongs to claims it back and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_result_from_another_session_is_refused_and_changes_nothing() {
    let redis = TestRedis::start();
    let (_running, addr) = coordinator(&redis, CoordinatorConfig { credentials: credentials(), ..Default::default() }).await;
    let mut ops = connect(&addr, OPERATOR).await;
    submit(&mut ops, vec![row("forge-1")]).await;

    let mut honest = Raw::attach(&addr, WORKER_A, register("w-a", 1, &[])).await.expect("attach");
    honest.send(In::Credit(v1::Credit { n: 1 }));
    let grant = honest.lease().await;
    let lease = grant.lease_id.clone();
    // Another credential cannot take the id over while the worker is attached.
    let msg = denied(Raw::attach(&addr, OPERATOR, register("w-a", 1, &[&lease])).await.map(|_| ()), "an operator takes over w-a's session");
    assert!(msg.contains("attached with another credential"), "{msg}");
    // The worker drops its connection; its lease lives on until its deadline.
    drop(honest);
    stats_until(&mut ops, "saw w-a detach", |s| s.workers.iter().all(|w| w.worker_id != "w-a")).await;
    let before = get(&mut ops, "forge-1").await;
    assert_eq!(before.rollouts[0].lease_id, lease);

    // A token holder attaches as w-a without the lease and sends a FULL result on it.
    let mut forger = Raw::attach(&addr, OPERATOR, register("w-a", 1, &[])).await.expect("the operator may attach as any id");
    forger.send(In::Heartbeat(v1::Heartbeat { active_leases: vec![lease.clone()], ..Default::default() }));
    forger.send(In::Progress(v1::Progress { lease_id: lease.clone(), stage: v1::Stage::Run as i32, detail: "forged".into(), ..Default::default() }));
    forger.send(In::Result(v1::Result { lease_id: lease.clone(), result: Some(full_result()) }));
    let ack = forger.ack(&lease).await;
    assert!(!ack.accepted, "the forged result was accepted: {ack:?}");
    drop(forger);
    stats_until(&mut ops, "saw the forger detach", |s| s.workers.iter().all(|w| w.worker_id != "w-a")).await;
    // ...and with the lease named at Register: the lease was granted to another credential.
    let mut claimer = Raw::attach(&addr, OPERATOR, register("w-a", 1, &[&lease])).await.expect("attach");
    match claimer.next().await {
        Out::Cancel(c) => assert_eq!(c.lease_id, lease, "the claim is answered with a cancel"),
        other => panic!("a claim of another credential's lease is refused, not answered with {other:?}"),
    }
    claimer.send(In::Result(v1::Result { lease_id: lease.clone(), result: Some(full_result()) }));
    assert!(!claimer.ack(&lease).await.accepted, "the claimed lease's result was accepted");
    drop(claimer);
    stats_until(&mut ops, "saw the claimer detach", |s| s.workers.iter().all(|w| w.worker_id != "w-a")).await;

    let after = get(&mut ops, "forge-1").await;
    let (b, a) = (&before.rollouts[0], &after.rollouts[0]);
    assert_eq!((a.state, a.attempt, a.failures, a.stage, &a.lease_id, a.result.is_none()), (b.state, b.attempt, b.failures, b.stage, &b.lease_id, true), "the rollout is unchanged: {after:#?}");
    assert_eq!(a.state, TaskState::Leased as i32);

    // The worker comes back with its own credential, claims its lease and finishes it.
    let mut back = Raw::attach(&addr, WORKER_A, register("w-a", 1, &[&lease])).await.expect("attach");
    back.send(In::Result(v1::Result { lease_id: lease.clone(), result: Some(full_result()) }));
    assert!(back.ack(&lease).await.accepted, "the worker's own result is accepted");
    assert_eq!(get(&mut ops, "forge-1").await.state, TaskState::Done as i32);
}

/// A client never sees a lease id (GetTask, ListTasks), so it has none to hand a forger; an
/// operator does, for debugging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_shown_no_lease_id() {
    let redis = TestRedis::start();
    let (_running, addr) = coordinator(&redis, CoordinatorConfig { credentials: credentials(), ..Default::default() }).await;
    let mut client = connect(&addr, CLIENT).await;
    submit(&mut client, vec![row("hidden-1")]).await;
    let mut worker = Raw::attach(&addr, WORKER_A, register("w-a", 1, &[])).await.expect("attach");
    worker.send(In::Credit(v1::Credit { n: 1 }));
    let grant = worker.lease().await;

    let seen = get(&mut client, "hidden-1").await;
    assert_eq!(seen.rollouts[0].state, TaskState::Leased as i32, "{seen:#?}");
    assert_eq!(seen.rollouts[0].worker_id, "w-a", "who runs it is still shown");
    assert_eq!(seen.rollouts[0].lease_id, "", "GetTask shows a client the lease id");
    let page = client.list_tasks(v1::ListTasksRequest::default()).await.expect("list").into_inner();
    assert_eq!(page.tasks.len(), 1);
    assert!(page.tasks.iter().flat_map(|t| &t.rollouts).all(|r| r.lease_id.is_empty()), "ListTasks shows a client a lease id: {page:#?}");

    let mut ops = connect(&addr, OPERATOR).await;
    assert_eq!(get(&mut ops, "hidden-1").await.rollouts[0].lease_id, grant.lease_id, "an operator sees it");
}

/// An in-process worker (the real worker session) with `token` that finishes every lease at once.
fn honest_worker(addr: &str, token: &str, id: &str, episodes: u32) {
    use agentmill_worker::session::{SessionConfig, SessionEvent, WorkerSession};
    let (handle, mut events) = WorkerSession::start(SessionConfig {
        addr: addr.to_string(),
        token: Some(token.to_string()),
        ca_cert: None,
        worker_id: id.to_string(),
        host: "localhost".into(),
        capacity: v1::Capacity { episodes, ..Default::default() },
        labels: Default::default(),
        cached_images: vec![],
        max_backoff: Duration::from_millis(200),
    });
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let SessionEvent::Lease(g) = ev {
                handle.result(&g.lease_id, full_result());
            }
        }
    });
}

async fn wait_done(c: &mut Client, id: &str) -> v1::TaskStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = get(c, id).await;
        if t.state == TaskState::Done as i32 {
            return t;
        }
        assert!(t.state != TaskState::Failed as i32, "{id} failed: {t:#?}");
        assert!(Instant::now() < deadline, "{id} not done within 60 s: {t:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session that asks for u32::MAX credits and never heartbeats is sent no more leases than the
/// capacity it registered; the rest of the queue goes to an honest worker, and the greedy
/// session's leases expire and are run again elsewhere: one failure on each of those rollouts,
/// none beyond them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_session_gets_no_more_than_its_capacity_and_the_queue_is_still_served() {
    let redis = TestRedis::start();
    let cfg = CoordinatorConfig { credentials: credentials(), lease_ttl: Duration::from_secs(2), heartbeat_interval: Duration::from_millis(500), ..Default::default() };
    let (_running, addr) = coordinator(&redis, cfg).await;
    let mut ops = connect(&addr, OPERATOR).await;

    let mut greedy = Raw::attach(&addr, WORKER_B, register("w-b", 2, &[])).await.expect("attach");
    greedy.send(In::Credit(v1::Credit { n: u32::MAX }));
    stats_until(&mut ops, "capped w-b's credits at its capacity of 2", |s| s.workers.iter().any(|w| w.worker_id == "w-b" && w.credits == 2)).await;
    let ids: Vec<String> = (0..6).map(|i| format!("greedy-{i}")).collect();
    submit(&mut ops, ids.iter().map(|id| row(id)).collect()).await;
    let taken = [greedy.lease().await, greedy.lease().await];
    let taken_ids: Vec<String> = taken.iter().map(|g| g.task.as_ref().map(|t| t.instance_id.clone()).unwrap_or_default()).collect();

    honest_worker(&addr, WORKER_A, "w-a", 1);
    for id in &ids {
        let t = wait_done(&mut ops, id).await;
        let r = &t.rollouts[0];
        assert_eq!(r.worker_id, "w-a", "{id} was finished by the honest worker");
        if taken_ids.contains(id) {
            assert_eq!((r.attempt, r.failures), (2, 1), "{id} was the greedy session's: one expired attempt, then done: {t:#?}");
        } else {
            assert_eq!((r.attempt, r.failures), (1, 0), "{id} went straight to the honest worker: {t:#?}");
        }
    }
    // Each of the greedy session's leases expired and was cancelled on it; it was sent nothing else.
    let mut cancelled = Vec::new();
    while cancelled.len() < taken.len() {
        match greedy.next().await {
            Out::Cancel(c) => cancelled.push(c.lease_id),
            Out::Lease(g) => panic!("the greedy session was sent a lease beyond its capacity: {g:?}"),
            _ => continue,
        }
    }
    cancelled.sort();
    let mut expected: Vec<String> = taken.iter().map(|g| g.lease_id.clone()).collect();
    expected.sort();
    assert_eq!(cancelled, expected);
    let s = ops.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
    assert_eq!((s.leases_granted, s.leases_expired), (8, 2), "six leases, two of them expired and granted again");
    assert_eq!(s.tasks_by_state.get("done").copied(), Some(6));
}

/// A heartbeat listing far more lease ids than its session can hold closes the session with an
/// error naming the count and the limit, instead of answering each unknown id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_listing_more_leases_than_the_session_can_hold_closes_it() {
    let redis = TestRedis::start();
    let (_running, addr) = coordinator(&redis, CoordinatorConfig { credentials: credentials(), ..Default::default() }).await;
    let mut ops = connect(&addr, OPERATOR).await;
    let mut flood = Raw::attach(&addr, WORKER_A, register("w-a", 1, &[])).await.expect("attach");
    flood.send(In::Heartbeat(v1::Heartbeat { active_leases: (0..100_000).map(|i| format!("made-up-{i}")).collect(), ..Default::default() }));
    let answer = tokio::time::timeout(Duration::from_secs(20), flood.rx.message()).await.expect("an answer within 20 s");
    let err = answer.expect_err("the session is closed with an error, not answered lease by lease");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("lists 100000 lease ids") && err.message().contains("may list at most 66"), "{}", err.message());
    stats_until(&mut ops, "dropped the flooding session", |s| s.workers.iter().all(|w| w.worker_id != "w-a")).await;
    // An honest heartbeat (its leases plus a few unknown ones) is still answered id by id.
    let mut ok = Raw::attach(&addr, WORKER_A, register("w-a", 1, &[])).await.expect("attach again");
    ok.send(In::Heartbeat(v1::Heartbeat { active_leases: vec!["gone-1".into()], ..Default::default() }));
    match ok.next().await {
        Out::Cancel(c) => assert_eq!(c.lease_id, "gone-1"),
        other => panic!("an unknown lease is answered with a cancel, not {other:?}"),
    }
}

/// A session that leaves `session_buffer` messages unread is closed (its stream ends once what
/// was buffered is read) instead of holding an ever-growing queue in the coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_does_not_read_its_messages_is_closed() {
    let redis = TestRedis::start();
    let (_running, addr) = coordinator(&redis, CoordinatorConfig { credentials: credentials(), session_buffer: 16, ..Default::default() }).await;
    let mut ops = connect(&addr, OPERATOR).await;
    let mut slow = Raw::attach(&addr, WORKER_A, register("w-a", 1, &[])).await.expect("attach");
    // Each heartbeat is within its limit (66 ids) and earns 66 cancels of ~1 KiB each; the
    // session reads none of them. 200 of them (~13 MiB) outgrow every window and buffer on the way.
    let long = "x".repeat(1000);
    for hb in 0..200 {
        if slow.tx.send(v1::WorkerMessage { msg: Some(In::Heartbeat(v1::Heartbeat { active_leases: (0..66).map(|i| format!("{long}-{hb}-{i}")).collect(), ..Default::default() })) }).is_err() {
            break;
        }
    }
    stats_until(&mut ops, "dropped the session that does not read", |s| s.workers.iter().all(|w| w.worker_id != "w-a")).await;
    let mut read = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), slow.rx.message()).await.expect("the stream moves within 20 s") {
            Ok(Some(_)) => read += 1,
            Ok(None) => break,
            Err(e) => panic!("the stream ends cleanly, not with {e:?}"),
        }
    }
    assert!(read < 200 * 66, "the closed session was sent every cancel ({read})");
}

/// Rows with a field over its limit are refused naming the field, its size and the limit; the
/// good rows of the same batch are accepted. The defaults refuse a patch over 8 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_with_oversized_fields_are_refused_naming_the_field_and_the_limit() {
    use agentmill_coordinator::config::RowLimits;
    let redis = TestRedis::start();
    let limits = RowLimits { patch_bytes: 100, tests: 3, test_name_bytes: 50, extra_bytes: 100, ..Default::default() };
    let (_running, addr) = coordinator(&redis, CoordinatorConfig { credentials: credentials(), row_limits: limits, ..Default::default() }).await;
    let mut c = connect(&addr, CLIENT).await;
    let with = |id: &str, extra: serde_json::Value| {
        let mut v = serde_json::json!({"instance_id": id, "repo": "agentmill/x", "FAIL_TO_PASS": ["t.py::a"], "problem_statement": "fix it"});
        v.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(v.to_string())) }
    };
    let rows = vec![
        with("fits", serde_json::json!({"patch": "p".repeat(100)})),
        with("big-patch", serde_json::json!({"patch": "p".repeat(101)})),
        with("many-tests", serde_json::json!({"FAIL_TO_PASS": ["a", "b", "c", "d"]})),
        with("long-name", serde_json::json!({"PASS_TO_PASS": ["ok", "n".repeat(51)]})),
        with("big-extra", serde_json::json!({"blob": "b".repeat(200)})),
    ];
    let resp = submit(&mut c, rows).await;
    assert_eq!(resp.accepted, ["fits"], "{resp:#?}");
    let by_task: std::collections::BTreeMap<&str, (&str, &str)> = resp.rejected.iter().map(|e| (e.task_id.as_str(), (e.field.as_str(), e.reason.as_str()))).collect();
    assert_eq!(by_task.len(), 4, "{resp:#?}");
    let (field, reason) = by_task["big-patch"];
    assert_eq!(field, "patch");
    assert!(reason.contains("is 101 bytes, over the limit of 100 bytes (row_limits.patch_bytes"), "{reason}");
    let (field, reason) = by_task["many-tests"];
    assert_eq!(field, "FAIL_TO_PASS");
    assert!(reason.contains("lists 4 tests, over the limit of 3 (row_limits.tests"), "{reason}");
    let (field, reason) = by_task["long-name"];
    assert_eq!(field, "PASS_TO_PASS[1]");
    assert!(reason.contains("51 bytes") && reason.contains("row_limits.test_name_bytes"), "{reason}");
    let (field, reason) = by_task["big-extra"];
    assert_eq!(field, "extra");
    assert!(reason.contains("row_limits.extra_bytes"), "{reason}");

    // The default limit: 8 MiB of patch.
    let (_default, addr) = coordinator(&redis, CoordinatorConfig { credentials: credentials(), ..Default::default() }).await;
    let mut c = connect(&addr, CLIENT).await;
    let err = c
        .submit_tasks(v1::SubmitTasksRequest { tasks: vec![with("huge", serde_json::json!({"patch": "p".repeat((8 << 20) + 1)}))], base_dir: String::new() })
        .await
        .expect_err("the only row is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("patch: is 8388609 bytes (8.0 MiB), over the limit of 8388608 bytes (8.0 MiB)"), "{}", err.message());
}
