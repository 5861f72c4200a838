//! What a worker pulls, and for how long: `[images] pull` decides which images a task may make
//! the worker fetch, `images.pull_timeout` cuts off a pull that hangs, and `limits.init_timeout`
//! an episode's whole init.
//!
//! The registry is real (`agentmill_testkit::registry`: Debian's `docker-registry` on a free loopback port).
//! The images are a few bytes each, made with `docker import` and pushed to it, then removed from
//! the host. The registry that hangs is a loopback TCP listener that accepts connections and never
//! answers. Nothing leaves the host. Pins, credentials and pre-pulls: `tests/registry.rs`.
//!
//! Real Docker; without it the tests fail loudly unless the run declares `AGENTMILL_NO_DOCKER=1`.
//! Without `docker-registry` they fail naming the package (`deploy/setup.sh` installs it).

mod sandbox_support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use agentmill_proto::ExitReason;
use agentmill_testkit::docker::on_host;
use agentmill_testkit::registry::{Registry, SilentRegistry};
use agentmill_testkit::run;
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::init::ensure_image;
use agentmill_worker::episode::{Backend, EpisodeLease, run_episode};
use agentmill_worker::host::episode_env;
use agentmill_worker::metrics::WorkerMetrics;
use agentmill_worker::sandbox::SandboxError;
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::images::PullPolicy;
use sandbox_support::{Reaper, TASK, bundled_task, docker, unique, workspace};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_image_is_pulled_and_a_disallowed_one_is_refused_without_a_pull() {
    let worker = unique("pull-allow");
    let Some(engine) = docker("an_allowed_image_is_pulled_and_a_disallowed_one_is_refused_without_a_pull", &worker).await else { return };
    let mut registry = Registry::start();
    let tag = unique("t");
    let (allowed, denied) = (format!("{}/agentmill-test/allowed:{tag}", registry.host()), format!("{}/agentmill-test/denied:{tag}", registry.host()));
    registry.push(&allowed);
    registry.push(&denied);
    assert!(!on_host(&allowed) && !on_host(&denied), "the pushed images were removed from the host");

    let policy = PullPolicy::new(&[&format!("{}/agentmill-test/allowed:*", registry.host()), "agentmill/*"], Duration::from_secs(600)).expect("a pull policy");
    let engine = engine.with_pull_policy(policy);

    let digest = ensure_image(&engine, &allowed, None).await.unwrap_or_else(|e| panic!("the allowed image is pulled: {e}"));
    assert!(digest.contains("sha256:"), "{digest}");
    assert!(on_host(&allowed), "the allowed image is on the host after the pull");

    let err = ensure_image(&engine, &denied, None).await.expect_err("an image the list does not allow is refused");
    assert!(matches!(err, SandboxError::PullRefused(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&denied) && message.contains("[images] pull"), "the error names the image and the key: {message}");
    assert!(!on_host(&denied), "the refused image was not pulled");
    let log = registry.log_through(&format!("agentmill-test/marker-{tag}"));
    let pulls_of_denied = log.lines().filter(|l| l.contains("/v2/agentmill-test/denied/manifests") && l.contains("GET")).count();
    assert_eq!(pulls_of_denied, 0, "the registry was never asked for the refused image:\n{log}");

    // An image already on the host runs whatever the list says: an operator-built one.
    let local = format!("agentmill-test/local-{tag}:1");
    run(Command::new("docker").args(["tag", &allowed, &local]));
    registry.images.push(local.clone());
    let strict = engine.clone().with_pull_policy(PullPolicy::new(&[], Duration::from_secs(600)).expect("an empty policy"));
    ensure_image(&strict, &local, None).await.unwrap_or_else(|e| panic!("a local image needs no pull: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_a_registry_that_never_answers_is_cut_off_at_its_deadline() {
    let worker = unique("pull-hang");
    let Some(engine) = docker("a_pull_from_a_registry_that_never_answers_is_cut_off_at_its_deadline", &worker).await else { return };
    let silent = SilentRegistry::start();
    let image = format!("127.0.0.1:{}/agentmill-test/hang:{}", silent.port, unique("t"));
    let engine = engine.with_pull_policy(PullPolicy::new(&["127.0.0.1:*"], Duration::from_secs(2)).expect("a pull policy"));
    // Without a deadline the pull waits for ever; the outer bound only turns that into a failure.
    let result = tokio::time::timeout(Duration::from_secs(120), ensure_image(&engine, &image, None)).await;
    let err = result.expect("the pull was cut off (it still hung after 120 s)").expect_err("a pull that hangs fails");
    assert!(matches!(err, SandboxError::PullTimeout { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&image) && message.contains("images.pull_timeout") && message.contains("2s"), "the error names the image, the deadline and the key: {message}");

    // In an episode, the same pull ends it sandbox_error with that message, no container left.
    let worker = unique("pull-hang-ep");
    let _reaper = Reaper(worker.clone());
    let cfg = WorkerConfig::default();
    let env = episode_env(&cfg, Backend::Docker(engine.clone()), worker.clone(), &WorkerMetrics::new()).expect("the episode environment");
    let mut task = bundled_task(TASK);
    task.image = format!("127.0.0.1:{}/agentmill-test/hang:{}", silent.port, unique("t"));
    let id = EpisodeLease { episode: unique("pull-hang-ep"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
    let episode = run_episode(Arc::clone(&env), task, id, |_| {}, CancellationToken::new());
    let record = tokio::time::timeout(Duration::from_secs(120), episode).await.expect("the pull was cut off (the episode still hung after 120 s)");
    assert_eq!(record.exit_reason, Some(ExitReason::SandboxError), "{:?}", record.error);
    let error = record.error.unwrap_or_default();
    assert!(error.starts_with("init: pulling image") && error.contains("images.pull_timeout"), "{error}");
    assert!(engine.containers_of(&worker).await.expect("list containers").is_empty(), "no container is left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_episode_whose_init_hangs_ends_sandbox_error_at_the_init_deadline() {
    let worker = unique("init-hang");
    let Some(engine) = docker("an_episode_whose_init_hangs_ends_sandbox_error_at_the_init_deadline", &worker).await else { return };
    let _reaper = Reaper(worker.clone());
    let silent = SilentRegistry::start();

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("worker.toml");
    let tasks = std::fs::canonicalize(workspace().join("deploy/tasks")).expect("the bundled tasks folder");
    // The pull's own deadline is far away: the init's is what ends this episode.
    std::fs::write(
        &config,
        format!("[limits]\ninit_timeout = \"3s\"\n[images]\npull = [\"127.0.0.1:*\"]\npull_timeout = \"1h\"\n[inputs]\nhost_roots = [{:?}]\n", tasks.display().to_string()),
    )
    .expect("write the config");
    let cfg = WorkerConfig::load(Some(&config), &Default::default()).expect("the config loads");
    let pull = PullPolicy::from_config(&cfg.images).expect("the pull policy");
    let engine: DockerEngine = engine.with_pull_policy(pull);
    let env = episode_env(&cfg, Backend::Docker(engine.clone()), worker.clone(), &WorkerMetrics::new()).expect("the episode environment");

    let mut task = bundled_task(TASK);
    task.policy = Some("replay".into());
    task.image = format!("127.0.0.1:{}/agentmill-test/hang:{}", silent.port, unique("t"));
    let id = EpisodeLease { episode: unique("init-hang-ep"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
    let episode = run_episode(Arc::clone(&env), task, id, |_| {}, CancellationToken::new());
    let record = tokio::time::timeout(Duration::from_secs(120), episode).await.expect("the init was cut off (the episode still hung after 120 s)");
    assert_eq!(record.exit_reason, Some(ExitReason::SandboxError), "{:?}", record.error);
    let error = record.error.unwrap_or_default();
    assert!(error.contains("limits.init_timeout") && error.contains("3s"), "the error names the deadline and the key: {error}");
    assert!(engine.containers_of(&worker).await.expect("list containers").is_empty(), "no container is left behind");
}
