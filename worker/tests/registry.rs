//! Task images from a real registry (`agentmill_testkit::registry`: Debian's `docker-registry` on loopback):
//! an image pinned by digest is pulled onto a worker that lacks it, checked, run and recorded; a
//! digest the registry does not serve is refused; a registry behind basic auth needs the
//! worker's `[images.registries]` credentials; two pulls of one image share one request; and a
//! leased task waiting for an `init` slot has its image pulled meanwhile (`images.prefetch`).
//!
//! The task image is built from the sandbox image with a unique label (legacy builder, offline),
//! pushed, and removed from the host, so the worker must pull it. Real Docker; without it the
//! tests fail loudly unless the run declares `AGENTMILL_NO_DOCKER=1`.
//!
//! The figure — pull time through the worker against a plain `docker pull` of the same image —
//! is a benchmark: `cargo bench -p agentmill-worker --bench registry_pull`.

mod sandbox_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentmill_proto::{ExitReason, Resolution};
use agentmill_testkit::docker::on_host;
use agentmill_testkit::registry::{Registry, SilentRegistry};
use agentmill_worker::config::WorkerConfig;
use agentmill_worker::episode::init::ensure_image;
use agentmill_worker::episode::{Backend, EpisodeLease, run_episode};
use agentmill_worker::host::episode_env;
use agentmill_worker::metrics::{PullMetrics, WorkerMetrics};
use agentmill_worker::sandbox::SandboxError;
use agentmill_worker::sandbox::docker::DockerEngine;
use agentmill_worker::sandbox::images::PullPolicy;
use sandbox_support::{Reaper, SANDBOX_IMAGE, TASK, bundled_task, docker, unique, workspace};
use tokio_util::sync::CancellationToken;

/// A worker configuration (TOML) that may pull from loopback registries and read the bundled
/// tasks' archives, with `extra` appended.
fn config(extra: &str) -> WorkerConfig {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worker.toml");
    let tasks = std::fs::canonicalize(workspace().join("deploy/tasks")).expect("the bundled tasks folder");
    std::fs::write(&path, format!("[inputs]\nhost_roots = [{:?}]\n{extra}", tasks.display().to_string())).expect("write the config");
    WorkerConfig::load(Some(&path), &Default::default()).unwrap_or_else(|e| panic!("the config loads: {e}"))
}

/// The engine under `cfg`'s `[images]`, counting into fresh metrics.
fn engine_for(engine: &DockerEngine, cfg: &WorkerConfig) -> DockerEngine {
    let policy = PullPolicy::from_config(&cfg.images).unwrap_or_else(|e| panic!("the pull policy: {e}"));
    engine.clone().with_pull_policy(policy).with_pull_metrics(PullMetrics::default())
}

fn episode_id(tag: &str) -> EpisodeLease {
    EpisodeLease { episode: unique(tag), rollout: 0, attempt: 1, queued_at_unix_ms: 0 }
}

fn count(m: &prometheus::IntCounterVec, label: &str) -> u64 {
    m.with_label_values(&[label]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_pinned_by_digest_is_pulled_checked_run_and_recorded_and_a_wrong_digest_is_refused() {
    let worker = unique("pinned");
    let Some(engine) = docker("a_task_pinned_by_digest_is_pulled_checked_run_and_recorded_and_a_wrong_digest_is_refused", &worker).await else { return };
    let _reaper = Reaper(worker.clone());
    let mut registry = Registry::start();
    let tagged = format!("{}/agentmill-test/sandbox:{}", registry.host(), unique("t"));
    let pinned = registry.push_labelled(SANDBOX_IMAGE, &tagged);
    assert!(!on_host(&pinned) && !on_host(&tagged), "the worker lacks the image");

    let cfg = config("[images]\npull = [\"127.0.0.1:*\"]\npull_timeout = \"5m\"\n");
    let metrics = WorkerMetrics::new();
    let env = episode_env(&cfg, Backend::Docker(engine_for(&engine, &cfg)), worker.clone(), &metrics).expect("the episode environment");
    let mut task = bundled_task(TASK);
    task.policy = Some("replay".into());
    task.image = pinned.clone();
    let record = run_episode(Arc::clone(&env), task.clone(), episode_id("pinned"), |_| {}, CancellationToken::new()).await;
    assert_eq!(record.exit_reason, Some(ExitReason::Submitted), "{:?}", record.error);
    assert_eq!(record.grading.as_ref().map(|g| g.resolution), Some(Resolution::Full), "{:?}", record.grading);
    assert_eq!(record.provenance.image, pinned);
    assert_eq!(record.provenance.image_digest, pinned, "the record keeps the digest that ran");
    assert!(on_host(&pinned));
    let pulls = &metrics.pulls;
    assert_eq!((count(&pulls.started, "episode"), count(&pulls.finished, "pulled"), count(&pulls.finished, "failed")), (1, 1, 0));
    assert!(pulls.bytes.get() > 0, "the label layer's bytes were downloaded");
    assert!(metrics.render().contains("agentmill_worker_image_pull_seconds_count 1"), "{}", metrics.render());

    // A tag pull records the registry digest of the same manifest.
    let engine_ = env.backend.engine().expect("docker").clone();
    let digest = ensure_image(&engine_, &tagged, None).await.unwrap_or_else(|e| panic!("the tag pulls: {e}"));
    assert_eq!(digest, pinned, "a tag's digest is the registry's digest of its repository");

    // A digest the registry does not serve: refused, nothing runs, the episode names the pin.
    let repository = pinned.split_once('@').expect("a pinned reference").0;
    let wrong = format!("{repository}@sha256:{}", "0".repeat(64));
    task.image = wrong.clone();
    let record = run_episode(Arc::clone(&env), task.clone(), episode_id("wrong-digest"), |_| {}, CancellationToken::new()).await;
    assert_eq!(record.exit_reason, Some(ExitReason::SandboxError), "{:?}", record.error);
    let error = record.error.unwrap_or_default();
    assert!(error.starts_with("init: ") && error.contains(&wrong) && error.contains("manifest unknown"), "{error}");
    assert!(record.messages.is_empty() && record.grading.is_none(), "nothing ran");
    assert_eq!(count(&pulls.failed, "not_found"), 1);

    // A malformed pin is refused before the registry is asked.
    let err = ensure_image(&engine_, &format!("{repository}@sha256:abc"), None).await.expect_err("a malformed digest");
    assert!(err.to_string().contains("64 lower-case hex"), "{err}");
    assert!(engine.containers_of(&worker).await.expect("list containers").is_empty(), "no container is left behind");
}

/// A registry that answers a pinned digest with another manifest: the pull is refused and
/// nothing of it is on the host to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_answering_a_pin_with_another_manifest_is_refused() {
    let worker = unique("liar");
    let Some(engine) = docker("a_registry_answering_a_pin_with_another_manifest_is_refused", &worker).await else { return };
    let mut registry = Registry::start();
    let tag = unique("t");
    registry.push(&format!("{}/agentmill-test/liar:{tag}", registry.host()));
    let liar = LyingRegistry::start(&registry.host(), "agentmill-test/liar", &tag).await;
    let pin = format!("sha256:{}", "ab".repeat(32));
    let wanted = format!("127.0.0.1:{}/agentmill-test/liar@{pin}", liar.port);
    let engine = engine_for(&engine, &config("[images]\npull = [\"127.0.0.1:*\"]\npull_timeout = \"2m\"\n"));
    let err = ensure_image(&engine, &wanted, None).await.expect_err("another manifest for a pinned digest");
    let message = err.to_string();
    assert!(message.contains(&wanted) && message.contains(&pin[7..]), "the error names the pin: {message}");
    assert!(!on_host(&wanted), "nothing pinned is on the host");
    let m = engine.pulls().metrics();
    assert_eq!((count(&m.finished, "pulled"), count(&m.failed, "digest_mismatch")), (0, 1), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_behind_basic_auth_needs_the_workers_credentials() {
    let worker = unique("auth");
    let Some(engine) = docker("a_registry_behind_basic_auth_needs_the_workers_credentials", &worker).await else { return };
    let mut registry = Registry::start();
    let image = format!("{}/agentmill-test/locked:{}", registry.host(), unique("t"));
    registry.push(&image);
    let password = format!("pw-{}", fastrand::u64(..));
    registry.lock("agentmill-bot", &password);
    let dir = tempfile::tempdir().expect("tempdir");
    let (right, wrong) = (dir.path().join("right"), dir.path().join("wrong"));
    std::fs::write(&right, format!("{password}\n")).expect("write the password");
    std::fs::write(&wrong, "not-the-password\n").expect("write a wrong password");
    let with_login = |file: &std::path::Path| {
        format!("[images]\npull = [\"127.0.0.1:*\"]\n[images.registries.\"{}\"]\nusername = \"agentmill-bot\"\npassword_file = {:?}\n", registry.host(), file.display().to_string())
    };

    let anonymous = engine_for(&engine, &config("[images]\npull = [\"127.0.0.1:*\"]\n"));
    let err = ensure_image(&anonymous, &image, None).await.expect_err("no credentials");
    let message = err.to_string();
    assert!(message.contains(&image) && message.contains(&format!("[images.registries.\"{}\"]", registry.host())) && message.contains("wants credentials"), "{message}");
    assert_eq!(count(&anonymous.pulls().metrics().failed, "unauthorized"), 1);

    let refused = engine_for(&engine, &config(&with_login(&wrong)));
    let message = ensure_image(&refused, &image, None).await.expect_err("a wrong password").to_string();
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(!on_host(&image));

    let cfg = config(&with_login(&right));
    let policy = PullPolicy::from_config(&cfg.images).expect("the pull policy");
    assert!(!format!("{policy:?}").contains(&password), "the password never prints");
    let allowed = engine_for(&engine, &cfg);
    let digest = ensure_image(&allowed, &image, None).await.unwrap_or_else(|e| panic!("the credentials open the registry: {e}"));
    assert!(digest.contains("@sha256:") && on_host(&image), "{digest}");
    assert_eq!(count(&allowed.pulls().metrics().finished, "pulled"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pulls_of_one_image_share_one_request_and_end_at_its_deadline() {
    let worker = unique("dedupe");
    let Some(engine) = docker("two_pulls_of_one_image_share_one_request_and_end_at_its_deadline", &worker).await else { return };
    let silent = SilentRegistry::start();
    let engine = engine.with_pull_policy(PullPolicy::new(&["127.0.0.1:*"], Duration::from_secs(3)).expect("a policy")).with_pull_metrics(PullMetrics::default());
    let image = format!("127.0.0.1:{}/agentmill-test/hang:{}", silent.port, unique("t"));
    let (a, b) = tokio::time::timeout(Duration::from_secs(120), async { tokio::join!(engine.pull(&image), engine.pull(&image)) }).await.expect("both pulls were cut off");
    for r in [a, b] {
        assert!(matches!(r, Err(SandboxError::PullTimeout { .. })), "{r:?}");
    }
    let m = engine.pulls().metrics();
    assert_eq!((count(&m.started, "episode"), m.joined.get(), count(&m.failed, "timeout"), m.in_flight.get()), (1, 1, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waiting_for_init_has_its_image_pulled_meanwhile() {
    let worker = unique("prefetch");
    let Some(engine) = docker("a_task_waiting_for_init_has_its_image_pulled_meanwhile", &worker).await else { return };
    let _reaper = Reaper(worker.clone());
    let mut registry = Registry::start();
    let pinned = registry.push_labelled(SANDBOX_IMAGE, &format!("{}/agentmill-test/prefetch:{}", registry.host(), unique("t")));
    let silent = SilentRegistry::start();

    // One init at a time; the first episode holds it, hung on a registry that never answers.
    let cfg = config("[capacity]\nepisodes = 2\ninit = 1\n[limits]\ninit_timeout = \"1h\"\n[images]\npull = [\"127.0.0.1:*\"]\npull_timeout = \"1h\"\nprefetch = 1\n");
    let metrics = WorkerMetrics::new();
    let env = episode_env(&cfg, Backend::Docker(engine_for(&engine, &cfg)), worker.clone(), &metrics).expect("the episode environment");
    let mut hung = bundled_task(TASK);
    hung.image = format!("127.0.0.1:{}/agentmill-test/hang:{}", silent.port, unique("t"));
    let cancel_hung = CancellationToken::new();
    let first = tokio::spawn(run_episode(Arc::clone(&env), hung, episode_id("prefetch-hung"), |_| {}, cancel_hung.clone()));
    let waited = Instant::now();
    while metrics.pulls.in_flight.get() < 1 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the first episode never started its pull");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut task = bundled_task(TASK);
    task.policy = Some("replay".into());
    task.image = pinned.clone();
    let second = tokio::spawn(run_episode(Arc::clone(&env), task, episode_id("prefetch-backlog"), |_| {}, CancellationToken::new()));
    let waited = Instant::now();
    while !on_host(&pinned) {
        assert!(waited.elapsed() < Duration::from_secs(120), "the backlogged task's image was never pulled ahead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!first.is_finished() && !second.is_finished(), "the image arrived while the init slot was still held");
    assert_eq!(count(&metrics.pulls.started, "prefetch"), 1);

    cancel_hung.cancel();
    let hung = tokio::time::timeout(Duration::from_secs(60), first).await.expect("the cancelled episode ends").expect("no panic");
    assert_eq!(hung.exit_reason, Some(ExitReason::Cancelled), "{:?}", hung.error);
    let record = tokio::time::timeout(Duration::from_secs(300), second).await.expect("the backlogged episode ends").expect("no panic");
    assert_eq!(record.exit_reason, Some(ExitReason::Submitted), "{:?}", record.error);
    assert_eq!(record.provenance.image_digest, pinned);
    assert_eq!(record.grading.as_ref().map(|g| g.resolution), Some(Resolution::Full));
    // Its init found the image: no second pull (the one episode pull is the hung one's).
    assert_eq!((count(&metrics.pulls.started, "prefetch"), count(&metrics.pulls.started, "episode"), metrics.pulls.joined.get()), (1, 1, 0));
    assert!(engine.containers_of(&worker).await.expect("list containers").is_empty(), "no container is left behind");
}

/// A registry that lies: it serves one real manifest (fetched from a real registry) for every
/// manifest asked of it, by tag or by digest, with a `Docker-Content-Digest` header echoing what
/// was asked, and redirects blob requests to the real registry. A pull by a digest other than
/// the served manifest's must be refused by whoever checks digests. Stopped when dropped.
struct LyingRegistry {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl LyingRegistry {
    /// Serves `repository:tag` of the registry at `real` (`127.0.0.1:PORT`) for every manifest.
    async fn start(real: &str, repository: &str, tag: &str) -> LyingRegistry {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
        let response = reqwest::Client::new()
            .get(format!("http://{real}/v2/{repository}/manifests/{tag}"))
            .header("accept", accept)
            .send()
            .await
            .expect("the real registry answers");
        assert!(response.status().is_success(), "the real registry has {repository}:{tag}: {}", response.status());
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/vnd.docker.distribution.manifest.v2+json").to_string();
        let manifest = response.bytes().await.expect("the manifest's bytes");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback listener");
        let port = listener.local_addr().expect("its address").port();
        let real = real.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (real, content_type, manifest) = (real.clone(), content_type.clone(), manifest.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let path = req.uri().path().to_string();
                        let builder = hyper::Response::builder().header("Docker-Distribution-API-Version", "registry/2.0");
                        let response = if path == "/v2/" {
                            builder.status(200).header("content-type", "application/json").body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                        } else if let Some((_, reference)) = path.split_once("/manifests/") {
                            builder
                                .status(200)
                                .header("content-type", content_type.as_str())
                                .header("Docker-Content-Digest", reference)
                                .body(http_body_util::Full::new(manifest.clone()))
                        } else if path.contains("/blobs/") {
                            builder.status(307).header("location", format!("http://{real}{path}")).body(http_body_util::Full::new(bytes::Bytes::new()))
                        } else {
                            builder.status(404).body(http_body_util::Full::new(bytes::Bytes::new()))
                        };
                        async move { response.map_err(|e| e.to_string()) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        LyingRegistry { port, task }
    }
}

impl Drop for LyingRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
