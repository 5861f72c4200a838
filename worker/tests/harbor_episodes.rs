//! Harbor tasks run end to end on the worker's own episode code (`run_episode`, the host's
//! `episode_env`): real Docker, the sandbox image `agentmill/sandbox-python:bookworm`
//! (deploy/setup.sh builds it; the tests fail loudly without it unless the run declares
//! `AGENTMILL_NO_DOCKER=1`), no network. Task directories
//! are the fixtures in `tests/fixtures/harbor/` or written by the test; each is packed as it
//! travels with a task (`harbor.content`). Built images are removed at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use agentmill_proto::{ExitReason, Resolution, Task, TrajectoryRecord};
use agentmill_testkit::{SANDBOX_IMAGE, docker, unique, workspace};
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::{EpisodeEnv, EpisodeLease, run_episode};
use agentmill_worker::host::{choose_backend, episode_env};
use agentmill_worker::local::harbor_tasks;
use agentmill_worker::metrics::WorkerMetrics;
use tokio_util::sync::CancellationToken;

fn fixtures() -> PathBuf {
    workspace().join("tests/fixtures/harbor")
}

/// A worker's episode environment on this host (Docker), trusting `pack_dir` for packed tasks.
async fn worker_env(pack_dir: &Path, network_allowed: bool) -> Arc<EpisodeEnv> {
    let mut cfg = WorkerConfig { worker_id: unique("harbor-test"), ..WorkerConfig::default() };
    cfg.sandbox = "docker".into();
    cfg.inputs.host_roots = vec![pack_dir.to_path_buf()];
    cfg.policy.default = "replay".into();
    if network_allowed {
        cfg.sandbox_network.mode = "allow".into();
    }
    let backend = choose_backend(&cfg).await.expect("a Docker engine");
    episode_env(&cfg, backend, cfg.worker_id.clone(), &WorkerMetrics::new()).expect("episode env")
}

fn tasks_of(dir: &Path, pack_dir: &Path) -> Vec<Task> {
    let (tasks, refused) = harbor_tasks(&[dir.to_path_buf()], pack_dir).expect("harbor tasks");
    assert!(refused.is_empty(), "{refused:?}");
    tasks
}

async fn episode(env: &Arc<EpisodeEnv>, task: &Task, rollout: u32) -> TrajectoryRecord {
    let id = EpisodeLease { episode: unique(&format!("{}-r{rollout}", task.instance_id.replace('/', "-"))), rollout, attempt: 1, queued_at_unix_ms: 0 };
    run_episode(env.clone(), task.clone(), id, |_| {}, CancellationToken::new()).await
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

fn rmi(tag: &str) {
    docker::quiet(&["rmi", "-f", tag]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fixtures_grade_by_their_verifiers_reward() {
    if !docker::available("the_fixtures_grade_by_their_verifiers_reward") {
        return;
    }
    let pack = tempfile::tempdir().expect("tempdir");
    let pack_dir = std::fs::canonicalize(pack.path()).expect("canonical");
    let env = worker_env(&pack_dir, false).await;

    let pass = tasks_of(&fixtures().join("pass-oracle"), &pack_dir).remove(0);
    let r = episode(&env, &pass, 0).await;
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("pass-oracle graded: {r:?}"));
    assert_eq!((r.exit_reason, g.resolution, r.reward), (Some(ExitReason::Submitted), Resolution::Full, Some(1.0)), "{:?} {g:?}", r.error);
    assert_eq!(g.rewards.get("reward"), Some(&1.0), "the record keeps the reward: {g:?}");
    assert!(r.provenance.image.starts_with("agentmill-env/"), "built from its Dockerfile: {}", r.provenance.image);
    let built = r.provenance.image.clone();

    let fail = tasks_of(&fixtures().join("fail-oracle"), &pack_dir).remove(0);
    let r = episode(&env, &fail, 0).await;
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("fail-oracle graded: {r:?}"));
    assert_eq!((r.exit_reason, g.resolution, r.reward), (Some(ExitReason::Submitted), Resolution::No, Some(0.0)), "{:?} {g:?}", r.error);
    assert_eq!(g.rewards.get("reward"), Some(&0.0), "{g:?}");

    // Several rewards: every key the verifier wrote is on the record.
    let multi = tasks_of(&fixtures().join("multi-reward"), &pack_dir).remove(0);
    let r = episode(&env, &multi, 0).await;
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("multi-reward graded: {r:?}"));
    assert_eq!(g.rewards.keys().map(String::as_str).collect::<Vec<_>>(), ["correct", "lines", "style"], "{g:?}");
    assert_eq!(r.exit_reason, Some(ExitReason::Submitted), "{:?}", r.error);
    // The oracle ran as the task's agent user (1000) and its work passes both gated rewards.
    assert_eq!((g.rewards["correct"], g.rewards["style"], g.rewards["lines"]), (1.0, 1.0, 2.0), "{g:?}");
    assert!(g.resolved, "{g:?}");

    // A task that asks for the network, on a worker that gives none: refused, the task's fault.
    let net = tasks_of(&fixtures().join("network"), &pack_dir).remove(0);
    let r = episode(&env, &net, 0).await;
    assert_eq!(r.exit_reason, Some(ExitReason::SandboxError), "{r:?}");
    let err = r.error.unwrap_or_default();
    assert!(err.contains("sandbox_network.mode"), "{err}");
    assert!(r.grading.is_none());
    rmi(&built);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agent_never_sees_tests_and_a_missing_reward_is_the_tasks_fault() {
    if !docker::available("the_agent_never_sees_tests_and_a_missing_reward_is_the_tasks_fault") {
        return;
    }
    let pack = tempfile::tempdir().expect("tempdir");
    let pack_dir = std::fs::canonicalize(pack.path()).expect("canonical");
    let dirs = tempfile::tempdir().expect("tempdir");
    let env = worker_env(&pack_dir, false).await;

    // The oracle (the agent's step) looks for /tests and records what it saw; the verifier
    // rewards "absent".
    let peek = dirs.path().join("peek");
    copy_dir(&fixtures().join("pass-oracle"), &peek);
    std::fs::write(peek.join("task.toml"), "[task]\nname = \"agentmill/peek\"\n[environment]\nnetwork_mode = \"no-network\"\nworkdir = \"/app\"\n").expect("write");
    std::fs::write(peek.join("solution/solve.sh"), "#!/bin/sh\nif [ -e /tests ]; then echo present; else echo absent; fi > /app/seen.txt\ncat /app/seen.txt\n").expect("write");
    std::fs::write(peek.join("tests/test.sh"), "#!/bin/sh\nif [ \"$(cat /app/seen.txt)\" = absent ] && [ -e /tests/test.sh ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n").expect("write");
    let task = tasks_of(&peek, &pack_dir).remove(0);
    let r = episode(&env, &task, 0).await;
    let g = r.grading.as_ref().unwrap_or_else(|| panic!("graded: {r:?}"));
    assert_eq!(g.resolution, Resolution::Full, "the agent saw /tests, or the verifier did not: {g:?} {:?}", r.messages);
    let seen = r.messages.iter().filter(|m| m.role == agentmill_proto::Role::Tool).map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n");
    assert!(seen.contains("absent") && !seen.contains("present"), "{seen}");

    // A verifier that writes no reward: not graded, sandbox_error, never the model's failure.
    std::fs::write(peek.join("tests/test.sh"), "#!/bin/sh\necho no reward written\nexit 0\n").expect("write");
    let task = tasks_of(&peek, &pack_dir).remove(0);
    let r = episode(&env, &task, 0).await;
    assert_eq!(r.exit_reason, Some(ExitReason::SandboxError), "{r:?}");
    let err = r.error.clone().unwrap_or_default();
    assert!(err.contains("not graded") && err.contains("reward"), "{err}");
    assert!(r.grading.as_ref().is_some_and(|g| g.log_tail.contains("no reward written")), "the verifier's output is kept: {:?}", r.grading);
    rmi(&r.provenance.image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dockerfile_environment_is_built_once_per_host_and_a_broken_one_names_its_step() {
    if !docker::available("a_dockerfile_environment_is_built_once_per_host_and_a_broken_one_names_its_step") {
        return;
    }
    let pack = tempfile::tempdir().expect("tempdir");
    let pack_dir = std::fs::canonicalize(pack.path()).expect("canonical");
    let dirs = tempfile::tempdir().expect("tempdir");
    let env = worker_env(&pack_dir, false).await;
    let builder = env.builder.clone().expect("a Docker worker builds");

    // A context no host has seen (a nonce in it), with a step that takes a moment.
    let fresh = dirs.path().join("fresh");
    copy_dir(&fixtures().join("pass-oracle"), &fresh);
    let nonce = format!("{:016x}", fastrand::u64(..));
    std::fs::write(fresh.join("environment/nonce.txt"), &nonce).expect("write");
    std::fs::write(
        fresh.join("environment/Dockerfile"),
        format!("FROM {SANDBOX_IMAGE}\nCOPY nonce.txt /nonce.txt\nRUN python3 -c \"import compileall, sys; compileall.compile_dir(sys.prefix + '/lib', quiet=1)\" && echo built > /built.txt\nWORKDIR /app\n"),
    )
    .expect("write");
    let task = tasks_of(&fresh, &pack_dir).remove(0);
    let (b0, h0) = (builder.builds(), builder.hits());
    let t = Instant::now();
    let first = episode(&env, &task, 0).await;
    let first_s = t.elapsed().as_secs_f64();
    assert_eq!(first.grading.as_ref().map(|g| g.resolution), Some(Resolution::Full), "{:?}", first.error);
    assert_eq!(builder.builds() - b0, 1, "the first episode builds");
    let t = Instant::now();
    let second = episode(&env, &task, 1).await;
    let second_s = t.elapsed().as_secs_f64();
    assert_eq!(second.grading.as_ref().map(|g| g.resolution), Some(Resolution::Full), "{:?}", second.error);
    assert_eq!(builder.builds() - b0, 1, "the second episode reuses the image: no second build");
    assert_eq!(builder.hits() - h0, 1);
    assert_eq!(first.provenance.image, second.provenance.image);
    println!(
        "FIGURE build vs cache hit: image stage {} ms (built) vs {} ms (cached); whole episode {first_s:.2} s vs {second_s:.2} s",
        first.timing.image_ms, second.timing.image_ms
    );
    rmi(&first.provenance.image);

    // A broken Dockerfile: sandbox_error naming the failing step and carrying the log's tail.
    let broken = dirs.path().join("broken");
    copy_dir(&fixtures().join("pass-oracle"), &broken);
    std::fs::write(broken.join("environment/Dockerfile"), format!("FROM {SANDBOX_IMAGE}\nWORKDIR /app\nRUN echo about-to-fail-{nonce} && exit 7\n")).expect("write");
    let task = tasks_of(&broken, &pack_dir).remove(0);
    let f0 = builder.failures();
    let r = episode(&env, &task, 0).await;
    assert_eq!(r.exit_reason, Some(ExitReason::SandboxError), "{r:?}");
    let err = r.error.unwrap_or_default();
    assert!(err.contains(&format!("Step 3/3 : RUN echo about-to-fail-{nonce} && exit 7")), "names the step: {err}");
    assert!(err.contains(&format!("\nabout-to-fail-{nonce}")), "carries the log's tail: {err}");
    assert!(r.grading.is_none() && r.messages.is_empty(), "the model never ran");
    assert_eq!(builder.failures() - f0, 1);
    // The worker's /metrics counts them.
    let text = WorkerMetrics::new().render();
    for result in ["built", "cached", "failed"] {
        assert!(text.contains(&format!("agentmill_worker_env_builds_total{{result=\"{result}\"}}")), "{result} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_past_the_tasks_build_timeout_is_abandoned_as_the_tasks_fault() {
    if !docker::available("a_build_past_the_tasks_build_timeout_is_abandoned_as_the_tasks_fault") {
        return;
    }
    let pack = tempfile::tempdir().expect("tempdir");
    let pack_dir = std::fs::canonicalize(pack.path()).expect("canonical");
    let dirs = tempfile::tempdir().expect("tempdir");
    let env = worker_env(&pack_dir, false).await;
    let slow = dirs.path().join("slow");
    copy_dir(&fixtures().join("pass-oracle"), &slow);
    std::fs::write(slow.join("task.toml"), "[task]\nname = \"agentmill/slow-build\"\n[environment]\nnetwork_mode = \"no-network\"\nbuild_timeout_sec = 2\n").expect("write");
    let nonce = format!("{:016x}", fastrand::u64(..));
    std::fs::write(slow.join("environment/Dockerfile"), format!("FROM {SANDBOX_IMAGE}\nRUN echo {nonce} && sleep 60\n")).expect("write");
    let task = tasks_of(&slow, &pack_dir).remove(0);
    let r = episode(&env, &task, 0).await;
    assert_eq!(r.exit_reason, Some(ExitReason::SandboxError), "{r:?}");
    let err = r.error.unwrap_or_default();
    assert!(err.contains("did not finish within 2s") && err.contains("build_timeout_sec"), "{err}");
    assert!(r.messages.is_empty(), "the model never ran");
}

