//! The training service (`agentmill-learner train`): consume the trajectory stream, mix, pack
//! and train, checkpoint, and acknowledge each record only once a checkpoint holds it.
//!
//! ```text
//!  Redis stream ──XREADGROUP──▶ consumer task (async)                       trainer thread (tch)
//!                               admit: dedupe by record_id, skip infra        │
//!                               render + tokenize (blocking pool)             │
//!                               mix (recipe) → shuffle → pack (tagged)        │
//!                               steps ──────── bounded channel ─────────────▶ train_step
//!                               checkpoint data files ─────────────────────▶ save_checkpoint (trainer_state last)
//!          ◀──────XACK───────── on "checkpointed" ◀────────────────────────── ledger, prune
//! ```
//!
//! * **Exactly once.** The reasoning is in [`position`]: a record's entries are acknowledged
//!   after the first checkpoint that holds all of its tokens as trained; the shuffle buffer, the
//!   packer's partly filled rows and the records in them are part of each checkpoint; the dedupe set
//!   (`seen_records`) is too. After a crash the service resumes from the newest committed
//!   checkpoint, the stream re-delivers what was not acknowledged, and each entry is recognised
//!   as trained (acknowledged, skipped), still in the restored packer (left alone), or new.
//! * **Only accepted attempts train** ([`acceptance`]): a trainable `env` record of a task the
//!   coordinator knows trains only when the coordinator accepted its attempt; one it did not is
//!   settled `superseded`; one whose rollout has not decided is held, unacknowledged, and
//!   checked again (`coordinator_namespace`, `acceptance_timeout`, `acceptance_max_held`).
//! * **Dedupe** is by `record_id` within a run (one `output_dir`): a record published twice is
//!   trained once and both entries are acknowledged together.
//! * **Shuffling.** A record's copies and a task's rollouts arrive together; a buffer of
//!   `shuffle_steps` steps' worth of tokens releases them to the packer in a random order, so
//!   they train in different steps ([`shuffle`]; saved with each checkpoint).
//! * **Held-out evaluation** (`eval_fraction` > 0): a hashed share of the tasks (all their
//!   rollouts) and pull requests is never trained; up to `eval_tokens` of it forms the
//!   evaluation set, saved with each checkpoint, whose loss by source is measured every
//!   `eval_every` steps and after the last step ([`crate::eval`]).
//! * **Tokenizer.** `tokenizer` in the config, else the run's `output_dir/tokenizer.json`, else
//!   a byte-level BPE of `tokenizer_vocab` trained on `tokenizer_corpus` or on the stream's first
//!   `tokenizer_bootstrap_records` trainable records (fewer when the stream goes quiet first)
//!   and saved to `output_dir/tokenizer.json`; every checkpoint carries a copy and a resumed
//!   run uses the checkpoint's. The embedded tiny model's vocabulary is the tokenizer's, rounded
//!   up to a multiple of 64.
//! * **Stopping.** `max_steps` (a checkpoint at that step), `until_idle` (train what arrived,
//!   pad the packer's last rows, final checkpoint), the recipe's last budget (likewise), or
//!   SIGTERM / Ctrl-C (a checkpoint at the last step handed to the trainer). A crash or
//!   SIGKILL loses nothing: the next start resumes.
//! * **Status.** Every `status_interval` while it trains, and once more with the final figures,
//!   the service writes its [`LearnerStatus`](agentmill_proto::stream::LearnerStatus) (JSON)
//!   to the Redis key `<stream>:learner` with a 60 s expiry, for the coordinator, `agentmill
//!   top` and the status page (`status` module: a tokio task reading a snapshot that the trainer
//!   thread and the consumer update where they set the Prometheus metrics). A Redis error
//!   there is logged at most once a minute and never stops training.
//! * **Entries with no training effect** (infra failures, cancelled episodes, undecodable
//!   entries, records the recipe leaves out, duplicates) are acknowledged with the next
//!   checkpoint; when none will follow (the run stops right after one) they are acknowledged
//!   directly.
//!
//! The run's files: `checkpoints/step-NNNNNNNN/` (Hugging Face layout + optimizer + data
//! position), `tokenizer.json`, `trained_records.jsonl` (the ledger: one line per record, with
//! its outcome and the checkpoint that holds it) and `summary.json` ([`RunSummary`]).

pub mod acceptance;
pub mod position;
pub mod shuffle;

mod feed;
mod status;
mod train_loop;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentmill_proto::RecordKind;
use serde::{Deserialize, Serialize};
use tch::Device;
use tokio::sync::mpsc;

pub use feed::ResumeError;

use self::acceptance::{Acceptance, Verdict};
use self::feed::{Emitted, FeedSettings, Feeder, Pushed};
use self::position::{
    CHECKPOINTS_DIR, Counters, DATA_POSITION_FORMAT, DATA_STATE_FILE, DataPosition, PositionError, TOKENIZER_FILE,
};
use self::status::{Identity, Live, Reporter, Target};
use self::train_loop::{CheckpointWork, Event, ModelInit, Progress, TrainReport, TrainerSetup, Work};
use crate::checkpoint::{self, CheckpointError};
use crate::config::LearnerConfig;
use crate::eval::{EvalResult, held_out};
use crate::metrics::{self, Metrics};
use crate::mix::{Mixer, RecipeError};
use crate::model::Qwen2Config;
use crate::optim::AdamWConfig;
use crate::pack::PackError;
use crate::records::{self, RecordsError};
use crate::render::{AssistantTokens, render};
use crate::schedule::LrSchedule;
use crate::stream::{Entry, StreamConfig, StreamError, StreamReader};
use crate::tokenize::{TextTokenizer, TokenizeError, TurnCheck, TurnCounts, TurnOutcome};
use crate::train::{Precision, TrainConfig};

/// The run's summary, in the output directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// Schema of [`RunSummary`].
pub const SUMMARY_FORMAT: &str = "agentmill.learner_summary/v1";

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The device string is not one libtorch knows.
    #[error("device: {0}")]
    Device(String),
    /// The stream could not be read.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The tokenizer could not be loaded or trained.
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
    /// A records file could not be read.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// A checkpoint's data files could not be read or written.
    #[error(transparent)]
    Position(#[from] PositionError),
    /// A checkpoint's model files could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint's data state does not fit the configuration.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// The recipe cannot be followed.
    #[error("stages: {0}")]
    Recipe(#[from] RecipeError),
    /// Packing refused a document.
    #[error("packing: {0}")]
    Pack(#[from] PackError),
    /// A model config.json could not be used.
    #[error("{path}: {reason}")]
    Model {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer produces ids the model has no embedding for.
    #[error(
        "the tokenizer has {tokenizer} tokens but the model's vocabulary is {model}; use the model's own tokenizer.json (tokenizer = ...)"
    )]
    Vocab {
        /// Tokenizer vocabulary.
        tokenizer: usize,
        /// Model vocabulary.
        model: usize,
    },
    /// A checkpoint's trainer and data sides disagree.
    #[error(
        "{path}: the trainer is at step {trainer} but {DATA_STATE_FILE} at step {data}; the checkpoint is torn — delete it to resume from the one before"
    )]
    Torn {
        /// The checkpoint.
        path: PathBuf,
        /// Step of trainer_state.json.
        trainer: u64,
        /// Step of data_state.json.
        data: u64,
    },
    /// The metrics port could not be opened.
    #[error("metrics_listen {addr}: {error}; pick a free port or remove metrics_listen")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The trainer thread failed.
    #[error("trainer: {0}")]
    Trainer(String),
    /// A file of the run could not be written.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `max_steps` reached.
    MaxSteps,
    /// The stream was empty for `until_idle`.
    UntilIdle,
    /// The recipe's last token budget is spent.
    RecipeComplete,
    /// SIGTERM / Ctrl-C (or the caller's shutdown future).
    Shutdown,
    /// The stream stayed empty for `until_idle` before any record arrived to learn a tokenizer.
    NoData,
}

/// Records by what became of them, over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// `env` records trained (pass + fail).
    pub env: u64,
    /// `env` records that resolved their task, trained.
    pub env_pass: u64,
    /// Other `env` records, trained.
    pub env_fail: u64,
    /// `ctx` records trained.
    pub ctx: u64,
    /// Infra failures skipped.
    pub skipped_infra: u64,
    /// Cancelled episodes skipped.
    pub skipped_cancelled: u64,
    /// Left out by the recipe.
    pub excluded: u64,
    /// Nothing to train under the loss mask.
    pub no_targets: u64,
    /// Undecodable entries.
    pub invalid: u64,
    /// Entries whose record id was already trained or in flight.
    pub deduped: u64,
    /// Entries re-delivered after a crash that a checkpoint already held.
    pub redelivered: u64,
    /// Records held out for evaluation (never trained).
    #[serde(default)]
    pub held_out: u64,
    /// `env` records of an attempt the coordinator did not accept (its rollout accepted
    /// another, moved on, or ended failed or cancelled): never trained.
    #[serde(default)]
    pub superseded: u64,
    /// `env` records whose rollout accepted no attempt within `acceptance_timeout`.
    #[serde(default)]
    pub unaccepted: u64,
    /// Tokens handed to the packer (copies included).
    pub tokens_packed: u64,
}

impl From<&Counters> for RecordSummary {
    fn from(c: &Counters) -> RecordSummary {
        RecordSummary {
            env: c.trained_env_pass + c.trained_env_fail,
            env_pass: c.trained_env_pass,
            env_fail: c.trained_env_fail,
            ctx: c.trained_ctx,
            skipped_infra: c.skipped_infra,
            skipped_cancelled: c.skipped_cancelled,
            excluded: c.excluded,
            no_targets: c.no_targets,
            invalid: c.invalid,
            deduped: c.deduped,
            redelivered: c.redelivered,
            held_out: c.held_out,
            superseded: c.superseded,
            unaccepted: c.unaccepted,
            tokens_packed: c.tokens_packed,
        }
    }
}

/// `summary.json`: what the run did (counts over the whole run; throughput over this process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always [`SUMMARY_FORMAT`].
    pub format: String,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Optimizer steps completed (across resumes).
    pub steps: u64,
    /// Steps this process took.
    pub steps_this_process: u64,
    /// Real tokens trained (across resumes).
    pub tokens_trained: u64,
    /// Real tokens this process trained.
    pub tokens_this_process: u64,
    /// Loss of the run's first step.
    pub loss_first: Option<f64>,
    /// Loss of its last step.
    pub loss_last: Option<f64>,
    /// Records by outcome.
    pub records: RecordSummary,
    /// Real tokens / token slots of all rows packed.
    pub packing_efficiency: f64,
    /// Tokens this process trained per second of its training loop (waiting for data included).
    pub tokens_per_second: f64,
    /// Tokens per second spent in forward/backward/update alone.
    pub compute_tokens_per_second: f64,
    /// Model FLOPs utilisation of the training loop (CUDA only).
    pub mfu: Option<f64>,
    /// Seconds this process ran.
    pub wall_seconds: f64,
    /// Seconds the trainer waited for data.
    pub trainer_wait_seconds: f64,
    /// Checkpoints this process committed.
    pub checkpoints_this_process: u64,
    /// The newest committed checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Model parameters.
    pub parameters: u64,
    /// Where it trained.
    pub device: String,
    /// The held-out loss at the run's first evaluation (`eval_fraction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_loss_first: Option<f64>,
    /// The latest evaluation of this process, by source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalResult>,
    /// Assistant turns with the policy's token ids this process tokenized, by how the
    /// tokenizer's tokens of their text compare (re-tokenization drift).
    #[serde(default, skip_serializing_if = "TurnCounts::is_empty")]
    pub recorded_turns: TurnCounts,
}

impl RunSummary {
    fn empty(stop_reason: StopReason, device: Device, wall: Duration) -> RunSummary {
        RunSummary {
            format: SUMMARY_FORMAT.to_string(),
            stop_reason,
            steps: 0,
            steps_this_process: 0,
            tokens_trained: 0,
            tokens_this_process: 0,
            loss_first: None,
            loss_last: None,
            records: RecordSummary::default(),
            packing_efficiency: 0.0,
            tokens_per_second: 0.0,
            compute_tokens_per_second: 0.0,
            mfu: None,
            wall_seconds: wall.as_secs_f64(),
            trainer_wait_seconds: 0.0,
            checkpoints_this_process: 0,
            checkpoint: None,
            parameters: 0,
            device: format!("{device:?}"),
            eval_loss_first: None,
            eval: None,
            recorded_turns: TurnCounts::default(),
        }
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ServiceError + 'a {
    move |error| ServiceError::Io { action, path: path.to_path_buf(), error }
}

/// Runs the service until a stop condition or `shutdown` resolves; writes and returns the
/// summary. Call it on a multi-threaded tokio runtime: the consumer task writes checkpoint data
/// files and the trainer runs on its own thread.
pub async fn run(
    cfg: LearnerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunSummary, ServiceError> {
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let shutdown_task = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: finishing the queued steps and checkpointing");
        flag.store(true, Ordering::SeqCst);
    });
    let result = run_inner(&cfg, &stop, started).await;
    shutdown_task.abort();
    let summary = result?;
    checkpoint::write_json_file(&cfg.output_dir.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

async fn run_inner(cfg: &LearnerConfig, stop: &Arc<AtomicBool>, started: Instant) -> Result<RunSummary, ServiceError> {
    let output = cfg.output_dir.clone();
    let checkpoints = output.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&checkpoints).map_err(io_err("creating", &checkpoints))?;
    for dir in position::remove_torn(&output)? {
        tracing::warn!(dir = %dir.display(), "removed a checkpoint a crash left half-written");
    }
    let device = crate::device::parse_device(&cfg.device).map_err(ServiceError::Device)?;
    if cfg.device == "auto" && !device.is_cuda() {
        tracing::info!(
            cuda_backend = %crate::device::DeviceReport::probe().cuda_backend(),
            "device auto: libtorch sees no CUDA device, training on the CPU (on a GPU host, set device = \"cuda\" so that a missing GPU stops the learner)"
        );
    }
    let metrics = Arc::new(Metrics::new(device.is_cuda()));
    if let Some(addr) = cfg.metrics_listen {
        serve_metrics(addr, metrics.clone()).await?;
    }
    let resume = position::latest_checkpoint(&output)?;
    let mut reader = StreamReader::connect(StreamConfig {
        redis_url: cfg.redis_url.clone(),
        stream: cfg.stream.clone(),
        group: cfg.group.clone(),
        consumer: cfg.consumer.clone(),
        batch: cfg.read_batch,
        block: cfg.read_block,
        claim_idle: cfg.claim_idle,
    })
    .await?;
    tracing::info!(stream = %cfg.stream, group = %cfg.group, consumer = %cfg.consumer, output = %output.display(), "learner starting");
    let acceptance = if cfg.coordinator_namespace.is_empty() {
        tracing::warn!("coordinator_namespace is empty: every env record trains, whether or not the coordinator accepted its attempt");
        None
    } else {
        let a = Acceptance::connect(&cfg.redis_url, &cfg.coordinator_namespace)
            .await
            .map_err(|source| StreamError::Redis { stream: cfg.stream.clone(), source })?;
        Some(a)
    };

    let mut buffered = VecDeque::new();
    let tokenizer_path = output.join(TOKENIZER_FILE);
    let tokenizer = match &resume {
        Some((_, dir)) => TextTokenizer::from_file(&dir.join(TOKENIZER_FILE))?,
        None => match &cfg.tokenizer {
            Some(path) => TextTokenizer::from_file(path)?,
            None if tokenizer_path.is_file() => TextTokenizer::from_file(&tokenizer_path)?,
            None => match bootstrap_tokenizer(cfg, &mut reader, stop, &mut buffered).await? {
                Some(t) => t,
                None => {
                    let reason = if stop.load(Ordering::SeqCst) { StopReason::Shutdown } else { StopReason::NoData };
                    return Ok(RunSummary::empty(reason, device, started.elapsed()));
                }
            },
        },
    };
    tokenizer.save(&tokenizer_path)?;
    tracing::info!(vocab = tokenizer.vocab_size(), path = %tokenizer_path.display(), "tokenizer");

    let init = model_init(cfg, &resume, &tokenizer)?;
    let total_steps = cfg.effective_schedule_steps();
    let train = TrainConfig {
        seed: cfg.seed,
        schedule: LrSchedule {
            peak_lr: cfg.effective_peak_lr(),
            warmup_steps: ((total_steps as f64 * cfg.warmup_fraction).ceil() as u64).max(1),
            total_steps,
            final_lr_ratio: cfg.final_lr_ratio,
        },
        adamw: AdamWConfig { weight_decay: cfg.weight_decay, ..AdamWConfig::default() },
        max_grad_norm: cfg.max_grad_norm,
        precision: Precision::default_for(device),
    };

    let settings = FeedSettings {
        seq_len: cfg.seq_len,
        pad_id: tokenizer.pad_id,
        max_open_rows: cfg.max_open_rows,
        rows_per_step: cfg.rows_per_step(),
        checkpoint_every: cfg.checkpoint_every,
        max_steps: cfg.max_steps,
        eval_fraction: cfg.eval_fraction,
        eval_tokens: cfg.eval_tokens,
        shuffle_tokens: cfg.shuffle_tokens(cfg.seq_len),
        seed: cfg.seed,
    };
    let feeder = match &resume {
        Some((step, dir)) => {
            let (state, seen) = position::read_data_files(dir)?;
            if state.step != *step {
                return Err(ServiceError::Torn { path: dir.clone(), trainer: *step, data: state.step });
            }
            position::reconcile_ledger(&output, *step, dir)?;
            tracing::info!(
                step,
                dir = %dir.display(),
                records_trained = seen.len(),
                records_in_packer = state.pending.len(),
                "resuming"
            );
            Feeder::resume(settings, cfg.stages.clone(), state, seen)?
        }
        None => Feeder::new(settings, Mixer::new(cfg.stages.clone())?)?,
    };

    let (tx, rx) = mpsc::channel(cfg.queue_steps);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let progress = Arc::new(Progress::default());
    let live = Arc::new(Live::default());
    let setup = TrainerSetup {
        init,
        train,
        device,
        threads: cfg.threads,
        micro_batch_rows: cfg.micro_batch_rows,
        memory: cfg.memory_plan(),
        output_dir: output.clone(),
        keep_checkpoints: cfg.keep_checkpoints,
        log_every: cfg.log_every,
        peak_tflops: cfg.peak_tflops,
        metrics: metrics.clone(),
        progress: progress.clone(),
        live: live.clone(),
    };
    let trainer = train_loop::spawn(setup, rx, events_tx).map_err(io_err("starting the trainer thread", &output))?;
    match events.recv().await {
        Some(Event::Ready { step, .. }) if step == feeder.last_step() => {}
        Some(Event::Ready { step, .. }) => {
            let path = resume.map(|(_, d)| d).unwrap_or_default();
            return Err(ServiceError::Torn { path, trainer: step, data: feeder.last_step() });
        }
        Some(Event::Failed(e)) => return Err(ServiceError::Trainer(e)),
        _ => return Err(ServiceError::Trainer("the trainer thread stopped before the model was ready".into())),
    }

    let mut consumer = Consumer {
        cfg,
        feeder,
        reader,
        tx: Some(tx),
        events,
        tokenizer: Arc::new(tokenizer),
        tokenizer_path,
        metrics,
        progress,
        live: live.clone(),
        report: None,
        last_lag: None,
        rate: (Instant::now(), BTreeMap::new()),
        last_eval: None,
        warned_unusable_ids: false,
        turns: TurnCounts::default(),
        acceptance,
        held: Vec::new(),
        held_ids: HashSet::new(),
        last_recheck: Instant::now(),
    };
    // The first report shows a resumed run's counts.
    consumer.count_outcomes();
    let target = Target { redis_url: cfg.redis_url.clone(), stream: cfg.stream.clone(), interval: cfg.status_interval };
    let reporter = Reporter::start(target, Identity::new(device, cfg.peak_tflops), live.clone());
    let stop_reason = consumer.serve(stop, buffered).await?;
    if stop_reason != StopReason::Shutdown {
        // The run's last weights, measured once more (a shutdown stops without it, promptly).
        // Every step cut has been sent by now.
        let last = consumer.feeder.last_step();
        consumer.evaluate(last).await?;
    }
    let report = consumer.finish().await?;
    if trainer.join().is_err() {
        return Err(ServiceError::Trainer("the trainer thread panicked".into()));
    }
    let compute = report.compute.as_secs_f64();
    let loop_secs = report.wall.as_secs_f64();
    let tokens_per_second = if loop_secs > 0.0 { report.session_tokens as f64 / loop_secs } else { 0.0 };
    let summary = RunSummary {
        format: SUMMARY_FORMAT.to_string(),
        stop_reason,
        steps: report.step,
        steps_this_process: report.steps_run,
        tokens_trained: report.tokens_seen,
        tokens_this_process: report.session_tokens,
        loss_first: report.loss.first,
        loss_last: report.loss.last,
        records: RecordSummary::from(consumer.feeder.counters()),
        packing_efficiency: consumer.feeder.packing_efficiency(),
        tokens_per_second,
        compute_tokens_per_second: if compute > 0.0 { report.session_tokens as f64 / compute } else { 0.0 },
        mfu: device.is_cuda().then(|| metrics::mfu(report.parameters, tokens_per_second, cfg.peak_tflops)),
        wall_seconds: started.elapsed().as_secs_f64(),
        trainer_wait_seconds: report.waiting.as_secs_f64(),
        checkpoints_this_process: report.checkpoints,
        checkpoint: report
            .last_checkpoint
            .clone()
            .or_else(|| position::latest_checkpoint(&output).ok().flatten().map(|(_, d)| d)),
        parameters: report.parameters,
        device: format!("{device:?}"),
        eval_loss_first: report.loss.eval_first,
        eval: report.eval.clone(),
        recorded_turns: consumer.turns,
    };
    tracing::info!(
        stop = ?summary.stop_reason,
        steps = summary.steps,
        tokens = summary.tokens_trained,
        loss_first = ?summary.loss_first,
        loss_last = ?summary.loss_last,
        tok_s = format!("{:.0}", summary.tokens_per_second),
        "learner stopped"
    );
    reporter.finish(&live, &summary).await;
    Ok(summary)
}

/// How the model starts: the run's checkpoint, a Hugging Face checkpoint, or fresh.
fn model_init(
    cfg: &LearnerConfig,
    resume: &Option<(u64, PathBuf)>,
    tokenizer: &TextTokenizer,
) -> Result<ModelInit, ServiceError> {
    let need = tokenizer.vocab_size();
    let check = |model: usize| if model < need { Err(ServiceError::Vocab { tokenizer: need, model }) } else { Ok(()) };
    if let Some((_, dir)) = resume {
        check(checkpoint::read_config(dir)?.vocab_size)?;
        return Ok(ModelInit::Resume(dir.clone()));
    }
    if let Some(dir) = &cfg.model {
        check(checkpoint::read_config(dir)?.vocab_size)?;
        return Ok(ModelInit::Pretrained(dir.clone()));
    }
    let config = match &cfg.model_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
            let config = Qwen2Config::from_json_str(&text)
                .map_err(|e| ServiceError::Model { path: path.clone(), reason: e.to_string() })?;
            check(config.vocab_size)?;
            config
        }
        None => Qwen2Config { vocab_size: need.div_ceil(64) * 64, ..Qwen2Config::tiny() },
    };
    Ok(ModelInit::Fresh(config))
}

/// Learns a tokenizer from `tokenizer_corpus` or from the stream's first records (which are
/// kept in `buffered` for training). `None` when the stream stayed empty until a stop.
async fn bootstrap_tokenizer(
    cfg: &LearnerConfig,
    reader: &mut StreamReader,
    stop: &AtomicBool,
    buffered: &mut VecDeque<Entry>,
) -> Result<Option<TextTokenizer>, ServiceError> {
    let (vocab, template) = (cfg.tokenizer_vocab, cfg.template);
    if let Some(corpus) = &cfg.tokenizer_corpus {
        let records = records::read_jsonl(corpus)?;
        tracing::info!(records = records.len(), corpus = %corpus.display(), vocab, "training a tokenizer on the corpus");
        return Ok(Some(blocking(move || TextTokenizer::train_on_records(records.iter(), template, vocab)).await??));
    }
    let quiet = match (cfg.until_idle, cfg.flush_after_idle) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => Duration::from_secs(60),
    };
    tracing::info!(records = cfg.tokenizer_bootstrap_records, vocab, "waiting for records to train a tokenizer on");
    let mut trainable = 0usize;
    let mut last_data = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let batch = match reader.next_batch().await {
            Ok(b) => b,
            Err(e) if e.recovered() => {
                tracing::warn!("{e}");
                continue;
            }
            Err(e) => {
                tracing::warn!("{e}; retrying in 1s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            if last_data.elapsed() >= quiet {
                if trainable > 0 {
                    break;
                }
                if cfg.until_idle.is_some_and(|limit| last_data.elapsed() >= limit) {
                    return Ok(None);
                }
            }
            continue;
        }
        last_data = Instant::now();
        trainable += batch.iter().filter(|e| e.record.as_ref().is_ok_and(|r| learnable(r, cfg.eval_fraction))).count();
        buffered.extend(batch);
        if trainable >= cfg.tokenizer_bootstrap_records {
            break;
        }
    }
    // Held-out records stay out of the tokenizer too: nothing of them is learned.
    let records: Vec<_> = buffered
        .iter()
        .filter_map(|e| e.record.as_ref().ok().filter(|r| learnable(r, cfg.eval_fraction)).cloned())
        .collect();
    tracing::info!(records = trainable, vocab, "training a tokenizer on the stream's first records");
    Ok(Some(blocking(move || TextTokenizer::train_on_records(records.iter(), template, vocab)).await??))
}

/// A record the run may learn from: trainable and not held out.
fn learnable(record: &agentmill_proto::TrajectoryRecord, eval_fraction: f64) -> bool {
    record.is_trainable() && !held_out(record, eval_fraction)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ServiceError::Trainer(format!("a blocking task failed: {e}")))
}

async fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr, ServiceError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| ServiceError::Metrics { addr, error })?;
    let local = listener.local_addr().map_err(|error| ServiceError::Metrics { addr, error })?;
    let app = axum::Router::new().route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics server stopped: {e}");
        }
    });
    tracing::info!("metrics on http://{local}/metrics");
    Ok(local)
}

/// The async side: reads, admits, tokenizes, packs, sends steps, acknowledges.
struct Consumer<'a> {
    cfg: &'a LearnerConfig,
    feeder: Feeder,
    reader: StreamReader,
    tx: Option<mpsc::Sender<Work>>,
    events: mpsc::UnboundedReceiver<Event>,
    tokenizer: Arc<TextTokenizer>,
    tokenizer_path: PathBuf,
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
    /// The status report's snapshot (record counts, packing).
    live: Arc<Live>,
    report: Option<TrainReport>,
    last_lag: Option<Instant>,
    /// Start of the records/s window and admissions by kind in it.
    rate: (Instant, BTreeMap<&'static str, u64>),
    /// The step after which the last evaluation was sent.
    last_eval: Option<u64>,
    /// Whether recorded token ids that could not be used were reported.
    warned_unusable_ids: bool,
    /// Recorded assistant turns tokenized by this process, by outcome.
    turns: TurnCounts,
    /// Reads which attempt of a rollout the coordinator accepted (`None`: no check).
    acceptance: Option<Acceptance>,
    /// `env` records whose rollout has not accepted an attempt yet, with when they were first
    /// held: unacknowledged, checked again every [`RECHECK_EVERY`].
    held: Vec<(Entry, Instant)>,
    /// The stream ids of `held` (a claim of one of them is ignored).
    held_ids: HashSet<String>,
    last_recheck: Instant,
}

/// How often held records are checked again.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

impl Consumer<'_> {
    /// Reads and trains until a stop condition; returns why it stopped.
    async fn serve(&mut self, stop: &AtomicBool, mut buffered: VecDeque<Entry>) -> Result<StopReason, ServiceError> {
        let mut last_data = Instant::now();
        let reason = loop {
            self.poll_events().await?;
            if self.feeder.reached_max_steps() {
                break StopReason::MaxSteps;
            }
            if self.feeder.recipe_complete() {
                self.drain(true).await?;
                break StopReason::RecipeComplete;
            }
            if stop.load(Ordering::SeqCst) {
                self.checkpoint_now().await?;
                break StopReason::Shutdown;
            }
            if self.recheck_held().await? {
                last_data = Instant::now();
            }
            let entries: Vec<Entry> = if !buffered.is_empty() {
                buffered.drain(..).collect()
            } else if self.held.len() >= self.cfg.acceptance_max_held {
                // Full: wait for the coordinator to decide before reading more.
                tokio::time::sleep(RECHECK_EVERY).await;
                Vec::new()
            } else {
                match self.reader.next_batch().await {
                    Ok(e) => e,
                    Err(e) if e.recovered() => {
                        tracing::warn!("{e}");
                        self.metrics.group_recreated.inc();
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("{e}; retrying in 1s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            };
            self.observe().await;
            if entries.is_empty() {
                let idle = last_data.elapsed();
                // Records waiting for the coordinator's decision are data still to come.
                if self.held.is_empty() && self.cfg.until_idle.is_some_and(|limit| idle >= limit) {
                    tracing::info!(idle_s = idle.as_secs(), "the stream is idle: training what arrived, then stopping");
                    self.drain(true).await?;
                    break StopReason::UntilIdle;
                }
                if self.cfg.flush_after_idle.is_some_and(|limit| idle >= limit) && self.feeder.holds_unacknowledged() {
                    tracing::info!(idle_s = idle.as_secs(), "the stream is quiet: training what the packer holds");
                    self.drain(false).await?;
                }
                continue;
            }
            last_data = Instant::now();
            self.ingest(entries).await?;
        };
        Ok(reason)
    }

    /// Checks, admits, tokenizes and packs entries, and sends the steps they fill.
    async fn ingest(&mut self, entries: Vec<Entry>) -> Result<(), ServiceError> {
        let entries = self.gate(entries).await;
        self.admit(entries).await
    }

    /// Keeps from `entries` those that may train now: a trainable `env` record only when the
    /// coordinator accepted its attempt ([`acceptance`]). A superseded one is settled (never
    /// trained); one whose rollout has not decided is held.
    async fn gate(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let Some(acceptance) = self.acceptance.as_mut() else { return entries };
        let mut pass = Vec::with_capacity(entries.len());
        let mut check = Vec::new();
        for e in entries {
            if self.held_ids.contains(&e.id) {
                // Our own held entry, claimed again while it waits.
                continue;
            }
            match &e.record {
                Ok(r) if acceptance::applies(r) && !self.feeder.in_flight(&e.id) => check.push(e),
                _ => pass.push(e),
            }
        }
        if check.is_empty() {
            return pass;
        }
        let records: Vec<_> = check.iter().filter_map(|e| e.record.as_ref().ok()).collect();
        match acceptance.check(&records).await {
            Ok(verdicts) => {
                for (e, v) in check.into_iter().zip(verdicts) {
                    match v {
                        Verdict::Train => pass.push(e),
                        Verdict::Superseded(why) => self.feeder.refuse(e, position::Outcome::Superseded, why),
                        Verdict::Pending => self.hold(e, Instant::now()),
                    }
                }
            }
            Err(err) => {
                tracing::warn!("reading the coordinator's task status: {err}; the records wait and are checked again");
                for e in check {
                    self.hold(e, Instant::now());
                }
            }
        }
        self.metrics.awaiting_acceptance.set(self.held.len() as i64);
        pass
    }

    fn hold(&mut self, entry: Entry, since: Instant) {
        self.held_ids.insert(entry.id.clone());
        self.held.push((entry, since));
    }

    /// Checks the held records again (at most every [`RECHECK_EVERY`]): the accepted ones
    /// train, the superseded ones and those held past `acceptance_timeout` are settled. True
    /// when any was decided.
    async fn recheck_held(&mut self) -> Result<bool, ServiceError> {
        if self.held.is_empty() || self.last_recheck.elapsed() < RECHECK_EVERY {
            return Ok(false);
        }
        self.last_recheck = Instant::now();
        let Some(acceptance) = self.acceptance.as_mut() else { return Ok(false) };
        let held = std::mem::take(&mut self.held);
        self.held_ids.clear();
        let records: Vec<_> = held.iter().filter_map(|(e, _)| e.record.as_ref().ok()).collect();
        let verdicts = match acceptance.check(&records).await {
            Ok(v) if v.len() == held.len() => v,
            Ok(_) => vec![Verdict::Pending; held.len()],
            Err(err) => {
                tracing::warn!("reading the coordinator's task status: {err}; the held records are checked again");
                vec![Verdict::Pending; held.len()]
            }
        };
        let timeout = self.cfg.acceptance_timeout;
        let mut ready = Vec::new();
        let mut decided = false;
        for ((e, since), v) in held.into_iter().zip(verdicts) {
            match v {
                Verdict::Train => ready.push(e),
                Verdict::Superseded(why) => {
                    decided = true;
                    self.feeder.refuse(e, position::Outcome::Superseded, why);
                }
                Verdict::Pending if since.elapsed() >= timeout => {
                    decided = true;
                    let why = format!(
                        "the coordinator accepted no attempt of rollout {} of task {} within acceptance_timeout ({})",
                        e.record.as_ref().map(|r| r.rollout).unwrap_or_default(),
                        e.record.as_ref().map(|r| r.task_id.as_str()).unwrap_or_default(),
                        humantime::format_duration(timeout)
                    );
                    tracing::warn!("{why}; its record is not trained");
                    self.feeder.refuse(e, position::Outcome::Unaccepted, why);
                }
                Verdict::Pending => self.hold(e, since),
            }
        }
        self.metrics.awaiting_acceptance.set(self.held.len() as i64);
        decided |= !ready.is_empty();
        self.admit(ready).await?;
        Ok(decided)
    }

    /// Admits, tokenizes and packs entries, and sends the steps they fill.
    async fn admit(&mut self, entries: Vec<Entry>) -> Result<(), ServiceError> {
        let admitted: Vec<_> = entries.into_iter().filter_map(|e| self.feeder.admit(e)).collect();
        for a in &admitted {
            *self.rate.1.entry(a.record.kind.as_str()).or_default() += 1;
        }
        let (tokenizer, template, tokens) = (self.tokenizer.clone(), self.cfg.template, self.cfg.assistant_tokens);
        let tokenized = blocking(move || {
            admitted
                .into_iter()
                .map(|a| {
                    let encoded = match render(&a.record, template) {
                        Some(r) => tokenizer.encode_record(&r, tokens).map_err(|e| e.to_string()),
                        None => Err("not trainable".to_string()),
                    };
                    (a.serial, a.record.record_id, encoded)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        for (serial, record_id, encoded) in tokenized {
            match encoded {
                Ok(e) => {
                    self.count_turns(&record_id, &e.turns);
                    if self.feeder.push(serial, e.ids, e.mask)? == Pushed::RecipeComplete {
                        continue;
                    }
                }
                Err(reason) => self.feeder.reject(serial, reason),
            }
        }
        self.count_outcomes();
        while let Some(step) = self.feeder.next_step(false) {
            let final_checkpoint = self.feeder.reached_max_steps();
            self.send_step(step, final_checkpoint).await?;
        }
        self.count_outcomes();
        Ok(())
    }

    /// Sends a step, with its checkpoint when one is due.
    async fn send_step(&mut self, step: Emitted, final_checkpoint: bool) -> Result<(), ServiceError> {
        let checkpoint = if step.checkpoint_due { Some(self.prepare_checkpoint(final_checkpoint)?) } else { None };
        tracing::debug!(step = step.step, rows = step.rows.len(), records_completed = step.completed, "step queued");
        self.send_trained(step, checkpoint).await
    }

    /// Sends a step, then an evaluation when one falls due after it.
    async fn send_trained(&mut self, emitted: Emitted, checkpoint: Option<CheckpointWork>) -> Result<(), ServiceError> {
        let step = emitted.step;
        self.send(Work::Step { step, rows: emitted.rows, groups: emitted.groups, checkpoint }).await?;
        let every = self.cfg.eval_every;
        if every > 0 && step.is_multiple_of(every) {
            self.evaluate(step).await?;
        }
        Ok(())
    }

    /// Sends an evaluation of the weights after `step` (the last step sent to the trainer: a
    /// drain cuts steps one ahead of sending them), when held-out data exists and those weights
    /// were not measured yet.
    async fn evaluate(&mut self, step: u64) -> Result<(), ServiceError> {
        if self.cfg.eval_fraction <= 0.0 || step == 0 || self.last_eval == Some(step) {
            return Ok(());
        }
        let groups = self.feeder.eval_set().rows(self.cfg.seq_len, self.tokenizer.pad_id)?;
        if groups.is_empty() {
            return Ok(());
        }
        self.last_eval = Some(step);
        self.send(Work::Evaluate { step, groups }).await
    }

    /// Writes the data files of the checkpoint after the last step handed out.
    fn prepare_checkpoint(&mut self, final_checkpoint: bool) -> Result<CheckpointWork, ServiceError> {
        let plan = self.feeder.plan();
        let step = plan.state.step;
        let dir = position::checkpoint_dir(&self.cfg.output_dir, step);
        position::write_data_files(&dir, &plan.state, self.feeder.completed_ids(), &plan.delta, &self.tokenizer_path)?;
        let c = &plan.state.counters;
        let position = DataPosition {
            format: DATA_POSITION_FORMAT.to_string(),
            stream: self.cfg.stream.clone(),
            group: self.cfg.group.clone(),
            data_state: DATA_STATE_FILE.to_string(),
            seen_records: position::SEEN_RECORDS_FILE.to_string(),
            records: position::CHECKPOINT_RECORDS_FILE.to_string(),
            records_trained: c.trained_env_pass + c.trained_env_fail + c.trained_ctx,
            loss: Default::default(),
        };
        Ok(CheckpointWork { step, dir, position, ack: plan.ack, final_checkpoint })
    }

    /// Trains everything the packer holds (padding its last rows) and checkpoints after it.
    async fn drain(&mut self, final_checkpoint: bool) -> Result<(), ServiceError> {
        self.feeder.finish_packer()?;
        let mut held: Option<(Emitted, Option<CheckpointWork>)> = None;
        while let Some(step) = self.feeder.next_step(true) {
            if let Some((s, c)) = held.take() {
                self.send_trained(s, c).await?;
            }
            let checkpoint = if step.checkpoint_due { Some(self.prepare_checkpoint(false)?) } else { None };
            held = Some((step, checkpoint));
        }
        self.count_outcomes();
        match held {
            Some((s, c)) => {
                let c = match c {
                    Some(mut c) => {
                        c.final_checkpoint = final_checkpoint;
                        c
                    }
                    None => self.prepare_checkpoint(final_checkpoint)?,
                };
                self.send_trained(s, Some(c)).await?;
            }
            None => self.checkpoint_now().await?,
        }
        Ok(())
    }

    /// Checkpoints at the last step handed out, when there was a step since the last
    /// checkpoint; else acknowledges settled entries (which have no training effect) directly.
    async fn checkpoint_now(&mut self) -> Result<(), ServiceError> {
        if self.feeder.steps_since_plan() {
            let c = self.prepare_checkpoint(true)?;
            self.send(Work::Checkpoint(c)).await
        } else {
            let ids = self.feeder.take_settled_without_checkpoint();
            self.ack(ids).await;
            Ok(())
        }
    }

    /// Sends work to the trainer, handling its events while the queue is full.
    async fn send(&mut self, work: Work) -> Result<(), ServiceError> {
        let Some(tx) = self.tx.clone() else {
            return Err(ServiceError::Trainer("the trainer's queue is closed".into()));
        };
        loop {
            let event = tokio::select! {
                permit = tx.reserve() => {
                    match permit {
                        Ok(permit) => {
                            self.metrics.queued_steps.inc();
                            self.progress.set_packing(self.feeder.packing_efficiency());
                            permit.send(work);
                            return Ok(());
                        }
                        // The trainer is gone; its last event says why.
                        Err(_) => self.events.recv().await,
                    }
                }
                event = self.events.recv() => event,
            };
            self.on_event(event).await?;
        }
    }

    /// Handles the events already waiting (acknowledging committed checkpoints).
    async fn poll_events(&mut self) -> Result<(), ServiceError> {
        while let Ok(event) = self.events.try_recv() {
            self.on_event(Some(event)).await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: Option<Event>) -> Result<(), ServiceError> {
        match event {
            Some(Event::Checkpointed { step, ack }) => {
                tracing::debug!(step, entries = ack.len(), "acknowledging the entries checkpoint {step} holds");
                self.ack(ack).await;
                Ok(())
            }
            Some(Event::Failed(e)) => Err(ServiceError::Trainer(e)),
            Some(Event::Done(r)) => {
                self.report = Some(*r);
                Ok(())
            }
            Some(Event::Ready { .. }) => Ok(()),
            None => Err(ServiceError::Trainer("the trainer thread stopped".into())),
        }
    }

    /// Acknowledges entries; a failure is logged (after a restart they come back and are
    /// recognised as already trained).
    async fn ack(&mut self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        for attempt in 1..=3 {
            match self.reader.ack(&ids).await {
                Ok(()) => {
                    self.metrics.acked.inc_by(ids.len() as u64);
                    self.feeder.acknowledged(&ids);
                    // Acknowledging is what moves the lag; show it in the next progress line.
                    self.refresh_lag().await;
                    return;
                }
                Err(e) if attempt < 3 => {
                    tracing::warn!("acknowledging {} entries: {e}; retrying", ids.len());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => tracing::error!(
                    "acknowledging {} entries: {e}; they stay pending and are skipped as already trained when re-delivered",
                    ids.len()
                ),
            }
        }
    }

    /// Closes the trainer's queue and waits until it has trained and checkpointed everything.
    async fn finish(&mut self) -> Result<TrainReport, ServiceError> {
        self.tx = None;
        while self.report.is_none() {
            let event = self.events.recv().await;
            self.on_event(event).await?;
        }
        // Entries settled after the last checkpoint have no training effect.
        let ids = self.feeder.take_settled_without_checkpoint();
        self.ack(ids).await;
        self.observe().await;
        self.report.take().ok_or_else(|| ServiceError::Trainer("no report".into()))
    }

    /// Counts settled outcomes into the metrics.
    /// Counts a record's recorded assistant turns, and says once when `assistant_tokens =
    /// "recorded"` cannot use a turn's ids (the tokenizer is not the policy's, most likely).
    fn count_turns(&mut self, record_id: &str, turns: &[TurnCheck]) {
        if turns.is_empty() {
            return;
        }
        let mut counts = TurnCounts::default();
        counts.add(turns);
        self.metrics.count_turns(&counts);
        self.turns.add(turns);
        let unusable = turns.iter().find(|t| !t.outcome.usable());
        if let Some(turn) = unusable.filter(|_| self.cfg.assistant_tokens == AssistantTokens::Recorded && !self.warned_unusable_ids) {
            self.warned_unusable_ids = true;
            tracing::warn!(
                record = record_id,
                turn = turn.turn,
                outcome = turn.outcome.as_str(),
                "assistant_tokens = \"recorded\": this turn's token ids cannot stand in for its text ({}), so it trains the rendered tokens; \
                 is `tokenizer` the policy's tokenizer.json? agentmill_learner_recorded_turns_total counts every such turn (said once)",
                match turn.outcome {
                    TurnOutcome::OutOfVocab => "an id beyond the tokenizer's vocabulary",
                    _ => "the turn does not start and end on a token boundary",
                }
            );
        }
    }

    fn count_outcomes(&mut self) {
        for (kind, outcome) in self.feeder.take_outcomes() {
            let kind = kind.map(RecordKind::as_str).unwrap_or("unknown");
            if outcome == position::Outcome::Duplicate {
                self.metrics.deduped.inc();
            }
            self.metrics.records.with_label_values(&[kind, outcome.as_str()]).inc();
        }
        let packing = self.feeder.packing_efficiency();
        self.metrics.packing_efficiency.set(packing);
        self.live.counted(self.feeder.counters(), packing);
    }

    async fn refresh_lag(&mut self) {
        self.last_lag = Some(Instant::now());
        match self.reader.lag().await {
            Ok(lag) => {
                self.metrics.stream_lag.set(lag as i64);
                self.progress.set_lag(lag);
            }
            Err(e) => tracing::warn!("reading the stream lag: {e}"),
        }
    }

    /// Refreshes the lag (at most once a second) and the records/s gauges (every ~10 s).
    async fn observe(&mut self) {
        if self.last_lag.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.refresh_lag().await;
        }
        let secs = self.rate.0.elapsed().as_secs_f64();
        if secs >= 10.0 {
            for kind in ["env", "ctx"] {
                let n = self.rate.1.get(kind).copied().unwrap_or(0);
                self.metrics.records_per_second.with_label_values(&[kind]).set(n as f64 / secs);
            }
            self.rate = (Instant::now(), BTreeMap::new());
        }
    }
}
