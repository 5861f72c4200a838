//! Two worker hosts as separate `agentmill-worker` processes with different labels against one
//! coordinator: work spreads over both, and a task's `worker_selector` sends it only to a worker
//! carrying those labels.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentmill_cli::client::{self, ClientConfig};
use agentmill_cli::report::{self, RowOverrides};
use agentmill_proto::v1;
use agentmill_tests::{CoordinatorProcess, TestRedis, binary, docker_or_skip, stream_records, unique, workspace};

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_worker(coord: &CoordinatorProcess, redis: &str, stream: &str, id: &str, pool: &str, docker: bool) -> Worker {
    let mut cmd = Command::new(binary("agentmill-worker"));
    cmd.args(["--coordinator", &coord.addr, "--redis-url", redis, "--stream", stream, "--worker-id", id, "--episodes", "1"])
        .args(["--label", &format!("pool={pool}"), "--label", &format!("host={id}")])
        .env("AGENTMILL_METRICS_LISTEN", format!("127.0.0.1:{}", agentmill_tests::free_port()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if !docker {
        let python = workspace().join(".venv/bin/python");
        assert!(python.is_file(), "{} is missing; run deploy/setup.sh", python.display());
        cmd.env("AGENTMILL_SANDBOX", "process").env("AGENTMILL_PROCESS_PYTHON", python);
    }
    Worker(cmd.spawn().expect("start agentmill-worker"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_spread_over_two_labelled_workers_and_selectors_hold() {
    let docker = docker_or_skip("tasks_spread_over_two_labelled_workers_and_selectors_hold").await.is_some();
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:two-workers");
    let (wa, wb) = (unique("host-a"), unique("host-b"));
    let _a = start_worker(&coord, &redis.url, &stream, &wa, "a", docker);
    let _b = start_worker(&coord, &redis.url, &stream, &wb, "b", docker);

    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    // Both hosts registered, with their labels.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.cluster_stats(v1::ClusterStatsRequest {}).await.expect("stats").into_inner();
        if s.workers.len() == 2 {
            let labels: BTreeMap<_, _> = s.workers.iter().map(|w| (w.worker_id.clone(), w.labels.get("pool").cloned().unwrap_or_default())).collect();
            assert_eq!(labels, BTreeMap::from([(wa.clone(), "a".to_string()), (wb.clone(), "b".to_string())]));
            break;
        }
        assert!(Instant::now() < deadline, "two workers did not register: {:?}", s.workers);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The bundled tasks: a third pinned to pool=a, a third to pool=b, a third free.
    let dir = workspace().join("deploy/tasks");
    let rows: Vec<String> = std::fs::read_to_string(dir.join("tasks.jsonl")).expect("tasks.jsonl").lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    let third = rows.len() / 3;
    let pin = |pool: &str| RowOverrides { rollouts: Some(1), policy: Some("replay".into()), worker_selector: BTreeMap::from([("pool".into(), pool.into())]), ..Default::default() };
    let free = RowOverrides { rollouts: Some(1), policy: Some("replay".into()), ..Default::default() };
    let mut want: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut inputs = Vec::new();
    // The archives travel with the tasks (uploaded once each), as `agentmill submit` sends them.
    let uploaded = agentmill_tests::with_content(&mut c, &dir, rows.clone()).await;
    for (i, row) in uploaded.iter().enumerate() {
        let (o, pinned) = match i / third.max(1) {
            0 => (pin("a"), Some(wa.clone())),
            1 => (pin("b"), Some(wb.clone())),
            _ => (free.clone(), None),
        };
        let id = serde_json::from_str::<serde_json::Value>(row).expect("row")["instance_id"].as_str().expect("id").to_string();
        want.insert(id, pinned);
        inputs.push(v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(o.apply(row))) });
    }
    let resp = c.submit_tasks(v1::SubmitTasksRequest { tasks: inputs, base_dir: String::new() }).await.expect("submit").into_inner();
    assert!(resp.rejected.is_empty(), "{:?}", resp.rejected);
    assert_eq!(resp.accepted.len(), rows.len());

    let tasks = report::wait_finished(&mut c, &BTreeMap::new(), Duration::from_millis(250), Duration::from_secs(600), |_, _| {}).await.expect("every task finishes");
    let mut ran: BTreeMap<String, u32> = BTreeMap::new();
    for t in &tasks {
        let id = t.task.as_ref().map(|s| s.instance_id.clone()).unwrap_or_default();
        assert_eq!(t.state, v1::TaskState::Done as i32, "{id}: {t:?}");
        let r = &t.rollouts[0];
        assert!(r.result.as_ref().is_some_and(|res| res.resolved), "{id}: {r:?}");
        *ran.entry(r.worker_id.clone()).or_default() += 1;
        if let Some(host) = &want[&id] {
            assert_eq!(&r.worker_id, host, "{id} is pinned to {host} by its worker_selector");
        }
    }
    assert_eq!(ran.len(), 2, "both hosts ran episodes: {ran:?}");
    assert!(ran.values().all(|n| *n >= third as u32), "each host ran at least its pinned tasks: {ran:?}");
    eprintln!("episodes per host: {ran:?}");

    // The records say the same as the coordinator.
    let records = stream_records(&redis.url, &stream).await;
    assert_eq!(records.len(), rows.len());
    for r in &records {
        if let Some(host) = &want[&r.task_id] {
            assert_eq!(&r.worker, host, "{}", r.task_id);
        }
    }
}
