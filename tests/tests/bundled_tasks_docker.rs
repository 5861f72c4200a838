//! The bundled corpus is executable: in a container of the sandbox image, for every task,
//! FAIL_TO_PASS fails and PASS_TO_PASS passes before the gold patch, and everything passes after.
//! Where a task ships a tempting wrong fix or a partial fix, those grade NO and PARTIAL.
//!
//! Real Docker: this fails loudly where no engine answers (see `docker_or_skip`).

use std::time::Duration;

use agentmill_proto::{Resolution, Source, Task, TestStatus};
use agentmill_tests::{SANDBOX_IMAGE, bundled_tasks, docker_or_skip, workspace};
use agentmill_proto::dataset::{ScriptOptions, eval_plan};
use agentmill_worker::episode::grade::run_graded;
use agentmill_worker::repo::{applied_method, apply_patch_script, init_archive_repo_script};
use agentmill_worker::sandbox::docker::{DockerContainer, DockerEngine};
use agentmill_worker::sandbox::{AGENTMILL_DIR, ExecOutput, ExecRequest, SandboxLimits, SandboxSpec};
use futures::StreamExt;

const WORKER: &str = "test-bundled-tasks";

async fn run(c: &DockerContainer, cmd: &str) -> ExecOutput {
    c.exec(&ExecRequest::new(cmd).timeout(Duration::from_secs(300)).max_output(4 << 20)).await.expect("exec in the sandbox")
}

async fn apply(c: &DockerContainer, name: &str, patch: &str) -> String {
    let path = format!("{AGENTMILL_DIR}/{name}.patch");
    c.write_file(&path, patch.as_bytes()).await.expect("write patch");
    let out = run(c, &apply_patch_script(&path)).await;
    assert_eq!(out.exit_code, 0, "{name} does not apply:\n{}", out.output);
    applied_method(&out.output).unwrap_or("?").to_string()
}

async fn grade(c: &DockerContainer, task: &Task, applied: &str) -> agentmill_proto::Grading {
    let plan = eval_plan(task, &ScriptOptions::default()).expect("plan");
    let grading = run_graded(c, task, &plan, applied, Duration::from_secs(300)).await.expect("grades");
    assert!(
        grading.fail_to_pass.iter().chain(&grading.pass_to_pass).all(|t| t.status != TestStatus::Missing),
        "{}: some listed tests are missing from the log:\n{}",
        task.instance_id,
        grading.log_tail
    );
    grading
}

/// Starts a container with the task's repository at its base commit and the test patch applied.
async fn prepared(engine: &DockerEngine, task: &Task, tag: &str) -> DockerContainer {
    let episode = format!("{}-{tag}-{}", task.instance_id, std::process::id());
    let mut spec = SandboxSpec::new(SANDBOX_IMAGE, task.workdir.clone(), WORKER, episode);
    spec.limits = SandboxLimits { cpus: Some(1.0), memory_bytes: Some(1 << 30), pids: Some(256), disk_bytes: None };
    let c = engine.start(&spec).await.expect("start sandbox");
    let Source::Archive { path, .. } = &task.source else { panic!("{}: bundled tasks ship archives", task.instance_id) };
    let archive = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    c.upload_tar(&task.workdir, archive).await.expect("upload archive");
    let init = run(&c, &init_archive_repo_script()).await;
    assert_eq!(init.exit_code, 0, "git init failed:\n{}", init.output);
    assert_eq!(init.output.lines().last(), Some(task.base_commit.as_str()), "{}: base commit differs from the row's", task.instance_id);
    apply(&c, "test", &task.test_patch).await;
    c
}

async fn check_task(engine: &DockerEngine, task: Task) -> String {
    let id = task.instance_id.clone();
    let c = prepared(engine, &task, "gold").await;
    let before = grade(&c, &task, "none").await;
    for t in &before.fail_to_pass {
        assert!(!t.status.is_pass(), "{id}: FAIL_TO_PASS {} already passes before the fix", t.name);
    }
    for t in &before.pass_to_pass {
        assert_eq!(t.status, TestStatus::Passed, "{id}: PASS_TO_PASS {} does not pass before the fix", t.name);
    }
    let method = apply(&c, "gold", &task.patch).await;
    let after = grade(&c, &task, &method).await;
    assert_eq!(after.resolution, Resolution::Full, "{id}: the gold patch does not resolve: {after:#?}");
    c.remove().await;

    let src = workspace().join("deploy/tasks/src").join(&id);
    let mut extra = String::new();
    if let Ok(wrong) = std::fs::read_to_string(src.join("wrong.patch")) {
        let c = prepared(engine, &task, "wrong").await;
        let method = apply(&c, "wrong", &wrong).await;
        let g = grade(&c, &task, &method).await;
        c.remove().await;
        assert!(g.fail_to_pass.iter().all(|t| t.status.is_pass()), "{id}: wrong.patch should pass FAIL_TO_PASS: {g:#?}");
        assert_eq!(g.resolution, Resolution::No, "{id}: wrong.patch must grade NO");
        let broken: Vec<&str> = g.pass_to_pass.iter().filter(|t| !t.status.is_pass()).map(|t| t.name.as_str()).collect();
        assert!(!broken.is_empty(), "{id}: wrong.patch breaks no PASS_TO_PASS test");
        extra.push_str(&format!(", wrong fix → NO (breaks {})", broken.join(", ")));
    }
    if let Ok(partial) = std::fs::read_to_string(src.join("partial.patch")) {
        let c = prepared(engine, &task, "partial").await;
        let method = apply(&c, "partial", &partial).await;
        let g = grade(&c, &task, &method).await;
        c.remove().await;
        assert_eq!(g.resolution, Resolution::Partial, "{id}: partial.patch must grade PARTIAL: {g:#?}");
        extra.push_str(", partial fix → PARTIAL");
    }
    format!(
        "{id}: {} F2P fail→pass, {} P2P pass→pass (gold applied by {method}){extra}",
        task.fail_to_pass.len(),
        task.pass_to_pass.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_task_fails_before_and_passes_after_its_gold_patch() {
    let Some(engine) = docker_or_skip("every_bundled_task_fails_before_and_passes_after_its_gold_patch").await else {
        return;
    };
    engine.reap(WORKER).await.expect("clear leftovers of an earlier run");
    let tasks = bundled_tasks();
    assert!(tasks.len() >= 8, "at least 8 bundled tasks, found {}", tasks.len());
    let engine_ref = &engine;
    let reports: Vec<String> =
        futures::stream::iter(tasks).map(|t| check_task(engine_ref, t)).buffer_unordered(2).collect().await;
    for r in &reports {
        eprintln!("{r}");
    }
    assert!(engine.containers_of(WORKER).await.expect("list").is_empty(), "containers were left behind");
}
