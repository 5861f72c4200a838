//! What the agent tests share beyond `sandbox_support` (the Docker engine and the bundled tasks;
//! every agent test declares it beside this module): a container guard that removes its
//! container even when an assertion fails, and grading in a fresh container.
//!
//! Nothing is mocked. Without a Docker engine these tests fail loudly; only an explicit
//! `AGENTMILL_NO_DOCKER=1` turns them into announced skips.

#![allow(dead_code)]

use std::time::Duration;

use agentmill_proto::dataset::{ScriptOptions, eval_plan};
use agentmill_proto::{Grading, Source, Task};
use agentmill_testkit::unique;
use agentmill_worker::episode::grade::run_graded;
use agentmill_worker::repo::{applied_method, apply_patch_script, init_archive_repo_script};
use agentmill_worker::sandbox::docker::{DockerContainer, DockerEngine};
use agentmill_worker::sandbox::{AGENTMILL_DIR, ExecOutput, ExecRequest, SandboxLimits, SandboxSpec};

use crate::sandbox_support::SANDBOX_IMAGE;

/// A container that is force-removed when the guard drops — on success and on a failed
/// assertion alike (through the docker CLI, so it works while a panic unwinds).
#[derive(Debug)]
pub struct Guard(pub DockerContainer);

impl std::ops::Deref for Guard {
    type Target = DockerContainer;
    fn deref(&self) -> &DockerContainer {
        &self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        agentmill_testkit::docker::quiet(&["rm", "-f", "-v", self.0.id()]);
    }
}

/// Starts a small container of the sandbox image with `workdir`.
pub async fn start(engine: &DockerEngine, worker: &str, workdir: &str, tag: &str) -> Guard {
    let mut spec = SandboxSpec::new(SANDBOX_IMAGE, workdir, worker, unique(tag));
    spec.limits = SandboxLimits { cpus: Some(1.0), memory_bytes: Some(512 << 20), pids: Some(256), disk_bytes: None };
    Guard(engine.start(&spec).await.expect("start a sandbox container"))
}

/// Runs a command and returns its output, with a generous timeout.
pub async fn run(c: &DockerContainer, command: &str) -> ExecOutput {
    c.exec(&ExecRequest::new(command).timeout(Duration::from_secs(120)).max_output(4 << 20)).await.expect("exec in the sandbox")
}

/// Starts a container with `task`'s repository at its base commit (no test patch: the agent's
/// view of the task).
pub async fn task_sandbox(engine: &DockerEngine, worker: &str, task: &Task, tag: &str) -> Guard {
    let c = start(engine, worker, &task.workdir, tag).await;
    let Source::Archive { path, .. } = &task.source else { panic!("{}: bundled tasks ship archives", task.instance_id) };
    let archive = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    c.upload_tar(&task.workdir, archive).await.expect("upload the archive");
    let init = run(&c, &init_archive_repo_script()).await;
    assert_eq!(init.exit_code, 0, "git init failed:\n{}", init.output);
    assert_eq!(init.output.lines().last(), Some(task.base_commit.as_str()), "{}: base commit differs", task.instance_id);
    c
}

/// Applies `patch` in `c` with SWE-bench's fallbacks; returns the method, or `None` when it does
/// not apply.
pub async fn apply(c: &DockerContainer, name: &str, patch: &str) -> Option<String> {
    let path = format!("{AGENTMILL_DIR}/{name}.patch");
    c.write_file(&path, patch.as_bytes()).await.expect("write the patch");
    let out = run(c, &apply_patch_script(&path)).await;
    (out.exit_code == 0).then(|| applied_method(&out.output).unwrap_or("?").to_string())
}

/// Grades `model_patch` as the worker does: in a fresh container, model patch, then the test
/// patch, then the task's tests.
pub async fn grade_fresh(engine: &DockerEngine, worker: &str, task: &Task, model_patch: &str) -> Grading {
    let c = task_sandbox(engine, worker, task, "grade").await;
    let method = apply(&c, "model", model_patch).await.unwrap_or_else(|| panic!("{}: the model patch does not apply:\n{model_patch}", task.instance_id));
    apply(&c, "test", &task.test_patch).await.unwrap_or_else(|| panic!("{}: the test patch does not apply", task.instance_id));
    let plan = eval_plan(task, &ScriptOptions::default()).expect("plan");
    run_graded(&c.0, task, &plan, &method, Duration::from_secs(300)).await.expect("grades")
}
