//! Only the attempt the coordinator accepted trains: over a real Redis stream, with the
//! coordinator's task statuses written where the coordinator writes them (`{ns}:task:{id}`,
//! field `status`, an `agentmill.v1.TaskStatus`), and real libtorch (CPU).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use agentmill_learner::service::position::{self, LEDGER_FILE, Outcome};
use agentmill_learner::service::{self, StopReason};
use agentmill_proto::{ExitReason, TrajectoryRecord, v1};
use agentmill_testkit::{TestRedis, free_port, unique};
use common::{ctx_record, env_record, publish, scrape};
use prost::Message as _;

/// An episode's record of `task`'s `rollout` at `attempt`, as a worker writes it.
fn episode(task: &str, rollout: u32, attempt: u32, seed: u64) -> TrajectoryRecord {
    let mut r = env_record("x", seed, 2, ExitReason::Submitted, seed.is_multiple_of(2));
    r.task_id = task.to_string();
    r.rollout = rollout;
    r.attempt = attempt;
    r.record_id = TrajectoryRecord::episode_record_id(task, rollout, attempt);
    r
}

/// Writes the task's status as the coordinator does: rollout 0 in `state` at `attempt`.
fn set_status(con: &mut redis::Connection, ns: &str, task: &str, state: v1::TaskState, attempt: u32) {
    let status = v1::TaskStatus {
        rollouts: vec![v1::RolloutStatus { rollout: 0, state: state as i32, attempt, ..Default::default() }],
        ..Default::default()
    };
    let _: () = redis::cmd("HSET")
        .arg(format!("{ns}:task:{task}"))
        .arg("status")
        .arg(status.encode_to_vec())
        .query(con)
        .expect("HSET status");
}

/// The value of a metric line starting with `name` (labels included), when present.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

/// Which records the ledger says trained, and how often.
fn trained(out: &std::path::Path) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for l in position::read_ledger(&out.join(LEDGER_FILE)).expect("read the ledger") {
        if l.outcome == Outcome::Trained
            && let Some(id) = l.record_id
        {
            *n.entry(id).or_default() += 1;
        }
    }
    n
}

/// A worker cut off from the coordinator published attempt 1 of a rollout whose attempt 2
/// the coordinator accepted; attempt 1 is never trained and is counted `superseded`. A record
/// whose rollout has not decided is held (unacknowledged) — across a restart too — and trains
/// once the coordinator accepts it, exactly once. Records of a task the coordinator does not
/// know (a local run) and ctx records train as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_attempt_is_not_trained_and_an_undecided_one_waits() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-acceptance");
    let ns = unique("ns");
    let out = tempfile::tempdir().expect("tempdir");

    // Rollout 0 of task-a: attempt 1's lease expired, attempt 2 ran elsewhere and was accepted.
    set_status(&mut con, &ns, "task-a", v1::TaskState::Done, 2);
    // task-c's only attempt was lost and the rollout failed: nothing of it is accepted.
    set_status(&mut con, &ns, "task-c", v1::TaskState::Failed, 1);
    // task-b's attempt 1 has published but not yet reported.
    set_status(&mut con, &ns, "task-b", v1::TaskState::Running, 1);
    let a1 = episode("task-a", 0, 1, 1);
    let a2 = episode("task-a", 0, 2, 2);
    let c1 = episode("task-c", 0, 1, 3);
    let b1 = episode("task-b", 0, 1, 4);
    let local = episode("task-local", 0, 1, 5);
    let ctx = ctx_record("ctx-0", &common::code_text(9, 80));
    let ids = publish(&mut con, &stream, &[a1.clone(), a2.clone(), c1.clone(), b1.clone(), local.clone(), ctx.clone()]);
    let b1_entry = ids[3].clone();

    // Run 1: stops (as on SIGTERM) while task-b is undecided.
    let port = free_port();
    let mut cfg = common::learner_config(&redis.url, &stream, out.path());
    cfg.coordinator_namespace = ns.clone();
    cfg.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    cfg.until_idle = Some(Duration::from_millis(1500));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run1 = tokio::spawn(service::run(cfg.clone(), async move {
        let _ = stop_rx.await;
    }));
    loop {
        let text = tokio::task::spawn_blocking(move || scrape(port)).await.expect("scrape").unwrap_or_default();
        let held = metric(&text, "agentmill_learner_records_awaiting_acceptance");
        let superseded = metric(&text, "agentmill_learner_records_total{kind=\"env\",outcome=\"superseded\"}");
        if held == Some(1.0) && superseded == Some(2.0) {
            break;
        }
        assert!(!run1.is_finished(), "run 1 stopped before holding task-b's record: {:?}", run1.await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    let s1 = run1.await.expect("join").expect("run 1");
    assert_eq!(s1.stop_reason, StopReason::Shutdown);
    assert_eq!(s1.records.superseded, 2, "attempt 1 of task-a and task-c's failed attempt: {:?}", s1.records);
    let pending: Vec<(String, String, u64, u64)> =
        redis::cmd("XPENDING").arg(&stream).arg("learner").arg("-").arg("+").arg(100).query(&mut con).expect("XPENDING");
    assert!(
        pending.iter().any(|(id, ..)| *id == b1_entry),
        "the held record stays unacknowledged for the next run: {pending:?}"
    );
    assert!(!trained(out.path()).contains_key(&b1.record_id), "task-b's record trained before it was accepted");

    // The coordinator accepts task-b's attempt 1; run 2 resumes and trains it.
    set_status(&mut con, &ns, "task-b", v1::TaskState::Done, 1);
    cfg.metrics_listen = None;
    let s2 = service::run(cfg, std::future::pending()).await.expect("run 2");
    assert_eq!(s2.stop_reason, StopReason::UntilIdle);
    let trained = trained(out.path());
    for r in [&a2, &b1, &local, &ctx] {
        assert_eq!(trained.get(&r.record_id), Some(&1), "{} must train exactly once: {trained:?}", r.record_id);
    }
    for r in [&a1, &c1] {
        assert!(!trained.contains_key(&r.record_id), "{} was not accepted but trained: {trained:?}", r.record_id);
    }
    assert_eq!(common::pending(&mut con, &stream, "learner"), 0, "every entry is acknowledged at the end");
}

/// A record whose rollout never accepts an attempt is held only until `acceptance_timeout`,
/// then settled `unaccepted` (acknowledged, never trained).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_never_accepted_is_settled_after_the_timeout() {
    let redis = TestRedis::start();
    let mut con = common::connect(&redis);
    let stream = unique("learner-unaccepted");
    let ns = unique("ns");
    let out = tempfile::tempdir().expect("tempdir");
    set_status(&mut con, &ns, "task-d", v1::TaskState::Leased, 1);
    let d1 = episode("task-d", 0, 1, 7);
    let ctx = ctx_record("ctx-1", &common::code_text(11, 80));
    publish(&mut con, &stream, &[d1.clone(), ctx.clone()]);
    let mut cfg = common::learner_config(&redis.url, &stream, out.path());
    cfg.coordinator_namespace = ns;
    cfg.acceptance_timeout = Duration::from_secs(2);
    let s = service::run(cfg, std::future::pending()).await.expect("run");
    assert_eq!(s.stop_reason, StopReason::UntilIdle);
    assert_eq!((s.records.unaccepted, s.records.superseded, s.records.ctx, s.records.env), (1, 0, 1, 0), "{:?}", s.records);
    assert_eq!(common::pending(&mut con, &stream, "learner"), 0, "the unaccepted record is acknowledged");
}
