//! One episode's lifecycle, three phases ([`EpisodePhase`]): `init → run → grade`, producing a
//! [`TrajectoryRecord`].
//!
//! Each phase waits for a permit of its own semaphore ([`PhaseLimits`]), so on a busy host image
//! pulls and container starts overlap other episodes' agent time and grading. Containers are
//! removed on every path — success, error, timeout, cancellation, panic — by a guard whose
//! `Drop` schedules the removal; the worker's reaper catches anything a killed process left.
//! The function never fails: every failure becomes a typed exit reason, infra failures labelled
//! as such (`sandbox_error`, `infra_error`, `policy_error`) so the coordinator retries them and
//! the learner never trains on them as the model's failure.
//!
//! This file holds [`run_episode`] and what it is given ([`EpisodeEnv`], [`EpisodeLease`]);
//! [`init`] the image, the sandbox and the repository; the agent runs in [`crate::agent`] (or a
//! [`crate::harness`]); [`grade`] the fresh container that grades the model's patch;
//! [`limits`] the worker's ceilings on a task's limits; [`harbor`] a Harbor task's episode;
//! [`openswe`] OpenSWE rows' environments, built from the row's Dockerfile.

pub mod grade;
pub mod harbor;
pub mod init;
pub mod limits;
pub mod openswe;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentmill_proto::{ExitReason, Provenance, RecordKind, Task, Timing, TrajectoryRecord};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::agent::policy::PolicyFactory;
use crate::agent::{AgentConfig, run_agent};
use crate::sandbox::SandboxLimits;
use crate::sandbox::images::ImageCache;

pub use init::Backend;

/// How many episodes may be in each phase at once on this host (`[capacity]`'s `init`, `run`,
/// `grade`).
#[derive(Debug)]
pub struct PhaseLimits {
    /// Image checks / pulls, container starts, repository setup.
    pub init: Semaphore,
    /// Agent loops.
    pub run: Semaphore,
    /// Grading runs.
    pub grade: Semaphore,
}

impl PhaseLimits {
    /// Limits of `init`, `run` and `grade` episodes at once.
    pub fn new(init: usize, run: usize, grade: usize) -> PhaseLimits {
        PhaseLimits { init: Semaphore::new(init.max(1)), run: Semaphore::new(run.max(1)), grade: Semaphore::new(grade.max(1)) }
    }
}

/// What every episode on this host shares.
#[derive(Debug)]
pub struct EpisodeEnv {
    /// Where episodes run: Docker containers or process sandboxes.
    pub backend: init::Backend,
    /// This worker's id (labels containers, names records).
    pub worker_id: String,
    /// Agent loop settings.
    pub agent: AgentConfig,
    /// Policies by name.
    pub policies: PolicyFactory,
    /// Phase concurrency.
    pub phases: PhaseLimits,
    /// Sandbox limits where a task sets none.
    pub default_limits: SandboxLimits,
    /// Test run timeout where a task sets none.
    pub test_timeout: Duration,
    /// The most a task's limits may ask for ([`limits::Ceilings`]).
    pub ceilings: limits::Ceilings,
    /// The longest one `init` (image, container, repository) may take.
    pub init_timeout: Duration,
    /// The host's image cache (Docker only): episodes pin their image in it.
    pub images: Option<ImageCache>,
    /// Where tasks' inputs (archives) come from, and how much of them is read.
    pub inputs: crate::inputs::Inputs,
    /// Whether a task may have the network, and under which egress policy.
    pub network: crate::sandbox::network::NetworkPolicy,
    /// Builds task environments from Dockerfiles (Docker only).
    pub builder: Option<Arc<crate::sandbox::build::Builder>>,
}

/// The lease an episode serves, as the coordinator granted it: the episode's name, its rollout
/// and attempt, and when it was queued.
#[derive(Debug, Clone)]
pub struct EpisodeLease {
    /// Stable per (task, rollout, attempt); names the containers.
    pub episode: String,
    /// 0-based rollout.
    pub rollout: u32,
    /// 1-based attempt.
    pub attempt: u32,
    /// When the rollout was (re)queued, unix ms (for `queue_ms`).
    pub queued_at_unix_ms: i64,
}

/// A phase of one episode, as [`run_episode`] reports it entering each (the coordinator hears it
/// as `v1::Stage`, the supervisor as [`crate::actors::job::JobStage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodePhase {
    /// Image, container, repository.
    Init,
    /// The agent loop.
    Run,
    /// The tests.
    Grade,
}

/// Removes its sandbox when dropped, whatever path the episode took.
struct ContainerGuard(Option<init::PreparedSandbox>);

impl ContainerGuard {
    async fn remove(&mut self) {
        if let Some(c) = self.0.take() {
            c.remove().await;
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Dropped mid-flight (cancelled or panicking): remove in the background.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { c.remove().await });
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn limits_for(env: &EpisodeEnv, task: &Task) -> SandboxLimits {
    SandboxLimits {
        cpus: task.limits.cpus.or(env.default_limits.cpus),
        memory_bytes: task.limits.memory.or(env.default_limits.memory_bytes),
        pids: task.limits.pids.or(env.default_limits.pids),
        disk_bytes: task.limits.disk.or(env.default_limits.disk_bytes),
    }
}

/// [`init::prepare`] within the worker's `limits.init_timeout`: past it the half-made sandbox
/// is removed and the init fails with a sandbox error naming the deadline.
async fn prepare_within(env: &EpisodeEnv, task: &Task, episode: &str, limits: &SandboxLimits) -> Result<init::Prepared, crate::sandbox::SandboxError> {
    let prepare = init::prepare(&env.backend, env.images.as_ref(), &env.inputs, &env.network, task, &env.worker_id, episode, limits);
    match tokio::time::timeout(env.init_timeout, prepare).await {
        Ok(prepared) => prepared,
        Err(_) => {
            if let Some(engine) = env.backend.engine()
                && let Err(e) = engine.reap_episode(&env.worker_id, episode).await
            {
                warn!("removing the container of an init past its deadline: {e}");
            }
            Err(crate::sandbox::SandboxError::Io(format!(
                "init did not finish within {} (the worker's limits.init_timeout): the image, the container or the repository set-up hung; check the image's registry and the task's source, or raise limits.init_timeout",
                humantime_serde::re::humantime::format_duration(env.init_timeout)
            )))
        }
    }
}

/// What grading needs of the agent's run once the record holds the rest.
pub(crate) struct Ran {
    /// The model's patch.
    pub model_patch: String,
    /// Why the agent's loop ended.
    pub exit_reason: ExitReason,
    /// Policy turns taken.
    pub steps: u32,
}

/// Puts what the agent did on `record` (conversation, tools, policy, exit, patch, agent time).
/// `None` when the episode ends there — an infrastructure failure or a cancellation leaves
/// nothing to grade — with the record complete (reward 0, total time); otherwise what grading
/// needs.
pub(crate) fn take_agent_outcome(record: &mut TrajectoryRecord, outcome: crate::agent::AgentOutcome, started: Instant) -> Option<Ran> {
    record.timing.agent_ms = outcome.duration.as_millis() as u64;
    record.tools = outcome.tools;
    record.messages = outcome.messages;
    record.provenance.policy = Some(outcome.policy);
    record.exit_reason = Some(outcome.exit_reason);
    record.error = outcome.error;
    record.model_patch = Some(outcome.model_patch.clone());
    if outcome.exit_reason.is_infra() || outcome.exit_reason == ExitReason::Cancelled {
        record.reward = Some(0.0);
        record.timing.total_ms = started.elapsed().as_millis() as u64;
        info!(exit = %outcome.exit_reason, "episode ended before grading");
        return None;
    }
    Some(Ran { model_patch: outcome.model_patch, exit_reason: outcome.exit_reason, steps: outcome.steps })
}

/// Every limit the episode runs under (the task's after the ceilings, else the worker's
/// defaults), for the record.
fn applied_limits(env: &EpisodeEnv, task: &Task, sandbox: &SandboxLimits) -> agentmill_proto::Limits {
    let agent = env.agent.limits_for(task);
    let test_timeout = task.limits.test_timeout_s.map(|s| Duration::from_secs(u64::from(s))).unwrap_or(env.test_timeout);
    agentmill_proto::Limits {
        max_steps: Some(agent.max_steps),
        step_timeout_s: Some(u32::try_from(agent.step_timeout.as_secs()).unwrap_or(u32::MAX)),
        episode_timeout_s: Some(u32::try_from(agent.episode_timeout.as_secs()).unwrap_or(u32::MAX)),
        test_timeout_s: Some(u32::try_from(test_timeout.as_secs()).unwrap_or(u32::MAX)),
        cpus: sandbox.cpus,
        memory: sandbox.memory_bytes,
        pids: sandbox.pids,
        disk: sandbox.disk_bytes,
        context_tokens: Some(agent.context_tokens),
    }
}

/// Runs one episode of `task` and returns its record. `progress` hears each phase as it starts.
pub async fn run_episode(env: Arc<EpisodeEnv>, task: Task, id: EpisodeLease, progress: impl Fn(EpisodePhase) + Send + Sync, cancel: CancellationToken) -> TrajectoryRecord {
    let span = info_span!("episode", task_id = %task.instance_id, episode = %id.episode, worker = %env.worker_id);
    run(env, task, id, progress, cancel).instrument(span).await
}

async fn run(env: Arc<EpisodeEnv>, mut task: Task, id: EpisodeLease, progress: impl Fn(EpisodePhase) + Send + Sync, cancel: CancellationToken) -> TrajectoryRecord {
    let started = Instant::now();
    // A task's limits go no higher than this worker's ceilings.
    for clamped in env.ceilings.clamp(&mut task.limits) {
        warn!(field = clamped.field, asked = %clamped.asked, ceiling = %clamped.ceiling, "task {}: {clamped}", task.instance_id);
    }
    let mut record = TrajectoryRecord {
        attempt: id.attempt,
        rollout: id.rollout,
        worker: env.worker_id.clone(),
        created_at: chrono_now(),
        versions: [("agentmill".to_string(), agentmill_proto::VERSION.to_string())].into_iter().collect(),
        provenance: Provenance { repo: task.repo.clone(), base_commit: task.base_commit.clone(), image: task.image.clone(), ..Provenance::default() },
        timing: Timing { queue_ms: (now_ms() - id.queued_at_unix_ms).max(0) as u64, ..Timing::default() },
        ..TrajectoryRecord::new(RecordKind::Env, TrajectoryRecord::episode_record_id(&task.instance_id, id.rollout, id.attempt), task.instance_id.clone())
    };
    let fail = |mut record: TrajectoryRecord, reason: ExitReason, error: String| {
        warn!(exit = %reason, "episode ended: {error}");
        record.exit_reason = Some(reason);
        record.error = Some(error);
        record.reward = Some(0.0);
        record.timing.total_ms = started.elapsed().as_millis() as u64;
        record
    };
    let limits = limits_for(&env, &task);
    record.provenance.limits = Some(applied_limits(&env, &task, &limits));
    if task.family == agentmill_proto::dataset::Family::Harbor {
        // A Harbor task: its environment, its instruction, its verifier's reward (harbor.rs).
        return harbor::run(&env, &task, &id, &progress, &cancel, record, limits, started).await;
    }
    if task.family == agentmill_proto::dataset::Family::OpenSwe
        && task.image.is_empty()
        && let Some(dockerfile) = openswe::dockerfile(&task).map(str::to_string)
    {
        // An OpenSWE row without image_name: its Dockerfile built with its repository as the
        // context (openswe.rs), the task's fault when it fails.
        progress(EpisodePhase::Init);
        match openswe::ensure_image(env.builder.as_deref(), &env.inputs, &task, &dockerfile).await {
            Ok(tag) => {
                record.provenance.image = tag.clone();
                task.image = tag;
            }
            Err(e) => return fail(record, ExitReason::SandboxError, format!("init: {e}")),
        }
    }

    // The image stays on the host until this episode's last container is gone: the pin lives to
    // the end of the episode (grading starts a fresh container after the agent's is removed) and
    // is dropped after the container guards; a removal they leave to the background keeps the
    // image through its container (a pass never takes an image a container uses).
    let _image_pin = match &env.images {
        Some(cache) => Some(cache.pin(&task.image).await),
        None => None,
    };

    // A task that must wait for an init slot (the host's backlog) has its image pulled meanwhile,
    // bounded by images.prefetch; one that gets a slot at once pulls in its own init.
    if let Some(engine) = env.backend.engine()
        && env.phases.init.available_permits() == 0
    {
        engine.prefetch(&task.image);
    }

    // init
    progress(EpisodePhase::Init);
    // An external harness (mini-swe-agent, a command) plays the episode in its own image when
    // its endpoint names one; grading below still uses the task's image.
    let harness = env.policies.harness_for(&task).map(|(name, config)| (name.to_string(), config.clone()));
    let mut agent_task = task.clone();
    if let Some((name, config)) = &harness {
        if env.backend.engine().is_none() {
            return fail(record, ExitReason::SandboxError, format!("policy {name} runs the harness {} behind the LLM gateway, which needs the Docker backend; run the task on a Docker worker or with a policy whose harness is \"agentmill\"", config.harness.label()));
        }
        agent_task.image = crate::harness::agent_image(&task, config);
        record.versions.insert("harness".into(), config.harness.label());
        record.versions.insert("harness_image".into(), agent_task.image.clone());
    }
    let _harness_image_pin = match (&env.images, agent_task.image != task.image) {
        (Some(cache), true) => Some(cache.pin(&agent_task.image).await),
        _ => None,
    };
    let prepared = {
        let _permit = tokio::select! {
            p = env.phases.init.acquire() => p,
            _ = cancel.cancelled() => return fail(record, ExitReason::Cancelled, "cancelled before init".into()),
        };
        tokio::select! {
            p = prepare_within(&env, &agent_task, &id.episode, &limits) => p,
            _ = cancel.cancelled() => {
                // The container may exist already, with no guard yet: remove it now rather than
                // leave it to the next reaper pass.
                if let Some(engine) = env.backend.engine()
                    && let Err(e) = engine.reap_episode(&env.worker_id, &id.episode).await
                {
                    warn!("removing the container of a cancelled init: {e}");
                }
                return fail(record, ExitReason::Cancelled, "cancelled during init".into());
            }
        }
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return fail(record, ExitReason::SandboxError, format!("init: {e}")),
    };
    if let Some(engine) = env.backend.engine() {
        record.provenance.image_digest = engine.image_digest(&task.image).await.unwrap_or_default();
        if agent_task.image != task.image {
            record.versions.insert("harness_image_digest".into(), engine.image_digest(&agent_task.image).await.unwrap_or_default());
        }
    }
    record.timing.image_ms = prepared.image_ms;
    record.timing.start_ms = prepared.start_ms;
    let mut guard = ContainerGuard(Some(prepared.sandbox));

    // run
    progress(EpisodePhase::Run);
    let mut policy = match env.policies.for_task(&task) {
        Ok(p) => p,
        Err(e) => {
            guard.remove().await;
            return fail(record, ExitReason::PolicyError, format!("policy: {e}"));
        }
    };
    record.provenance.policy = Some(policy.info());
    let outcome = {
        let _permit = env.phases.run.acquire().await;
        let Some(prepared) = guard.0.as_ref() else {
            return fail(record, ExitReason::InfraError, "the sandbox vanished before the agent ran".into());
        };
        let sandbox = prepared.as_sandbox();
        if let (Some((name, config)), init::PreparedSandbox::Docker(container)) = (&harness, prepared) {
            let run = crate::harness::run_harness(container, &task, (name, config), &env.policies, &env.agent, &cancel).await;
            record.model_calls = run.model_calls;
            run.outcome
        } else if sandbox.workdir() == task.workdir {
            run_agent(policy.as_mut(), sandbox, &task, &env.agent, &cancel).await
        } else {
            // A plain process sandbox lives in a host folder: tell the agent where.
            let mut here = task.clone();
            here.workdir = sandbox.workdir().to_string();
            run_agent(policy.as_mut(), sandbox, &here, &env.agent, &cancel).await
        }
    };
    guard.remove().await;
    let Some(outcome) = take_agent_outcome(&mut record, outcome, started) else { return record };

    // grade, in a fresh container
    progress(EpisodePhase::Grade);
    let graded = {
        let _permit = tokio::select! {
            p = env.phases.grade.acquire() => p,
            _ = cancel.cancelled() => return fail(record, ExitReason::Cancelled, "cancelled before grading".into()),
        };
        let t = Instant::now();
        let fresh = match prepare_within(&env, &task, &format!("{}-grade", id.episode), &limits).await {
            Ok(p) => p,
            Err(e) => return fail(record, ExitReason::SandboxError, format!("grade: {e}")),
        };
        let mut g = ContainerGuard(Some(fresh.sandbox));
        let timeout = task.limits.test_timeout_s.map(|s| Duration::from_secs(u64::from(s))).unwrap_or(env.test_timeout);
        let result = match g.0.as_ref() {
            Some(c) => tokio::select! {
                r = grade::grade(c.as_sandbox(), &task, &outcome.model_patch, timeout) => r,
                _ = cancel.cancelled() => {
                    g.remove().await;
                    return fail(record, ExitReason::Cancelled, "cancelled during grading".into());
                }
            },
            None => return fail(record, ExitReason::InfraError, "the grading container vanished".into()),
        };
        g.remove().await;
        record.timing.grade_ms = t.elapsed().as_millis() as u64;
        result
    };
    match graded {
        Ok(g) if g.not_graded.is_some() => {
            // The reference would not have graded this run: a broken task or environment, not
            // the model's failure. The grading stays on the record for whoever reads it.
            let why = format!("grade: not graded: {}", g.not_graded.as_deref().unwrap_or_default());
            record.grading = Some(g);
            return fail(record, ExitReason::SandboxError, why);
        }
        Ok(g) => {
            record.reward = Some(if g.resolved { 1.0 } else { 0.0 });
            info!(resolution = g.resolution.as_str(), exit = %outcome.exit_reason, steps = outcome.steps, "episode graded");
            record.grading = Some(g);
        }
        Err(e) => return fail(record, ExitReason::SandboxError, format!("grade: {e}")),
    }
    record.timing.total_ms = started.elapsed().as_millis() as u64;
    record
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
