//! A registry that stops answering does not hold a lease: the worker's pull ends at
//! `images.pull_timeout` as `sandbox_error`, the result reaches the coordinator, the attempt is
//! retried and the task fails with the reason after `--max-attempts`; the worker's one episode
//! slot is free again, so the next task runs and resolves. Before the deadline a hung pull held
//! its lease for as long as the worker kept heartbeating.
//!
//! Real `agentmill-coordinator` and `agentmill-worker` processes, real Redis and Docker. The
//! registry is a loopback listener that answers the version check (`GET /v2/`) as a registry
//! does and never answers anything else.

use std::time::{Duration, Instant};

use agentmill_cli::client::{self, Client, ClientConfig};
use agentmill_proto::{ExitReason, Resolution, v1};
use agentmill_tests::{CoordinatorProcess, TestRedis, WorkerProcess, bundled_tasks, docker_or_skip, http_get, stream_records, unique, workspace};
use agentmill_testkit::registry::SilentRegistry;

async fn wait_finished(c: &mut Client, id: &str, within: Duration) -> v1::TaskStatus {
    let deadline = Instant::now() + within;
    loop {
        let s = c.get_task(v1::GetTaskRequest { task_id: id.to_string() }).await.expect("get task").into_inner();
        if s.state == v1::TaskState::Done as i32 || s.state == v1::TaskState::Failed as i32 {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} did not finish within {within:?}: {s:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn submit(c: &mut Client, task: &agentmill_proto::Task) {
    let row = serde_json::to_string(task).expect("row");
    let row = agentmill_tests::with_content(c, &workspace(), vec![row]).await.remove(0);
    let resp = c
        .submit_tasks(v1::SubmitTasksRequest { tasks: vec![v1::TaskInput { input: Some(v1::task_input::Input::JsonRow(row)) }], base_dir: String::new() })
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(resp.accepted.len(), 1, "{resp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_a_hung_registry_ends_at_its_deadline_and_releases_the_lease() {
    let Some(engine) = docker_or_skip("a_pull_from_a_hung_registry_ends_at_its_deadline_and_releases_the_lease").await else { return };
    let silent = SilentRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worker.toml");
    std::fs::write(&config, "[images]\npull = [\"127.0.0.1:*\", \"agentmill/*\"]\npull_timeout = \"2s\"\n").expect("write the worker's config");

    let redis = TestRedis::start();
    let coord = CoordinatorProcess::start(&redis.url, &["--max-attempts", "2"]).await;
    let stream = unique("test:registry");
    let worker_id = unique("w-registry-hang");
    let worker = WorkerProcess::start_with_config(&coord, &redis.url, &stream, &worker_id, 1, Some(&config));
    let mut c = client::connect(&ClientConfig { addr: Some(coord.addr.clone()), ..Default::default() }).await.expect("client");

    let base = bundled_tasks().into_iter().find(|t| t.instance_id == "agentmill__semver-1").expect("the semver task");
    let mut hung = base.clone();
    hung.instance_id = unique("registry__hung");
    hung.image = format!("{}/agentmill-test/hang:{}", silent.host(), unique("t"));
    hung.policy = Some("replay".into());
    submit(&mut c, &hung).await;
    let s = wait_finished(&mut c, &hung.instance_id, Duration::from_secs(180)).await;
    assert_eq!(s.state, v1::TaskState::Failed as i32, "{s:#?}");
    let r = &s.rollouts[0];
    assert_eq!(r.attempt, 2, "each attempt's lease came back and was retried: {s:#?}");
    assert!(r.last_error.starts_with("failed after 2 attempts; last: sandbox_error: init: pulling image"), "{}", r.last_error);
    assert!(r.last_error.contains(&hung.image) && r.last_error.contains("images.pull_timeout"), "{}", r.last_error);
    let records = stream_records(&redis.url, &stream).await;
    let mine: Vec<_> = records.iter().filter(|r| r.task_id == hung.instance_id).collect();
    assert_eq!(mine.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2], "one infra record per attempt");
    assert!(mine.iter().all(|r| r.exit_reason == Some(ExitReason::SandboxError) && r.messages.is_empty()), "{mine:#?}");

    // The worker's only slot is free: the next task runs and resolves.
    let mut next = base.clone();
    next.instance_id = unique("registry__after");
    next.policy = Some("replay".into());
    submit(&mut c, &next).await;
    let s = wait_finished(&mut c, &next.instance_id, Duration::from_secs(300)).await;
    assert_eq!(s.state, v1::TaskState::Done as i32, "{s:#?}");
    let records = stream_records(&redis.url, &stream).await;
    let after = records.iter().find(|r| r.task_id == next.instance_id).expect("the next task's record");
    assert_eq!(after.grading.as_ref().map(|g| g.resolution), Some(Resolution::Full), "{:?}", after.error);
    assert!(after.provenance.image_digest.starts_with("sha256:") || after.provenance.image_digest.contains("@sha256:"), "{}", after.provenance.image_digest);

    let metrics = http_get(worker.1, "/metrics").await;
    assert!(metrics.contains("agentmill_worker_image_pull_failures_total{reason=\"timeout\"} 2"), "{metrics}");
    assert!(metrics.contains("agentmill_worker_image_pulls_in_flight 0"), "{metrics}");
    drop(silent);
    assert!(engine.containers_of(&worker_id).await.expect("list containers").is_empty(), "no container left behind");
}
