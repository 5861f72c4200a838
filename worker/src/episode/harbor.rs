//! A Harbor task's episode, as Harbor runs a trial with its default `environment_mode =
//! "shared"`: one container of the task's environment for the agent and then the verifier.
//!
//! - **init**: the task directory comes with the task (`harbor.content`: a tar, fetched and
//!   checked like any input); the image is the task's `docker_image`, or built from its
//!   `environment/` ([`crate::sandbox::build`], once per host). The container starts at the
//!   task's `workdir` (else the image's `WORKDIR`), with `[environment].env` resolved from the
//!   worker's environment, the task's limits, and the network only when the worker's
//!   `sandbox_network` allows it; `/logs/agent` and `/logs/verifier` exist.
//! - **run**: the instruction is the problem statement; the agent's commands run as
//!   `[agent].user` when set. Neither `tests/` nor (but for the oracle) `solution/` is in the
//!   container. The `replay` policy is Harbor's oracle: `solution/` is uploaded to `/solution`,
//!   the script made executable, and run from the workdir (as the agent's user, as Harbor runs
//!   it), its output in `/logs/agent/oracle.txt`.
//! - **grade** (the same container, after the agent): stale reward files deleted, `tests/`
//!   uploaded to `/tests` (over what is there, as Harbor does), the test script made executable and run from the workdir with its
//!   output in `/logs/verifier/test-stdout.txt`, `[verifier].env` resolved, under the verifier's
//!   timeout; its exit code is ignored. The rewards are read as Harbor reads them
//!   (`reward.json`, else `reward.txt`: [`harbor::read_rewards`]) and the task's
//!   [`harbor::RewardRule`] resolves the episode FULL or NO. No (valid) reward file is the task's
//!   fault: `sandbox_error`, never the model's.

use std::time::{Duration, Instant};

use agentmill_proto::dataset::harbor::{self, HarborSpec};
use agentmill_proto::{ExitReason, Grading, Resolution, Task, TrajectoryRecord};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::init::{ensure_image, start_with_egress, tail};
use super::{EpisodeEnv, EpisodeLease, EpisodePhase};
use crate::agent::policy::REPLAY;
use crate::agent::run_agent;
use crate::sandbox::docker::{DockerContainer, DockerEngine};
use crate::sandbox::{ExecOutput, ExecRequest, Keep, Sandbox, SandboxError, SandboxLimits, SandboxSpec};
use crate::shell::quote;

/// Where the verifier writes.
pub const VERIFIER_DIR: &str = "/logs/verifier";
/// Where an agent may leave its logs.
pub const AGENT_DIR: &str = "/logs/agent";
/// A Harbor task's first message: its instruction, as Harbor hands it to an agent.
pub const INSTANCE_TEMPLATE: &str = "{problem_statement}";
/// How much of the verifier's output a record keeps.
const LOG_TAIL: usize = 16 * 1024;

/// A sandbox whose commands run as another user (the task's `[agent].user`).
#[derive(Debug)]
pub struct AsUser<'a> {
    inner: &'a dyn Sandbox,
    user: Option<String>,
}

#[async_trait::async_trait]
impl Sandbox for AsUser<'_> {
    fn episode(&self) -> &str {
        self.inner.episode()
    }
    fn workdir(&self) -> &str {
        self.inner.workdir()
    }
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        match (&self.user, &req.user) {
            (Some(u), None) => {
                let mut req = req.clone();
                req.user = Some(u.clone());
                self.inner.exec(&req).await
            }
            _ => self.inner.exec(req).await,
        }
    }
    async fn read_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        self.inner.read_file(path).await
    }
    async fn write_file(&self, path: &str, contents: &[u8]) -> Result<(), SandboxError> {
        self.inner.write_file(path, contents).await
    }
    async fn is_alive(&self) -> bool {
        self.inner.is_alive().await
    }
}

/// Removes the container on every path.
struct Guard(Option<DockerContainer>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move { c.remove().await });
        }
    }
}

impl Guard {
    async fn remove(&mut self) {
        if let Some(c) = self.0.take() {
            c.remove().await;
        }
    }
}

fn root(command: impl Into<String>) -> ExecRequest {
    let mut r = ExecRequest::new(command).timeout(Duration::from_secs(120));
    r.user = Some("0".into());
    r
}

/// The image's own working directory (`WORKDIR`), `/` when it sets none.
async fn image_workdir(engine: &DockerEngine, image: &str) -> String {
    match engine.client().inspect_image(image).await {
        Ok(info) => info.config.and_then(|c| c.working_dir).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
        Err(_) => "/".into(),
    }
}

/// Runs one episode of the Harbor task `task` (family `harbor`).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    env: &EpisodeEnv,
    task: &Task,
    id: &EpisodeLease,
    progress: &(dyn Fn(EpisodePhase) + Send + Sync),
    cancel: &CancellationToken,
    mut record: TrajectoryRecord,
    limits: SandboxLimits,
    started: Instant,
) -> TrajectoryRecord {
    let fail = |mut record: TrajectoryRecord, reason: ExitReason, error: String| {
        warn!(exit = %reason, "episode ended: {error}");
        record.exit_reason = Some(reason);
        record.error = Some(error);
        record.reward = Some(0.0);
        record.timing.total_ms = started.elapsed().as_millis() as u64;
        record
    };
    let Some(spec) = task.harbor.clone() else {
        return fail(record, ExitReason::SandboxError, format!("init: task {} is a Harbor row without its harbor spec; make the row with agentmill submit --harbor DIR", task.instance_id));
    };
    let Some(engine) = env.backend.engine() else {
        return fail(
            record,
            ExitReason::SandboxError,
            format!("init: task {} is a Harbor task, which runs in a container of its environment; run it on a worker with sandbox = \"docker\"", task.instance_id),
        );
    };

    progress(EpisodePhase::Init);
    let init = {
        let _permit = tokio::select! {
            p = env.phases.init.acquire() => p,
            _ = cancel.cancelled() => return fail(record, ExitReason::Cancelled, "cancelled before init".into()),
        };
        tokio::select! {
            r = tokio::time::timeout(env.init_timeout, prepare(env, engine, task, &spec, &id.episode, &limits)) => match r {
                Ok(r) => r,
                Err(_) => {
                    if let Err(e) = engine.reap_episode(&env.worker_id, &id.episode).await {
                        warn!("removing the container of an init past its deadline: {e}");
                    }
                    return fail(record, ExitReason::SandboxError, format!(
                        "init did not finish within {} (the worker's limits.init_timeout): the image build or pull, or the container, hung; raise limits.init_timeout or check the task's environment",
                        humantime_serde::re::humantime::format_duration(env.init_timeout)
                    ));
                }
            },
            _ = cancel.cancelled() => {
                if let Err(e) = engine.reap_episode(&env.worker_id, &id.episode).await {
                    warn!("removing the container of a cancelled init: {e}");
                }
                return fail(record, ExitReason::Cancelled, "cancelled during init".into());
            }
        }
    };
    let Ready { container, content, image, workdir, image_ms, start_ms, _pin } = match init {
        Ok(r) => r,
        Err(e) => return fail(record, ExitReason::SandboxError, format!("init: {e}")),
    };
    record.provenance.image = image.clone();
    record.provenance.image_digest = engine.image_digest(&image).await.unwrap_or_default();
    record.timing.image_ms = image_ms;
    record.timing.start_ms = start_ms;
    let mut guard = Guard(Some(container));

    // run
    progress(EpisodePhase::Run);
    let mut policy = match env.policies.for_task(task) {
        Ok(p) => p,
        Err(e) => {
            guard.remove().await;
            return fail(record, ExitReason::PolicyError, format!("policy: {e}"));
        }
    };
    record.provenance.policy = Some(policy.info());
    let outcome = {
        let _permit = env.phases.run.acquire().await;
        let Some(c) = guard.0.as_ref() else {
            return fail(record, ExitReason::InfraError, "the sandbox vanished before the agent ran".into());
        };
        if policy.info().name == REPLAY {
            // Harbor's oracle: the solution reaches the container for it alone.
            let uploaded = match harbor::subtree_tar(&content, "solution", false) {
                Ok(tar) => match c.upload_tar("/", tar).await {
                    Ok(()) => match &spec.solve_script {
                        Some(solve) => c.exec(&root(format!("chmod +x {}", quote(&format!("/{solve}")))).workdir_root()).await.map(|_| ()),
                        None => Ok(()),
                    },
                    Err(e) => Err(e),
                },
                Err(e) => Err(SandboxError::Io(format!("harbor.content: unpacking solution/: {e}"))),
            };
            if let Err(e) = uploaded {
                guard.remove().await;
                return fail(record, ExitReason::SandboxError, format!("init: uploading solution/ for the oracle: {e}"));
            }
        }
        let sandbox = AsUser { inner: c, user: spec.agent_user.clone() };
        let mut here = task.clone();
        here.workdir = workdir.clone();
        // The instruction is the task, as Harbor gives it to an agent: no repository framing.
        let mut agent = env.agent.clone();
        agent.instance_template = INSTANCE_TEMPLATE.into();
        run_agent(policy.as_mut(), &sandbox, &here, &agent, cancel).await
    };
    let Some(outcome) = super::take_agent_outcome(&mut record, outcome, started) else {
        guard.remove().await;
        return record;
    };

    // grade, in the agent's container (Harbor's shared mode)
    progress(EpisodePhase::Grade);
    let graded = {
        let _permit = tokio::select! {
            p = env.phases.grade.acquire() => p,
            _ = cancel.cancelled() => return fail(record, ExitReason::Cancelled, "cancelled before grading".into()),
        };
        let t = Instant::now();
        let timeout = task.limits.test_timeout_s.map(|s| Duration::from_secs(u64::from(s))).unwrap_or(env.test_timeout);
        let Some(c) = guard.0.as_ref() else {
            return fail(record, ExitReason::InfraError, "the sandbox vanished before grading".into());
        };
        let r = tokio::select! {
            r = verify(c, &spec, &content, &workdir, timeout) => r,
            _ = cancel.cancelled() => {
                guard.remove().await;
                return fail(record, ExitReason::Cancelled, "cancelled during grading".into());
            }
        };
        record.timing.grade_ms = t.elapsed().as_millis() as u64;
        r
    };
    guard.remove().await;
    match graded {
        Ok((g, _)) if g.not_graded.is_some() => {
            let why = format!("grade: not graded: {}", g.not_graded.as_deref().unwrap_or_default());
            record.grading = Some(g);
            fail(record, ExitReason::SandboxError, why)
        }
        Ok((g, reward)) => {
            info!(resolution = g.resolution.as_str(), reward, exit = %outcome.exit_reason, "episode graded by its verifier's reward");
            record.reward = Some(reward);
            record.grading = Some(g);
            record.timing.total_ms = started.elapsed().as_millis() as u64;
            record
        }
        Err(e) => fail(record, ExitReason::SandboxError, format!("grade: {e}")),
    }
}

/// What init leaves: a started container and what the later phases need.
struct Ready {
    container: DockerContainer,
    content: Vec<u8>,
    image: String,
    workdir: String,
    image_ms: u64,
    start_ms: u64,
    _pin: Option<crate::sandbox::images::ImagePin>,
}

/// The build context of a Harbor task's environment (the folder of its `dockerfile` in the task
/// directory `content`, as packed) and the Dockerfile's name in it.
pub fn build_context(content: &[u8], dockerfile: &str) -> Result<(Vec<u8>, String), SandboxError> {
    let (folder, name) = dockerfile.rsplit_once('/').unwrap_or((".", dockerfile));
    let context = harbor::subtree_tar(content, folder, true).map_err(|e| SandboxError::Io(format!("harbor.content: unpacking {folder}/: {e}")))?;
    Ok((context, name.to_string()))
}

/// The deadline of a Harbor task's environment build (its `build_timeout_sec`).
pub fn build_timeout(spec: &HarborSpec) -> Duration {
    Duration::from_secs_f64(spec.build_timeout_s.clamp(1.0, 1e7))
}

/// A Harbor task's directory (`harbor.content`), read and checked like any input.
pub async fn read_content(env: &EpisodeEnv, task: &Task, spec: &HarborSpec) -> Result<Vec<u8>, SandboxError> {
    let Some(content_spec) = spec.content.as_deref() else {
        return Err(SandboxError::Io(format!(
            "task {} came without its task directory (harbor.content); submit it with agentmill submit --harbor DIR, or run it with agentmill-worker run --harbor DIR",
            task.instance_id
        )));
    };
    let content = env.inputs.read("harbor.content", content_spec).await.map_err(|e| SandboxError::Io(e.to_string()))?;
    env.inputs.check_archive("harbor.content", &content).map_err(|e| SandboxError::Io(e.to_string()))?;
    Ok(content)
}

async fn prepare(env: &EpisodeEnv, engine: &DockerEngine, task: &Task, spec: &HarborSpec, episode: &str, limits: &SandboxLimits) -> Result<Ready, SandboxError> {
    if task.allow_network
        && let Some(refused) = env.network.refusal(&task.instance_id)
    {
        return Err(refused);
    }
    let content = read_content(env, task, spec).await?;
    let t0 = Instant::now();
    let image = match (&spec.docker_image, &spec.dockerfile) {
        (Some(image), _) => {
            ensure_image(engine, image, env.images.as_ref()).await?;
            image.clone()
        }
        (None, Some(dockerfile)) => {
            let Some(builder) = env.builder.as_ref() else {
                return Err(SandboxError::Engine("this worker builds no images (no Docker engine)".into()));
            };
            let (context, name) = build_context(&content, dockerfile)?;
            let built = builder.ensure(&task.instance_id, context, &name, build_timeout(spec)).await?;
            if let Some(cache) = env.images.as_ref() {
                cache.record_use(&built.tag);
            }
            built.tag
        }
        (None, None) => return Err(SandboxError::Io(format!("task {} names neither docker_image nor a Dockerfile", task.instance_id))),
    };
    let pin = match &env.images {
        Some(cache) => Some(cache.pin(&image).await),
        None => None,
    };
    let image_ms = t0.elapsed().as_millis() as u64;
    let t1 = Instant::now();
    let workdir = match &spec.workdir {
        Some(w) => w.clone(),
        None => image_workdir(engine, &image).await,
    };
    let resolved = harbor::resolve_env(&spec.env, |v| std::env::var(v).ok())
        .map_err(|e| SandboxError::Io(format!("task {}: [environment].env: {e}; set the variable in the worker's environment or give the task a default", task.instance_id)))?;
    let mut sspec = SandboxSpec::new(image.clone(), workdir.clone(), env.worker_id.clone(), episode);
    sspec.env = resolved;
    sspec.limits = limits.clone();
    let container = if task.allow_network { start_with_egress(engine, &env.network, &mut sspec).await? } else { engine.start(&sspec).await? };
    let dirs = format!("mkdir -p {AGENT_DIR} {VERIFIER_DIR} {wd} && chmod 777 {AGENT_DIR} {VERIFIER_DIR}", wd = quote(&workdir));
    match container.exec(&root(dirs).workdir_root()).await {
        Ok(out) if out.exit_code == 0 => {}
        Ok(out) => {
            container.remove().await;
            return Err(SandboxError::Engine(format!("making /logs in the environment failed (exit {}): {}", out.exit_code, tail(&out.output, 1000))));
        }
        Err(e) => {
            container.remove().await;
            return Err(e);
        }
    }
    Ok(Ready { container, content, image, workdir, image_ms, start_ms: t1.elapsed().as_millis() as u64, _pin: pin })
}

trait RootDir {
    fn workdir_root(self) -> Self;
}

impl RootDir for ExecRequest {
    /// Runs in `/` (the workdir may not exist yet).
    fn workdir_root(mut self) -> Self {
        self.workdir = Some("/".into());
        self
    }
}

/// Harbor's verifier in `c`: returns the grading and the record's reward.
async fn verify(c: &DockerContainer, spec: &HarborSpec, content: &[u8], workdir: &str, timeout: Duration) -> Result<(Grading, f64), SandboxError> {
    let script = format!("/{}", spec.test_script.trim_start_matches('/'));
    let folder = spec.test_script.split('/').next().unwrap_or("tests");
    // As Harbor: the stale reward files go; tests/ is uploaded over whatever /tests holds.
    let clean = format!("rm -f {VERIFIER_DIR}/reward.txt {VERIFIER_DIR}/reward.json");
    let out = c.exec(&root(clean).workdir_root()).await?;
    if out.exit_code != 0 {
        return Err(SandboxError::Engine(format!("clearing stale reward files failed: {}", tail(&out.output, 1000))));
    }
    let tests = harbor::subtree_tar(content, folder, false).map_err(|e| SandboxError::Io(format!("harbor.content: unpacking {folder}/: {e}")))?;
    c.upload_tar("/", tests).await?;
    let out = c.exec(&root(format!("chmod +x {}", quote(&script))).workdir_root()).await?;
    if out.exit_code != 0 {
        return Err(SandboxError::Engine(format!("chmod +x {script} failed: {}", tail(&out.output, 1000))));
    }
    let verifier_env = harbor::resolve_env(&spec.verifier_env, |v| std::env::var(v).ok()).map_err(|e| SandboxError::Io(format!("[verifier].env: {e}")))?;
    let mut req = ExecRequest::new(format!("({}) > {VERIFIER_DIR}/test-stdout.txt 2>&1", quote(&script))).timeout(timeout).keep(Keep::HeadAndTail);
    req.workdir = Some(workdir.to_string());
    req.env = verifier_env;
    req.user = spec.verifier_user.clone();
    let ran = c.exec(&req).await?;
    let stdout = match c.read_file(&format!("{VERIFIER_DIR}/test-stdout.txt")).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => ran.output.clone(),
    };
    let not_graded = |why: String| {
        let mut g = Grading::not_graded(&[], &[], "not applicable", why);
        g.rules = "harbor".into();
        g.log_parser = "reward-file".into();
        g.test_exit_code = Some(ran.exit_code);
        g.log_tail = tail(&stdout, LOG_TAIL).to_string();
        (g, 0.0)
    };
    if ran.timed_out {
        return Ok(not_graded(format!("the verifier ({script}) did not finish within {}s (the task's [verifier].timeout_sec)", timeout.as_secs())));
    }
    let read = |name: &'static str| async move {
        match c.read_file(&format!("{VERIFIER_DIR}/{name}")).await {
            Ok(b) => Ok(Some(b)),
            Err(SandboxError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let json = read("reward.json").await?;
    let txt = read("reward.txt").await?;
    let rewards = match harbor::read_rewards(json.as_deref(), txt.as_deref()) {
        Ok(r) => r,
        Err(e) => return Ok(not_graded(format!("the verifier ({script}) left no valid reward in {VERIFIER_DIR}: {e}; the task's test script must write reward.json or reward.txt"))),
    };
    let hg = spec.reward_rule().grade(rewards);
    let mut g = Grading::from_outcomes(Vec::new(), Vec::new(), "not applicable");
    g.resolution = if hg.resolved { Resolution::Full } else { Resolution::No };
    g.resolved = hg.resolved;
    g.rewards = hg.rewards;
    g.rules = "harbor".into();
    g.log_parser = "reward-file".into();
    g.test_exit_code = Some(ran.exit_code);
    g.log_tail = tail(&stdout, LOG_TAIL).to_string();
    Ok((g, hg.reward))
}
