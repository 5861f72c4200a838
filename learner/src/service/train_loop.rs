//! The trainer's own OS thread: libtorch is synchronous, so the model lives here and the async
//! stream consumer never waits on a forward pass.
//!
//! It receives [`Work`] over a bounded channel (the back-pressure between reading and
//! training), trains each step, writes checkpoints (the consumer has already written their data
//! files), appends each checkpoint's records to the run's ledger, prunes old checkpoints, and
//! reports [`Event`]s back: the consumer acknowledges stream entries only on
//! [`Event::Checkpointed`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tch::Device;
use tokio::sync::mpsc;

use super::position::{self, DataPosition, LossTrace};
use super::status::Live;
use crate::eval::{self, EvalResult};
use crate::metrics::{self, Metrics};
use crate::mix::Source;
use crate::model::Qwen2Config;
use crate::pack::PackedRow;
use crate::train::{Batch, MemoryPlan, TrainConfig, TrainError, Trainer};

/// How the model starts.
#[derive(Debug, Clone)]
pub(crate) enum ModelInit {
    /// From a committed checkpoint of this run (model, optimizer, step).
    Resume(PathBuf),
    /// From a Hugging Face checkpoint's weights, with a fresh optimizer.
    Pretrained(PathBuf),
    /// Freshly initialised.
    Fresh(Qwen2Config),
}

/// What the trainer thread needs.
#[derive(Debug)]
pub(crate) struct TrainerSetup {
    pub init: ModelInit,
    pub train: TrainConfig,
    pub device: Device,
    pub threads: usize,
    pub micro_batch_rows: usize,
    pub memory: MemoryPlan,
    pub output_dir: PathBuf,
    pub keep_checkpoints: usize,
    pub log_every: u64,
    pub peak_tflops: f64,
    pub metrics: Arc<Metrics>,
    pub progress: Arc<Progress>,
    /// The status report's snapshot (step, tokens, loss, lr, grad norm).
    pub live: Arc<Live>,
}

/// Numbers the consumer updates for the trainer's progress line.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    lag: AtomicU64,
    packing_bits: AtomicU64,
}

impl Progress {
    pub fn set_lag(&self, lag: u64) {
        self.lag.store(lag, Ordering::Relaxed);
    }

    pub fn set_packing(&self, packing_efficiency: f64) {
        self.packing_bits.store(packing_efficiency.to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> (u64, f64) {
        (self.lag.load(Ordering::Relaxed), f64::from_bits(self.packing_bits.load(Ordering::Relaxed)))
    }
}

/// A checkpoint to write after the trainer reaches `step`.
#[derive(Debug)]
pub(crate) struct CheckpointWork {
    pub step: u64,
    pub dir: PathBuf,
    pub position: DataPosition,
    /// Stream entries to acknowledge once it commits.
    pub ack: Vec<String>,
    pub final_checkpoint: bool,
}

/// One message to the trainer.
#[derive(Debug)]
pub(crate) enum Work {
    /// Train a step, then maybe checkpoint. `groups[r]` is the source (index of
    /// [`Source::ALL`]) of each document of row `r`, for the loss by source.
    Step { step: u64, rows: Vec<PackedRow>, groups: Vec<Vec<usize>>, checkpoint: Option<CheckpointWork> },
    /// Checkpoint without a new step (shutdown, or a drain that ended on a step already sent).
    Checkpoint(CheckpointWork),
    /// Measure the held-out loss after `step` (rows grouped by source).
    Evaluate { step: u64, groups: Vec<(Source, Vec<PackedRow>)> },
}

/// What the trainer did, at the end.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrainReport {
    pub step: u64,
    pub steps_run: u64,
    pub tokens_seen: u64,
    pub session_tokens: u64,
    pub loss: LossTrace,
    pub parameters: u64,
    pub wall: Duration,
    pub compute: Duration,
    pub waiting: Duration,
    pub last_checkpoint: Option<PathBuf>,
    pub checkpoints: u64,
    /// The latest held-out evaluation of this process.
    pub eval: Option<EvalResult>,
}

/// Reports from the trainer thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// The model is ready at `step`.
    Ready { step: u64 },
    /// A checkpoint committed; its entries may be acknowledged.
    Checkpointed { step: u64, ack: Vec<String> },
    /// Training cannot go on.
    Failed(String),
    /// The channel closed and everything sent was trained.
    Done(Box<TrainReport>),
}

/// Starts the trainer thread.
pub(crate) fn spawn(
    setup: TrainerSetup,
    work: mpsc::Receiver<Work>,
    events: mpsc::UnboundedSender<Event>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("trainer".into()).spawn(move || {
        if let Err(e) = run(setup, work, &events) {
            tracing::error!("trainer: {e}");
            let _ = events.send(Event::Failed(e.to_string()));
        }
    })
}

#[derive(Debug, thiserror::Error)]
enum LoopError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Position(#[from] position::PositionError),
    #[error("{0}")]
    Order(String),
}

fn run(
    setup: TrainerSetup,
    mut work: mpsc::Receiver<Work>,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<(), LoopError> {
    if setup.threads > 0 {
        tch::set_num_threads(setup.threads as i32);
    }
    let (mut trainer, mut loss) = match &setup.init {
        ModelInit::Resume(dir) => {
            let (trainer, position) = Trainer::resume(dir, setup.device)?;
            let loss = serde_json::from_value::<DataPosition>(position).map(|p| p.loss).unwrap_or_default();
            (trainer, loss)
        }
        ModelInit::Pretrained(dir) => (Trainer::from_pretrained(dir, setup.train, setup.device)?, LossTrace::default()),
        ModelInit::Fresh(config) => (Trainer::new(config, setup.train, setup.device)?, LossTrace::default()),
    };
    trainer.set_memory_plan(setup.memory);
    let parameters = trainer.model().config().num_parameters() as u64;
    let mut report = TrainReport { step: trainer.step(), parameters, ..Default::default() };
    setup.metrics.step.set(trainer.step() as i64);
    setup.live.ready(trainer.step(), trainer.tokens_seen(), &loss, parameters);
    let _ = events.send(Event::Ready { step: trainer.step() });
    tracing::info!(
        step = trainer.step(),
        parameters,
        device = ?setup.device,
        precision = ?trainer.config().precision,
        activation_checkpointing = setup.memory.activation_checkpointing,
        loss_chunk_tokens = setup.memory.loss_chunk_tokens,
        "trainer ready"
    );

    let started = Instant::now();
    let mut window = (Instant::now(), 0u64);
    loop {
        let wait = Instant::now();
        let Some(next) = work.blocking_recv() else { break };
        let waited = wait.elapsed();
        report.waiting += waited;
        setup.metrics.trainer_wait_seconds.inc_by(waited.as_secs_f64());
        setup.metrics.queued_steps.dec();
        let checkpoint = match next {
            Work::Step { step, rows, groups, checkpoint } => {
                if step != trainer.step() + 1 {
                    return Err(LoopError::Order(format!(
                        "received step {step} but the trainer is at step {}; the data side and the checkpoint disagree",
                        trainer.step()
                    )));
                }
                let t = Instant::now();
                let batches = rows
                    .chunks(setup.micro_batch_rows)
                    .zip(groups.chunks(setup.micro_batch_rows))
                    .map(|(chunk, groups)| Batch::from_rows_grouped(chunk, groups, setup.device))
                    .collect::<Result<Vec<_>, _>>()?;
                let stats = trainer.train_step(&batches)?;
                report.compute += t.elapsed();
                report.steps_run += 1;
                report.session_tokens += stats.tokens;
                loss.first.get_or_insert(stats.loss);
                loss.last = Some(stats.loss);
                let m = &setup.metrics;
                m.step.set(stats.step as i64);
                m.tokens.inc_by(stats.tokens);
                m.loss.set(stats.loss);
                m.learning_rate.set(stats.lr);
                m.grad_norm.set(stats.grad_norm);
                for (source, l) in Source::ALL.iter().zip(stats.loss_by_group) {
                    if let Some(l) = l {
                        m.loss_by_source.with_label_values(&[source.as_str()]).set(l);
                    }
                }
                setup.live.stepped(&stats, trainer.tokens_seen());
                window.1 += stats.tokens;
                if stats.step % setup.log_every == 0 {
                    let secs = window.0.elapsed().as_secs_f64().max(1e-9);
                    let tok_s = window.1 as f64 / secs;
                    m.tokens_per_second.set(tok_s);
                    let (lag, pack) = setup.progress.get();
                    let mut line = format!(
                        "step {} loss {:.2} lr {:.1e} gnorm {:.2} tok/s {:.0} lag {lag} pack {:.1}%",
                        stats.step,
                        stats.loss,
                        stats.lr,
                        stats.grad_norm,
                        tok_s,
                        pack * 100.0
                    );
                    if setup.device.is_cuda() {
                        let mfu = metrics::mfu(parameters, tok_s, setup.peak_tflops);
                        m.mfu.set(mfu);
                        line.push_str(&format!(" mfu {:.1}%", mfu * 100.0));
                    }
                    tracing::info!("{line}");
                    window = (Instant::now(), 0);
                }
                checkpoint
            }
            Work::Checkpoint(c) => Some(c),
            Work::Evaluate { step, groups } => {
                if step != trainer.step() {
                    return Err(LoopError::Order(format!(
                        "evaluation planned after step {step} but the trainer is at step {}",
                        trainer.step()
                    )));
                }
                let t = Instant::now();
                let result = eval::evaluate_rows(trainer.model(), &groups, setup.micro_batch_rows, setup.device, step)?;
                let m = &setup.metrics;
                m.eval_loss.with_label_values(&["all"]).set(result.loss);
                for (source, l) in &result.by_source {
                    m.eval_loss.with_label_values(&[source.as_str()]).set(l.loss);
                }
                m.eval_tokens.set(result.tokens as i64);
                loss.eval_first.get_or_insert(result.loss);
                loss.eval_last = Some(result.loss);
                setup.live.evaluated(result.loss);
                tracing::info!("eval step {step} {} ({:.1}s)", result.describe(), t.elapsed().as_secs_f64());
                report.eval = Some(result);
                None
            }
        };
        if let Some(mut c) = checkpoint {
            if c.step != trainer.step() {
                return Err(LoopError::Order(format!(
                    "checkpoint planned for step {} but the trainer is at step {}",
                    c.step,
                    trainer.step()
                )));
            }
            let t = Instant::now();
            c.position.loss = loss;
            let position = serde_json::to_value(&c.position).map_err(|e| LoopError::Order(e.to_string()))?;
            trainer.save_checkpoint(&c.dir, &position)?;
            // Durable before any entry it holds is acknowledged: a host crash after the XACK
            // must not lose the checkpoint that justified it.
            crate::checkpoint::sync_tree(&c.dir).map_err(TrainError::from)?;
            position::append_ledger(&setup.output_dir, &c.dir)?;
            position::prune(&setup.output_dir, c.step, setup.keep_checkpoints)?;
            let secs = t.elapsed().as_secs_f64();
            setup.metrics.checkpoints.inc();
            setup.metrics.checkpoint_seconds.observe(secs);
            report.checkpoints += 1;
            report.last_checkpoint = Some(c.dir.clone());
            tracing::info!(
                step = c.step,
                acknowledging = c.ack.len(),
                seconds = format!("{secs:.2}"),
                dir = %c.dir.display(),
                "{}checkpoint committed",
                if c.final_checkpoint { "final " } else { "" }
            );
            let _ = events.send(Event::Checkpointed { step: c.step, ack: std::mem::take(&mut c.ack) });
        }
    }
    report.step = trainer.step();
    report.tokens_seen = trainer.tokens_seen();
    report.loss = loss;
    report.wall = started.elapsed();
    let _ = events.send(Event::Done(Box::new(report)));
    Ok(())
}
