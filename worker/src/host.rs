//! Wiring one worker host: the Docker engine, the coordinator session, the publisher and the
//! supervisor, and the drain on SIGTERM / Ctrl-C.

use std::sync::Arc;

use actix::prelude::*;
use anyhow::Context as _;
use agentmill_proto::v1;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::info;

use crate::actors::episode::Runner;
use crate::actors::publisher::{Publisher, PublisherConfig};
use crate::actors::supervisor::{Drain, HostSupervisor, ObserveHost};
use crate::actors::synth::SynthSettings;
use crate::agent::policy::PolicyFactory;
use crate::config::WorkerConfig;
use crate::episode::{Backend, EpisodeEnv, PhaseLimits, run_episode};
use crate::metrics::WorkerMetrics;
use crate::sandbox::process::HostPython;
use crate::sandbox::SandboxLimits;
use crate::sandbox::docker::DockerEngine;
use crate::sandbox::images::{ImageCache, ImagePolicy};
use crate::session::{SessionConfig, WorkerSession};

/// The sandbox backend the configuration asks for: `docker`, `process`, or `auto` (Docker when an
/// engine answers, else processes — with a warning, since their isolation is weaker).
pub async fn choose_backend(cfg: &WorkerConfig) -> anyhow::Result<Backend> {
    let pull = crate::sandbox::images::PullPolicy::from_config(&cfg.images).map_err(|e| anyhow::anyhow!("image configuration: {e}"))?;
    let process = || {
        let python = match HostPython::locate(&cfg.process_python) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("the process sandbox has no Python for tests: {e}");
                None
            }
        };
        Backend::Process { python }
    };
    Ok(match cfg.sandbox.as_str() {
        "docker" => Backend::Docker(DockerEngine::connect().await.context("sandbox = \"docker\" needs a Docker engine (or set sandbox = \"process\")")?.with_pull_policy(pull)),
        "process" => process(),
        "auto" => match DockerEngine::connect().await {
            Ok(engine) => Backend::Docker(engine.with_pull_policy(pull)),
            Err(e) => {
                tracing::warn!("no Docker engine ({e}); running episodes as local processes (weaker isolation)");
                process()
            }
        },
        other => anyhow::bail!("sandbox = {other:?}: use \"docker\", \"process\" or \"auto\""),
    })
}

/// What the episodes of this host share: the backend, the policies, the phase limits, the
/// default sandbox limits of `cfg`, and (with Docker) the image cache under `cfg.images`,
/// counting into `metrics`.
pub fn episode_env(cfg: &WorkerConfig, backend: Backend, worker_id: String, metrics: &WorkerMetrics) -> anyhow::Result<Arc<EpisodeEnv>> {
    let policies = PolicyFactory::new(&cfg.policy).map_err(|e| anyhow::anyhow!("policy configuration: {e}"))?;
    // The engine's pulls count into this worker's metrics from here on.
    let backend = match backend {
        Backend::Docker(engine) => Backend::Docker(engine.with_pull_metrics(metrics.pulls.clone())),
        other => other,
    };
    let images = match backend.engine() {
        Some(engine) => {
            let policy = ImagePolicy::from_config(&cfg.images).map_err(|e| anyhow::anyhow!("image cache configuration: {e}"))?;
            Some(ImageCache::new(engine.clone(), policy, metrics.images.clone()))
        }
        None => None,
    };
    let backend_builder = backend
        .engine()
        .map(|engine| Arc::new(crate::sandbox::build::Builder::new(engine.clone(), cfg.build.concurrency as usize, cfg.build.max_timeout, cfg.build.network.clone())));
    Ok(Arc::new(EpisodeEnv {
        backend,
        worker_id,
        agent: cfg.agent.clone(),
        policies,
        phases: PhaseLimits::new(cfg.capacity.init as usize, cfg.capacity.run as usize, cfg.capacity.grade as usize),
        default_limits: SandboxLimits {
            cpus: Some(cfg.limits.cpus),
            memory_bytes: agentmill_proto::parse_size(&cfg.limits.memory),
            pids: Some(cfg.limits.pids),
            disk_bytes: None,
        },
        test_timeout: cfg.limits.test_timeout,
        ceilings: cfg.limits.ceilings(),
        init_timeout: cfg.limits.init_timeout,
        images,
        inputs: cfg.inputs(),
        network: cfg.sandbox_network.policy().map_err(|(key, why)| anyhow::anyhow!("{key}: {why}"))?,
        builder: backend_builder,
    }))
}

/// How often the worker lists the host's images to report the ones that appeared.
const IMAGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs the worker until SIGTERM or Ctrl-C, then drains. Must run inside an actix `System`.
pub async fn run(cfg: WorkerConfig) -> anyhow::Result<()> {
    let worker_id = cfg.worker_id();
    let backend = choose_backend(&cfg).await?;
    let cached_images = match backend.engine() {
        Some(engine) => engine.local_images().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let redis = redis::Client::open(cfg.redis_url.as_str()).with_context(|| format!("redis_url {:?}", cfg.redis_url))?;
    let con = redis::aio::ConnectionManager::new(redis).await.with_context(|| format!("cannot reach Redis at {}", cfg.redis_url))?;
    let metrics = Arc::new(WorkerMetrics::new());
    let env = episode_env(&cfg, backend.clone(), worker_id.clone(), &metrics)?;
    let (session, events) = WorkerSession::start(SessionConfig {
        addr: cfg.coordinator.clone(),
        token: cfg.token.clone(),
        ca_cert: cfg.ca_cert.clone(),
        worker_id: worker_id.clone(),
        host: std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
        capacity: v1::Capacity { episodes: cfg.capacity.episodes, init: cfg.capacity.init, run: cfg.capacity.run, grade: cfg.capacity.grade, synth: 0 },
        labels: cfg.labels.clone(),
        cached_images,
        max_backoff: std::time::Duration::from_secs(5),
    });
    let publisher = Publisher::new(
        PublisherConfig {
            stream: cfg.stream.clone(),
            learner_group: (!cfg.learner_group.is_empty()).then(|| cfg.learner_group.clone()),
            high_water: cfg.high_water,
            low_water: cfg.low_water,
            outage_limit: Some(cfg.redis_outage_limit),
            ..PublisherConfig::default()
        },
        con,
        Some(session.clone()),
    )
    .start();
    let runner_env = env.clone();
    let runner: Runner = Arc::new(move |task, id, progress, cancel| Box::pin(run_episode(runner_env.clone(), task, id, move |s| progress(s), cancel)));
    if let Some(addr) = cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics_listen {addr} is not free"))?;
        let m = metrics.clone();
        let app = axum::Router::new().route("/metrics", axum::routing::get(move || async move { m.render() }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        info!("metrics on http://{addr}/metrics");
    }
    {
        // The publisher's figures, copied into the metrics every second.
        let (publisher, metrics) = (publisher.clone(), metrics.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Ok(s) = publisher.send(crate::actors::publisher::Observe).await else { break };
                // The publisher's count only grows: the counter takes the difference.
                metrics.published.inc_by(s.published.saturating_sub(metrics.published.get()));
                metrics.lag.set(s.lag as i64);
                metrics.backpressured.set(i64::from(s.backpressured));
            }
        });
    }
    if let Some(engine) = backend.engine().cloned() {
        // Images pulled, loaded or built since the start: the coordinator prefers this worker
        // for tasks on them. A failed listing is skipped; the next one reports.
        let session = session.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(IMAGE_REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match engine.local_images().await {
                    Ok(images) => session.set_cached_images(images),
                    Err(e) => tracing::debug!("listing the host's images failed: {e}"),
                }
            }
        });
    }
    let reap_interval = cfg.reap_interval;
    let images = env.images.clone();
    let synth = SynthSettings {
        config: cfg.synth.clone(),
        tokenizer: (!cfg.synth_tokenizer.is_empty()).then(|| std::path::PathBuf::from(&cfg.synth_tokenizer)),
        inputs: cfg.inputs(),
    };
    let (vital_tx, vital_rx) = tokio::sync::oneshot::channel();
    let supervisor = HostSupervisor::create(move |ctx| {
        ctx.add_stream(UnboundedReceiverStream::new(events));
        HostSupervisor::new(worker_id.clone(), backend.engine().cloned(), runner, session, publisher, reap_interval)
            .with_synth(synth)
            .with_images(images)
            .with_metrics(metrics)
            .with_vital_stop(vital_tx)
    });
    info!(coordinator = %cfg.coordinator, episodes = cfg.capacity.episodes, "worker running");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // A signal drains and exits 0; a vital actor that stopped drains and exits non-zero.
    let vital = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
        why = vital_rx => Some(why.unwrap_or_else(|_| "the host supervisor stopped".into())),
    };
    supervisor.send(Drain { grace: cfg.drain_grace }).await.context("draining")?;
    let state = supervisor.send(ObserveHost).await.context("reading the final state")?;
    info!(started = state.started, ended = ?state.ended, "worker drained; bye");
    System::current().stop();
    match vital {
        None => Ok(()),
        Some(why) => Err(anyhow::anyhow!("{why}; the worker drained and exits (its service manager should restart it)")),
    }
}

/// `agentmill-worker synth`: one synthesis job run here, records written as JSONL to `out`
/// (stdout when `None`), the drop report printed to stderr as JSON.
pub fn synth_offline(cfg: &WorkerConfig, spec: &agentmill_proto::SynthSpec, repo: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use crate::synth::{ApproxTokenCounter, HfTokenCounter, RecordMeta, SynthInput, TokenCounter, run_offline};
    let input = SynthInput::from_spec(spec, repo)?;
    let tokens: Box<dyn TokenCounter> = if cfg.synth_tokenizer.is_empty() {
        Box::new(ApproxTokenCounter::default())
    } else {
        Box::new(HfTokenCounter::from_file(std::path::Path::new(&cfg.synth_tokenizer))?)
    };
    let meta = RecordMeta {
        task_id: "offline".into(),
        worker: cfg.worker_id(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let report = match out {
        Some(path) => {
            let mut f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            run_offline(&input, cfg.synth.clone(), tokens, meta, &mut f)?
        }
        None => run_offline(&input, cfg.synth.clone(), tokens, meta, &mut std::io::stdout().lock())?,
    };
    eprintln!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
