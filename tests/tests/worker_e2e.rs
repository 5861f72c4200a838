//! The worker as deployed: real `agentmill-coordinator` and `agentmill-worker` processes, real
//! Redis, real Docker containers of the sandbox image, the bundled tasks.

use std::time::{Duration, Instant};

use agentmill_cli::client::{self, ClientConfig};
use agentmill_proto::{ExitReason, Resolution, Role, TrajectoryRecord, v1};
use agentmill_tests::{CoordinatorProcess, TestRedis, WorkerProcess, agentmill, bundled_tasks, docker_or_skip, http_get, stream_records, unique, wait_all_done, workspace};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_resolves_every_bundled_task_with_real_observations() {
    let Some(engine) = docker_or_skip("replay_resolves_every_bundled_task_with_real_observations").await else { return };
    let redis = TestRedis::start();
    let stream = unique("test:traj");
    // The coordinator reads the same stream, for `agentmill trajectory`.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, format!("stream = {stream:?}\n")).expect("write config");
    let coord = CoordinatorProcess::start(&redis.url, &["--config", config.to_str().expect("utf-8 path")]).await;
    let worker_id = unique("w-replay");
    let _worker = WorkerProcess::start(&coord, &redis.url, &stream, &worker_id, 2);
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let summary = client::submit_file(&mut c, &workspace().join("deploy/tasks/tasks.jsonl"), 100, &Default::default(), |_| {}).await.expect("submit");
    let tasks = bundled_tasks();
    assert_eq!(summary.accepted.len(), tasks.len());
    wait_all_done(&mut c, tasks.len() as u64, Duration::from_secs(600)).await;

    for t in &tasks {
        let st = c.get_task(v1::GetTaskRequest { task_id: t.instance_id.clone() }).await.expect("get").into_inner();
        let res = st.rollouts[0].result.as_ref().expect("a result");
        assert_eq!(res.resolution, v1::Resolution::Full as i32, "{}: {res:?}", t.instance_id);
        assert!(!res.stream_id.is_empty());
    }
    let recs = stream_records(&redis.url, &stream).await;
    assert_eq!(recs.len(), tasks.len(), "one record per episode");
    for r in &recs {
        assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{}", r.task_id);
        let g = r.grading.as_ref().expect("graded");
        assert_eq!(g.resolution, Resolution::Full, "{}", r.task_id);
        assert_eq!(r.worker, worker_id);
        assert!(r.provenance.image_digest.starts_with("sha256:"), "{:?}", r.provenance.image_digest);
        assert!(r.model_patch.as_deref().is_some_and(|p| p.contains("diff --git")), "{}", r.task_id);
        // Observations are real: the tool outputs hold what the sandbox printed.
        let tool_text: String = r.messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n");
        assert!(r.messages.iter().filter(|m| m.role == Role::Tool).all(|m| m.exit_code.is_some() && m.duration_ms.is_some()));
        let task = tasks.iter().find(|t| t.instance_id == r.task_id).expect("known task");
        let touched = task.patch.lines().find_map(|l| l.strip_prefix("+++ b/")).expect("gold patch names a file");
        assert!(tool_text.contains(touched.rsplit('/').next().unwrap_or(touched)), "{}: the agent never saw {touched}", r.task_id);
        assert!(r.timing.agent_ms > 0 && r.timing.grade_ms > 0 && r.timing.total_ms >= r.timing.agent_ms);
    }
    assert!(engine.containers_of(&worker_id).await.expect("list").is_empty(), "no container left behind");

    // `agentmill trajectory` shows an episode as it happened: the replay's edits, the sandbox's
    // answers with their exit codes, the grading.
    let o = agentmill(&coord.addr, &["trajectory", "agentmill__calc-1"]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in ["agentmill__calc-1 rollout 0 attempt 1", "graded FULL", "→ str_replace_editor(", "── tool (", "exit 0", "── patch ──\ndiff --git"] {
        assert!(shown.contains(want), "{want:?} missing from\n{shown}");
    }

    // The worker's Prometheus metrics count what happened.
    let metrics = http_get(_worker.1, "/metrics").await;
    for line in [
        format!("agentmill_worker_episodes_total{{exit=\"submitted\"}} {}", tasks.len()),
        format!("agentmill_worker_episodes_started_total {}", tasks.len()),
        format!("agentmill_worker_stage_seconds_count{{stage=\"grade\"}} {}", tasks.len()),
        "agentmill_worker_episodes_running 0".to_string(),
    ] {
        assert!(metrics.contains(&line), "worker /metrics lacks {line}:\n{metrics}");
    }
    // The publisher's count reaches the counter within a sampling period (one second).
    let published = format!("agentmill_worker_records_published_total {}", tasks.len());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(_worker.1, "/metrics").await;
        if metrics.contains(&published) {
            assert!(metrics.contains("# TYPE agentmill_worker_records_published_total counter"), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "worker /metrics never showed {published}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_episode_loses_the_lease_and_its_restart_reaps_the_container() {
    let Some(engine) = docker_or_skip("a_worker_killed_mid_episode_loses_the_lease_and_its_restart_reaps_the_container").await else { return };
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--lease-ttl", "3s", "--heartbeat-interval", "500ms"]).await;
    let stream = unique("test:traj");
    let worker_id = unique("w-crash");
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let mut events = c.watch_events(v1::WatchEventsRequest { task_ids: vec![] }).await.expect("watch").into_inner();
    let task = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__semver-1").expect("semver task");
    let row = serde_json::to_string(&task).expect("row");
    let row = agentmill_tests::with_content(&mut c, &workspace(), vec![row]).await.remove(0);
    c.submit_tasks(v1::SubmitTasksRequest { tasks: vec![v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) }], base_dir: String::new() }).await.expect("submit");

    let mut first = WorkerProcess::start(&coord, &redis.url, &stream, &worker_id, 1);
    // Kill it as soon as the agent runs: its container is alive and owned by nobody.
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(120), events.next()).await.expect("an event").expect("stream").expect("event");
        if ev.stage == v1::Stage::Run as i32 {
            break;
        }
    }
    first.kill();
    let orphans = engine.containers_of(&worker_id).await.expect("list");
    assert!(!orphans.is_empty(), "the killed worker left its container");

    let _second = WorkerProcess::start(&coord, &redis.url, &stream, &worker_id, 1);
    wait_all_done(&mut c, 1, Duration::from_secs(300)).await;
    let st = c.get_task(v1::GetTaskRequest { task_id: task.instance_id.clone() }).await.expect("get").into_inner();
    assert_eq!(st.rollouts[0].attempt, 2, "re-leased after the lease expired: {st:?}");
    let recs = stream_records(&redis.url, &stream).await;
    let for_rollout: Vec<&TrajectoryRecord> = recs.iter().filter(|r| r.task_id == task.instance_id && r.rollout == 0).collect();
    assert_eq!(for_rollout.len(), 1, "exactly one record for the rollout");
    assert_eq!(for_rollout[0].attempt, 2);
    for id in orphans {
        let gone = engine.client().inspect_container(&id, None).await.is_err();
        assert!(gone, "the restarted worker reaped orphan {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_episode_stops_it_and_removes_its_container() {
    let Some(engine) = docker_or_skip("cancelling_a_running_episode_stops_it_and_removes_its_container").await else { return };
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:traj");
    let worker_id = unique("w-cancel");
    let _worker = WorkerProcess::start(&coord, &redis.url, &stream, &worker_id, 1);
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let mut events = c.watch_events(v1::WatchEventsRequest { task_ids: vec![] }).await.expect("watch").into_inner();
    // A test command that never ends on its own: the episode is still grading when cancelled.
    let mut task = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__inifile-1").expect("task");
    task.test_cmd = Some("sleep 600".into());
    let row = serde_json::to_string(&task).expect("row");
    let row = agentmill_tests::with_content(&mut c, &workspace(), vec![row]).await.remove(0);
    c.submit_tasks(v1::SubmitTasksRequest { tasks: vec![v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) }], base_dir: String::new() }).await.expect("submit");
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(120), events.next()).await.expect("an event").expect("stream").expect("event");
        if ev.stage == v1::Stage::Grade as i32 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!engine.containers_of(&worker_id).await.expect("list").is_empty(), "grading runs in a container");
    let resp = c.cancel_tasks(v1::CancelTasksRequest { task_ids: vec![task.instance_id.clone()], reason: "test".into() }).await.expect("cancel").into_inner();
    assert_eq!(resp.cancelled, [task.instance_id.clone()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !engine.containers_of(&worker_id).await.expect("list").is_empty() {
        assert!(Instant::now() < deadline, "the cancelled episode's container is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let st = c.get_task(v1::GetTaskRequest { task_id: task.instance_id.clone() }).await.expect("get").into_inner();
    assert_eq!(st.state, v1::TaskState::Cancelled as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_sandbox_backend_resolves_bundled_tasks_without_docker() {
    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &[]).await;
    let stream = unique("test:traj");
    let _worker = WorkerProcess::start_process_backend(&coord, &redis.url, &stream, &unique("w-proc"));
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");
    let picked: Vec<_> = bundled_tasks().into_iter().filter(|t| ["agentmill__inifile-1", "agentmill__texttable-1"].contains(&t.instance_id.as_str())).collect();
    let rows = agentmill_tests::with_content(&mut c, &workspace(), picked.iter().map(|t| serde_json::to_string(t).expect("row")).collect()).await;
    let rows = rows.into_iter().map(|r| v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(r)) }).collect();
    c.submit_tasks(v1::SubmitTasksRequest { tasks: rows, base_dir: String::new() }).await.expect("submit");
    wait_all_done(&mut c, 2, Duration::from_secs(300)).await;
    let recs = stream_records(&redis.url, &stream).await;
    assert_eq!(recs.len(), 2);
    for r in &recs {
        let g = r.grading.as_ref().unwrap_or_else(|| panic!("{} was not graded: {:?}", r.task_id, r.error));
        assert_eq!(g.resolution, Resolution::Full, "{}: {g:?}", r.task_id);
        assert!(r.provenance.image_digest.is_empty(), "no image ran");
    }
}
