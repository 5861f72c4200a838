//! `agentmill-worker run FILE`: episodes of a task file run on this host, without a coordinator
//! or Redis — to validate a dataset's environments before a cluster spends time on them (with
//! `replay`, every gold patch must resolve its task: `--validate`), to check a new worker host
//! end to end, or to look at a policy's episodes.
//!
//! The episodes are the cluster's own ([`run_episode`] with the worker's configuration: the
//! sandbox backend, limits, phase concurrency, policies), `capacity.episodes` at once. Each
//! ends in one line on stderr; the records go to `--out` (or stdout) as JSONL, in the form
//! the stream carries, so `agentmill-learner` tools read them. Rows the task parser refuses are
//! reported with their line, field and reason, and the good rows beside them still run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use agentmill_proto::{Resolution, Role, Task, TrajectoryRecord, parse_jsonl};
use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::episode::{EpisodeLease, run_episode};
use crate::host::{choose_backend, episode_env};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct LocalRun {
    /// A JSONL task file (SWE-bench rows as they are, or agentmill's own fields).
    pub tasks: PathBuf,
    /// Only these instance ids (empty: every task).
    pub only: Vec<String>,
    /// The policy for every task, over the rows' own `policy` (None: the row's, else the worker's).
    pub policy: Option<String>,
    /// Rollouts per task, over the rows' own `rollouts`.
    pub rollouts: Option<u32>,
    /// Where the records go (None: stdout).
    pub out: Option<PathBuf>,
    /// Folders whose files the rows may name, beyond the task file's own folder (and the
    /// configuration's `inputs.host_roots`).
    pub host_roots: Vec<PathBuf>,
    /// Harbor task directories (or folders of them) to run instead of a task file: each is
    /// read as the `harbor` package reads it and packed, as `agentmill submit --harbor` sends it.
    pub harbor: Vec<PathBuf>,
}

/// The tasks of Harbor task directories (`paths`: task directories or folders of them, picked
/// as the `harbor` package picks them), each packed into `pack_dir` and named there as its
/// `harbor.content`; and the directories refused, with why.
pub fn harbor_tasks(paths: &[PathBuf], pack_dir: &Path) -> anyhow::Result<(Vec<Task>, Vec<String>)> {
    use agentmill_proto::dataset::harbor;
    let mut tasks = Vec::new();
    let mut refused = Vec::new();
    for path in paths {
        let (dirs, skipped) = harbor::task_dirs(path).map_err(|e| anyhow::anyhow!("--harbor {}: {e}", path.display()))?;
        refused.extend(skipped.iter().map(|e| e.to_string()));
        for dir in dirs {
            let made = (|| -> Result<Task, String> {
                let t = harbor::read_task(&dir).map_err(|e| e.to_string())?;
                let mut row = harbor::task_row(&t).map_err(|e| e.to_string())?;
                let tar = harbor::pack_task(&dir).map_err(|e| e.to_string())?;
                let file = pack_dir.join(format!("{}-{}.tar", tasks.len(), t.name.replace(['/', '\\'], "_")));
                std::fs::write(&file, tar).map_err(|e| format!("writing {}: {e}", file.display()))?;
                if let Some(serde_json::Value::Object(h)) = row.get_mut("harbor") {
                    h.insert("content".into(), serde_json::Value::String(file.to_string_lossy().into_owned()));
                }
                Task::from_json_object(row).map_err(|e| {
                    let why: Vec<String> = e.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect();
                    format!("Harbor task {}: {}", dir.display(), why.join("; "))
                })
            })();
            match made {
                Ok(t) => tasks.push(t),
                Err(e) => refused.push(e),
            }
        }
    }
    Ok((tasks, refused))
}

/// The tasks of a run (its task file's rows, or its Harbor directories packed into
/// `packed_dir`), their paths resolved against the task file's folder; the number of rows
/// refused (each reported on stderr); and the configuration with the host roots the run reads
/// from (the task file's folder, `packed_dir`, `--host-root`).
fn load_tasks(cfg: &WorkerConfig, run: &LocalRun, packed_dir: &Path) -> anyhow::Result<(Vec<Task>, usize, WorkerConfig)> {
    let (mut tasks, errors) = if run.harbor.is_empty() {
        let file = std::fs::File::open(&run.tasks).with_context(|| format!("opening the task file {}", run.tasks.display()))?;
        let (tasks, errors) = parse_jsonl(std::io::BufReader::new(file));
        for e in &errors {
            eprintln!("{}: row {} ({}): {}: {}", run.tasks.display(), e.row, e.task_id.as_deref().unwrap_or("?"), e.field, e.reason);
        }
        (tasks, errors.len())
    } else {
        let (tasks, refused) = harbor_tasks(&run.harbor, packed_dir)?;
        for e in &refused {
            eprintln!("{e}");
        }
        (tasks, refused.len())
    };
    if !run.only.is_empty() {
        let unknown: Vec<&str> = run.only.iter().filter(|id| !tasks.iter().any(|t| &t.instance_id == *id)).map(String::as_str).collect();
        anyhow::ensure!(unknown.is_empty(), "--only: {} not in {}", unknown.join(", "), run.tasks.display());
        tasks.retain(|t| run.only.contains(&t.instance_id));
    }
    anyhow::ensure!(!tasks.is_empty() || errors > 0, "{} holds no task", if run.harbor.is_empty() { run.tasks.display().to_string() } else { "--harbor".to_string() });
    let base = run.tasks.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = std::fs::canonicalize(if base.as_os_str().is_empty() { Path::new(".") } else { base.as_path() }).unwrap_or(base);
    for t in &mut tasks {
        t.resolve_paths(&base);
        if let Some(p) = &run.policy {
            t.policy = Some(p.clone());
        }
        if let Some(r) = run.rollouts {
            t.rollouts = r;
        }
    }

    // The operator named the task file: the files beside it (and below) are theirs to read, as
    // are the configured roots; a row naming a path anywhere else is refused like on a worker.
    let mut cfg = cfg.clone();
    cfg.inputs.host_roots.push(base.clone());
    cfg.inputs.host_roots.push(packed_dir.to_path_buf());
    for root in &run.host_roots {
        cfg.inputs.host_roots.push(std::fs::canonicalize(root).with_context(|| format!("--host-root {}", root.display()))?);
    }
    Ok((tasks, errors, cfg))
}

/// What a local run did.
#[derive(Debug, Clone, Default)]
pub struct LocalSummary {
    /// Rows of the file the parser refused.
    pub rows_refused: usize,
    /// Episodes run.
    pub episodes: usize,
    /// Episodes by resolution (`FULL`, `PARTIAL`, `NO`, or `-` when not graded).
    pub by_resolution: BTreeMap<String, usize>,
    /// Episodes by exit reason.
    pub by_exit: BTreeMap<String, usize>,
    /// `task rN` of every episode that did not resolve FULL, with why.
    pub not_resolved: Vec<String>,
    /// The run was stopped early (`stop` resolved); the episodes still running were cancelled.
    pub interrupted: bool,
}

/// Runs the episodes; lines on stderr, records to `run.out` or stdout. Stops early (cancelling
/// the running episodes, whose containers are removed) when `stop` resolves.
pub async fn run_local(
    cfg: &WorkerConfig,
    run: &LocalRun,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<LocalSummary> {
    let packed = tempfile::tempdir().context("a temporary folder for packed Harbor tasks")?;
    let packed_dir = std::fs::canonicalize(packed.path()).context("the temporary folder")?;
    let (tasks, errors, cfg) = load_tasks(cfg, run, &packed_dir)?;
    let cfg = &cfg;
    let backend = choose_backend(cfg).await?;
    let engine = backend.engine().cloned();
    let worker_id = cfg.worker_id();
    // No metrics endpoint here: the image cache's figures go to the log only.
    let env = episode_env(cfg, backend, worker_id.clone(), &crate::metrics::WorkerMetrics::new())?;
    let slots = Arc::new(Semaphore::new(cfg.capacity.episodes.max(1) as usize));
    let cancel = CancellationToken::new();
    let mut running = tokio::task::JoinSet::new();
    let episodes: Vec<(Task, u32)> = tasks.iter().flat_map(|t| (0..t.rollouts).map(move |r| (t.clone(), r))).collect();
    let episode_ids: std::collections::HashSet<String> = episodes.iter().map(|(t, r)| local_episode_id(t, *r)).collect();
    let started = Instant::now();
    eprintln!("running {} episodes of {} tasks, {} at once", episodes.len(), tasks.len(), cfg.capacity.episodes.max(1));
    for (task, rollout) in episodes {
        let (env, slots, cancel) = (env.clone(), slots.clone(), cancel.clone());
        running.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let id = EpisodeLease {
                episode: local_episode_id(&task, rollout),
                rollout,
                attempt: 1,
                queued_at_unix_ms: 0,
            };
            run_episode(env, task, id, |_| {}, cancel).await
        });
    }

    let mut out: Box<dyn Write + Send> = match &run.out {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?)),
        None => Box::new(std::io::stdout()),
    };
    let mut summary = LocalSummary { rows_refused: errors, ..Default::default() };
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        let joined = tokio::select! {
            j = running.join_next() => j,
            () = &mut stop, if !stopping => {
                eprintln!("stopping: cancelling the running episodes");
                stopping = true;
                cancel.cancel();
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let record = joined.context("an episode task failed")?;
        eprintln!("{}", describe(&record));
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
        summary.count(&record);
    }
    out.flush()?;
    summary.interrupted = stopping;
    // An episode cancelled while its container was being created leaves that container to the
    // reaper, and this process exits before a dropped episode's background removal runs: remove
    // this run's containers here, by their episode labels (a worker service with the same
    // worker id keeps its own).
    if let Some(engine) = engine {
        match engine.containers_by_episode(&worker_id).await {
            Ok(containers) => {
                for (id, episode) in containers {
                    if episode_ids.contains(&episode) {
                        engine.remove_by_id(&id).await;
                    }
                }
            }
            Err(e) => tracing::warn!("listing this run's containers to remove them: {e}"),
        }
    }
    // The run's pulls each started a pass in the background, which the exit may cut short: one
    // more, waited for, leaves the host within `images.budget`.
    if let Some(images) = &env.images
        && let Err(e) = images.evict_to_budget().await
    {
        tracing::warn!("image cache pass at the end of the run: {e}");
    }
    eprintln!("{}", summary.describe(started.elapsed().as_secs_f64()));
    Ok(summary)
}

/// The episode label of a local run's rollout (distinct from any lease's episode).
fn local_episode_id(task: &Task, rollout: u32) -> String {
    format!("{}-r{rollout}-local", task.instance_id)
}

/// `agentmill__calc-1 r0: FULL (submitted, 9 steps, 4.2 s)`, with the error of an infra failure.
pub fn describe(r: &TrajectoryRecord) -> String {
    let steps = r.messages.iter().filter(|m| m.role == Role::Assistant).count();
    let mut line = format!(
        "{} r{}: {} ({}, {steps} steps, {:.1} s)",
        r.task_id,
        r.rollout,
        resolution(r),
        exit(r),
        r.timing.total_ms as f64 / 1000.0
    );
    if let Some(e) = &r.error {
        line.push_str(&format!(": {}", crate::episode::init::tail(e, 300)));
    }
    line
}

/// `FULL`, `PARTIAL`, `NO`, or `-` when the episode was not graded.
fn resolution(r: &TrajectoryRecord) -> &'static str {
    r.grading.as_ref().map_or("-", |g| g.resolution.as_str())
}

/// The exit reason's name, or `-`.
fn exit(r: &TrajectoryRecord) -> &'static str {
    r.exit_reason.map_or("-", |e| e.as_str())
}

impl LocalSummary {
    fn count(&mut self, r: &TrajectoryRecord) {
        self.episodes += 1;
        *self.by_resolution.entry(resolution(r).to_string()).or_default() += 1;
        *self.by_exit.entry(exit(r).to_string()).or_default() += 1;
        if r.grading.as_ref().map(|g| g.resolution) != Some(Resolution::Full) {
            self.not_resolved.push(format!("{} r{} ({}, {})", r.task_id, r.rollout, resolution(r), exit(r)));
        }
    }

    /// True when every episode resolved its task (FULL) and no row was refused.
    pub fn all_resolved(&self) -> bool {
        self.episodes > 0 && self.not_resolved.is_empty() && self.rows_refused == 0
    }

    /// The closing lines.
    pub fn describe(&self, seconds: f64) -> String {
        let join = |m: &BTreeMap<String, usize>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
        let mut s = format!("{} episodes in {seconds:.0} s: {}; exits: {}", self.episodes, join(&self.by_resolution), join(&self.by_exit));
        if self.rows_refused > 0 {
            s.push_str(&format!("; {} rows refused", self.rows_refused));
        }
        if !self.not_resolved.is_empty() {
            s.push_str(&format!("\nnot resolved: {}", self.not_resolved.join(", ")));
        }
        s
    }
}

/// What `agentmill-worker build` did.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    /// Rows (or Harbor directories) refused.
    pub rows_refused: usize,
    /// Environments built now.
    pub built: usize,
    /// Environments found already built.
    pub cached: usize,
    /// Builds that failed.
    pub failed: usize,
    /// Tasks with no environment to build (an image named).
    pub nothing: usize,
}

enum BuildOutcome {
    Nothing(String),
    Done(crate::sandbox::build::Built),
    Failed(Option<String>, String),
}

/// Builds the environments of a run's tasks (Harbor tasks with a Dockerfile and no
/// `docker_image`, OpenSWE rows with a Dockerfile) as their episodes would — the same context,
/// the same tag — `build.concurrency` at once; one line per task on stdout.
pub async fn build_local(cfg: &WorkerConfig, run: &LocalRun) -> anyhow::Result<BuildSummary> {
    use crate::episode::{harbor, openswe};
    use crate::sandbox::build::context_tag;
    let packed = tempfile::tempdir().context("a temporary folder for packed Harbor tasks")?;
    let packed_dir = std::fs::canonicalize(packed.path()).context("the temporary folder")?;
    let (tasks, errors, cfg) = load_tasks(cfg, run, &packed_dir)?;
    let backend = choose_backend(&cfg).await?;
    let env = episode_env(&cfg, backend, cfg.worker_id(), &crate::metrics::WorkerMetrics::new())?;
    let builder = env.builder.clone().context("building environments needs a Docker engine (sandbox = \"docker\")")?;
    let mut running = tokio::task::JoinSet::new();
    for task in tasks {
        let (env, builder) = (env.clone(), builder.clone());
        running.spawn(async move {
            let t = Instant::now();
            let outcome = async {
                let (context, name, timeout) = if let Some(spec) = task.harbor.as_ref().filter(|_| task.family == agentmill_proto::dataset::Family::Harbor) {
                    match (&spec.docker_image, &spec.dockerfile) {
                        (Some(image), _) => return BuildOutcome::Nothing(image.clone()),
                        (None, None) => return BuildOutcome::Failed(None, format!("task {} names neither docker_image nor a Dockerfile", task.instance_id)),
                        (None, Some(dockerfile)) => {
                            let made = async {
                                let content = harbor::read_content(&env, &task, spec).await?;
                                harbor::build_context(&content, dockerfile)
                            };
                            match made.await {
                                Ok((context, name)) => (context, name, harbor::build_timeout(spec)),
                                Err(e) => return BuildOutcome::Failed(None, e.to_string()),
                            }
                        }
                    }
                } else if task.family == agentmill_proto::dataset::Family::OpenSwe
                    && task.image.is_empty()
                    && let Some(dockerfile) = openswe::dockerfile(&task)
                {
                    match openswe::row_context(&env.inputs, &task, dockerfile).await {
                        Ok(context) => (context, openswe::DOCKERFILE_NAME.to_string(), openswe::BUILD_TIMEOUT),
                        Err(e) => return BuildOutcome::Failed(None, e.to_string()),
                    }
                } else {
                    return BuildOutcome::Nothing(if task.image.is_empty() { "-".into() } else { task.image.clone() });
                };
                let tag = context_tag(&context);
                match builder.ensure(&task.instance_id, context, &name, timeout).await {
                    Ok(built) => BuildOutcome::Done(built),
                    Err(e) => BuildOutcome::Failed(Some(tag), e.to_string()),
                }
            }
            .await;
            (task.instance_id.clone(), outcome, t.elapsed().as_secs_f64())
        });
    }
    let started = Instant::now();
    let mut summary = BuildSummary { rows_refused: errors, ..Default::default() };
    while let Some(joined) = running.join_next().await {
        let (id, outcome, secs) = joined.context("a build task failed")?;
        let line = match outcome {
            BuildOutcome::Nothing(image) => {
                summary.nothing += 1;
                format!("{id}: nothing to build (image {image})")
            }
            BuildOutcome::Done(b) if b.built => {
                summary.built += 1;
                format!("{id} {}: built ({secs:.1} s)", b.tag)
            }
            BuildOutcome::Done(b) => {
                summary.cached += 1;
                format!("{id} {}: cached ({secs:.1} s)", b.tag)
            }
            BuildOutcome::Failed(tag, why) => {
                summary.failed += 1;
                format!("{id} {}: failed: {why} ({secs:.1} s)", tag.as_deref().unwrap_or("-"))
            }
        };
        println!("{line}");
    }
    println!(
        "{} built, {} cached, {} failed, {} with nothing to build{} in {:.0} s",
        summary.built,
        summary.cached,
        summary.failed,
        summary.nothing,
        if summary.rows_refused > 0 { format!(", {} rows refused", summary.rows_refused) } else { String::new() },
        started.elapsed().as_secs_f64()
    );
    Ok(summary)
}
