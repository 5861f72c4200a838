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
//! The parts: this module runs the service (set-up, the trainer thread, the stop); `consumer`
//! is its async side; `feed` mixes, shuffles and packs; `train_loop` is the trainer thread;
//! `position` the checkpointed data position; `acceptance` the coordinator check; `status` the
//! live report; `summary` what `summary.json` holds.
//!
//! The run's files: `checkpoints/step-NNNNNNNN/` (Hugging Face layout + optimizer + data
//! position), `tokenizer.json`, `trained_records.jsonl` (the ledger: one line per record, with
//! its outcome and the checkpoint that holds it) and `summary.json` ([`RunSummary`]).

pub mod acceptance;
pub mod position;
pub mod shuffle;

mod consumer;
mod feed;
mod status;
mod summary;
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
pub use summary::{RecordSummary, RunSummary, SUMMARY_FILE, SUMMARY_FORMAT, StopReason};
use self::consumer::Consumer;

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

