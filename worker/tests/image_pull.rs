//! What a worker pulls, and for how long: `[images] pull` decides which images a task may make
//! the worker fetch, `images.pull_timeout` cuts off a pull that hangs, and `limits.init_timeout`
//! an episode's whole init.
//!
//! The registry is real: Debian's `docker-registry` (the CNCF distribution registry) on a free
//! loopback port, serving a folder the test makes; Docker treats `127.0.0.0/8` registries as
//! insecure, so it pulls over plain HTTP. The images are a few bytes each, made with `docker
//! import` and pushed to it, then removed from the host. The registry that hangs is a loopback
//! TCP listener that accepts connections and never answers. Nothing leaves the host.
//!
//! Real Docker; without it the tests fail loudly unless the run declares `AGENTMILL_NO_DOCKER=1`.
//! Without `docker-registry` they fail naming the package (`deploy/setup.sh` installs it).

mod sandbox_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use agentmill_proto::ExitReason;
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::init::ensure_image;
use agentmill_worker::episode::{Backend, EpisodeId, run_episode};
use agentmill_worker::host::episode_env;
use agentmill_worker::metrics::WorkerMetrics;
use agentmill_worker::sandbox::SandboxError;
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::images::PullPolicy;
use sandbox_support::{Reaper, TASK, bundled_task, docker, unique, workspace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A `docker-registry` on a free loopback port; killed, with its folder and the images the test
/// made, when dropped.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// References the test made on the host (removed at the end).
    images: Vec<String>,
}

impl Registry {
    async fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", dir.path().join("data").display()),
        )
        .expect("write the registry's config");
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).expect("the registry's log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(out.try_clone().expect("clone the log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("these tests need Debian's docker-registry (apt-get install docker-registry; deploy/setup.sh installs it): {e}"));
        let mut registry = Registry { child, port, log, _dir: dir, images: Vec::new() };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return registry;
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}): {}", registry.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = registry.child.kill();
        panic!("docker-registry never listened on 127.0.0.1:{port}: {}", registry.log_text());
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Makes a tiny image as `reference`, pushes it here and removes it from the host.
    fn push(&mut self, reference: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("payload"), format!("{reference} {}", fastrand::u64(..))).expect("write the payload");
        let tar = dir.path().join("image.tar");
        run(Command::new("tar").arg("-C").arg(dir.path()).arg("-cf").arg(&tar).arg("payload"));
        run(Command::new("docker").arg("import").arg(&tar).arg(reference));
        self.images.push(reference.to_string());
        run(Command::new("docker").args(["push", reference]));
        run(Command::new("docker").args(["rmi", reference]));
    }

    /// Asks the registry for a manifest that names `marker` and waits until its log shows the
    /// request: everything the registry was asked before is in the log by then.
    async fn log_through(&self, marker: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect to the registry");
        s.write_all(format!("GET /v2/{marker}/manifests/latest HTTP/1.0\r\nHost: {}\r\n\r\n", self.host()).as_bytes()).await.expect("ask");
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.expect("the registry answers");
        for _ in 0..200 {
            let log = self.log_text();
            if log.contains(marker) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the registry's log never showed the request for {marker}: {}", self.log_text());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for image in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", image]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn on_host(reference: &str) -> bool {
    Command::new("docker").args(["image", "inspect", reference]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_image_is_pulled_and_a_disallowed_one_is_refused_without_a_pull() {
    let worker = unique("pull-allow");
    let Some(engine) = docker("an_allowed_image_is_pulled_and_a_disallowed_one_is_refused_without_a_pull", &worker).await else { return };
    let mut registry = Registry::start().await;
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
    let log = registry.log_through(&format!("agentmill-test/marker-{tag}")).await;
    let pulls_of_denied = log.lines().filter(|l| l.contains("/v2/agentmill-test/denied/manifests") && l.contains("GET")).count();
    assert_eq!(pulls_of_denied, 0, "the registry was never asked for the refused image:\n{log}");

    // An image already on the host runs whatever the list says: an operator-built one.
    let local = format!("agentmill-test/local-{tag}:1");
    run(Command::new("docker").args(["tag", &allowed, &local]));
    registry.images.push(local.clone());
    let strict = engine.clone().with_pull_policy(PullPolicy::new(&[], Duration::from_secs(600)).expect("an empty policy"));
    ensure_image(&strict, &local, None).await.unwrap_or_else(|e| panic!("a local image needs no pull: {e}"));
}

/// A loopback registry that hangs: it answers the version check (`GET /v2/`) as a registry does,
/// so the engine goes on to ask for the image, and never answers anything else. Stopped when
/// dropped.
struct SilentRegistry {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SilentRegistry {
    async fn start() -> SilentRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback listener");
        let port = listener.local_addr().expect("its address").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = [0u8; 16];
                let mut n = 0;
                while n < head.len() {
                    match socket.read(&mut head[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
                if head.starts_with(b"GET /v2/ ") {
                    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n{}";
                    let _ = socket.write_all(ok.as_bytes()).await;
                } else {
                    held.push(socket);
                }
            }
        });
        SilentRegistry { port, task }
    }
}

impl Drop for SilentRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_a_registry_that_never_answers_is_cut_off_at_its_deadline() {
    let worker = unique("pull-hang");
    let Some(engine) = docker("a_pull_from_a_registry_that_never_answers_is_cut_off_at_its_deadline", &worker).await else { return };
    let silent = SilentRegistry::start().await;
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
    let id = EpisodeId { episode: unique("pull-hang-ep"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
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
    let silent = SilentRegistry::start().await;

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
    let id = EpisodeId { episode: unique("init-hang-ep"), rollout: 0, attempt: 1, queued_at_unix_ms: 0 };
    let episode = run_episode(Arc::clone(&env), task, id, |_| {}, CancellationToken::new());
    let record = tokio::time::timeout(Duration::from_secs(120), episode).await.expect("the init was cut off (the episode still hung after 120 s)");
    assert_eq!(record.exit_reason, Some(ExitReason::SandboxError), "{:?}", record.error);
    let error = record.error.unwrap_or_default();
    assert!(error.contains("limits.init_timeout") && error.contains("3s"), "the error names the deadline and the key: {error}");
    assert!(engine.containers_of(&worker).await.expect("list containers").is_empty(), "no container is left behind");
}
